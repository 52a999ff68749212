use crate::model::pricing::apply_discount;

pub struct Cart {
    pub items: Vec<f64>,
}

impl Cart {
    pub fn total(&self, percent: f64) -> f64 {
        apply_discount(self.items.iter().sum(), percent)
    }
}

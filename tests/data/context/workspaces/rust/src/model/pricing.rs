pub fn apply_discount(price: f64, percent: f64) -> f64 {
    price * (100.0 - percent) / 100.0
}

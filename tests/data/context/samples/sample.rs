mod model;
use crate::model::Item;
use std::collections::HashMap;

pub struct Inventory {
    items: Vec<Item>,
}

pub trait Priced {
    fn price(&self) -> u32;
}

impl Inventory {
    pub fn new(items: Vec<Item>) -> Self {
        Inventory { items }
    }

    pub fn total(&self) -> u32 {
        self.items.iter().map(|item| item.price()).sum()
    }
}

pub fn index(items: &[Item]) -> HashMap<String, u32> {
    items.iter().map(|i| (i.name.clone(), i.price())).collect()
}

mod model;
mod cart;

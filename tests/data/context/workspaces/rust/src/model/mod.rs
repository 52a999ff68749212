pub mod pricing;

//! Placeholder: replaced by the robots.txt matcher benchmark.
fn main() {}

//! Excel import/export benchmark (written in a later commit).
fn main() {}

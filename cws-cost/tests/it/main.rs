//! Integration tests, one binary for the crate (each module was a test file).

mod analysis;
mod price_book;
mod proptests;

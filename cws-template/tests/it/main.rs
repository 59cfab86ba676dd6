//! Integration tests, one binary for the crate (each module was a test file).

mod bundled;
mod errors;
mod limits;
mod proptests;
mod schema;
mod store;

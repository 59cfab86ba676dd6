//! Integration tests, one binary for the crate (each module was a test file).

mod graph_properties;
mod overrides;

//! The `cws` binary on LocalCloud, one test binary (the moto tests are `cli_aws`).

mod cli;
mod common;
mod lifecycle;
mod registry;
mod untrusted_text;

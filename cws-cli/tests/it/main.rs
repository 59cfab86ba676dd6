//! The `cws` binary on LocalCloud, one test binary (the moto tests are `cli_aws`).

mod audit;
mod cli;
mod common;
mod docs;
mod lifecycle;
mod provisioning;
mod registry;
mod seeds;
mod serve;
mod trust;
mod untrusted_text;

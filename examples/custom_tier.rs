//! A resolver with a tier of its own: an institution's vetted image catalogue, inserted
//! between dynamic search and the Marketplace without touching `cws-resolver`.
//!
//! ```text
//! cargo run -p cws-examples --example custom_tier -- [REGION]   # default eu-west-3
//! ```
//!
//! The logic is `cws_examples::institution`; `tests/custom_tier.rs` runs it.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let region = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "eu-west-3".to_string());
    match cws_examples::institution::run(&region).await {
        Ok(run) => {
            println!("{run}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("custom_tier: {e}");
            ExitCode::FAILURE
        }
    }
}

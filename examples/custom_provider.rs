//! A provider of one's own: an institution's read-only image catalogue (a simulated,
//! in-memory list implementing only `ImageCatalog`), resolved against with
//! `Resolver::resolve_in` — no AWS, no LocalCloud.
//!
//! ```text
//! cargo run -p cws-examples --example custom_provider -- [REGION...]   # default us-east-1 eu-west-3 eu-north-1
//! ```
//!
//! The logic is `cws_examples::catalogue`; `tests/custom_provider.rs` runs it.

use std::process::ExitCode;

use cws_examples::catalogue::{self, DEFAULT_REGIONS};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let regions: Vec<&str> = if args.is_empty() {
        DEFAULT_REGIONS.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    match catalogue::run(&regions).await {
        Ok(run) => {
            println!("{run}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("custom_provider: {e}");
            ExitCode::FAILURE
        }
    }
}

//! A downstream launcher embedding `cws-resolver`: its own provider stack (LocalCloud in a
//! temporary directory, behind a cache and a call counter), a template from a YAML string,
//! the decision printed, and a launch that never copies across regions.
//!
//! ```text
//! cargo run -p cws-examples --example custom_launcher -- [REGION]   # default us-west-2
//! ```
//!
//! The logic is `cws_examples::launcher`; `tests/custom_launcher.rs` runs it.

use std::process::ExitCode;

use cws_examples::ExampleError;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let region = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "us-west-2".to_string());
    let result = async {
        let home = tempfile::tempdir().map_err(ExampleError::TempHome)?;
        cws_examples::launcher::run(home.path(), &region).await
    };
    match result.await {
        Ok(run) => {
            println!("{run}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("custom_launcher: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Prints a cost analysis and a copy estimate with the bundled price book.
//!
//! `cargo run -p cws-cost --example costs -- [INSTANCE_TYPE] [REGION] [SESSION_HOURS] [LAUNCHES_PER_MONTH]`

use cws_cost::{
    AMI_BOOT_SECONDS, CostError, CostInput, PackageCounts, PriceBook, analyze, copy_estimate,
    script_setup_breakdown, script_setup_seconds,
};

fn main() -> Result<(), CostError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let book = PriceBook::bundled();
    // A python-ml-like template: 10 apt, 8 conda, 6 pip packages.
    let counts = PackageCounts {
        system: 10,
        conda: 8,
        pip: 6,
        ..Default::default()
    };
    for step in script_setup_breakdown(&counts) {
        println!("{:>5} s  {}", step.seconds, step.what);
    }
    println!();
    let launches = arg(3, "20");
    let input = CostInput {
        instance_type: arg(0, "m6i.xlarge"),
        region: arg(1, "us-east-1"),
        session_hours: arg(2, "4").parse()?,
        script_setup_seconds: script_setup_seconds(&counts),
        ami_boot_seconds: AMI_BOOT_SECONDS,
        snapshot_gb: 30,
        launches_per_month: launches.parse().map_err(|_| CostError::InvalidAmount {
            value: launches.clone(),
            reason: "launches per month must be a whole number".into(),
        })?,
    };
    println!("{}", analyze(&book, &input)?);
    println!("{}", copy_estimate(&book, "us-east-1", &input.region, 30));
    Ok(())
}

//! AMI launch vs script launch: what each costs, and which to use.
//!
//! For one instance type, region and session length:
//!
//! * **per launch**, each method costs its setup time at the hourly rate plus
//!   the session itself (the session is the same for both, so only setup
//!   differs); the difference is the *setup saving per launch*;
//! * **per month**, an AMI costs its snapshot storage (GB × $/GB-month in the
//!   region), whether it is launched or not; amortised over L launches that is
//!   storage ÷ L per launch;
//! * the **break-even** is the smallest whole number of launches a month whose
//!   setup savings pay for the storage: ⌈storage ÷ saving⌉ (none when the AMI
//!   saves nothing);
//! * the **recommendation** is the AMI when the planned launches per month reach
//!   the break-even, the script otherwise; its reasons give the figures.

use std::fmt;

use serde::Serialize;

use crate::CostError;
use crate::book::PriceBook;
use crate::hours::Hours;
use crate::money::Money;
use crate::timing::format_duration;

/// What to price: one workstation, launched either way.
#[derive(Clone, Debug)]
pub struct CostInput {
    /// EC2 instance type, e.g. `m6i.xlarge`.
    pub instance_type: String,
    /// Region the workstation runs in.
    pub region: String,
    /// How long a typical session runs.
    pub session_hours: Hours,
    /// Launch-to-ready time with script provisioning (see
    /// [`crate::script_setup_seconds`]).
    pub script_setup_seconds: u64,
    /// Launch-to-ready time from a prepared image (usually
    /// [`crate::AMI_BOOT_SECONDS`]).
    pub ami_boot_seconds: u64,
    /// Size of the AMI's snapshots, which is what storage is billed on.
    pub snapshot_gb: u32,
    /// How many launches a month the AMI's storage is spread over.
    pub launches_per_month: u32,
}

/// The cost of one launch by one method.
#[derive(Clone, Debug, Serialize)]
pub struct LaunchCost {
    /// Launch-to-ready time.
    pub setup_seconds: u64,
    /// `setup_seconds` at the hourly rate.
    pub setup_cost: Money,
    /// The session at the hourly rate.
    pub session_cost: Money,
    /// `setup_cost + session_cost`.
    pub total: Money,
}

/// Keeping the AMI around.
#[derive(Clone, Debug, Serialize)]
pub struct StorageCost {
    /// Snapshot size the storage is billed on.
    pub snapshot_gb: u32,
    /// Snapshot storage for a month in the region.
    pub per_month: Money,
    /// `per_month` spread over `launches_per_month` launches (the whole month's
    /// storage when no launches are planned).
    pub per_launch: Money,
    /// The launches the storage is spread over.
    pub launches_per_month: u32,
}

/// Which way to launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Launch from a prepared image.
    Ami,
    /// Launch a base image and provision it with a script.
    Script,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Choice::Ami => "AMI",
            Choice::Script => "script",
        })
    }
}

/// The choice and the figures behind it, in words.
#[derive(Clone, Debug, Serialize)]
pub struct Recommendation {
    /// AMI or script.
    pub choice: Choice,
    /// Human-readable reasons, most important first.
    pub reasons: Vec<String>,
}

/// The full comparison; `Display` renders it as a table for people and
/// `Serialize` as JSON for programs.
#[derive(Clone, Debug, Serialize)]
pub struct CostAnalysis {
    /// Version of the price book used (including override labels).
    pub price_book_version: String,
    /// Region priced.
    pub region: String,
    /// Instance type priced.
    pub instance_type: String,
    /// On-demand $/hour.
    pub hourly_rate: Money,
    /// Session length in hours (for display; arithmetic used exact seconds).
    pub session_hours: f64,
    /// Launching with script provisioning.
    pub script: LaunchCost,
    /// Launching from a prepared image.
    pub ami: LaunchCost,
    /// `script.setup_cost − ami.setup_cost`; negative if the AMI is slower.
    pub setup_savings_per_launch: Money,
    /// What keeping the AMI costs.
    pub storage: StorageCost,
    /// Launches per month from which the AMI pays for its storage; `None` when
    /// it saves nothing per launch.
    pub break_even_launches_per_month: Option<u32>,
    /// Which to use and why.
    pub recommendation: Recommendation,
}

/// Compares AMI and script launches for `input` with prices from `book`.
///
/// Fails only when the book cannot price the instance type in the region.
pub fn analyze(book: &PriceBook, input: &CostInput) -> Result<CostAnalysis, CostError> {
    let rate = book.instance_hourly(&input.instance_type, &input.region)?;
    let session_cost = rate.per_seconds(input.session_hours.seconds());
    let launch = |setup_seconds: u64| {
        let setup_cost = rate.per_seconds(setup_seconds);
        LaunchCost {
            setup_seconds,
            setup_cost,
            session_cost,
            total: setup_cost + session_cost,
        }
    };
    let script = launch(input.script_setup_seconds);
    let ami = launch(input.ami_boot_seconds);
    // Difference of the rounded costs, so that the table adds up exactly.
    let savings = script.setup_cost - ami.setup_cost;

    let gb_month = book.snapshot_gb_month(&input.region);
    let per_month = gb_month * i64::from(input.snapshot_gb);
    let launches = input.launches_per_month;
    let per_launch = if launches == 0 {
        per_month
    } else {
        per_month.times_ratio(1, i64::from(launches))
    };
    let storage = StorageCost {
        snapshot_gb: input.snapshot_gb,
        per_month,
        per_launch,
        launches_per_month: launches,
    };
    let break_even = break_even(per_month, savings);

    let mut reasons = Vec::new();
    let time_saved = input
        .script_setup_seconds
        .saturating_sub(input.ami_boot_seconds);
    if savings.is_positive() {
        reasons.push(format!(
            "AMI saves {} per launch ({savings} at {rate}/h)",
            format_duration(time_saved)
        ));
    } else {
        reasons.push(format!(
            "an AMI launch ({}) is not faster than script setup ({}), so it saves nothing per launch",
            format_duration(input.ami_boot_seconds),
            format_duration(input.script_setup_seconds)
        ));
    }
    let storage_words = format!(
        "storage {per_month}/month ({} GB × {gb_month}/GB-month)",
        input.snapshot_gb
    );
    match break_even {
        _ if input.snapshot_gb == 0 => {
            reasons.push("no storage cost to you: the image is stored by its publisher".to_string())
        }
        Some(n) => reasons.push(format!("{storage_words} breaks even at {n} launches/month")),
        None => reasons.push(format!("{storage_words} never breaks even")),
    }
    let choice = match break_even {
        Some(n) if launches >= n => Choice::Ami,
        _ => Choice::Script,
    };
    if savings.is_positive() {
        let monthly_savings = savings * i64::from(launches);
        let (winner, margin) = if monthly_savings >= per_month {
            ("the AMI", monthly_savings - per_month)
        } else {
            ("the script", per_month - monthly_savings)
        };
        reasons.push(format!(
            "at {launches} launches/month the AMI saves {monthly_savings} of setup time against {per_month} of storage: {winner} is {margin}/month cheaper"
        ));
    }
    if choice == Choice::Script && time_saved > 0 {
        reasons.push(format!(
            "an AMI still starts {} sooner; choose it if waiting matters more than {per_month}/month",
            format_duration(time_saved)
        ));
    }

    Ok(CostAnalysis {
        price_book_version: book.version().to_owned(),
        region: input.region.clone(),
        instance_type: input.instance_type.clone(),
        hourly_rate: rate,
        session_hours: input.session_hours.as_f64(),
        script,
        ami,
        setup_savings_per_launch: savings,
        storage,
        break_even_launches_per_month: break_even,
        recommendation: Recommendation { choice, reasons },
    })
}

/// The smallest whole number of launches per month whose setup savings cover
/// the monthly storage: ⌈storage ÷ saving⌉, saturating at `u32::MAX`; `None`
/// when a launch saves nothing.
pub fn break_even(storage_per_month: Money, savings_per_launch: Money) -> Option<u32> {
    if !savings_per_launch.is_positive() {
        return None;
    }
    let storage = i128::from(storage_per_month.micros().max(0));
    let saving = i128::from(savings_per_launch.micros());
    let launches = (storage + saving - 1) / saving;
    Some(u32::try_from(launches).unwrap_or(u32::MAX))
}

impl fmt::Display for CostAnalysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Cost estimate: {} in {} at {}/h (price book {})",
            self.instance_type, self.region, self.hourly_rate, self.price_book_version
        )?;
        let session = Hours::from_seconds((self.session_hours * 3600.0).round() as u64);
        writeln!(f, "Session length: {session}")?;
        writeln!(f)?;
        writeln!(f, "  {:<18} {:>12} {:>12}", "", "script", "AMI")?;
        writeln!(
            f,
            "  {:<18} {:>12} {:>12}",
            "setup time",
            format_duration(self.script.setup_seconds),
            format_duration(self.ami.setup_seconds)
        )?;
        for (label, script, ami) in [
            ("setup cost", self.script.setup_cost, self.ami.setup_cost),
            (
                "session cost",
                self.script.session_cost,
                self.ami.session_cost,
            ),
            ("total per launch", self.script.total, self.ami.total),
        ] {
            writeln!(f, "  {label:<18} {script:>12} {ami:>12}")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "Setup saving per launch (AMI): {}",
            self.setup_savings_per_launch
        )?;
        let per_launch = if self.storage.launches_per_month == 0 {
            "no launches planned".to_string()
        } else {
            format!(
                "{} per launch at {} launches/month",
                self.storage.per_launch, self.storage.launches_per_month
            )
        };
        if self.storage.snapshot_gb == 0 {
            writeln!(
                f,
                "AMI storage: none for you (stored by the image's publisher)"
            )?;
        } else {
            writeln!(
                f,
                "AMI storage: {} GB, {}/month ({per_launch})",
                self.storage.snapshot_gb, self.storage.per_month
            )?;
        }
        match self.break_even_launches_per_month {
            Some(n) => writeln!(f, "Break-even: {n} launches/month")?,
            None => writeln!(f, "Break-even: never")?,
        }
        writeln!(f, "Recommendation: {}", self.recommendation.choice)?;
        for reason in &self.recommendation.reasons {
            writeln!(f, "  - {reason}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn break_even_rounds_up_and_handles_edges() {
        // $1.50 of storage, $0.04125 saved per launch: 36.36… → 37.
        assert_eq!(
            break_even(Money::from_cents(150), Money::from_micros(41_250)),
            Some(37)
        );
        // Exact division needs no extra launch.
        assert_eq!(
            break_even(Money::from_cents(100), Money::from_cents(25)),
            Some(4)
        );
        assert_eq!(break_even(Money::ZERO, Money::from_cents(1)), Some(0));
        assert_eq!(break_even(Money::from_cents(100), Money::ZERO), None);
        assert_eq!(
            break_even(Money::from_cents(100), Money::from_micros(-5)),
            None
        );
        assert_eq!(
            break_even(Money::from_micros(i64::MAX), Money::from_micros(1)),
            Some(u32::MAX)
        );
    }

    #[test]
    fn choice_displays_for_people_and_serializes_snake_case() {
        assert_eq!(Choice::Ami.to_string(), "AMI");
        assert_eq!(Choice::Script.to_string(), "script");
        assert_eq!(serde_json::to_string(&Choice::Ami).unwrap(), "\"ami\"");
        assert_eq!(
            serde_json::to_string(&Choice::Script).unwrap(),
            "\"script\""
        );
    }
}

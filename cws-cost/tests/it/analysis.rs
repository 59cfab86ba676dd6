//! AMI vs script analysis and cross-region copy estimates.

use cws_cost::{
    AMI_BOOT_SECONDS, Choice, CostError, CostInput, Hours, Money, PackageCounts, PriceBook,
    analyze, copy_estimate, script_setup_seconds,
};

/// A book with a 45-cents-an-hour instance, the rate of the seed example.
fn book_at_45_cents() -> PriceBook {
    PriceBook::bundled()
        .with_overrides_str("[instances]\n\"lab.xlarge\" = 0.45\n", "seed.toml")
        .unwrap()
}

fn input(launches_per_month: u32, snapshot_gb: u32) -> CostInput {
    CostInput {
        instance_type: "lab.xlarge".into(),
        region: "us-east-1".into(),
        session_hours: "2".parse().unwrap(),
        script_setup_seconds: 360,
        ami_boot_seconds: AMI_BOOT_SECONDS,
        snapshot_gb,
        launches_per_month,
    }
}

#[test]
fn seed_figure_six_minute_setup_at_45_cents_is_exactly_0_045() {
    let analysis = analyze(&book_at_45_cents(), &input(40, 30)).unwrap();
    assert_eq!(analysis.hourly_rate, Money::from_cents(45));
    assert_eq!(analysis.script.setup_seconds, 360);
    assert_eq!(analysis.script.setup_cost, Money::from_micros(45_000));
    assert_eq!(analysis.script.setup_cost.to_string(), "$0.045");
}

#[test]
fn python_ml_like_template_reproduces_the_seed_figure() {
    let counts = PackageCounts {
        system: 10,
        conda: 8,
        pip: 6,
        ..Default::default()
    };
    let mut inp = input(40, 30);
    inp.script_setup_seconds = script_setup_seconds(&counts);
    let analysis = analyze(&book_at_45_cents(), &inp).unwrap();
    assert_eq!(analysis.script.setup_cost.to_string(), "$0.045");
}

#[test]
fn launch_costs_add_up_exactly() {
    let a = analyze(&book_at_45_cents(), &input(40, 30)).unwrap();
    assert_eq!(a.script.session_cost, Money::from_cents(90));
    assert_eq!(a.ami.session_cost, Money::from_cents(90));
    assert_eq!(a.ami.setup_cost, Money::from_micros(3_750)); // 30 s at $0.45/h
    assert_eq!(a.script.total, a.script.setup_cost + a.script.session_cost);
    assert_eq!(a.ami.total, a.ami.setup_cost + a.ami.session_cost);
    assert_eq!(a.setup_savings_per_launch, Money::from_micros(41_250));
    assert_eq!(a.script.total - a.ami.total, a.setup_savings_per_launch);
    assert_eq!(a.session_hours, 2.0);
    assert_eq!(a.price_book_version, "2026-11-01+overrides");
}

#[test]
fn storage_and_break_even_match_the_worked_example() {
    let a = analyze(&book_at_45_cents(), &input(40, 30)).unwrap();
    assert_eq!(a.storage.per_month, Money::from_cents(150));
    assert_eq!(a.storage.per_launch, Money::from_micros(37_500));
    assert_eq!(a.storage.launches_per_month, 40);
    // $1.50 / $0.04125 = 36.4 → 37 launches.
    assert_eq!(a.break_even_launches_per_month, Some(37));
    assert_eq!(a.recommendation.choice, Choice::Ami);
    let reasons = a.recommendation.reasons.join("\n");
    assert!(
        reasons.contains("AMI saves 5.5 min per launch ($0.0413 at $0.45/h)"),
        "{reasons}"
    );
    assert!(
        reasons.contains(
            "storage $1.50/month (30 GB × $0.05/GB-month) breaks even at 37 launches/month"
        ),
        "{reasons}"
    );
    assert!(
        reasons.contains("the AMI is $0.15/month cheaper"),
        "{reasons}"
    );
}

#[test]
fn break_even_is_the_threshold_for_the_recommendation() {
    let book = book_at_45_cents();
    assert_eq!(
        analyze(&book, &input(37, 30))
            .unwrap()
            .recommendation
            .choice,
        Choice::Ami
    );
    assert_eq!(
        analyze(&book, &input(36, 30))
            .unwrap()
            .recommendation
            .choice,
        Choice::Script
    );
}

#[test]
fn recommendation_flips_to_script_for_rare_launches_and_dear_storage() {
    let book = PriceBook::bundled();
    let inp = CostInput {
        instance_type: "t3.medium".into(),
        region: "sa-east-1".into(),
        session_hours: "1".parse().unwrap(),
        script_setup_seconds: 360,
        ami_boot_seconds: AMI_BOOT_SECONDS,
        snapshot_gb: 200,
        launches_per_month: 2,
    };
    let a = analyze(&book, &inp).unwrap();
    assert_eq!(a.recommendation.choice, Choice::Script);
    assert_eq!(a.storage.per_month, Money::parse("13.60").unwrap()); // 200 GB × $0.068
    assert!(a.break_even_launches_per_month.unwrap() > 2);
    let reasons = a.recommendation.reasons.join("\n");
    assert!(reasons.contains("the script is"), "{reasons}");
    assert!(reasons.contains("starts 5.5 min sooner"), "{reasons}");

    // The same workstation launched often enough is worth an image.
    let busy = CostInput {
        launches_per_month: a.break_even_launches_per_month.unwrap(),
        ..inp
    };
    assert_eq!(
        analyze(&book, &busy).unwrap().recommendation.choice,
        Choice::Ami
    );
}

#[test]
fn no_setup_saving_means_never_breaks_even() {
    let mut inp = input(1000, 30);
    inp.script_setup_seconds = AMI_BOOT_SECONDS;
    let a = analyze(&book_at_45_cents(), &inp).unwrap();
    assert_eq!(a.setup_savings_per_launch, Money::ZERO);
    assert_eq!(a.break_even_launches_per_month, None);
    assert_eq!(a.recommendation.choice, Choice::Script);
    assert!(
        a.recommendation
            .reasons
            .iter()
            .any(|r| r.contains("never breaks even"))
    );
    assert!(a.to_string().contains("Break-even: never"));
}

#[test]
fn zero_launches_charges_the_whole_month_to_the_next_launch() {
    let a = analyze(&book_at_45_cents(), &input(0, 30)).unwrap();
    assert_eq!(a.storage.per_launch, a.storage.per_month);
    assert_eq!(a.recommendation.choice, Choice::Script);
    assert!(a.to_string().contains("no launches planned"));
}

#[test]
fn unknown_inputs_are_errors_not_guesses() {
    let book = PriceBook::bundled();
    let mut inp = input(10, 10);
    inp.instance_type = "m6i.larg".into();
    assert!(matches!(
        analyze(&book, &inp).unwrap_err(),
        CostError::UnknownInstanceType { .. }
    ));
    let mut inp = input(10, 10);
    inp.instance_type = "m6i.large".into();
    inp.region = "eu-wst-1".into();
    assert!(matches!(
        analyze(&book, &inp).unwrap_err(),
        CostError::UnknownRegion { .. }
    ));
}

#[test]
fn display_is_a_readable_table() {
    let text = analyze(&book_at_45_cents(), &input(40, 30))
        .unwrap()
        .to_string();
    for needle in [
        "Cost estimate: lab.xlarge in us-east-1 at $0.45/h (price book 2026-11-01+overrides)",
        "Session length: 2h",
        "setup time",
        "6 min",
        "30 s",
        "$0.045",
        "$0.90",
        "$0.945",
        "Setup saving per launch (AMI): $0.0413",
        "AMI storage: 30 GB, $1.50/month ($0.0375 per launch at 40 launches/month)",
        "Break-even: 37 launches/month",
        "Recommendation: AMI",
        "  - AMI saves 5.5 min per launch",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn json_has_numbers_for_money_and_snake_case_choice() {
    let a = analyze(&book_at_45_cents(), &input(40, 30)).unwrap();
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["hourly_rate"], serde_json::json!(0.45));
    assert_eq!(json["script"]["setup_cost"], serde_json::json!(0.045));
    assert_eq!(json["setup_savings_per_launch"], serde_json::json!(0.04125));
    assert_eq!(json["storage"]["per_month"], serde_json::json!(1.5));
    assert_eq!(json["break_even_launches_per_month"], serde_json::json!(37));
    assert_eq!(json["recommendation"]["choice"], serde_json::json!("ami"));
    assert_eq!(json["session_hours"], serde_json::json!(2.0));
}

#[test]
fn fractional_sessions_are_exact() {
    let mut inp = input(40, 30);
    inp.session_hours = "1.25".parse().unwrap();
    let a = analyze(&book_at_45_cents(), &inp).unwrap();
    assert_eq!(a.script.session_cost, Money::parse("0.5625").unwrap());
    inp.session_hours = Hours::from_seconds(1);
    let a = analyze(&book_at_45_cents(), &inp).unwrap();
    assert_eq!(a.script.session_cost, Money::from_micros(125));
}

// ---------------------------------------------------------------------------
// Cross-region copy

#[test]
fn copy_estimate_grows_with_snapshot_size() {
    let book = PriceBook::bundled();
    let mut previous = copy_estimate(&book, "us-east-1", "eu-west-1", 0);
    for gb in [1, 8, 30, 100, 500] {
        let est = copy_estimate(&book, "us-east-1", "eu-west-1", gb);
        assert!(
            est.estimated_seconds > previous.estimated_seconds,
            "{gb} GB"
        );
        assert!(est.transfer_cost > previous.transfer_cost, "{gb} GB");
        assert!(est.total_cost > previous.total_cost, "{gb} GB");
        assert_eq!(est.total_cost, est.transfer_cost + est.monthly_storage);
        previous = est;
    }
}

#[test]
fn apac_source_costs_more_than_us_source() {
    let book = PriceBook::bundled();
    let from_us = copy_estimate(&book, "us-east-1", "us-west-2", 30);
    let from_apac = copy_estimate(&book, "ap-southeast-1", "us-west-2", 30);
    assert!(from_apac.transfer_cost > from_us.transfer_cost);
    assert_eq!(from_us.transfer_cost, Money::from_cents(60));
    assert_eq!(from_apac.transfer_cost, Money::parse("2.70").unwrap());
    // Same target, same storage.
    assert_eq!(from_us.monthly_storage, from_apac.monthly_storage);
}

#[test]
fn copying_within_a_continent_is_faster_than_across() {
    let book = PriceBook::bundled();
    let near = copy_estimate(&book, "us-east-1", "us-west-2", 30);
    let far = copy_estimate(&book, "us-east-1", "eu-west-1", 30);
    assert!(near.estimated_seconds < far.estimated_seconds);
    assert_eq!(near.estimated_seconds, 60 + 30 * 6);
    assert_eq!(far.estimated_seconds, 60 + 30 * 10);
}

#[test]
fn copy_estimate_serializes_money_as_numbers() {
    let est = copy_estimate(&PriceBook::bundled(), "us-east-1", "us-west-2", 8);
    let json = serde_json::to_value(&est).unwrap();
    assert_eq!(json["transfer_cost"], serde_json::json!(0.16));
    assert_eq!(json["total_cost"], serde_json::json!(0.56));
    assert_eq!(json["estimated_seconds"], serde_json::json!(108));
    assert_eq!(json["source_region"], serde_json::json!("us-east-1"));
}

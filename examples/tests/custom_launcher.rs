//! Runs the `custom_launcher` example's logic (what `cargo run --example custom_launcher` does).

use cws_examples::ExampleError;
use cws_examples::launcher::{self, CACHE_TTL, LAB_TEMPLATE, Launcher};
use cws_resolver::*;

#[tokio::test]
async fn the_launcher_decides_caches_and_launches_in_us_west_2() {
    let home = tempfile::tempdir().unwrap();
    let run = launcher::run(home.path(), "us-west-2").await.unwrap();

    let first = &run.first.resolution;
    assert_eq!(first.method, Method::DynamicSearch, "{first:#?}");
    assert!(
        first
            .ami_name
            .as_deref()
            .is_some_and(|n| n.starts_with("cws-bioinformatics-")),
        "{first:#?}"
    );
    assert!(first.provider.simulated);
    assert!(run.first.provider_calls > 0);

    // Same decision from the cache, without a single provider call.
    assert_eq!(run.repeat.resolution.method, first.method);
    assert_eq!(run.repeat.resolution.ami_id, first.ami_id);
    assert_eq!(run.repeat.provider_calls, 0);

    let instance = run.launch.instance.as_ref().expect("launched");
    assert_eq!(instance.name, "lab-ws-1");
    assert_eq!(instance.region, "us-west-2");
    assert_eq!(Some(&instance.ami_id), first.ami_id.as_ref());

    // What the example prints names the decision, the cache and the simulated launch.
    let text = run.to_string();
    assert!(
        text.contains("lab-genomics in us-west-2: dynamic_search"),
        "{text}"
    );
    assert!(text.contains("0 provider call(s)"), "{text}");
    assert!(text.contains("[simulated: true]"), "{text}");

    // The launcher's LocalCloud is persisted in the directory it owns.
    assert!(home.path().join("localcloud").join("state.json").is_file());
}

#[tokio::test]
async fn the_no_copy_policy_turns_a_cross_region_decision_into_a_script_launch() {
    let home = tempfile::tempdir().unwrap();
    let run = launcher::run(home.path(), "ap-south-1").await.unwrap();
    let first = &run.first.resolution;
    assert_eq!(first.method, Method::CrossRegion, "{first:#?}");
    assert_eq!(
        first.copy.as_ref().map(|c| c.source_region.as_str()),
        Some("us-east-1")
    );

    let launched = &run.launch;
    assert_eq!(launched.resolution.method, Method::ScriptFallback);
    assert!(launched.copied_image.is_none(), "the launcher never copies");
    let cross = launched
        .resolution
        .attempts
        .iter()
        .find(|a| a.tier == "cross_region")
        .unwrap();
    assert_eq!(cross.outcome, Outcome::Declined);
    assert!(launched.instance.is_some());
}

#[tokio::test]
async fn a_second_launcher_on_the_same_home_sees_the_first_ones_instance() {
    let home = tempfile::tempdir().unwrap();
    launcher::run(home.path(), "us-west-2").await.unwrap();
    // Same name, same region, same persisted cloud: the launch is refused, not duplicated.
    let err = launcher::run(home.path(), "us-west-2").await.unwrap_err();
    assert!(matches!(err, ExampleError::Launch(_)), "{err:?}");
    assert!(err.to_string().contains("lab-ws-1"), "{err}");
}

#[test]
fn a_broken_template_string_is_reported_with_its_location() {
    let broken = LAB_TEMPLATE.replace("name_pattern:", "name_patern:");
    let err = Launcher::load_template(&broken, "lab.yaml").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ExampleError::Template(_)));
    assert!(msg.contains("lab.yaml"), "{msg}");
    assert!(msg.contains("name_pattern"), "did-you-mean hint: {msg}");
}

#[tokio::test]
async fn decisions_count_only_their_own_calls() {
    let home = tempfile::tempdir().unwrap();
    let launcher = Launcher::open(home.path(), CACHE_TTL).unwrap();
    let t = Launcher::load_template(LAB_TEMPLATE, "lab").unwrap();
    let a = launcher.decide(&t, "us-east-1").await;
    let b = launcher.decide(&t, "us-west-2").await;
    assert!(a.provider_calls > 0 && b.provider_calls > 0);
    assert_eq!(
        launcher.provider_calls(),
        a.provider_calls + b.provider_calls
    );
    assert!(launcher.state_path().is_some());
}

//! Runs the `custom_tier` example's logic (what `cargo run --example custom_tier` does).

use std::sync::Arc;

use cws_examples::institution::{
    self, INSTITUTION_ACCOUNT, InstitutionCatalogue, TIER, VETTED_AMI,
};
use cws_resolver::*;
use cws_template::{Architecture, TemplateStore};

#[tokio::test]
async fn the_institution_tier_sits_between_dynamic_search_and_marketplace_and_wins() {
    let run = institution::run("eu-west-3").await.unwrap();
    assert_eq!(
        run.tiers,
        [
            TierId::DIRECT_MAPPING,
            TierId::DYNAMIC_SEARCH,
            TIER,
            TierId::MARKETPLACE,
            TierId::CROSS_REGION,
            TierId::SCRIPT_FALLBACK,
        ]
    );
    assert_ne!(run.standard.method, Method::Custom(TIER));
    assert_eq!(run.custom.method, Method::Custom(TIER));
    assert_eq!(run.custom.ami_id.as_deref(), Some(VETTED_AMI));
    assert!(!run.custom.requires_copy);
    let text = run.to_string();
    assert!(
        text.contains("with institution_catalogue: institution_catalogue -> "),
        "{text}"
    );
    assert!(text.contains("vetted by"), "{text}");
}

#[tokio::test]
async fn the_templates_own_images_still_win_where_they_exist() {
    // us-east-1 has official bioinformatics images: dynamic_search outranks the catalogue.
    let run = institution::run("us-east-1").await.unwrap();
    assert_eq!(run.custom.method, Method::DynamicSearch);
    assert_eq!(run.custom.method, run.standard.method);
    assert_eq!(run.custom.ami_id, run.standard.ami_id);
}

#[tokio::test]
async fn stale_or_unfit_catalogue_entries_fall_through() {
    let template = TemplateStore::bundled_only()
        .get("bioinformatics")
        .unwrap()
        .template;
    let env = ResolveEnv::new(Arc::new(institution::cloud_with_vetted_image().unwrap()));

    // Listed but gone.
    let stale = InstitutionCatalogue::new("uni").with_image(
        "bioinformatics",
        "eu-west-3",
        "ami-0deadbeef00000000",
    );
    let r = institution::resolver_with(&template, stale)
        .resolve(&env, &ResolveRequest::new(template.clone(), "eu-west-3"))
        .await;
    let attempt = r.attempts.iter().find(|a| a.tier == TIER).unwrap();
    assert_eq!(attempt.outcome, Outcome::NotFound);
    assert!(
        attempt.detail.contains("no longer exists"),
        "{}",
        attempt.detail
    );
    assert_ne!(r.method, Method::Custom(TIER));

    // Listed, but x86_64 while arm64 is required.
    let mut req = ResolveRequest::new(template.clone(), "eu-west-3");
    req.architecture = Some(Architecture::Arm64);
    let r = institution::resolver_with(&template, institution::example_catalogue())
        .resolve(&env, &req)
        .await;
    let attempt = r.attempts.iter().find(|a| a.tier == TIER).unwrap();
    assert_eq!(attempt.outcome, Outcome::NotFound);
    assert!(attempt.detail.contains("arm64"), "{}", attempt.detail);

    // Not listed for this template at all.
    let r = institution::resolver_with(&template, InstitutionCatalogue::new("uni"))
        .resolve(&env, &ResolveRequest::new(template, "eu-west-3"))
        .await;
    let attempt = r.attempts.iter().find(|a| a.tier == TIER).unwrap();
    assert_eq!(attempt.outcome, Outcome::NotFound);
    assert!(
        attempt.detail.contains("lists no image"),
        "{}",
        attempt.detail
    );
}

#[test]
fn the_catalogue_looks_up_by_template_and_region() {
    let c = institution::example_catalogue();
    assert_eq!(c.listed("bioinformatics", "eu-west-3"), Some(VETTED_AMI));
    assert_eq!(c.listed("bioinformatics", "eu-west-1"), None);
    assert_eq!(c.listed("python-ml", "eu-west-3"), None);
    assert_eq!(INSTITUTION_ACCOUNT.len(), 12);
}

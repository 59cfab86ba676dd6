//! Runs the `custom_provider` example's logic (what `cargo run --example custom_provider`
//! does).

use cws_examples::catalogue::{
    self, CANONICAL_ACCOUNT, DEFAULT_REGIONS, PROVIDER_NAME, PUBLISHER_ACCOUNT, TEMPLATE,
    VETTED_BASE_AMI, VETTED_BUILD_AMI, VETTED_MAPPED_AMI,
};
use cws_examples::institution::INSTITUTION_ACCOUNT;
use cws_provider::{ImageCatalog, ImageQuery, MarketplaceQuery, ProviderError};
use cws_resolver::*;

fn attempt<'a>(r: &'a Resolution, tier: &str) -> &'a Attempt {
    r.attempts
        .iter()
        .find(|a| a.tier == tier)
        .unwrap_or_else(|| panic!("no {tier} attempt in {r:#?}"))
}

#[tokio::test]
async fn the_catalogue_answers_by_mapping_by_search_and_by_base_image() {
    let run = catalogue::run(&DEFAULT_REGIONS).await.unwrap();
    assert_eq!(run.provider.name, PROVIDER_NAME);
    assert!(run.provider.simulated);
    assert_eq!(run.images, 3);
    assert_eq!(run.regions, ["eu-north-1", "eu-west-3", "us-east-1"]);
    let [east, paris, stockholm] = &run.resolutions[..] else {
        panic!("three resolutions: {:#?}", run.resolutions)
    };

    // us-east-1: python-ml maps the official image there, and the catalogue vetted it.
    assert_eq!(east.method, Method::DirectMapping, "{east:#?}");
    assert_eq!(east.ami_id.as_deref(), Some(VETTED_MAPPED_AMI));
    assert_eq!(east.ami_owner.as_deref(), Some(PUBLISHER_ACCOUNT));
    assert!(!east.requires_copy);
    assert!(east.provider.simulated);
    assert_eq!(east.provider.name, PROVIDER_NAME);

    // eu-west-3: no mapping; the search trusts `self`, which is the institution's own build.
    assert_eq!(attempt(paris, "direct_mapping").outcome, Outcome::NotFound);
    assert_eq!(paris.method, Method::DynamicSearch, "{paris:#?}");
    assert_eq!(paris.ami_id.as_deref(), Some(VETTED_BUILD_AMI));
    assert_eq!(paris.ami_owner.as_deref(), Some(INSTITUTION_ACCOUNT));
    assert!(!paris.requires_copy);

    // eu-north-1: no python-ml image there nor in its fallback regions (eu-west-1,
    // eu-central-1, eu-west-2), so python-ml's `fallback_strategy: script_provisioning`
    // applies: the vetted Ubuntu base image plus the provisioning script.
    for tier in ["direct_mapping", "dynamic_search", "cross_region"] {
        assert_eq!(
            attempt(stockholm, tier).outcome,
            Outcome::NotFound,
            "{tier}"
        );
    }
    assert_eq!(attempt(stockholm, "marketplace").outcome, Outcome::Skipped);
    assert_eq!(stockholm.method, Method::ScriptFallback, "{stockholm:#?}");
    assert_eq!(stockholm.ami_id.as_deref(), Some(VETTED_BASE_AMI));
    assert_eq!(stockholm.ami_owner.as_deref(), Some(CANONICAL_ACCOUNT));
    assert!(!stockholm.requires_copy);
    assert!(
        !run.resolutions
            .iter()
            .any(|r| r.attempts.iter().any(|a| a.outcome == Outcome::Failed)),
        "no tier fails against the read-only catalogue"
    );

    // What the example prints names the catalogue as simulated and the answering tiers.
    let text = run.to_string();
    assert!(text.contains("simulated: an in-memory list"), "{text}");
    assert!(text.contains("[simulated: true]"), "{text}");
    assert!(
        text.contains(&format!(
            "python-ml in us-east-1: direct_mapping -> {VETTED_MAPPED_AMI}"
        )),
        "{text}"
    );
    assert!(text.contains("answered by dynamic_search: "), "{text}");
    assert!(
        text.contains(&format!(
            "python-ml in eu-north-1: script_fallback -> {VETTED_BASE_AMI}"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_region_the_catalogue_has_nothing_in_is_served_by_a_copy_from_a_fallback_region() {
    // ap-south-1 falls back to ap-southeast-1, ap-northeast-1, us-east-1: the catalogue has
    // the mapped image in us-east-1, and cross_region outranks script provisioning.
    let r = catalogue::resolve(&catalogue::example_catalogue(), TEMPLATE, "ap-south-1")
        .await
        .unwrap();
    assert_eq!(r.method, Method::CrossRegion, "{r:#?}");
    assert_eq!(r.ami_id.as_deref(), Some(VETTED_MAPPED_AMI));
    assert_eq!(r.source_region.as_deref(), Some("us-east-1"));
    assert!(r.requires_copy);
    let copy = r.copy.as_ref().unwrap();
    assert_eq!(copy.snapshot_gb, 40);
    assert_eq!(copy.source_ami_id, VETTED_MAPPED_AMI);

    // An empty catalogue: nothing anywhere, every tier misses, nothing can be launched.
    let empty = catalogue::VettedCatalogue::new("nobody", INSTITUTION_ACCOUNT);
    let r = catalogue::resolve(&empty, TEMPLATE, "eu-west-3")
        .await
        .unwrap();
    assert_eq!(r.method, Method::Failed, "{r:#?}");
    assert!(!r.failed_because_provider(), "a miss, not a provider error");
    assert_eq!(attempt(&r, "script_fallback").outcome, Outcome::NotFound);
}

#[tokio::test]
async fn searches_honour_owners_and_filters_and_marketplace_is_unsupported() {
    let c = catalogue::example_catalogue();
    let ids = |images: Vec<cws_provider::Image>| -> Vec<String> {
        images.into_iter().map(|i| i.id).collect()
    };

    let mine = ImageQuery::owned_by(["self"]).name("cws-python-ml-*");
    assert_eq!(
        ids(c.describe_images("eu-west-3", &mine).await.unwrap()),
        [VETTED_BUILD_AMI]
    );
    // Same name, same region, but the publisher is not `self`.
    let theirs = ImageQuery::owned_by([PUBLISHER_ACCOUNT]).name("cws-python-ml-*");
    assert!(
        c.describe_images("eu-west-3", &theirs)
            .await
            .unwrap()
            .is_empty()
    );
    // Tags and architecture filter too.
    let tagged = ImageQuery::owned_by([PUBLISHER_ACCOUNT]).tag("cws:template", "python-ml");
    assert_eq!(
        ids(c.describe_images("us-east-1", &tagged).await.unwrap()),
        [VETTED_MAPPED_AMI]
    );
    let wrong_tag = ImageQuery::owned_by([PUBLISHER_ACCOUNT]).tag("cws:template", "r-research");
    assert!(
        c.describe_images("us-east-1", &wrong_tag)
            .await
            .unwrap()
            .is_empty()
    );
    let arm = ImageQuery::owned_by([PUBLISHER_ACCOUNT])
        .architectures([cws_template::Architecture::Arm64]);
    assert!(
        c.describe_images("us-east-1", &arm)
            .await
            .unwrap()
            .is_empty()
    );

    // A search without owners is refused, as the trait requires.
    let err = c
        .describe_images("us-east-1", &ImageQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidInput { .. }), "{err:?}");

    // By id: only where the image is.
    let id = [VETTED_MAPPED_AMI.to_string()];
    assert_eq!(
        ids(c.describe_images_by_id("us-east-1", &id).await.unwrap()),
        [VETTED_MAPPED_AMI]
    );
    assert!(
        c.describe_images_by_id("eu-west-1", &id)
            .await
            .unwrap()
            .is_empty()
    );

    // No Marketplace behind an institution's list: a typed Unsupported, not an empty answer.
    let err = c
        .find_marketplace_products(&MarketplaceQuery::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Unsupported { provider, .. } if provider == PROVIDER_NAME),
        "{err:?}"
    );
}

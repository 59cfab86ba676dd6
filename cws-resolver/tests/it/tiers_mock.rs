//! Each tier alone against a mocked provider (mockall): exactly the calls it should make,
//! and the right conclusion from what the provider answers.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cws_provider::*;
use cws_resolver::tier::{DirectMapping, DynamicSearch, Marketplace, ScriptFallback};
use cws_resolver::*;
use cws_template::{Architecture, Template, TemplateStore};
use mockall::predicate::*;

mockall::mock! {
    pub Cloud {}
    impl std::fmt::Debug for Cloud {
        fn fmt<'a>(&self, f: &mut std::fmt::Formatter<'a>) -> std::fmt::Result;
    }
        #[async_trait]
    impl ImageCatalog for Cloud {
        fn info(&self) -> ProviderInfo;
        async fn describe_images_by_id(&self, region: &str, ids: &[String]) -> ProviderResult<Vec<Image>>;
        async fn describe_images(&self, region: &str, query: &ImageQuery) -> ProviderResult<Vec<Image>>;
        async fn describe_snapshots(&self, region: &str, ids: &[String]) -> ProviderResult<Vec<Snapshot>>;
        async fn describe_regions(&self) -> ProviderResult<Vec<String>>;
        async fn find_marketplace_products(&self, query: &MarketplaceQuery) -> ProviderResult<Vec<MarketplaceProduct>>;

    }

    #[async_trait]
    impl ImageAdmin for Cloud {
        async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image>;
        async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image>;
        async fn create_tags(&self, region: &str, resource_id: &str, tags: &BTreeMap<String, String>) -> ProviderResult<()>;
        async fn modify_launch_permission(&self, region: &str, image_id: &str, permission: &LaunchPermission, add: bool) -> ProviderResult<()>;
        async fn describe_launch_permissions(&self, region: &str, image_id: &str) -> ProviderResult<Vec<LaunchPermission>>;
        async fn modify_snapshot_permission(&self, region: &str, snapshot_id: &str, permission: &LaunchPermission, add: bool) -> ProviderResult<()>;
        async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()>;
        async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()>;
    }

    #[async_trait]
    impl Instances for Cloud {
        async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance>;
        async fn describe_instances(&self, region: &str, filter: &InstanceFilter) -> ProviderResult<Vec<Instance>>;
        async fn stop_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance>;
        async fn terminate_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance>;
    }
}

const NOW: &str = "2026-06-01T00:00:00.000Z";

fn template(slug: &str) -> Template {
    TemplateStore::bundled_only().get(slug).unwrap().template
}

fn image(id: &str, region: &str, name: &str, arch: Architecture, date: &str) -> Image {
    Image {
        id: id.into(),
        region: region.into(),
        name: name.into(),
        owner_id: "704381954421".into(),
        architecture: arch,
        state: ImageState::Available,
        creation_date: ts(date),
        deprecation_time: None,
        description: None,
        tags: BTreeMap::new(),
        product_codes: vec![],
        snapshot_ids: vec![],
        root_volume_gb: Some(60),
        public: true,
    }
}

async fn probe(
    tier: &dyn Tier,
    cloud: &MockCloud,
    t: &Template,
    region: &str,
    archs: Vec<Architecture>,
) -> Probe {
    let graph = cws_regions::FallbackGraph::published();
    let prices = cws_cost::PriceBook::bundled();
    let ctx = ResolveContext {
        template: t,
        region,
        architectures: archs,
        provider: cloud,
        fallbacks: &graph,
        prices: &prices,
        now: ts(NOW),
        known_images: &[],
        refused: &[],
        allowed_owners: None,
    };
    tier.probe(&ctx).await.expect("probe")
}

#[tokio::test]
async fn direct_mapping_verifies_the_mapped_id_with_one_lookup() {
    let t = template("python-ml");
    let id = "ami-0c7d3e9a1b2f4a501";
    for (state, arch, expect_found) in [
        (ImageState::Available, Architecture::X86_64, true),
        (ImageState::Pending, Architecture::X86_64, false),
        (ImageState::Available, Architecture::Arm64, false),
    ] {
        let mut cloud = MockCloud::new();
        cloud
            .expect_describe_images_by_id()
            .with(eq("us-east-1"), eq(vec![id.to_string()]))
            .times(1)
            .returning(move |_, _| {
                let mut i = image(id, "us-east-1", "cws-python-ml-1.2.0-x86_64", arch, NOW);
                i.state = state;
                Ok(vec![i])
            });
        let p = probe(
            &DirectMapping,
            &cloud,
            &t,
            "us-east-1",
            vec![Architecture::X86_64],
        )
        .await;
        assert_eq!(
            matches!(p, Probe::Found(_)),
            expect_found,
            "{state:?} {arch:?}: {p:?}"
        );
    }
    // A mapped id that does not exist is a miss, not an error.
    let mut cloud = MockCloud::new();
    cloud
        .expect_describe_images_by_id()
        .times(1)
        .returning(|_, _| Ok(vec![]));
    let p = probe(
        &DirectMapping,
        &cloud,
        &t,
        "us-east-1",
        vec![Architecture::X86_64],
    )
    .await;
    assert!(
        matches!(p, Probe::NotFound(ref d) if d.contains("does not exist")),
        "{p:?}"
    );
    // No mapping for the region: no call at all.
    let cloud = MockCloud::new();
    let p = probe(
        &DirectMapping,
        &cloud,
        &t,
        "eu-north-1",
        vec![Architecture::X86_64],
    )
    .await;
    assert!(matches!(p, Probe::NotFound(_)));
}

/// The provenance search for copies cws made (owner `self`, any name, tagged with the
/// template), which a search with a name pattern does not cover: it finds none.
fn expect_no_copies(cloud: &mut MockCloud) {
    cloud
        .expect_describe_images()
        .withf(|_, q| {
            q.owners == ["self"]
                && q.names.is_empty()
                && q.tags.get("cws:template").map(String::as_str) == Some("bioinformatics")
        })
        .times(1)
        .returning(|_, _| Ok(vec![]));
}

#[tokio::test]
async fn dynamic_search_asks_trusted_owners_and_picks_deterministically() {
    let t = template("bioinformatics");
    let mut cloud = MockCloud::new();
    expect_no_copies(&mut cloud);
    cloud
        .expect_describe_images()
        .withf(|region, q| {
            region == "us-west-2"
                && q.owners == ["self", "704381954421"]
                && q.names == ["cws-bioinformatics-*"]
                && q.tags.get("cws:template").map(String::as_str) == Some("bioinformatics")
        })
        .times(1)
        .returning(|_, _| {
            let mut deprecated = image(
                "ami-00000000000000003",
                "us-west-2",
                "cws-bioinformatics-3.0.0-x86_64",
                Architecture::X86_64,
                "2026-05-01T00:00:00.000Z",
            );
            deprecated.deprecation_time = Some(ts("2026-05-02T00:00:00.000Z"));
            Ok(vec![
                image(
                    "ami-00000000000000001",
                    "us-west-2",
                    "cws-bioinformatics-1.0.0-x86_64",
                    Architecture::X86_64,
                    "2025-01-01T00:00:00.000Z",
                ),
                deprecated,
                image(
                    "ami-00000000000000004",
                    "us-west-2",
                    "cws-bioinformatics-2.0.0-arm64",
                    Architecture::Arm64,
                    "2026-03-01T00:00:00.000Z",
                ),
                image(
                    "ami-00000000000000002",
                    "us-west-2",
                    "cws-bioinformatics-2.0.0-x86_64",
                    Architecture::X86_64,
                    "2026-02-01T00:00:00.000Z",
                ),
            ])
        });
    let p = probe(
        &DynamicSearch,
        &cloud,
        &t,
        "us-west-2",
        vec![Architecture::X86_64, Architecture::Arm64],
    )
    .await;
    // Newest non-deprecated of the preferred architecture; the deprecated 3.0.0 loses.
    match p {
        Probe::Found(c) => {
            assert_eq!(c.ami_id, "ami-00000000000000002");
            assert!(c.warnings.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_deprecated_image_is_used_only_with_a_warning() {
    let t = template("bioinformatics");
    let mut cloud = MockCloud::new();
    expect_no_copies(&mut cloud);
    cloud.expect_describe_images().times(1).returning(|_, _| {
        let mut d = image(
            "ami-00000000000000003",
            "us-west-2",
            "cws-bioinformatics-3.0.0-x86_64",
            Architecture::X86_64,
            "2026-01-01T00:00:00.000Z",
        );
        d.deprecation_time = Some(ts("2026-02-01T00:00:00.000Z"));
        Ok(vec![d])
    });
    match probe(
        &DynamicSearch,
        &cloud,
        &t,
        "us-west-2",
        vec![Architecture::X86_64],
    )
    .await
    {
        Probe::Found(c) => assert!(c.warnings[0].contains("deprecated"), "{:?}", c.warnings),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn marketplace_with_a_product_code_needs_no_catalogue_round_trip() {
    let t = template("gis-research");
    let mut cloud = MockCloud::new();
    cloud.expect_find_marketplace_products().times(0);
    cloud
        .expect_describe_images()
        .withf(|_, q| {
            q.owners == ["aws-marketplace"] && q.product_codes == ["8fj3k2ls9dnq4x7wz1mcv5bpr"]
        })
        .times(1)
        .returning(|_, _| {
            let mut i = image(
                "ami-0000000000000000a",
                "us-east-1",
                "GIS Research Workstation",
                Architecture::X86_64,
                NOW,
            );
            i.owner_id = "679593333241".into();
            i.product_codes = vec!["8fj3k2ls9dnq4x7wz1mcv5bpr".into()];
            Ok(vec![i])
        });
    match probe(
        &Marketplace,
        &cloud,
        &t,
        "us-east-1",
        vec![Architecture::X86_64],
    )
    .await
    {
        Probe::Found(c) => {
            assert_eq!(c.ami_id, "ami-0000000000000000a");
            assert!(c.warnings.iter().any(|w| w.contains("subscribed")));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn script_fallback_finds_the_publishers_base_image() {
    let t = template("python-research");
    let mut cloud = MockCloud::new();
    cloud
        .expect_describe_images()
        .withf(|_, q| {
            q.owners == ["099720109477"]
                && q.names.len() == 1
                && q.names[0].contains("ubuntu-noble-24.04")
        })
        .times(1)
        .returning(|_, _| {
            Ok(vec![
                image(
                    "ami-0000000000000000b",
                    "us-east-1",
                    "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101",
                    Architecture::X86_64,
                    "2025-01-01T00:00:00.000Z",
                ),
                image(
                    "ami-0000000000000000c",
                    "us-east-1",
                    "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251001",
                    Architecture::X86_64,
                    "2025-10-01T00:00:00.000Z",
                ),
            ])
        });
    match probe(
        &ScriptFallback,
        &cloud,
        &t,
        "us-east-1",
        vec![Architecture::X86_64],
    )
    .await
    {
        Probe::Found(c) => {
            assert_eq!(c.ami_id, "ami-0000000000000000c");
            assert!(c.estimated_launch_seconds > cws_cost::AMI_BOOT_SECONDS);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn provider_errors_surface_as_errors_not_misses() {
    let t = template("python-ml");
    let mut cloud = MockCloud::new();
    cloud.expect_describe_images_by_id().returning(|_, _| {
        Err(ProviderError::PermissionDenied {
            action: "ec2:DescribeImages".into(),
            message: "denied".into(),
        })
    });
    let graph = cws_regions::FallbackGraph::published();
    let prices = cws_cost::PriceBook::bundled();
    let ctx = ResolveContext {
        template: &t,
        region: "us-east-1",
        architectures: vec![Architecture::X86_64],
        provider: &cloud,
        fallbacks: &graph,
        prices: &prices,
        now: ts(NOW),
        known_images: &[],
        refused: &[],
        allowed_owners: None,
    };
    let err = DirectMapping.probe(&ctx).await.unwrap_err();
    assert_eq!(err.kind(), "permission_denied");
    assert!(err.to_string().contains("ec2:DescribeImages"));
}

/// A time from its RFC 3339 spelling.
fn ts(s: &str) -> chrono::DateTime<chrono::Utc> {
    cws_provider::ec2_time::parse(s).expect("a valid test time")
}

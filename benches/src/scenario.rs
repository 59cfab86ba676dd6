//! The four resolution scenarios of the latency and call-count benches.
//!
//! | case | cloud | template | region | winner |
//! |---|---|---|---|---|
//! | direct hit | seeded LocalCloud | bundled `python-ml` | us-east-1 | direct_mapping |
//! | dynamic hit | seeded LocalCloud | bundled `bioinformatics` | us-west-2 | dynamic_search |
//! | cross-region, 3rd fallback | [`fallback_cloud`] | `bench-cross` | ap-south-1 | cross_region from us-east-1 |
//! | nothing found | [`fallback_cloud`] | `bench-absent` | ap-south-1 | script_fallback |
//!
//! ap-south-1 falls back to ap-southeast-1, ap-northeast-1, then us-east-1 (the published
//! graph), so `bench-cross`, whose only image is in us-east-1, is found in the third fallback.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cws_localcloud::{CANONICAL_OWNER, LocalCloud};
use cws_provider::wrappers::LatencyProvider;
use cws_provider::*;
use cws_provider::{Image, ImageState};
use cws_resolver::*;
use cws_template::{Architecture, Template, TemplateStore};

use crate::BenchError;
use crate::serial::SerialProvider;

/// The publisher account of the bench templates' images (the simulated cws publisher).
pub const PUBLISHER: &str = cws_template::CWS_PUBLISHER_ACCOUNT;

/// The only image of `bench-cross`, in us-east-1.
pub const CROSS_AMI: &str = "ami-0ce05500000000001";

/// Where `bench-cross` and `bench-absent` are resolved.
pub const FAR_REGION: &str = "ap-south-1";

/// The region the `bench-cross` image lives in: ap-south-1's third fallback.
pub const THIRD_FALLBACK: &str = "us-east-1";

/// One of the four benchmarked resolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Case {
    /// `python-ml` in us-east-1: its mapped AMI is there.
    DirectHit,
    /// `bioinformatics` in us-west-2: found by its name-pattern search.
    DynamicHit,
    /// `bench-cross` in ap-south-1: only in the third fallback region.
    CrossRegionThird,
    /// `bench-absent` in ap-south-1: no image anywhere; script provisioning.
    NothingFound,
}

impl Case {
    /// Every case, in report order.
    pub const ALL: [Case; 4] = [
        Case::DirectHit,
        Case::DynamicHit,
        Case::CrossRegionThird,
        Case::NothingFound,
    ];

    /// A short id for bench names, e.g. `direct_hit`.
    pub fn id(self) -> &'static str {
        match self {
            Case::DirectHit => "direct_hit",
            Case::DynamicHit => "dynamic_hit",
            Case::CrossRegionThird => "cross_region_3rd",
            Case::NothingFound => "nothing_found",
        }
    }

    /// A label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Case::DirectHit => "direct hit (python-ml, us-east-1)",
            Case::DynamicHit => "dynamic hit (bioinformatics, us-west-2)",
            Case::CrossRegionThird => "cross-region, 3rd fallback (ap-south-1 <- us-east-1)",
            Case::NothingFound => "nothing found -> script (ap-south-1)",
        }
    }

    /// The method the case must resolve to.
    pub fn expected(self) -> Method {
        match self {
            Case::DirectHit => Method::DirectMapping,
            Case::DynamicHit => Method::DynamicSearch,
            Case::CrossRegionThird => Method::CrossRegion,
            Case::NothingFound => Method::ScriptFallback,
        }
    }
}

/// How the tiers are walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Walk {
    /// cws as shipped: the launch region's tiers in one round trip, the fallback regions
    /// only if it has nothing ([`Resolver::for_template`]).
    Waves,
    /// [`Resolver::eager`]: every tier's questions at once, other regions included.
    Eager,
    /// [`Resolver::sequential`]: one tier after another (a tier may still fan out inside).
    Sequential,
    /// The sequential walk over a [`SerialProvider`]: one provider call at a time.
    Serial,
}

impl Walk {
    /// Every walk, in report order.
    pub const ALL: [Walk; 4] = [Walk::Waves, Walk::Eager, Walk::Sequential, Walk::Serial];

    /// A short id for bench names.
    pub fn id(self) -> &'static str {
        match self {
            Walk::Waves => "cws_waves",
            Walk::Eager => "cws_eager",
            Walk::Sequential => "sequential_tiers",
            Walk::Serial => "serial_calls",
        }
    }

    /// The resolver for `template` walked this way.
    pub fn resolver(self, template: &Template) -> Resolver {
        match self {
            Walk::Waves => Resolver::for_template(template),
            Walk::Eager => Resolver::for_template(template).eager(),
            Walk::Sequential | Walk::Serial => Resolver::for_template(template).sequential(),
        }
    }

    /// `cloud` with `latency` added to every call, serialised for [`Walk::Serial`].
    pub fn provider(self, cloud: Arc<LocalCloud>, latency: Duration) -> Arc<dyn CloudProvider> {
        let delayed = LatencyProvider::new(cloud, latency);
        match self {
            Walk::Serial => Arc::new(SerialProvider::new(delayed)),
            Walk::Waves | Walk::Eager | Walk::Sequential => Arc::new(delayed),
        }
    }
}

/// A case ready to resolve: template, region and the cloud it runs against.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Which case.
    pub case: Case,
    /// The template.
    pub template: Template,
    /// The target region.
    pub region: &'static str,
    /// The simulated cloud (shared, never mutated by resolutions).
    pub cloud: Arc<LocalCloud>,
}

impl Scenario {
    /// All four scenarios; the two seeded-cloud cases share one cloud, the two fallback cases
    /// another.
    pub fn all() -> Result<Vec<Scenario>, BenchError> {
        let seeded = Arc::new(LocalCloud::in_memory());
        let fallback = Arc::new(fallback_cloud()?);
        Case::ALL
            .into_iter()
            .map(|case| {
                let (template, region, cloud) = match case {
                    Case::DirectHit => (bundled("python-ml")?, "us-east-1", seeded.clone()),
                    Case::DynamicHit => (bundled("bioinformatics")?, "us-west-2", seeded.clone()),
                    Case::CrossRegionThird => (cross_template()?, FAR_REGION, fallback.clone()),
                    Case::NothingFound => (absent_template()?, FAR_REGION, fallback.clone()),
                };
                Ok(Scenario {
                    case,
                    template,
                    region,
                    cloud,
                })
            })
            .collect()
    }

    /// The resolution request.
    pub fn request(&self) -> ResolveRequest {
        ResolveRequest::new(self.template.clone(), self.region)
    }

    /// An environment whose provider adds `latency` per call (serialised for [`Walk::Serial`]).
    pub fn env(&self, walk: Walk, latency: Duration) -> ResolveEnv {
        ResolveEnv::new(walk.provider(self.cloud.clone(), latency))
    }

    /// Checks that a resolution took the path this case is named for.
    pub fn check(&self, r: &Resolution) -> Result<(), BenchError> {
        let unexpected = |why: String| BenchError::Unexpected {
            case: self.case.id().to_string(),
            why,
        };
        if r.method != self.case.expected() {
            return Err(unexpected(format!(
                "method {} instead of {}; attempts: {:?}",
                r.method,
                self.case.expected(),
                r.attempts
                    .iter()
                    .map(|a| format!("{}={:?} ({})", a.tier, a.outcome, a.detail))
                    .collect::<Vec<_>>()
            )));
        }
        if self.case == Case::CrossRegionThird && r.source_region.as_deref() != Some(THIRD_FALLBACK)
        {
            return Err(unexpected(format!(
                "image came from {:?}, not the third fallback {THIRD_FALLBACK}",
                r.source_region
            )));
        }
        Ok(())
    }
}

/// A bundled template by slug.
pub fn bundled(slug: &str) -> Result<Template, BenchError> {
    TemplateStore::bundled_only()
        .get(slug)
        .map(|t| t.template)
        .map_err(|source| BenchError::Template {
            slug: slug.to_string(),
            source,
        })
}

/// Parses a fixture template the way a user's file is parsed.
pub fn parse(slug: &str, yaml: &str) -> Result<Template, BenchError> {
    cws_template::parse_str(yaml, &format!("{slug}.yaml")).map_err(|source| BenchError::Template {
        slug: slug.to_string(),
        source,
    })
}

/// `bench-cross`: mapped in us-east-1 only, searchable by name and tag, script as last resort
/// (the shape of the bundled templates).
pub fn cross_template() -> Result<Template, BenchError> {
    parse(
        "bench-cross",
        &format!(
            r#"name: Bench cross-region
slug: bench-cross
version: 1.0.0
base: ubuntu-24.04
ami_config:
  strategy: ami_preferred
  ami_mappings:
    {THIRD_FALLBACK}: {CROSS_AMI}
  ami_search:
    owners: ["self", "{PUBLISHER}"]
    name_pattern: "cws-bench-cross-*"
    architectures: [x86_64, arm64]
    required_tags:
      cws:template: bench-cross
  fallback_strategy: script_provisioning
  preferred_architecture: x86_64
"#
        ),
    )
}

/// `bench-absent`: a template whose images were never published anywhere.
pub fn absent_template() -> Result<Template, BenchError> {
    parse(
        "bench-absent",
        &format!(
            r#"name: Bench absent
slug: bench-absent
version: 1.0.0
base: ubuntu-24.04
ami_config:
  strategy: ami_preferred
  ami_search:
    owners: ["self", "{PUBLISHER}"]
    name_pattern: "cws-bench-absent-*"
    architectures: [x86_64, arm64]
    required_tags:
      cws:template: bench-absent
  fallback_strategy: script_provisioning
  preferred_architecture: x86_64
"#
        ),
    )
}

/// An Ubuntu 24.04 base image as Canonical publishes it, so script provisioning has a base.
pub fn ubuntu_base(id: String, region: &str, arch: Architecture) -> Image {
    let spelled = match arch {
        Architecture::X86_64 => "amd64",
        Architecture::Arm64 => "arm64",
    };
    Image {
        id,
        region: region.to_string(),
        name: format!("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{spelled}-server-20251002"),
        owner_id: CANONICAL_OWNER.to_string(),
        architecture: arch,
        state: ImageState::Available,
        creation_date: cws_provider::ec2_time::parse("2025-10-02T09:31:17.000Z").expect("valid"),
        deprecation_time: None,
        description: Some(format!("Canonical, Ubuntu, 24.04, {spelled} noble image")),
        tags: BTreeMap::new(),
        product_codes: Vec::new(),
        snapshot_ids: Vec::new(),
        root_volume_gb: None,
        public: true,
    }
}

/// `LocalCloud::empty()` plus exactly what the fallback cases need: the `bench-cross` image
/// in us-east-1 only, and Ubuntu base images in every region.
pub fn fallback_cloud() -> Result<LocalCloud, BenchError> {
    let cloud = LocalCloud::empty();
    let mut images = Vec::new();
    let mut tags = BTreeMap::new();
    tags.insert("cws:template".to_string(), "bench-cross".to_string());
    images.push((
        Image {
            id: CROSS_AMI.to_string(),
            region: THIRD_FALLBACK.to_string(),
            name: "cws-bench-cross-1.0.0-x86_64".to_string(),
            owner_id: PUBLISHER.to_string(),
            architecture: Architecture::X86_64,
            state: ImageState::Available,
            creation_date: cws_provider::ec2_time::parse("2025-09-15T10:00:00.000Z")
                .expect("valid"),
            deprecation_time: None,
            description: Some("bench image, published in us-east-1 only".to_string()),
            tags,
            product_codes: Vec::new(),
            snapshot_ids: Vec::new(),
            root_volume_gb: None,
            public: true,
        },
        40,
    ));
    let mut serial = 0u64;
    for region in cws_regions::all() {
        for arch in [Architecture::X86_64, Architecture::Arm64] {
            serial += 1;
            let id = format!("ami-0ba5e{serial:012x}");
            images.push((ubuntu_base(id, region.code, arch), 8));
        }
    }
    cloud.insert_images(images)?;
    Ok(cloud)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_scenario_takes_its_named_path_in_every_walk() {
        for s in Scenario::all().unwrap() {
            for walk in Walk::ALL {
                let r = walk
                    .resolver(&s.template)
                    .resolve(&s.env(walk, Duration::ZERO), &s.request())
                    .await;
                s.check(&r)
                    .unwrap_or_else(|e| panic!("{:?} {:?}: {e}", s.case, walk));
            }
        }
    }

    #[test]
    fn the_cross_region_image_is_in_the_third_fallback() {
        let walk = cws_regions::FallbackGraph::published()
            .walk(FAR_REGION, 3)
            .unwrap();
        assert_eq!(walk.len(), 3);
        assert_eq!(walk[2], THIRD_FALLBACK);
    }

    #[test]
    fn check_rejects_a_wrong_path() {
        let s = Scenario::all().unwrap().remove(0);
        let rt = crate::runtime().unwrap();
        let mut r = rt.block_on(
            Walk::Waves
                .resolver(&s.template)
                .resolve(&s.env(Walk::Waves, Duration::ZERO), &s.request()),
        );
        assert!(s.check(&r).is_ok());
        r.method = Method::ScriptFallback;
        let err = s.check(&r).unwrap_err().to_string();
        assert!(err.contains("direct_hit"), "{err}");
    }
}

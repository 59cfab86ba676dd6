//! A large synthetic catalogue for the zero-latency throughput and memory benches.
//!
//! `n` images are spread round-robin over the first `regions` regions of the catalogue. Within
//! a region, image `k` belongs to family `k % 100` (`cws-bench-fNNN-…`, tagged
//! `cws:template=bench-fNNN`) at version `k / 100`; each family is published by one of four
//! accounts, alternates x86_64/arm64 by version, and its oldest four versions are deprecated.
//! That is what a busy public catalogue looks like: many publishers, many families, long
//! release lines.
//!
//! Three templates resolve against it in [`Catalogue::TARGET_REGION`]:
//! - `bench-direct`: mapped to family 0's newest x86_64 image there (direct mapping);
//! - `bench-f007`: searches one family (owner + name prefix + tag): the typical search;
//! - `bench-any`: searches `cws-bench-*` across all four publishers, so every image of the
//!   region is a candidate: the worst case for a name-pattern search.

use std::collections::BTreeMap;
use std::sync::Arc;

use cws_localcloud::LocalCloud;
use cws_provider::{Image, ImageState};
use cws_template::{Architecture, Template};

use crate::BenchError;
use crate::scenario::{parse, ubuntu_base};

/// Families per region.
pub const FAMILIES: usize = 100;

/// The four publisher accounts; family `f` is published by `PUBLISHERS[f % 4]`.
pub const PUBLISHERS: [&str; 4] = [
    "704381954421",
    "210987654321",
    "333344445555",
    "987654321098",
];

/// Versions below this are deprecated (in the past).
const DEPRECATED_BELOW: usize = 4;

/// The synthetic catalogue and the templates that resolve against it.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// The simulated cloud holding the images.
    pub cloud: Arc<LocalCloud>,
    /// The regions the images are spread over.
    pub regions: Vec<&'static str>,
    /// How many synthetic images (base OS images not counted).
    pub images: usize,
    /// `bench-direct`.
    pub direct: Template,
    /// `bench-f007`.
    pub selective: Template,
    /// `bench-any`.
    pub broad: Template,
}

/// The id of synthetic image `i` (17 hex digits, the modern EC2 shape).
pub fn image_id(i: usize) -> String {
    format!("ami-0{:016x}", 0xbe00_0000_u64 + i as u64)
}

/// The first `count` regions of the catalogue (sorted by code).
pub fn regions(count: usize) -> Vec<&'static str> {
    cws_regions::all()
        .iter()
        .take(count)
        .map(|r| r.code)
        .collect()
}

/// The index of the image of `family` at `version` in region number `region_index`.
pub fn index_of(region_index: usize, region_count: usize, family: usize, version: usize) -> usize {
    (version * FAMILIES + family) * region_count + region_index
}

/// The synthetic images (with snapshot sizes) of an `n`-image catalogue over `regions`.
pub fn images(n: usize, regions: &[&'static str]) -> Vec<(Image, u32)> {
    (0..n)
        .map(|i| {
            let region = regions[i % regions.len()];
            let k = i / regions.len();
            let family = k % FAMILIES;
            let version = k / FAMILIES;
            let arch = if version.is_multiple_of(2) {
                Architecture::X86_64
            } else {
                Architecture::Arm64
            };
            let mut tags = BTreeMap::new();
            tags.insert("cws:template".to_string(), format!("bench-f{family:03}"));
            tags.insert("cws:template-version".to_string(), format!("{version}.0.0"));
            let image = Image {
                id: image_id(i),
                region: region.to_string(),
                name: format!("cws-bench-f{family:03}-{version}.0.0-{}", arch.as_str()),
                owner_id: PUBLISHERS[family % PUBLISHERS.len()].to_string(),
                architecture: arch,
                state: ImageState::Available,
                // Newer versions are newer images: month and day grow with the version.
                creation_date: cws_provider::ec2_time::parse(&format!(
                    "2025-{:02}-{:02}T{:02}:{:02}:00.000Z",
                    1 + (version / 3) % 12,
                    1 + (version % 3) * 9,
                    family % 24,
                    k % 60
                ))
                .expect("a valid generated time"),
                deprecation_time: (version < DEPRECATED_BELOW).then(|| {
                    cws_provider::ec2_time::parse("2025-06-01T00:00:00.000Z").expect("valid")
                }),
                description: Some(format!("bench family {family} version {version}")),
                tags,
                product_codes: Vec::new(),
                snapshot_ids: Vec::new(),
                root_volume_gb: None,
                public: true,
            };
            (image, 30)
        })
        .collect()
}

impl Catalogue {
    /// The region the catalogue templates are resolved in.
    pub const TARGET_REGION: &'static str = "eu-central-1";

    /// Builds an `n`-image catalogue over the first `region_count` regions (which must include
    /// [`TARGET_REGION`](Self::TARGET_REGION): at least 18), with Ubuntu base images in each.
    pub fn build(n: usize, region_count: usize) -> Result<Catalogue, BenchError> {
        let regions = regions(region_count);
        let cloud = LocalCloud::empty();
        cloud.insert_images(images(n, &regions))?;
        Catalogue::over(Arc::new(cloud), regions, n)
    }

    /// The templates over an already filled cloud (the memory bench fills it itself).
    pub fn over(
        cloud: Arc<LocalCloud>,
        regions: Vec<&'static str>,
        n: usize,
    ) -> Result<Catalogue, BenchError> {
        let Some(target) = regions.iter().position(|r| *r == Self::TARGET_REGION) else {
            return Err(BenchError::Unexpected {
                case: "catalogue".into(),
                why: format!(
                    "{} is not among the {} catalogue regions; use at least 18",
                    Self::TARGET_REGION,
                    regions.len()
                ),
            });
        };
        let mut bases = Vec::new();
        for (i, region) in regions.iter().enumerate() {
            bases.push((
                ubuntu_base(
                    format!("ami-0ba5e{:012x}", 2 * i),
                    region,
                    Architecture::X86_64,
                ),
                8,
            ));
            bases.push((
                ubuntu_base(
                    format!("ami-0ba5e{:012x}", 2 * i + 1),
                    region,
                    Architecture::Arm64,
                ),
                8,
            ));
        }
        cloud.insert_images(bases)?;

        // Family 0's newest x86_64 version present in the target region.
        let per_region = n / regions.len();
        let newest_version = (per_region.saturating_sub(1)) / FAMILIES;
        let version = if newest_version.is_multiple_of(2) {
            newest_version
        } else {
            newest_version.saturating_sub(1)
        };
        let mapped = image_id(index_of(target, regions.len(), 0, version));
        let target_region = Self::TARGET_REGION;
        let direct = parse(
            "bench-direct",
            &format!(
                r#"name: Bench direct
slug: bench-direct
version: 1.0.0
base: ubuntu-24.04
ami_config:
  strategy: ami_preferred
  ami_mappings:
    {target_region}: {mapped}
  ami_search:
    owners: ["self", "{p0}"]
    name_pattern: "cws-bench-f000-*"
    architectures: [x86_64, arm64]
    required_tags:
      cws:template: bench-direct
  preferred_architecture: x86_64
"#,
                p0 = PUBLISHERS[0]
            ),
        )?;
        let selective = parse(
            "bench-f007",
            &format!(
                r#"name: Bench family 7
slug: bench-f007
version: 1.0.0
base: ubuntu-24.04
ami_config:
  strategy: ami_preferred
  ami_search:
    owners: ["self", "{p3}"]
    name_pattern: "cws-bench-f007-*"
    architectures: [x86_64, arm64]
    required_tags:
      cws:template: bench-f007
  preferred_architecture: x86_64
"#,
                p3 = PUBLISHERS[7 % PUBLISHERS.len()]
            ),
        )?;
        let broad = parse(
            "bench-any",
            &format!(
                r#"name: Bench any family
slug: bench-any
version: 1.0.0
base: ubuntu-24.04
ami_config:
  strategy: ami_preferred
  ami_search:
    owners: ["{}", "{}", "{}", "{}"]
    name_pattern: "cws-bench-*"
    architectures: [x86_64, arm64]
  preferred_architecture: x86_64
"#,
                PUBLISHERS[0], PUBLISHERS[1], PUBLISHERS[2], PUBLISHERS[3]
            ),
        )?;
        Ok(Catalogue {
            cloud,
            regions,
            images: n,
            direct,
            selective,
            broad,
        })
    }
}

#[cfg(test)]
mod tests {
    use cws_resolver::*;

    use super::*;

    #[tokio::test]
    async fn catalogue_templates_resolve_as_named() {
        let c = Catalogue::build(30 * 500, 30).unwrap();
        assert_eq!(c.cloud.image_count(), 30 * 500 + 60);
        let env = ResolveEnv::new(c.cloud.clone());
        let resolve = |t: &Template| {
            let t = t.clone();
            let env = env.clone();
            async move {
                Resolver::for_template(&t)
                    .resolve(&env, &ResolveRequest::new(t, Catalogue::TARGET_REGION))
                    .await
            }
        };
        let direct = resolve(&c.direct).await;
        assert_eq!(direct.method, Method::DirectMapping, "{direct:#?}");
        let selective = resolve(&c.selective).await;
        assert_eq!(selective.method, Method::DynamicSearch, "{selective:#?}");
        let name = selective.ami_name.unwrap();
        assert!(name.starts_with("cws-bench-f007-"), "{name}");
        assert!(name.ends_with("x86_64"), "preferred architecture: {name}");
        let broad = resolve(&c.broad).await;
        assert_eq!(broad.method, Method::DynamicSearch, "{broad:#?}");
    }

    #[test]
    fn ids_are_unique_and_regions_round_robin() {
        let regions = regions(30);
        let imgs = images(3000, &regions);
        let ids: std::collections::BTreeSet<_> = imgs.iter().map(|(i, _)| &i.id).collect();
        assert_eq!(ids.len(), 3000);
        assert_eq!(imgs[31].0.region, regions[1]);
        let i = index_of(17, 30, 7, 0);
        assert_eq!(imgs[i].0.region, regions[17]);
        assert!(imgs[i].0.name.starts_with("cws-bench-f007-0.0.0"));
    }
}

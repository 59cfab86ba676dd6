//! The deterministic contents of a fresh LocalCloud.
//!
//! Every region of the catalogue gets the base OS images cws templates build on (Ubuntu,
//! Amazon Linux, Debian; several releases each, the oldest deprecated, as real publishers do).
//! Official cws images are derived from the bundled templates themselves, so the simulated
//! cloud and the templates cannot drift apart: mapped AMI ids exist with exactly those ids,
//! search-only templates get images their search finds, and Marketplace templates get a
//! product plus product-coded images. Ids are FNV-1a hashes of a descriptive key, so every
//! machine seeds the same ids.

use std::collections::BTreeMap;

use cws_template::{Architecture, Template};

use super::store::{RegionState, State, StoredImage, hex_id};
use super::{AMAZON_OWNER, CANONICAL_OWNER, DEBIAN_OWNER, MARKETPLACE_OWNER};
use cws_provider::{Image, ImageState, MarketplaceProduct, Snapshot};

/// Regions where search-only templates (no `ami_mappings`) have published images.
pub const SEARCH_IMAGE_REGIONS: &[&str] = &["us-east-1", "us-west-2"];

/// Regions where Marketplace products have images.
pub const MARKETPLACE_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-northeast-1",
];

/// Size of base OS image snapshots, GiB.
const BASE_SNAPSHOT_GB: u32 = 8;

/// One release of a base OS image family.
struct BaseRelease {
    owner: &'static str,
    /// Name with `{arch}` standing for the publisher's architecture spelling.
    name: &'static str,
    created: &'static str,
    deprecated: Option<&'static str>,
    description: &'static str,
    /// The publisher's spelling of x86_64 (`amd64` for Ubuntu/Debian).
    x86_name: &'static str,
}

const BASE_RELEASES: &[BaseRelease] = &[
    // Ubuntu 24.04 (noble), gp3 root volumes.
    BaseRelease {
        owner: CANONICAL_OWNER,
        name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-20250115",
        created: "2025-01-15T08:12:44.000Z",
        deprecated: Some("2025-07-15T08:12:44.000Z"),
        description: "Canonical, Ubuntu, 24.04, {arch} noble image",
        x86_name: "amd64",
    },
    BaseRelease {
        owner: CANONICAL_OWNER,
        name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-20250610",
        created: "2025-06-10T07:55:02.000Z",
        deprecated: None,
        description: "Canonical, Ubuntu, 24.04, {arch} noble image",
        x86_name: "amd64",
    },
    BaseRelease {
        owner: CANONICAL_OWNER,
        name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-20251002",
        created: "2025-10-02T09:31:17.000Z",
        deprecated: None,
        description: "Canonical, Ubuntu, 24.04, {arch} noble image",
        x86_name: "amd64",
    },
    // Ubuntu 22.04 (jammy), gp2-era naming.
    BaseRelease {
        owner: CANONICAL_OWNER,
        name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-{arch}-server-20250112",
        created: "2025-01-12T06:40:09.000Z",
        deprecated: Some("2025-07-12T06:40:09.000Z"),
        description: "Canonical, Ubuntu, 22.04 LTS, {arch} jammy image",
        x86_name: "amd64",
    },
    BaseRelease {
        owner: CANONICAL_OWNER,
        name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-{arch}-server-20250704",
        created: "2025-07-04T05:22:51.000Z",
        deprecated: None,
        description: "Canonical, Ubuntu, 22.04 LTS, {arch} jammy image",
        x86_name: "amd64",
    },
    // Amazon Linux 2023.
    BaseRelease {
        owner: AMAZON_OWNER,
        name: "al2023-ami-2023.6.20250107.0-kernel-6.1-{arch}",
        created: "2025-01-07T22:10:31.000Z",
        deprecated: Some("2025-04-07T22:10:31.000Z"),
        description: "Amazon Linux 2023 AMI 2023.6.20250107.0 {arch} HVM kernel-6.1",
        x86_name: "x86_64",
    },
    BaseRelease {
        owner: AMAZON_OWNER,
        name: "al2023-ami-2023.7.20250512.0-kernel-6.1-{arch}",
        created: "2025-05-12T20:03:12.000Z",
        deprecated: None,
        description: "Amazon Linux 2023 AMI 2023.7.20250512.0 {arch} HVM kernel-6.1",
        x86_name: "x86_64",
    },
    BaseRelease {
        owner: AMAZON_OWNER,
        name: "al2023-ami-2023.8.20250915.0-kernel-6.1-{arch}",
        created: "2025-09-15T19:47:55.000Z",
        deprecated: None,
        description: "Amazon Linux 2023 AMI 2023.8.20250915.0 {arch} HVM kernel-6.1",
        x86_name: "x86_64",
    },
    // Debian 12 (bookworm).
    BaseRelease {
        owner: DEBIAN_OWNER,
        name: "debian-12-{arch}-20250112-1990",
        created: "2025-01-12T23:01:40.000Z",
        deprecated: Some("2026-01-12T23:01:40.000Z"),
        description: "Debian 12 (20250112-1990)",
        x86_name: "amd64",
    },
    BaseRelease {
        owner: DEBIAN_OWNER,
        name: "debian-12-{arch}-20250610-2140",
        created: "2025-06-10T21:14:03.000Z",
        deprecated: None,
        description: "Debian 12 (20250610-2140)",
        x86_name: "amd64",
    },
    BaseRelease {
        owner: DEBIAN_OWNER,
        name: "debian-12-{arch}-20250928-2250",
        created: "2025-09-28T22:50:26.000Z",
        deprecated: None,
        description: "Debian 12 (20250928-2250)",
        x86_name: "amd64",
    },
];

/// The name a base release has for one architecture.
fn base_name(release: &BaseRelease, arch: Architecture) -> String {
    let spelled = match arch {
        Architecture::X86_64 => release.x86_name,
        Architecture::Arm64 => "arm64",
    };
    release.name.replace("{arch}", spelled)
}

/// The id a seeded image gets: a hash of region and name, so it is stable and differs per
/// region like real AMI ids do.
pub(crate) fn seeded_image_id(region: &str, name: &str) -> String {
    hex_id("ami", &format!("seed:image:{region}:{name}"))
}

fn seeded_snapshot_id(region: &str, image_id: &str) -> String {
    hex_id("snap", &format!("seed:snapshot:{region}:{image_id}"))
}

/// Adds an image and its root snapshot to a region.
pub(crate) fn add_image(region: &mut RegionState, mut image: Image, snapshot_gb: u32) {
    if image.snapshot_ids.is_empty() {
        image
            .snapshot_ids
            .push(seeded_snapshot_id(&image.region, &image.id));
    }
    image.root_volume_gb.get_or_insert(snapshot_gb);
    for snap in &image.snapshot_ids {
        region.snapshots.insert(
            snap.clone(),
            Snapshot {
                id: snap.clone(),
                region: image.region.clone(),
                size_gb: snapshot_gb,
                state: "completed".to_string(),
            },
        );
    }
    region.put_image(StoredImage {
        image,
        permissions: Vec::new(),
    });
}

/// The fully seeded state.
pub(crate) fn seeded_state() -> State {
    let mut state = State::default();
    for region in cws_regions::all() {
        let rs = state.region_mut(region.code);
        for release in BASE_RELEASES {
            for arch in [Architecture::X86_64, Architecture::Arm64] {
                let name = base_name(release, arch);
                let spelled = match arch {
                    Architecture::X86_64 => release.x86_name,
                    Architecture::Arm64 => "arm64",
                };
                let image = Image {
                    id: seeded_image_id(region.code, &name),
                    region: region.code.to_string(),
                    name,
                    owner_id: release.owner.to_string(),
                    architecture: arch,
                    state: ImageState::Available,
                    creation_date: time(release.created),
                    deprecation_time: release.deprecated.map(time),
                    description: Some(release.description.replace("{arch}", spelled)),
                    tags: BTreeMap::new(),
                    product_codes: Vec::new(),
                    snapshot_ids: Vec::new(),
                    root_volume_gb: None,
                    public: true,
                };
                add_image(rs, image, BASE_SNAPSHOT_GB);
            }
        }
    }
    for template in bundled_templates() {
        seed_template(&mut state, &template);
    }
    state
}

/// The bundled templates that parse. They are validated by cws-template's own tests (and by
/// a test here), so a failure is logged rather than making the whole simulated cloud unusable.
pub(crate) fn bundled_templates() -> Vec<Template> {
    cws_template::bundled()
        .iter()
        .filter_map(|b| match cws_template::parse_str(b.source, b.slug) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(template = b.slug, error = %e, "bundled template skipped while seeding LocalCloud");
                None
            }
        })
        .collect()
}

/// A realistic image size for a template's official image.
pub(crate) fn snapshot_gb_for(slug: &str) -> u32 {
    match slug {
        "python-ml" => 60,
        "r-research" => 40,
        _ => 50,
    }
}

/// The release before `v`, for seeding older versions of an image line.
fn previous_version(v: &semver::Version) -> Option<semver::Version> {
    if v.patch > 0 {
        Some(semver::Version::new(v.major, v.minor, v.patch - 1))
    } else if v.minor > 0 {
        Some(semver::Version::new(v.major, v.minor - 1, 0))
    } else if v.major > 0 {
        Some(semver::Version::new(v.major - 1, 9, 0))
    } else {
        None
    }
}

/// Up to three releases ending with the template's version, oldest first.
fn release_line(v: &semver::Version) -> Vec<semver::Version> {
    let mut line = vec![v.clone()];
    let mut cur = v.clone();
    for _ in 0..2 {
        match previous_version(&cur) {
            Some(p) => {
                line.push(p.clone());
                cur = p;
            }
            None => break,
        }
    }
    line.reverse();
    line
}

/// Creation and deprecation dates for the n-th release of a line (oldest first, of `len`):
/// the oldest of three is deprecated, as publishers deprecate superseded images.
/// A seed time: the literals below are valid, so a failure is a bug in this file.
fn time(text: &str) -> chrono::DateTime<chrono::Utc> {
    cws_provider::ec2_time::parse(text).expect("seed times are valid RFC 3339")
}

fn release_dates(
    index: usize,
    len: usize,
) -> (
    chrono::DateTime<chrono::Utc>,
    Option<chrono::DateTime<chrono::Utc>>,
) {
    const CREATED: [&str; 3] = [
        "2025-03-03T10:00:00.000Z",
        "2025-06-02T10:00:00.000Z",
        "2025-09-01T10:00:00.000Z",
    ];
    let offset = 3 - len;
    let created = time(CREATED[(index + offset).min(2)]);
    let deprecated = (len >= 3 && index == 0).then(|| time("2025-09-01T10:00:00.000Z"));
    (created, deprecated)
}

/// One published release of an official image.
struct Release {
    version: String,
    arch: Architecture,
    created: chrono::DateTime<chrono::Utc>,
    deprecated: Option<chrono::DateTime<chrono::Utc>>,
}

fn official_image(
    template: &Template,
    region: &str,
    id: String,
    name: String,
    release: Release,
    extra_tags: &BTreeMap<String, String>,
) -> Image {
    let Release {
        version,
        arch,
        created,
        deprecated,
    } = release;
    let mut tags = extra_tags.clone();
    tags.insert("cws:template".to_string(), template.slug.clone());
    tags.insert("cws:template-version".to_string(), version.clone());
    tags.insert("Name".to_string(), name.clone());
    Image {
        id,
        region: region.to_string(),
        name,
        owner_id: cws_template::CWS_PUBLISHER_ACCOUNT.to_string(),
        architecture: arch,
        state: ImageState::Available,
        creation_date: created,
        deprecation_time: deprecated,
        description: Some(format!(
            "cws official image: {} {version} ({})",
            template.name,
            arch.as_str()
        )),
        tags,
        product_codes: Vec::new(),
        snapshot_ids: Vec::new(),
        root_volume_gb: None,
        public: true,
    }
}

/// Seeds the official images (and Marketplace product) one template calls for.
fn seed_template(state: &mut State, template: &Template) {
    let Some(cfg) = &template.ami_config else {
        return;
    };
    let version = template.version.to_string();
    let size = snapshot_gb_for(&template.slug);
    let preferred = cfg.preferred_architecture.unwrap_or(Architecture::X86_64);

    // Direct mappings: exactly the ids the template names.
    for (region, id) in &cfg.ami_mappings {
        if cws_regions::get(region).is_none() {
            continue;
        }
        let name = format!("cws-{}-{version}-{}", template.slug, preferred.as_str());
        let image = official_image(
            template,
            region,
            id.clone(),
            name,
            Release {
                version: version.clone(),
                arch: preferred,
                created: time("2025-09-15T10:00:00.000Z"),
                deprecated: None,
            },
            &BTreeMap::new(),
        );
        add_image(state.region_mut(region), image, size);
    }

    // Search-only templates: images the template's own search finds, in a few regions.
    if let Some(search) = &cfg.ami_search
        && cfg.ami_mappings.is_empty()
    {
        let pattern = search
            .name_pattern
            .clone()
            .unwrap_or_else(|| format!("cws-{}-*", template.slug));
        let archs: Vec<Architecture> = if search.architectures.is_empty() {
            vec![Architecture::X86_64, Architecture::Arm64]
        } else {
            search.architectures.clone()
        };
        let line = release_line(&template.version);
        for region in SEARCH_IMAGE_REGIONS {
            for (i, v) in line.iter().enumerate() {
                let (created, deprecated) = release_dates(i, line.len());
                for arch in &archs {
                    let fill = format!("{v}-{}", arch.as_str());
                    let name = pattern.replace('*', &fill).replace('?', "x");
                    let id = seeded_image_id(region, &name);
                    let image = official_image(
                        template,
                        region,
                        id,
                        name,
                        Release {
                            version: v.to_string(),
                            arch: *arch,
                            created,
                            deprecated,
                        },
                        &search.required_tags,
                    );
                    add_image(state.region_mut(region), image, size);
                }
            }
        }
    }

    // Marketplace templates: the catalogue product and its product-coded images.
    if let Some(mp) = &cfg.marketplace {
        let product_code = mp
            .product_code
            .clone()
            .unwrap_or_else(|| format!("{:016x}", super::store::fnv1a(&template.slug)));
        let product_id = mp
            .product_id
            .clone()
            .unwrap_or_else(|| format!("prod-{:012x}", super::store::fnv1a(&product_code) >> 16));
        let title = mp.title.clone().unwrap_or_else(|| template.name.clone());
        let product = MarketplaceProduct {
            subscribe_url: format!("https://aws.amazon.com/marketplace/pp/{product_id}"),
            product_id,
            product_code: product_code.clone(),
            title: title.clone(),
        };
        if !state
            .marketplace
            .iter()
            .any(|p| p.product_id == product.product_id)
        {
            state.marketplace.push(product);
        }
        let line = release_line(&template.version);
        let line = &line[line.len().saturating_sub(2)..];
        for region in MARKETPLACE_REGIONS {
            for (i, v) in line.iter().enumerate() {
                let created = release_dates(i + 1, 3).0;
                let name = format!("{title} {v} {}-{product_code}", preferred.as_str());
                let image = Image {
                    id: seeded_image_id(region, &name),
                    region: region.to_string(),
                    name,
                    owner_id: MARKETPLACE_OWNER.to_string(),
                    architecture: preferred,
                    state: ImageState::Available,
                    creation_date: created,
                    deprecation_time: None,
                    description: Some(format!("{title} {v} (AWS Marketplace)")),
                    tags: BTreeMap::new(),
                    product_codes: vec![product_code.clone()],
                    snapshot_ids: Vec::new(),
                    root_volume_gb: None,
                    public: true,
                };
                add_image(state.region_mut(region), image, size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_lines_end_at_the_template_version() {
        let v = |s: &str| semver::Version::parse(s).unwrap();
        assert_eq!(
            release_line(&v("2.2.0")),
            vec![v("2.0.0"), v("2.1.0"), v("2.2.0")]
        );
        assert_eq!(
            release_line(&v("1.0.1")),
            vec![v("0.9.0"), v("1.0.0"), v("1.0.1")]
        );
        assert_eq!(release_line(&v("0.0.0")), vec![v("0.0.0")]);
        assert_eq!(release_line(&v("0.1.0")), vec![v("0.0.0"), v("0.1.0")]);
    }

    #[test]
    fn only_the_oldest_of_three_releases_is_deprecated() {
        assert!(release_dates(0, 3).1.is_some());
        assert!(release_dates(1, 3).1.is_none());
        assert!(release_dates(2, 3).1.is_none());
        assert!(release_dates(0, 2).1.is_none());
        // Newer releases are created later.
        assert!(release_dates(0, 3).0 < release_dates(2, 3).0);
    }

    #[test]
    fn every_bundled_template_parses_for_seeding() {
        assert_eq!(bundled_templates().len(), cws_template::bundled().len());
    }

    #[test]
    fn seeding_is_deterministic() {
        let a = serde_json::to_string(&seeded_state()).unwrap();
        let b = serde_json::to_string(&seeded_state()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn every_region_has_base_images_with_snapshots() {
        let state = seeded_state();
        for region in cws_regions::all() {
            let rs = &state.regions[region.code];
            let canonical = rs
                .images
                .values()
                .filter(|s| s.image.owner_id == CANONICAL_OWNER)
                .count();
            assert_eq!(canonical, 10, "{}", region.code);
            for s in rs.images.values() {
                assert_eq!(s.image.region, region.code);
                for snap in &s.image.snapshot_ids {
                    assert!(rs.snapshots.contains_key(snap), "{snap} missing");
                }
            }
        }
    }

    #[test]
    fn seeded_ids_are_well_formed_and_unique() {
        let state = seeded_state();
        let mut seen = std::collections::BTreeSet::new();
        for rs in state.regions.values() {
            for id in rs.images.keys() {
                assert!(super::super::is_image_id(id), "{id}");
                assert!(seen.insert(id.clone()), "duplicate {id}");
            }
        }
    }
}

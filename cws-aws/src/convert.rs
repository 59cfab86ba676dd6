//! Mapping between EC2's shapes and cws's model, and the local checks done before a call.
//!
//! Kept apart from the calls so every field mapping and filter is unit-tested on SDK values
//! built in memory, without a network or an emulator.

use std::collections::BTreeMap;

use aws_sdk_ec2::types as ec2;
use cws_template::Architecture;

use cws_provider::{Image, ImageQuery, ImageState, Instance, InstanceState, LaunchPermission};
use cws_provider::{ProviderError, ProviderResult, ec2_time};

/// The cws architecture of an EC2 architecture; `None` for ones cws does not launch
/// (i386, Mac).
pub(super) fn architecture(a: Option<&ec2::ArchitectureValues>) -> Option<Architecture> {
    match a? {
        ec2::ArchitectureValues::X8664 => Some(Architecture::X86_64),
        ec2::ArchitectureValues::Arm64 => Some(Architecture::Arm64),
        _ => None,
    }
}

/// The EC2 spelling of a cws architecture (as used in the `architecture` filter).
pub(super) fn architecture_value(a: Architecture) -> &'static str {
    match a {
        Architecture::X86_64 => "x86_64",
        Architecture::Arm64 => "arm64",
    }
}

/// Tags as a map (EC2 returns a list; keys are unique per resource).
pub(super) fn tag_map(tags: &[ec2::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// A map of tags as EC2 tags.
pub(super) fn ec2_tags(tags: &BTreeMap<String, String>) -> Vec<ec2::Tag> {
    tags.iter()
        .map(|(k, v)| ec2::Tag::builder().key(k).value(v).build())
        .collect()
}

/// Maps an EC2 image. `None` when it has no id or an architecture cws cannot launch.
pub(super) fn image(img: &ec2::Image, region: &str) -> Option<Image> {
    let id = img.image_id()?.to_string();
    let Some(arch) = architecture(img.architecture()) else {
        tracing::debug!(image = %id, arch = ?img.architecture(), "skipping image with an architecture cws does not launch");
        return None;
    };
    let root = img.root_device_name();
    // Root device first, then the others in EC2's order.
    let mut mappings: Vec<&ec2::BlockDeviceMapping> = img.block_device_mappings().iter().collect();
    mappings.sort_by_key(|m| m.device_name() != root || root.is_none());
    let snapshot_ids: Vec<String> = mappings
        .iter()
        .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_string))
        .collect();
    let sizes: Vec<u32> = mappings
        .iter()
        .filter_map(|m| m.ebs()?.volume_size())
        .map(|s| u32::try_from(s).unwrap_or(0))
        .collect();
    let root_volume_gb = (!sizes.is_empty()).then(|| sizes.iter().sum());
    Some(Image {
        id,
        region: region.to_string(),
        name: img.name().unwrap_or_default().to_string(),
        owner_id: img.owner_id().unwrap_or_default().to_string(),
        architecture: arch,
        state: img
            .state()
            .map(|s| ImageState::parse(s.as_str()))
            .unwrap_or(ImageState::Other),
        // Parsed once, here. A missing or unreadable date sorts oldest.
        creation_date: img
            .creation_date()
            .and_then(|t| ec2_time::parse(t).ok())
            .unwrap_or_default(),
        deprecation_time: img.deprecation_time().and_then(|t| ec2_time::parse(t).ok()),
        description: img.description().map(str::to_string),
        tags: tag_map(img.tags()),
        product_codes: img
            .product_codes()
            .iter()
            .filter_map(|p| p.product_code_id().map(str::to_string))
            .collect(),
        snapshot_ids,
        root_volume_gb,
        public: img.public().unwrap_or(false),
    })
}

/// Maps an EC2 instance. `fallback_arch` is used when EC2 does not report one (it always
/// does for running instances; emulators may not).
pub(super) fn instance(
    inst: &ec2::Instance,
    region: &str,
    fallback_arch: Architecture,
) -> Option<Instance> {
    let id = inst.instance_id()?.to_string();
    let tags = tag_map(inst.tags());
    Some(Instance {
        id,
        name: tags.get("Name").cloned().unwrap_or_default(),
        region: region.to_string(),
        ami_id: inst.image_id().unwrap_or_default().to_string(),
        instance_type: inst
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        architecture: architecture(inst.architecture()).unwrap_or(fallback_arch),
        state: inst
            .state()
            .and_then(|s| s.name())
            .and_then(|n| InstanceState::parse(n.as_str()))
            .unwrap_or(InstanceState::Pending),
        launch_time: inst
            .launch_time()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .unwrap_or_default(),
        tags,
    })
}

fn filter<I, S>(name: &str, values: I) -> ec2::Filter
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    ec2::Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

/// The `DescribeImages` filters for a query (owners and deprecation are separate
/// parameters). Only filters EC2 and common emulators support: `name`, `architecture`,
/// `state`, `tag:K`, `product-code`.
pub(super) fn image_filters(q: &ImageQuery) -> Vec<ec2::Filter> {
    let mut filters = Vec::new();
    if !q.names.is_empty() {
        filters.push(filter("name", q.names.iter().cloned()));
    }
    if !q.architectures.is_empty() {
        filters.push(filter(
            "architecture",
            q.architectures.iter().map(|a| architecture_value(*a)),
        ));
    }
    let states: Vec<&str> = q
        .accepted_states()
        .into_iter()
        .filter(|s| *s != ImageState::Other)
        .map(ImageState::as_str)
        .collect();
    if !states.is_empty() {
        filters.push(filter("state", states));
    }
    for (k, v) in &q.tags {
        filters.push(filter(&format!("tag:{k}"), [v.clone()]));
    }
    if !q.product_codes.is_empty() {
        filters.push(filter("product-code", q.product_codes.clone()));
    }
    filters
}

/// The `DescribeInstances` filters: tags, ids, and live states unless terminated ones are
/// wanted.
pub(super) fn instance_filters(
    ids: &[String],
    tags: &BTreeMap<String, String>,
    include_terminated: bool,
) -> Vec<ec2::Filter> {
    let mut filters = Vec::new();
    // Ids go in a filter rather than `InstanceIds`: a filter never fails on an unknown id, so
    // "absent" needs no error handling, and it can be combined with `MaxResults`.
    if !ids.is_empty() {
        filters.push(filter("instance-id", ids.iter().cloned()));
    }
    for (k, v) in tags {
        filters.push(filter(&format!("tag:{k}"), [v.clone()]));
    }
    if !include_terminated {
        filters.push(filter(
            "instance-state-name",
            ["pending", "running", "stopping", "stopped", "shutting-down"],
        ));
    }
    filters
}

/// A cws launch permission as EC2's.
pub(super) fn ec2_permission(p: &LaunchPermission) -> ec2::LaunchPermission {
    let b = ec2::LaunchPermission::builder();
    match p {
        LaunchPermission::Account(id) => b.user_id(id),
        LaunchPermission::Organization(arn) => b.organization_arn(arn),
        LaunchPermission::Public => b.group(ec2::PermissionGroup::All),
        // A kind this version does not know grants nothing rather than something else.
        _ => b,
    }
    .build()
}

/// EC2's launch permission as cws's; `None` for kinds cws does not model (organizational
/// units).
pub(super) fn permission(p: &ec2::LaunchPermission) -> Option<LaunchPermission> {
    if let Some(id) = p.user_id() {
        return Some(LaunchPermission::Account(id.to_string()));
    }
    if let Some(arn) = p.organization_arn() {
        return Some(LaunchPermission::Organization(arn.to_string()));
    }
    match p.group() {
        Some(ec2::PermissionGroup::All) => Some(LaunchPermission::Public),
        _ => None,
    }
}

/// Whether `s` looks like an id with this prefix (`ami`, `i`, `snap`): the prefix, a dash,
/// then lower-case letters and digits. EC2 itself uses hex; emulators are looser.
pub(super) fn is_resource_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Refuses ids that cannot be of the given kind before a round trip is spent on them.
pub(super) fn check_ids(ids: &[String], prefix: &str, kind: &str) -> ProviderResult<()> {
    match ids.iter().find(|id| !is_resource_id(id, prefix)) {
        None => Ok(()),
        Some(bad) => Err(ProviderError::InvalidInput {
            message: format!(
                "`{bad}` is not {kind} id (they look like {prefix}-0123456789abcdef0)"
            ),
        }),
    }
}

/// Geographic prefixes of AWS region codes, across partitions.
const REGION_PREFIXES: &[&str] = &[
    "af", "ap", "ca", "cn", "eu", "eusc", "il", "me", "mx", "sa", "us",
];

/// Whether a region name is one AWS could have: in cws's catalogue, or shaped like an AWS
/// region code (`<area>-[<partition>-]<direction>-<n>`, e.g. `us-gov-west-1`). This refuses
/// typos and made-up names with an answer instead of a DNS failure, while still letting new
/// regions through.
pub(super) fn check_region(region: &str) -> ProviderResult<()> {
    if cws_regions::get(region).is_some() || looks_like_region(region) {
        return Ok(());
    }
    Err(ProviderError::UnknownRegion {
        provider: "AWS".to_string(),
        region: region.to_string(),
        suggestion: cws_regions::suggest(region).map(str::to_string),
    })
}

fn looks_like_region(region: &str) -> bool {
    const DIRECTIONS: &[&str] = &[
        "north",
        "south",
        "east",
        "west",
        "central",
        "northeast",
        "northwest",
        "southeast",
        "southwest",
    ];
    const PARTITIONS: &[&str] = &["gov", "iso", "isob", "isoe", "isof", "de"];
    let parts: Vec<&str> = region.split('-').collect();
    let [first, qualifiers @ .., direction, number] = parts.as_slice() else {
        return false;
    };
    REGION_PREFIXES.contains(first)
        && qualifiers.iter().all(|q| PARTITIONS.contains(q))
        && DIRECTIONS.contains(direction)
        && (1..=2).contains(&number.len())
        && number.chars().all(|c| c.is_ascii_digit())
}

/// The text of `GetConsoleOutput`'s base64 `Output`. Consoles carry control characters and
/// bytes that are not UTF-8; those are replaced, never fatal. Text that is not base64 (some
/// emulators answer plain text) is taken as it is.
pub(crate) fn console_text(encoded: &str) -> String {
    let compact: String = encoded.split_whitespace().collect();
    match aws_smithy_types::base64::decode(&compact) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => encoded.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ebs(device: &str, snap: &str, size: i32) -> ec2::BlockDeviceMapping {
        ec2::BlockDeviceMapping::builder()
            .device_name(device)
            .ebs(
                ec2::EbsBlockDevice::builder()
                    .snapshot_id(snap)
                    .volume_size(size)
                    .build(),
            )
            .build()
    }

    fn sample_image() -> ec2::Image {
        ec2::Image::builder()
            .image_id("ami-0123456789abcdef0")
            .name("cws-python-ml-1.2.0-x86_64")
            .owner_id("704381954421")
            .architecture(ec2::ArchitectureValues::X8664)
            .state(ec2::ImageState::Available)
            .creation_date("2025-09-01T00:00:00.000Z")
            .deprecation_time("2027-09-01T00:00:00.000Z")
            .description("python-ml")
            .public(true)
            .root_device_name("/dev/sda1")
            .block_device_mappings(ebs("/dev/sdb", "snap-2", 50))
            .block_device_mappings(ebs("/dev/sda1", "snap-1", 30))
            .block_device_mappings(
                ec2::BlockDeviceMapping::builder()
                    .device_name("/dev/sdc")
                    .virtual_name("ephemeral0")
                    .build(),
            )
            .tags(
                ec2::Tag::builder()
                    .key("cws:template")
                    .value("python-ml")
                    .build(),
            )
            .product_codes(ec2::ProductCode::builder().product_code_id("abc").build())
            .build()
    }

    #[test]
    fn image_fields_map() {
        let img = image(&sample_image(), "us-east-1").expect("mapped");
        assert_eq!(img.id, "ami-0123456789abcdef0");
        assert_eq!(img.region, "us-east-1");
        assert_eq!(img.owner_id, "704381954421");
        assert_eq!(img.architecture, Architecture::X86_64);
        assert_eq!(img.state, ImageState::Available);
        assert_eq!(
            ec2_time::format(&img.creation_date),
            "2025-09-01T00:00:00.000Z"
        );
        assert_eq!(
            img.deprecation_time
                .map(|t| ec2_time::format(&t))
                .as_deref(),
            Some("2027-09-01T00:00:00.000Z")
        );
        assert_eq!(
            img.snapshot_ids,
            ["snap-1", "snap-2"],
            "root snapshot first"
        );
        assert_eq!(img.root_volume_gb, Some(80));
        assert_eq!(
            img.tags.get("cws:template").map(String::as_str),
            Some("python-ml")
        );
        assert_eq!(img.product_codes, ["abc"]);
        assert!(img.public);
    }

    #[test]
    fn unsupported_architectures_are_skipped() {
        for arch in [
            ec2::ArchitectureValues::I386,
            ec2::ArchitectureValues::X8664Mac,
        ] {
            let img = ec2::Image::builder()
                .image_id("ami-1")
                .architecture(arch)
                .build();
            assert!(image(&img, "us-east-1").is_none());
        }
        let arm = ec2::Image::builder()
            .image_id("ami-1")
            .architecture(ec2::ArchitectureValues::Arm64)
            .build();
        let mapped = image(&arm, "us-east-1").expect("arm64 maps");
        assert_eq!(mapped.architecture, Architecture::Arm64);
        assert_eq!(mapped.root_volume_gb, None);
        assert_eq!(mapped.state, ImageState::Other);
    }

    #[test]
    fn instance_fields_map() {
        let inst = ec2::Instance::builder()
            .instance_id("i-0abc")
            .image_id("ami-1")
            .instance_type(ec2::InstanceType::T3Micro)
            .architecture(ec2::ArchitectureValues::X8664)
            .state(
                ec2::InstanceState::builder()
                    .name(ec2::InstanceStateName::ShuttingDown)
                    .build(),
            )
            .launch_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
            .tags(ec2::Tag::builder().key("Name").value("ws").build())
            .tags(ec2::Tag::builder().key("cws:managed").value("true").build())
            .build();
        let i = instance(&inst, "eu-west-1", Architecture::Arm64).expect("mapped");
        assert_eq!(i.id, "i-0abc");
        assert_eq!(i.name, "ws");
        assert_eq!(i.instance_type, "t3.micro");
        assert_eq!(i.architecture, Architecture::X86_64);
        assert_eq!(i.state, InstanceState::ShuttingDown);
        assert_eq!(ec2_time::format(&i.launch_time), "2023-11-14T22:13:20.000Z");
        assert_eq!(i.tags.len(), 2);
        let bare = ec2::Instance::builder().instance_id("i-1").build();
        let i = instance(&bare, "eu-west-1", Architecture::Arm64).expect("mapped");
        assert_eq!(i.architecture, Architecture::Arm64);
        assert_eq!(i.state, InstanceState::Pending);
    }

    fn names_and_values(filters: &[ec2::Filter]) -> Vec<(String, Vec<String>)> {
        filters
            .iter()
            .map(|f| {
                (
                    f.name().unwrap_or_default().to_string(),
                    f.values().to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn image_query_filters() {
        let q = ImageQuery::owned_by(["099720109477"])
            .name("ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-*-server-*")
            .architectures([Architecture::X86_64, Architecture::Arm64])
            .tag("cws:template", "python-ml")
            .product_code("abc");
        let f = names_and_values(&image_filters(&q));
        assert_eq!(
            f,
            vec![
                (
                    "name".to_string(),
                    vec!["ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-*-server-*".to_string()]
                ),
                ("architecture".into(), vec!["x86_64".into(), "arm64".into()]),
                ("state".into(), vec!["available".into()]),
                ("tag:cws:template".into(), vec!["python-ml".into()]),
                ("product-code".into(), vec!["abc".into()]),
            ]
        );
        let q = ImageQuery {
            states: vec![ImageState::Pending, ImageState::Available],
            ..ImageQuery::owned_by(["self"])
        };
        let f = names_and_values(&image_filters(&q));
        assert_eq!(
            f,
            vec![("state".into(), vec!["pending".into(), "available".into()])]
        );
    }

    #[test]
    fn instance_query_filters() {
        let tags = BTreeMap::from([("Name".to_string(), "ws".to_string())]);
        let f = names_and_values(&instance_filters(&["i-1".into()], &tags, false));
        assert_eq!(f[0], ("instance-id".into(), vec!["i-1".into()]));
        assert_eq!(f[1], ("tag:Name".into(), vec!["ws".into()]));
        assert_eq!(f[2].0, "instance-state-name");
        assert!(!f[2].1.contains(&"terminated".to_string()));
        assert!(instance_filters(&[], &BTreeMap::new(), true).is_empty());
    }

    #[test]
    fn launch_permissions_round_trip() {
        for p in [
            LaunchPermission::Account("123456789012".into()),
            LaunchPermission::Organization("arn:aws:organizations::1:organization/o-1".into()),
            LaunchPermission::Public,
        ] {
            assert_eq!(permission(&ec2_permission(&p)), Some(p));
        }
        let ou = ec2::LaunchPermission::builder()
            .organizational_unit_arn("arn:ou")
            .build();
        assert_eq!(permission(&ou), None);
    }

    #[test]
    fn ids_are_checked_locally() {
        assert!(is_resource_id("ami-0123456789abcdef0", "ami"));
        assert!(is_resource_id("i-0abc", "i"));
        assert!(!is_resource_id("not-an-ami", "ami"));
        assert!(!is_resource_id("ami-", "ami"));
        assert!(!is_resource_id("ami-ABC", "ami"));
        assert!(!is_resource_id("i-0abc", "ami"));
        assert!(check_ids(&["ami-1".into(), "ami-2".into()], "ami", "an image").is_ok());
        let e = check_ids(&["ami-1".into(), "x".into()], "ami", "an image").unwrap_err();
        assert_eq!(e.kind(), "invalid_input");
        assert!(e.to_string().contains("`x`"));
    }

    #[test]
    fn regions_are_checked_locally() {
        for ok in [
            "us-east-1",
            "eu-west-2",
            "us-gov-west-1",
            "ap-southeast-7",
            "mx-central-1",
        ] {
            assert!(check_region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "mars-north-1",
            "us-east",
            "useast1",
            "",
            "us-east-1a",
            "US-EAST-1",
        ] {
            let e = check_region(bad).unwrap_err();
            assert_eq!(e.kind(), "invalid_input", "{bad}");
        }
        assert!(
            check_region("us-est-1")
                .unwrap_err()
                .to_string()
                .contains("us-east-1")
        );
    }

    #[test]
    fn console_text_decodes_base64_and_keeps_plain_text() {
        let line = "[ 9.1] cloud-init[811]: CWS-PROVISION-RESULT: ok template=x version=1.0.0\n";
        let encoded = aws_smithy_types::base64::encode(line.as_bytes());
        assert_eq!(super::console_text(&encoded), line);
        // EC2 folds long base64 over lines; bytes that are not UTF-8 are replaced.
        let folded = format!("{}\n{}", &encoded[..20], &encoded[20..]);
        assert_eq!(super::console_text(&folded), line);
        let raw = aws_smithy_types::base64::encode([b'o', b'k', 0xff]);
        assert_eq!(super::console_text(&raw), "ok\u{fffd}");
        assert_eq!(super::console_text("not base64!"), "not base64!");
    }
}

//! Plain data the providers exchange: images, snapshots, instances, queries and requests.
//!
//! These mirror the EC2 shapes closely enough that the AWS provider is a thin mapping, and
//! loosely enough that a simulated or third-party backend can fill them without EC2 baggage.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cws_template::Architecture;
use serde::{Deserialize, Serialize};

/// The lifecycle state of an image, as EC2 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ImageState {
    /// Being created or copied.
    Pending,
    /// Ready to launch.
    Available,
    /// Creation or copy failed.
    Failed,
    /// The image is invalid.
    Invalid,
    /// Deregistered: gone for new launches.
    Deregistered,
    /// Any other state string the backend reports.
    Other,
}

impl ImageState {
    /// The EC2 spelling of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageState::Pending => "pending",
            ImageState::Available => "available",
            ImageState::Failed => "failed",
            ImageState::Invalid => "invalid",
            ImageState::Deregistered => "deregistered",
            ImageState::Other => "other",
        }
    }

    /// Parses the EC2 spelling; anything unknown is [`ImageState::Other`].
    pub fn parse(s: &str) -> ImageState {
        match s {
            "pending" => ImageState::Pending,
            "available" => ImageState::Available,
            "failed" | "error" => ImageState::Failed,
            "invalid" => ImageState::Invalid,
            "deregistered" => ImageState::Deregistered,
            _ => ImageState::Other,
        }
    }
}

impl std::fmt::Display for ImageState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A machine image in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// The image id, e.g. `ami-0c7d3e9a1b2f4a501`.
    pub id: String,
    /// The region the image lives in.
    pub region: String,
    /// The image name.
    pub name: String,
    /// The owning account id (or alias such as `amazon`).
    pub owner_id: String,
    /// CPU architecture.
    pub architecture: Architecture,
    /// Lifecycle state.
    pub state: ImageState,
    /// Creation time (EC2's `CreationDate`).
    #[serde(with = "ec2_time")]
    pub creation_date: DateTime<Utc>,
    /// When the image is (or was) deprecated.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "ec2_time::option"
    )]
    pub deprecation_time: Option<DateTime<Utc>>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags on the image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Marketplace product codes attached to the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_codes: Vec<String>,
    /// Snapshot ids behind the image's block devices (root first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshot_ids: Vec<String>,
    /// Size of the root volume in GiB, when the backend reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume_gb: Option<u32>,
    /// Whether the image is launchable by everyone.
    #[serde(default)]
    pub public: bool,
}

impl Image {
    /// An available, private image with no tags, snapshots or description: the fields every
    /// image has. Set the others on the returned value (`image.tags = ...`).
    pub fn new(
        id: impl Into<String>,
        region: impl Into<String>,
        name: impl Into<String>,
        owner_id: impl Into<String>,
        architecture: Architecture,
        creation_date: DateTime<Utc>,
    ) -> Image {
        Image {
            id: id.into(),
            region: region.into(),
            name: name.into(),
            owner_id: owner_id.into(),
            architecture,
            state: ImageState::Available,
            creation_date,
            deprecation_time: None,
            description: None,
            tags: BTreeMap::new(),
            product_codes: Vec::new(),
            snapshot_ids: Vec::new(),
            root_volume_gb: None,
            public: false,
        }
    }

    /// Whether the image is deprecated at `now`.
    pub fn is_deprecated_at(&self, now: DateTime<Utc>) -> bool {
        self.deprecation_time.is_some_and(|t| t <= now)
    }
}

/// Times as EC2 spells them (`2025-10-02T08:15:00.000Z`, UTC, milliseconds) in JSON; any RFC
/// 3339 time is accepted on input and converted to UTC. Backends parse their own spellings
/// once, at their boundary, into [`DateTime<Utc>`].
pub mod ec2_time {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// The EC2 spelling of a time.
    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Parses an RFC 3339 time (any offset) into UTC.
    pub fn parse(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        DateTime::parse_from_rfc3339(s.trim()).map(|t| t.with_timezone(&Utc))
    }

    /// `#[serde(with = "ec2_time")]` for a `DateTime<Utc>` field.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// See [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(|e| serde::de::Error::custom(format!("time `{text}`: {e}")))
    }

    /// The same for an `Option<DateTime<Utc>>` field.
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes `Some` as [`super::format`], `None` as null.
        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::format(t)),
                None => s.serialize_none(),
            }
        }

        /// See [`serialize`].
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(text) => super::parse(&text)
                    .map(Some)
                    .map_err(|e| serde::de::Error::custom(format!("time `{text}`: {e}"))),
                None => Ok(None),
            }
        }
    }
}

/// How a provider's own waiter ended (see [`CloudProvider::wait_image_available`]).
///
/// [`CloudProvider::wait_image_available`]: crate::provider::CloudProvider::wait_image_available
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WaitOutcome<T> {
    /// The resource reached the state waited for, as last seen.
    Ready(T),
    /// The resource reached a state it will not leave for the one waited for (an image
    /// `failed`; an instance stopping, shutting down or terminated), as last seen.
    Failed(T),
    /// The time limit passed first.
    TimedOut,
}

/// A search for images, the way `DescribeImages` with owners and filters asks for them.
///
/// `owners` must not be empty: cws never searches "any owner", because anyone can publish an
/// image with a convincing name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageQuery {
    /// Trusted owners: account ids, `self`, `amazon` or `aws-marketplace`.
    pub owners: Vec<String>,
    /// EC2 wildcard patterns on the name (`*` any run, `?` one character); an image matches
    /// when any of them does. Empty means any name. (EC2's `name` filter takes a list of
    /// values the same way, which is what lets several searches share one call.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Accepted architectures; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Architecture>,
    /// Tags an image must carry with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Accepted states; empty means `available` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<ImageState>,
    /// Marketplace product codes; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product_codes: Vec<String>,
    /// Whether deprecated images are returned too.
    #[serde(default)]
    pub include_deprecated: bool,
}

impl ImageQuery {
    /// A query for images owned by the given trusted owners.
    pub fn owned_by<I, S>(owners: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ImageQuery {
            owners: owners.into_iter().map(Into::into).collect(),
            ..ImageQuery::default()
        }
    }

    /// Restricts the name to an EC2 wildcard pattern.
    pub fn name(mut self, pattern: impl Into<String>) -> Self {
        self.names.push(pattern.into());
        self
    }

    /// Restricts the architecture.
    pub fn architectures(mut self, archs: impl IntoIterator<Item = Architecture>) -> Self {
        self.architectures = archs.into_iter().collect();
        self
    }

    /// Requires a tag value.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Requires a product code.
    pub fn product_code(mut self, code: impl Into<String>) -> Self {
        self.product_codes.push(code.into());
        self
    }

    /// Includes deprecated images.
    pub fn include_deprecated(mut self, yes: bool) -> Self {
        self.include_deprecated = yes;
        self
    }

    /// The states this query accepts (`available` when none were given).
    pub fn accepted_states(&self) -> Vec<ImageState> {
        if self.states.is_empty() {
            vec![ImageState::Available]
        } else {
            self.states.clone()
        }
    }

    /// Whether an image matches every filter except owner and deprecation (which need the
    /// caller's account id and clock). Shared by in-process backends and tests.
    pub fn matches_filters(&self, image: &Image) -> bool {
        if !self.names.is_empty() && !self.names.iter().any(|p| wildcard_match(p, &image.name)) {
            return false;
        }
        if !self.architectures.is_empty() && !self.architectures.contains(&image.architecture) {
            return false;
        }
        if !self.accepted_states().contains(&image.state) {
            return false;
        }
        if !self.product_codes.is_empty()
            && !self
                .product_codes
                .iter()
                .any(|c| image.product_codes.contains(c))
        {
            return false;
        }
        self.tags
            .iter()
            .all(|(k, v)| image.tags.get(k).is_some_and(|iv| iv == v))
    }
}

/// EC2 wildcard matching: `*` matches any run (including empty), `?` exactly one character.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    // A search checks every candidate's name, so this runs thousands of times per query:
    // match ASCII (every real image name) as bytes, without allocating. `?` is one
    // character, so anything else takes the char path.
    if pattern.is_ascii() && text.is_ascii() {
        return wildcard_units(pattern.as_bytes(), text.as_bytes(), b'*', b'?');
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    wildcard_units(&p, &t, '*', '?')
}

/// The matcher behind [`wildcard_match`], over bytes or chars (greedy with backtracking to
/// the last `*`: linear in practice, never exponential).
fn wildcard_units<T: Copy + PartialEq>(p: &[T], t: &[T], any_run: T, any_one: T) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == any_one || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == any_run {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == any_run {
        pi += 1;
    }
    pi == p.len()
}

/// An EBS snapshot behind an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Snapshot id.
    pub id: String,
    /// Region.
    pub region: String,
    /// Volume size in GiB (what copy cost and time are computed from).
    pub size_gb: u32,
    /// State, e.g. `completed`.
    pub state: String,
}

/// The state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum InstanceState {
    /// Booting.
    Pending,
    /// Up.
    Running,
    /// Stopping.
    Stopping,
    /// Stopped (can be started again).
    Stopped,
    /// Terminating.
    ShuttingDown,
    /// Gone.
    Terminated,
}

impl InstanceState {
    /// The EC2 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }

    /// Parses the EC2 spelling.
    pub fn parse(s: &str) -> Option<InstanceState> {
        Some(match s {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            _ => return None,
        })
    }

    /// Whether the instance still exists for naming purposes (not terminated or terminating).
    pub fn is_live(self) -> bool {
        !matches!(
            self,
            InstanceState::ShuttingDown | InstanceState::Terminated
        )
    }
}

impl std::fmt::Display for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A virtual machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Instance id, e.g. `i-0123456789abcdef0`.
    pub id: String,
    /// The `Name` tag.
    pub name: String,
    /// Region.
    pub region: String,
    /// The image it was launched from.
    pub ami_id: String,
    /// Instance type, e.g. `m6i.xlarge`.
    pub instance_type: String,
    /// CPU architecture.
    pub architecture: Architecture,
    /// State.
    pub state: InstanceState,
    /// Launch time.
    #[serde(with = "ec2_time")]
    pub launch_time: DateTime<Utc>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// What to launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInstanceRequest {
    /// Region.
    pub region: String,
    /// `Name` tag; cws keeps names unique per region among live instances.
    pub name: String,
    /// Image to launch.
    pub ami_id: String,
    /// Instance type.
    pub instance_type: String,
    /// Architecture of the image (checked against the instance type by real EC2).
    pub architecture: Architecture,
    /// User data (the provisioning script for script launches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Root volume size in GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume_gb: Option<u32>,
    /// Extra tags (`Name` is added from `name`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Which instances to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceFilter {
    /// Only these ids (empty: any).
    #[serde(default)]
    pub ids: Vec<String>,
    /// Tags an instance must carry (e.g. `Name`, `cws:managed`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Include terminated instances.
    #[serde(default)]
    pub include_terminated: bool,
}

/// A cross-region image copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyImageRequest {
    /// Region holding the source image.
    pub source_region: String,
    /// The source image id.
    pub source_image_id: String,
    /// Region to copy into (the call is made there, as in EC2).
    pub target_region: String,
    /// Name of the copy.
    pub name: String,
    /// Description of the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags to put on the copy (cws always adds provenance tags).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An image made from an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateImageRequest {
    /// Region of the instance.
    pub region: String,
    /// Instance to image.
    pub instance_id: String,
    /// Image name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Do not reboot the instance before imaging.
    #[serde(default)]
    pub no_reboot: bool,
    /// Tags for the image.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A change to who may launch an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
#[non_exhaustive]
pub enum LaunchPermission {
    /// One AWS account.
    Account(String),
    /// An AWS Organization (ARN).
    Organization(String),
    /// Everyone (`group: all`).
    Public,
}

impl LaunchPermission {
    /// Checks the shape of the grantee: an account id is 12 digits, an organization an
    /// `arn:aws:organizations::` ARN. The error is [`ProviderError::InvalidInput`](crate::ProviderError::InvalidInput).
    pub fn check(&self) -> crate::ProviderResult<()> {
        let problem = match self {
            LaunchPermission::Account(a)
                if !(a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())) =>
            {
                format!("`{a}` is not an AWS account id (12 digits)")
            }
            LaunchPermission::Organization(arn) if !arn.starts_with("arn:aws:organizations::") => {
                format!("`{arn}` is not an AWS Organizations ARN (arn:aws:organizations::...)")
            }
            _ => return Ok(()),
        };
        Err(crate::ProviderError::InvalidInput { message: problem })
    }
}

/// A product in the AWS Marketplace catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketplaceProduct {
    /// Catalogue entity id, e.g. `prod-abc123`.
    pub product_id: String,
    /// The product code images carry.
    pub product_code: String,
    /// Product title.
    pub title: String,
    /// The subscription page for the product.
    pub subscribe_url: String,
}

/// How to find a Marketplace product: any field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MarketplaceQuery {
    /// Product code.
    pub product_code: Option<String>,
    /// Catalogue product id.
    pub product_id: Option<String>,
    /// Title (case-insensitive substring).
    pub title: Option<String>,
}

/// Who the provider is, for every output to name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Short name: `local` or `aws`.
    pub name: String,
    /// Whether this backend is a simulation (never real cloud resources).
    pub simulated: bool,
    /// A human description, e.g. "LocalCloud (simulated EC2, state in ~/.local/share/cws)".
    /// (The account id is not part of it: it takes a call to learn, see
    /// [`ImageCatalog::account_id`](crate::ImageCatalog::account_id).)
    pub description: String,
}

/// EC2's rule for image names: 3 to 128 characters, letters, digits, spaces and `()[]./-'@_`.
/// `Err` says what is accepted.
pub fn check_image_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " ()[]./-'@_".contains(c));
    if (3..=128).contains(&name.len()) && ok_chars {
        Ok(())
    } else {
        // The name as given: whoever shows the message escapes it.
        Err(format!(
            "image name `{name}` is invalid: use 3-128 letters, digits, spaces or ()[]./-'@_"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_semantics() {
        assert!(wildcard_match(
            "cws-python-ml-*",
            "cws-python-ml-1.2.0-x86_64"
        ));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(!wildcard_match("cws-python-ml-*", "cws-python-mlx"));
        assert!(wildcard_match(
            "ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-amd64-server-*",
            "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101"
        ));
        assert!(wildcard_match("*a*b*", "xxaxxbxx"));
        assert!(!wildcard_match("*a*b", "xxaxxbxx"));
        // `?` is one character, not one byte.
        assert!(wildcard_match("caf?", "café"));
        assert!(wildcard_match("c*é", "caféé"));
        assert!(!wildcard_match("caf??", "café"));
    }

    fn t(s: &str) -> DateTime<Utc> {
        ec2_time::parse(s).unwrap()
    }

    #[test]
    fn deprecation_compares_times() {
        let mut img = Image::new(
            "ami-1",
            "us-east-1",
            "n",
            "1",
            Architecture::X86_64,
            t("2025-01-01T00:00:00Z"),
        );
        img.deprecation_time = Some(t("2026-01-01T00:00:00Z"));
        assert!(img.is_deprecated_at(t("2026-01-01T00:00:00.000Z")));
        assert!(!img.is_deprecated_at(t("2025-12-31T23:59:59.999Z")));
        img.deprecation_time = None;
        assert!(!img.is_deprecated_at(t("2030-01-01T00:00:00Z")));
    }

    #[test]
    fn times_keep_the_ec2_spelling_in_json() {
        let mut img = Image::new(
            "ami-1",
            "us-east-1",
            "n",
            "1",
            Architecture::X86_64,
            t("2025-10-02T10:15:00+02:00"),
        );
        img.deprecation_time = Some(t("2026-01-01T00:00:00Z"));
        let json = serde_json::to_value(&img).unwrap();
        assert_eq!(json["creation_date"], "2025-10-02T08:15:00.000Z");
        assert_eq!(json["deprecation_time"], "2026-01-01T00:00:00.000Z");
        let back: Image = serde_json::from_value(json).unwrap();
        assert_eq!(back, img);
    }
}

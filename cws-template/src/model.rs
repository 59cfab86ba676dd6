//! The typed template model: what a template file means once it has been
//! parsed, merged with its parents and validated.
//!
//! These types are the single source of truth for the format: the JSON Schema
//! in `schema/template.schema.json` is generated from them, and the
//! structural checker in [`crate::structure`] walks that same schema, so the
//! editor's view of the format and the loader's can never disagree.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::TemplateError;

/// CPU architecture of a machine image or instance type.
///
/// Serialised with the names EC2 uses in `DescribeImages` (`x86_64`,
/// `arm64`), so values can be compared with provider output directly.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Architecture {
    /// 64-bit x86 (Intel / AMD), EC2's `x86_64`.
    #[serde(rename = "x86_64")]
    X86_64,
    /// 64-bit ARM (AWS Graviton), EC2's `arm64`.
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// Every architecture, in a stable order (x86_64 first).
    pub const ALL: [Architecture; 2] = [Architecture::X86_64, Architecture::Arm64];

    /// The EC2 spelling (`x86_64` / `arm64`).
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Architecture {
    type Err = TemplateError;

    /// Accepts the EC2 names and the common aliases people type
    /// (`amd64`, `aarch64`), case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x86_64" | "amd64" | "x86-64" => Ok(Architecture::X86_64),
            "arm64" | "aarch64" => Ok(Architecture::Arm64),
            _ => Err(TemplateError::unknown_value(
                "architecture",
                s,
                &["x86_64", "arm64"],
            )),
        }
    }
}

/// How hard a template wants a pre-built machine image.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AmiStrategy {
    /// Use an AMI when one can be found; otherwise provision from a base
    /// image with the template's script.
    #[default]
    AmiPreferred,
    /// Only launch from an AMI; fail when none can be found.
    AmiRequired,
    /// Provision with the script first; use an AMI only when no base image
    /// can serve the script.
    AmiFallback,
}

impl AmiStrategy {
    /// Every strategy, in documentation order.
    pub const ALL: [AmiStrategy; 3] = [
        AmiStrategy::AmiPreferred,
        AmiStrategy::AmiRequired,
        AmiStrategy::AmiFallback,
    ];

    /// The spelling used in template files (`ami_preferred`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AmiStrategy::AmiPreferred => "ami_preferred",
            AmiStrategy::AmiRequired => "ami_required",
            AmiStrategy::AmiFallback => "ami_fallback",
        }
    }
}

impl fmt::Display for AmiStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AmiStrategy {
    type Err = TemplateError;

    /// Accepts the template spelling; `-` is accepted for `_` so the same
    /// parser serves command-line flags (`--strategy ami-required`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        AmiStrategy::ALL
            .into_iter()
            .find(|v| v.as_str() == norm)
            .ok_or_else(|| {
                TemplateError::unknown_value(
                    "AMI strategy",
                    s,
                    &AmiStrategy::ALL.map(AmiStrategy::as_str),
                )
            })
    }
}

/// What to do at the end of the AMI tiers when nothing was found.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FallbackStrategy {
    /// Launch a base OS image and run the provisioning script.
    ScriptProvisioning,
    /// Stop after trying to copy an AMI from another region; no script.
    CrossRegion,
    /// Give up with an error.
    Error,
}

impl FallbackStrategy {
    /// Every fallback strategy, in documentation order.
    pub const ALL: [FallbackStrategy; 3] = [
        FallbackStrategy::ScriptProvisioning,
        FallbackStrategy::CrossRegion,
        FallbackStrategy::Error,
    ];

    /// The spelling used in template files (`script_provisioning`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackStrategy::ScriptProvisioning => "script_provisioning",
            FallbackStrategy::CrossRegion => "cross_region",
            FallbackStrategy::Error => "error",
        }
    }
}

impl fmt::Display for FallbackStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FallbackStrategy {
    type Err = TemplateError;

    /// Accepts the template spelling, with `-` allowed for `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        FallbackStrategy::ALL
            .into_iter()
            .find(|v| v.as_str() == norm)
            .ok_or_else(|| {
                TemplateError::unknown_value(
                    "fallback strategy",
                    s,
                    &FallbackStrategy::ALL.map(FallbackStrategy::as_str),
                )
            })
    }
}

/// The package manager a template is organised around (informational: the
/// provisioning script installs every non-empty package list regardless).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PackageManager {
    /// The OS package manager (apt on Ubuntu/Debian, dnf on Amazon Linux).
    Apt,
    /// conda (installed as miniforge, conda-forge channel).
    Conda,
    /// pip (into conda's Python when conda is used, else a venv).
    Pip,
    /// Spack, for HPC software stacks.
    Spack,
    /// Nothing is installed at boot: the software ships in the AMI.
    Ami,
}

impl PackageManager {
    /// Every package manager, in documentation order.
    pub const ALL: [PackageManager; 5] = [
        PackageManager::Apt,
        PackageManager::Conda,
        PackageManager::Pip,
        PackageManager::Spack,
        PackageManager::Ami,
    ];

    /// The spelling used in template files.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Apt => "apt",
            PackageManager::Conda => "conda",
            PackageManager::Pip => "pip",
            PackageManager::Spack => "spack",
            PackageManager::Ami => "ami",
        }
    }
}

impl fmt::Display for PackageManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A research workstation template.
///
/// A template with `ami_config` can launch from a pre-built machine image;
/// one without is a script template, provisioned at boot by the script
/// `Template::provisioning_script` generates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "cws template",
    transform = crate::schema::template_requirements
)]
pub struct Template {
    /// Display name shown in listings, e.g. `Python Machine Learning`.
    pub name: String,
    /// The defaults filled in where the file left a field out (`slug` from the file name,
    /// `version`, `base`), as sentences for `templates validate` to show. Not part of the
    /// format.
    #[serde(skip)]
    #[schemars(skip)]
    pub notes: Vec<String>,
    /// Stable identifier used on the command line and in `inherits`:
    /// lowercase letters, digits and `-`, starting with a letter or digit.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*$"), length(max = 64))]
    pub slug: String,
    /// One or two sentences on what the workstation is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form grouping for listings, e.g. `Machine Learning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Template version, semantic versioning (`MAJOR.MINOR.PATCH`). Quote it
    /// if YAML would read it as a number.
    #[schemars(schema_with = "crate::schema::semver_schema")]
    pub version: semver::Version,
    /// Operating-system image family the template builds on.
    #[schemars(schema_with = "crate::schema::base_schema")]
    pub base: String,
    /// The package manager the template is organised around.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_manager: Option<PackageManager>,
    /// Packages installed by the provisioning script.
    #[serde(default, skip_serializing_if = "Packages::is_empty")]
    pub packages: Packages,
    /// Shell script appended verbatim to the provisioning script, last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Shell script run after the packages are installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_install: Option<String>,
    /// Default instance shape for launches.
    #[serde(default, skip_serializing_if = "InstanceDefaults::is_empty")]
    pub instance_defaults: InstanceDefaults,
    /// Tags applied to launched instances (AWS tag rules: keys up to 128
    /// characters, values up to 256, no `aws:` prefix).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Slug of a parent template to start from. The child's mappings merge
    /// into the parent's key by key; its scalars and lists replace the
    /// parent's; `key: null` removes an inherited value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))]
    pub inherits: Option<String>,
    /// Where pre-built machine images for this template come from. Absent
    /// for script templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami_config: Option<AmiConfig>,
}

/// Package lists, one per package manager.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    /// OS packages (apt on Ubuntu/Debian, dnf on Amazon Linux).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<String>,
    /// conda packages (conda-forge; use `channel::name` for other channels,
    /// e.g. `bioconda::samtools`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conda: Vec<String>,
    /// pip requirement specifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pip: Vec<String>,
    /// Spack specs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spack: Vec<String>,
}

impl Packages {
    /// True when no list has any package (used to omit the section when
    /// serialising).
    pub fn is_empty(&self) -> bool {
        self.system.is_empty()
            && self.conda.is_empty()
            && self.pip.is_empty()
            && self.spack.is_empty()
    }
}

/// Default instance shape for launches of a template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceDefaults {
    /// x86_64 instance type, e.g. `m6i.xlarge`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$"))]
    pub instance_type: Option<String>,
    /// arm64 (Graviton) instance type, e.g. `m7g.xlarge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$"))]
    pub arm64_type: Option<String>,
    /// Root EBS volume size in GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 8, max = 16384))]
    pub root_volume_gb: Option<u32>,
    /// TCP ports to open (22 for SSH, 8888 for Jupyter, 8787 for RStudio...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(range(min = 1)))]
    pub ports: Vec<u16>,
}

impl InstanceDefaults {
    /// True when nothing is set (used to omit the section when serialising).
    pub fn is_empty(&self) -> bool {
        self.instance_type.is_none()
            && self.arm64_type.is_none()
            && self.root_volume_gb.is_none()
            && self.ports.is_empty()
    }
}

/// Where a template's pre-built machine images come from, and what to do
/// when none is found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmiConfig {
    /// How hard the template wants an AMI (default `ami_preferred`).
    #[serde(default)]
    pub strategy: AmiStrategy,
    /// Region code to AMI id: the direct-mapping tier.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema::ami_mappings_schema")]
    pub ami_mappings: BTreeMap<String, String>,
    /// Image search by trusted owner and name: the dynamic-search tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ami_search: Option<AmiSearch>,
    /// AWS Marketplace product: the marketplace tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketplace: Option<MarketplaceRef>,
    /// What to do when no AMI is found (default depends on `strategy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_strategy: Option<FallbackStrategy>,
    /// Architecture to prefer when images exist for several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_architecture: Option<Architecture>,
    /// A community registry listing to launch from: the community tier, after dynamic search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<CommunityRef>,
}

/// A registry listing the `community` tier may launch from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommunityRef {
    /// The listing, `publisher/slug`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,63}/[a-z0-9][a-z0-9-]{0,63}$"))]
    pub listing: String,
    /// The channel to follow (default `latest`); ignored when `version` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// A pinned version (semver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub version: Option<semver::Version>,
    /// Refuse the listing when its average rating is below this (1 to 5) or it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rating: Option<MinRating>,
    /// Launch only versions with a verified signature (default true).
    #[serde(default = "default_true")]
    pub require_signature: bool,
}

fn default_true() -> bool {
    true
}

/// A minimum average rating, 1.0 to 5.0 (checked when the template is validated).
#[derive(Debug, Clone, Copy, PartialOrd, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct MinRating(#[schemars(range(min = 1.0, max = 5.0))] pub f64);

impl PartialEq for MinRating {
    fn eq(&self, other: &MinRating) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for MinRating {}

impl AmiConfig {
    /// The fallback in force: the explicit `fallback_strategy`, else the
    /// strategy's default (`ami_preferred` and `ami_fallback` fall back to
    /// the script; `ami_required` to `cross_region`: a copy from another
    /// region, with consent, is still an image, so "no image" means none
    /// reachable anywhere).
    pub fn effective_fallback(&self) -> FallbackStrategy {
        self.fallback_strategy.unwrap_or(match self.strategy {
            AmiStrategy::AmiPreferred | AmiStrategy::AmiFallback => {
                FallbackStrategy::ScriptProvisioning
            }
            AmiStrategy::AmiRequired => FallbackStrategy::CrossRegion,
        })
    }

    /// True when at least one AMI tier has something to work with
    /// (mappings, a search, or a marketplace product).
    pub fn has_ami_source(&self) -> bool {
        !self.ami_mappings.is_empty()
            || self.ami_search.is_some()
            || self.marketplace.is_some()
            || self.community.is_some()
    }

    /// The mapped AMI id for `region`, if any.
    pub fn mapped_ami(&self, region: &str) -> Option<&str> {
        self.ami_mappings.get(region).map(String::as_str)
    }
}

/// An image search restricted to trusted owners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmiSearch {
    /// Trusted image owners: `self`, `amazon`, `aws-marketplace` or 12-digit
    /// account ids. Required: searching "any owner" invites look-alike
    /// images.
    #[schemars(
        length(min = 1),
        inner(regex(pattern = r"^(self|amazon|aws-marketplace|[0-9]{12})$"))
    )]
    pub owners: Vec<String>,
    /// Image name filter in EC2 wildcard syntax (`*` and `?`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_pattern: Option<String>,
    /// Acceptable architectures (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Architecture>,
    /// Tags an image must carry, with these exact values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub required_tags: BTreeMap<String, String>,
    /// Also consider deprecated images (they still rank last).
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_deprecated: bool,
}

/// An AWS Marketplace product reference; at least one field must be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarketplaceRef {
    /// The product code carried by the product's AMIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    /// The Marketplace catalog product id (`prod-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// A product title to search for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Template {
    /// The AMI strategy in force. Templates without `ami_config` report
    /// [`AmiStrategy::AmiFallback`]: they provision with the script first.
    pub fn strategy(&self) -> AmiStrategy {
        self.ami_config
            .as_ref()
            .map_or(AmiStrategy::AmiFallback, |c| c.strategy)
    }

    /// The default instance type for `arch`: `instance_defaults.type` for
    /// x86_64, `instance_defaults.arm64_type` for arm64.
    pub fn instance_type_for(&self, arch: Architecture) -> Option<&str> {
        match arch {
            Architecture::X86_64 => self.instance_defaults.instance_type.as_deref(),
            Architecture::Arm64 => self.instance_defaults.arm64_type.as_deref(),
        }
    }

    /// Number of packages per manager: (system, conda, pip, spack).
    pub fn package_counts(&self) -> (usize, usize, usize, usize) {
        let p = &self.packages;
        (p.system.len(), p.conda.len(), p.pip.len(), p.spack.len())
    }

    /// True for script templates (no `ami_config`).
    pub fn is_script_only(&self) -> bool {
        self.ami_config.is_none()
    }

    /// Renders the bash user-data script that provisions this template on a
    /// base image. See [`crate::script`] for what it contains.
    pub fn provisioning_script(&self) -> String {
        crate::script::render(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_parses_aliases() {
        for (s, a) in [
            ("x86_64", Architecture::X86_64),
            ("amd64", Architecture::X86_64),
            ("AMD64", Architecture::X86_64),
            ("arm64", Architecture::Arm64),
            ("aarch64", Architecture::Arm64),
        ] {
            assert_eq!(s.parse::<Architecture>().ok(), Some(a), "{s}");
        }
        let err = "sparc".parse::<Architecture>().unwrap_err().to_string();
        assert!(err.contains("x86_64") && err.contains("arm64"), "{err}");
    }

    #[test]
    fn enums_round_trip_through_as_str() {
        for a in Architecture::ALL {
            assert_eq!(a.to_string().parse::<Architecture>().ok(), Some(a));
        }
        for s in AmiStrategy::ALL {
            assert_eq!(s.to_string().parse::<AmiStrategy>().ok(), Some(s));
        }
        for s in FallbackStrategy::ALL {
            assert_eq!(s.to_string().parse::<FallbackStrategy>().ok(), Some(s));
        }
        assert_eq!(
            "ami-required".parse::<AmiStrategy>().ok(),
            Some(AmiStrategy::AmiRequired)
        );
        let err = "ami_prefered"
            .parse::<AmiStrategy>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `ami_preferred`"), "{err}");
    }

    #[test]
    fn effective_fallback_defaults_follow_strategy() {
        let mut c = AmiConfig::default();
        assert_eq!(c.effective_fallback(), FallbackStrategy::ScriptProvisioning);
        c.strategy = AmiStrategy::AmiRequired;
        assert_eq!(c.effective_fallback(), FallbackStrategy::CrossRegion);
        c.strategy = AmiStrategy::AmiFallback;
        assert_eq!(c.effective_fallback(), FallbackStrategy::ScriptProvisioning);
        c.fallback_strategy = Some(FallbackStrategy::CrossRegion);
        assert_eq!(c.effective_fallback(), FallbackStrategy::CrossRegion);
    }

    #[test]
    fn has_ami_source_sees_each_tier() {
        let mut c = AmiConfig::default();
        assert!(!c.has_ami_source());
        c.ami_mappings
            .insert("us-east-1".into(), "ami-12345678".into());
        assert!(c.has_ami_source());
        assert_eq!(c.mapped_ami("us-east-1"), Some("ami-12345678"));
        let c = AmiConfig {
            marketplace: Some(MarketplaceRef {
                product_id: Some("prod-x".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(c.has_ami_source());
    }
}

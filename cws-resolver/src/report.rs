//! What a resolution reports: the method chosen, the image, a copy to make first, and one
//! attempt per tier. This is the JSON contract of `ami resolve` and the REST resolve route.

use cws_cost::Money;
use cws_provider::ProviderInfo;
use cws_template::{AmiStrategy, Architecture};
use serde::{Serialize, Serializer};

use crate::TierId;

/// How an image was (or was not) obtained.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// The template's mapped id for the region.
    DirectMapping,
    /// A search by trusted owner, name pattern, architecture and tags.
    DynamicSearch,
    /// An AWS Marketplace product.
    Marketplace,
    /// A copy from a fallback region.
    CrossRegion,
    /// A base OS image plus the provisioning script.
    ScriptFallback,
    /// No tier could serve the launch.
    Failed,
    /// A tier supplied by an embedding tool.
    Custom(TierId),
}

impl Method {
    /// The report name, e.g. `direct_mapping`.
    pub fn as_str(&self) -> &str {
        match self {
            Method::DirectMapping => "direct_mapping",
            Method::DynamicSearch => "dynamic_search",
            Method::Marketplace => "marketplace",
            Method::CrossRegion => "cross_region",
            Method::ScriptFallback => "script_fallback",
            Method::Failed => "failed",
            Method::Custom(s) => s.as_str(),
        }
    }

    /// The method a success of this tier is reported as (built-in tiers map to their
    /// variant, any other tier to [`Method::Custom`]).
    pub fn from_tier(id: &TierId) -> Method {
        match id {
            id if *id == TierId::DIRECT_MAPPING => Method::DirectMapping,
            id if *id == TierId::DYNAMIC_SEARCH => Method::DynamicSearch,
            id if *id == TierId::MARKETPLACE => Method::Marketplace,
            id if *id == TierId::CROSS_REGION => Method::CrossRegion,
            id if *id == TierId::SCRIPT_FALLBACK => Method::ScriptFallback,
            other => Method::Custom(other.clone()),
        }
    }

    /// Whether the launch uses a prepared image (not script provisioning, not failure).
    pub fn is_ami(&self) -> bool {
        !matches!(self, Method::ScriptFallback | Method::Failed)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What one tier concluded, as reported.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The tier found a usable image.
    Found,
    /// The tier looked and found nothing.
    NotFound,
    /// The tier did not apply, or was not needed because a higher tier won first.
    Skipped,
    /// The tier's image needs a step the user declined (a cross-region copy).
    Declined,
    /// The provider failed while this tier probed.
    Failed,
}

impl std::fmt::Display for Outcome {
    /// In words: `found`, `not found`, `skipped`, `declined`, `failed`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Outcome::Found => "found",
            Outcome::NotFound => "not found",
            Outcome::Skipped => "skipped",
            Outcome::Declined => "declined",
            Outcome::Failed => "failed",
        })
    }
}

/// One tier's line in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// The tier.
    pub tier: TierId,
    /// What it concluded.
    pub outcome: Outcome,
    /// Why, in one line.
    pub detail: String,
    /// Wall time of the probe in milliseconds (0 when not run).
    pub duration_ms: u64,
    /// The image it found, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ami_id: Option<String>,
    /// The provider error kind, for `failed` attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
}

/// A cross-region copy the launch needs first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyPlan {
    /// The image to copy.
    pub source_ami_id: String,
    /// Where it is.
    pub source_region: String,
    /// Its name (the copy keeps it).
    pub source_name: String,
    /// Snapshot size the estimate is based on.
    pub snapshot_gb: u32,
    /// Estimated copy time.
    pub estimated_seconds: u64,
    /// Estimated cost: transfer plus the first month of storage in the target region.
    pub estimated_cost_usd: Money,
    /// The registry listing the source image is published under, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<ListedSource>,
    /// The other regions that hold the image and could be copied from instead, in fallback
    /// order (see [`choose_copy_source`](crate::tier::choose_copy_source) for the rule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<CopyAlternative>,
}

/// Another region a copy could come from, with its estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyAlternative {
    /// The image there.
    pub source_ami_id: String,
    /// The region.
    pub source_region: String,
    /// Estimated copy time.
    pub estimated_seconds: u64,
    /// Estimated cost.
    pub estimated_cost_usd: Money,
}

/// A registry listing version an image is published under (the `community` tier's answers,
/// and copies made from them). Copies and instances made from it carry it as the provenance
/// tags `cws:listing` and `cws:listing-version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedSource {
    /// `publisher/slug`.
    pub listing: String,
    /// The version.
    pub version: String,
}

/// Who resolved: the provider, named in every report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderLabel {
    /// `local` or `aws`.
    pub name: String,
    /// Whether the provider is a simulation.
    pub simulated: bool,
    /// Human description.
    pub description: String,
}

impl From<&ProviderInfo> for ProviderLabel {
    fn from(i: &ProviderInfo) -> Self {
        ProviderLabel {
            name: i.name.clone(),
            simulated: i.simulated,
            description: i.description.clone(),
        }
    }
}

/// The answer: which image, how, at what cost, and what every tier said. This is the JSON
/// contract of `cws ami resolve` and `GET /api/v1/ami/resolve/{template}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolution {
    /// The provider that answered.
    pub provider: ProviderLabel,
    /// Template slug.
    pub template: String,
    /// Region asked for.
    pub region: String,
    /// The template's strategy.
    pub strategy: AmiStrategy,
    /// The tier forced with `--ami-strategy`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced_tier: Option<TierId>,
    /// How the image was obtained.
    pub method: Method,
    /// The image to launch (the base image for script fallback).
    pub ami_id: Option<String>,
    /// Its name.
    pub ami_name: Option<String>,
    /// The account that owns the image (who pays its storage).
    pub ami_owner: Option<String>,
    /// Where the image is now.
    pub source_region: Option<String>,
    /// Where the workstation will run.
    pub target_region: String,
    /// Architecture of the image.
    pub architecture: Option<Architecture>,
    /// Whether a cross-region copy must happen first.
    pub requires_copy: bool,
    /// The copy, if any.
    pub copy: Option<CopyPlan>,
    /// Seconds from launch to a usable workstation.
    pub estimated_launch_seconds: Option<u64>,
    /// Things the user should know.
    pub warnings: Vec<String>,
    /// One entry per tier consulted, in priority order.
    pub attempts: Vec<Attempt>,
    /// The registry listing the image is published under, when a listing served it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listing: Option<String>,
    /// That listing's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listing_version: Option<String>,
}

/// A plain-text summary for embedders and logs: the answer on the first line, then the copy
/// it needs, one line per tier, and the warnings. (The `cws` CLI prints its own layout.)
impl std::fmt::Display for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {}: {}",
            self.template, self.target_region, self.method
        )?;
        if let Some(id) = &self.ami_id {
            write!(f, " -> {id}")?;
            if let Some(name) = &self.ami_name {
                write!(f, " ({name})")?;
            }
        }
        if self.provider.simulated {
            write!(f, " [simulated: {}]", self.provider.name)?;
        }
        if let Some(copy) = &self.copy {
            write!(
                f,
                "\n  needs a copy from {} first: {} GiB, ~{}, {}",
                copy.source_region,
                copy.snapshot_gb,
                cws_util::duration::format_seconds(copy.estimated_seconds),
                copy.estimated_cost_usd
            )?;
        }
        for a in &self.attempts {
            write!(f, "\n  {:<16} {:<10} {}", a.tier, a.outcome, a.detail)?;
        }
        for w in &self.warnings {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

impl Resolution {
    /// Whether nothing could serve the launch.
    pub fn is_failed(&self) -> bool {
        self.method == Method::Failed
    }

    /// Whether the failure is due to the provider (every tier that ran failed with a provider
    /// error) rather than a real "nothing found". Callers exit 1 for the former, 3 for the latter.
    pub fn failed_because_provider(&self) -> bool {
        self.is_failed() && self.attempts.iter().any(|a| a.outcome == Outcome::Failed)
    }

    /// The winning attempt's detail.
    pub fn decision_detail(&self) -> Option<&str> {
        self.attempts
            .iter()
            .find(|a| a.tier == self.method.as_str() && a.outcome == Outcome::Found)
            .map(|a| a.detail.as_str())
    }
}

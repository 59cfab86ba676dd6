//! Institutional policy: `$CWS_HOME/policy.toml` (or the policy an institution's server
//! publishes), enforced at resolve and launch time. Every refusal names its rule.
//!
//! ```toml
//! allowed_regions = ["us-east-1", "us-west-2"]   # absent: all
//! allowed_publishers = ["alice", "uni-hpc"]       # community listings
//! allowed_owners = ["self", "099720109477"]       # image owners any tier may return
//! require_signature = true
//! min_rating = 4.0
//! max_copy_cost_usd = 10.0   # above it even --yes is not enough without --allow-cost
//! ```
//!
//! A local policy file guards against mistakes, not against the machine's own user: whoever
//! can run `cws` can edit or delete it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{RegistryError, RegistryResult};

/// The largest policy file read: 64 KiB.
pub const MAX_POLICY_BYTES: u64 = 64 * 1024;

/// The policy's rules; an absent rule allows everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Regions workstations may run in and images may be copied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_regions: Option<Vec<String>>,
    /// Publishers whose community listings may be launched: handles (`alice`), or emails
    /// (`alice@uni.edu`), matched against the verified signer — a handle is only a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_publishers: Option<Vec<String>>,
    /// Image owners any tier may return (`self` is the caller's account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_owners: Option<Vec<String>>,
    /// Community listings must carry a verified signature, whatever a template says.
    #[serde(default)]
    pub require_signature: bool,
    /// The lowest average rating a community listing may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rating: Option<f64>,
    /// The most a cross-region copy may cost before it needs `--allow-cost` on top of consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_copy_cost_usd: Option<f64>,
}

/// A policy and where it came from (named in every refusal).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedPolicy {
    /// The rules.
    pub policy: Policy,
    /// The file (or server) it came from; `None` when there is no policy.
    pub origin: Option<String>,
}

impl LoadedPolicy {
    /// Reads `path` if it exists (bounded); a missing file is no policy.
    pub fn load(path: &Path) -> RegistryResult<LoadedPolicy> {
        let origin = path.display().to_string();
        let text = match cws_util::fs::read_text_bounded(path, MAX_POLICY_BYTES) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(LoadedPolicy::default()),
            Err(e) => {
                return Err(RegistryError::invalid(
                    "policy file",
                    &origin,
                    &e.to_string(),
                ));
            }
        };
        let policy: Policy = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(":{line}")
                })
                .unwrap_or_default();
            RegistryError::invalid(
                &format!("{origin}{at}"),
                e.message().trim(),
                "allowed_regions, allowed_publishers, allowed_owners (lists of strings), \
                 require_signature (true/false), min_rating, max_copy_cost_usd (numbers)",
            )
        })?;
        if let Some(r) = policy.min_rating
            && !(1.0..=5.0).contains(&r)
        {
            return Err(RegistryError::invalid(
                &format!("{origin}: min_rating"),
                &r.to_string(),
                "a rating from 1 to 5",
            ));
        }
        if let Some(c) = policy.max_copy_cost_usd
            && !(c.is_finite() && c >= 0.0)
        {
            return Err(RegistryError::invalid(
                &format!("{origin}: max_copy_cost_usd"),
                &c.to_string(),
                "a cost in USD of 0 or more",
            ));
        }
        Ok(LoadedPolicy {
            policy,
            origin: Some(origin),
        })
    }

    /// `policy rule NAME (in ORIGIN)`, for refusals.
    pub fn rule(&self, name: &str) -> String {
        format!(
            "policy rule `{name}` (in {})",
            self.origin.as_deref().unwrap_or("the policy")
        )
    }

    /// Why `region` may not be used, if it may not.
    pub fn check_region(&self, region: &str) -> Option<String> {
        let allowed = self.policy.allowed_regions.as_ref()?;
        (!allowed.iter().any(|r| r == region)).then(|| {
            format!(
                "{} does not allow {region} (allowed: {})",
                self.rule("allowed_regions"),
                allowed.join(", ")
            )
        })
    }

    /// Why listings by `publisher` (a handle) may not be launched, if they may not. Entries
    /// with an `@` are emails, matched against a version's verified signer instead (by the
    /// caller, once the signature is checked), so they pass here.
    pub fn check_publisher(&self, publisher: &str) -> Option<String> {
        let allowed = self.policy.allowed_publishers.as_ref()?;
        if allowed.iter().any(|p| p.contains('@')) {
            return None;
        }
        (!allowed.iter().any(|p| p == publisher)).then(|| {
            format!(
                "{} does not allow listings by {publisher} (allowed: {})",
                self.rule("allowed_publishers"),
                allowed.join(", ")
            )
        })
    }

    /// Why a copy costing `usd` needs `--allow-cost`, if it does.
    pub fn check_copy_cost(&self, usd: f64) -> Option<String> {
        let max = self.policy.max_copy_cost_usd?;
        (usd > max).then(|| {
            format!(
                "{} caps copies at ${max:.2} without --allow-cost; this one is ${usd:.2}",
                self.rule("max_copy_cost_usd")
            )
        })
    }
}

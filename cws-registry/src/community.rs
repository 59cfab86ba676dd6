//! The `community` resolution tier: a registry listing's image in the launch region.
//!
//! A template opts in with `ami_config.community` (`cws launch --listing` pins one). What the
//! tier may offer is decided from the registry before resolution ([`CommunityPlan::prepare`]):
//! the listing's version on the chosen channel (or the pinned version), refused when it is
//! revoked, quarantined, rated below `min_rating`, or unsigned while signatures are required.
//! The probe itself only checks the launch region's image with the provider (one lookup by id,
//! batched with the other in-region tiers). A listing with no image in the launch region hands
//! its regions to cross_region ([`KnownImage`]s on the request).
//!
//! The resolver does not depend on the registry: this is an ordinary [`Tier`], placed after
//! dynamic_search with [`Resolver::insert_after`].

use std::sync::Arc;

use async_trait::async_trait;
use cws_provider::{ImageState, ProviderResult};
use cws_resolver::{
    Candidate, KnownImage, ListedSource, Probe, ResolveContext, ResolveRequest, Resolver, Tier,
    TierId,
};
use cws_template::CommunityRef;

use crate::model::{Actor, ListingDetail, ListingId, VersionInfo};
use crate::{Registry, RegistryError, RegistryResult};

/// The community tier's id.
pub const TIER_ID: TierId = TierId::from_static("community");

/// What the tier may offer.
#[derive(Debug, Clone, PartialEq)]
enum Offer {
    /// This version may be launched.
    Usable {
        listing: ListingId,
        name: String,
        version: Box<VersionInfo>,
        rating: String,
    },
    /// Nothing may be launched from the listing, and why.
    Refused(String),
}

/// The `community` tier for one listing selection (see the module docs).
#[derive(Debug, Clone)]
pub struct CommunityTier {
    offer: Offer,
}

/// What [`CommunityPlan::prepare`] decided: the tier, the listing's other regions for
/// cross_region, and what the caller may want to tell the user.
#[derive(Debug, Clone)]
pub struct CommunityPlan {
    /// The tier to insert after dynamic_search.
    pub tier: Arc<CommunityTier>,
    /// The chosen version's images, for cross_region (empty when refused).
    pub known_images: Vec<KnownImage>,
    /// The listing, when the registry has it (and the viewer may see it).
    pub listing: Option<ListingDetail>,
    /// The version the tier offers.
    pub version: Option<String>,
    /// Why nothing is offered, when nothing is.
    pub refusal: Option<String>,
    /// A newer launchable version than the one offered (a pinned version or a channel
    /// behind `latest`).
    pub newer: Option<String>,
    /// The chosen version's signature does not hold (`invalid`): evidence of tampering.
    pub invalid_signature: bool,
}

impl CommunityPlan {
    /// A plan that offers nothing, for `why` (a policy rule, say).
    pub fn refused(why: String) -> CommunityPlan {
        CommunityPlan {
            tier: Arc::new(CommunityTier {
                offer: Offer::Refused(why.clone()),
            }),
            known_images: Vec::new(),
            listing: None,
            version: None,
            refusal: Some(why),
            newer: None,
            invalid_signature: false,
        }
    }

    /// Decides what the tier may offer for `selection` (a template's `ami_config.community`).
    /// Only a store failure is an error; an unknown listing, a revoked version, a low rating
    /// or a missing signature make a plan whose tier reports `not_found` with the reason.
    pub async fn prepare(
        registry: &dyn Registry,
        viewer: Option<&Actor>,
        selection: &CommunityRef,
        allowed: &crate::trust::AllowedSigners,
    ) -> RegistryResult<CommunityPlan> {
        let refused = |why: String, listing: Option<ListingDetail>| CommunityPlan {
            tier: Arc::new(CommunityTier {
                offer: Offer::Refused(why.clone()),
            }),
            known_images: Vec::new(),
            listing,
            version: None,
            refusal: Some(why),
            newer: None,
            invalid_signature: false,
        };
        let id: ListingId = match selection.listing.parse() {
            Ok(id) => id,
            Err(e) => return Ok(refused(e.to_string(), None)),
        };
        let detail = match registry.listing(viewer, &id).await {
            Ok(mut d) => {
                crate::trust::annotate(&mut d, allowed);
                d
            }
            Err(RegistryError::UnknownListing { .. }) => {
                return Ok(refused(
                    format!("no listing {id} in the registry {}", registry.location()),
                    None,
                ));
            }
            Err(e) => return Err(e),
        };
        let channel = selection.channel.as_deref().unwrap_or("latest");
        let chosen = match &selection.version {
            Some(v) => match detail.version(v) {
                Some(found) => found.clone(),
                None => {
                    return Ok(refused(
                        format!("{id} has no version {v}"),
                        Some(detail.clone()),
                    ));
                }
            },
            None => match detail.channel(channel) {
                Some(found) => found.clone(),
                // `latest` is missing only when no version may be launched: say why the
                // newest may not.
                None => {
                    let why = match detail.versions.first() {
                        Some(newest) if channel == "latest" => format!(
                            "{id}@{} is {}",
                            newest.version,
                            newest.refusal().unwrap_or_else(|| "not launchable".into())
                        ),
                        _ => format!("{id} has no channel `{channel}`"),
                    };
                    return Ok(refused(why, Some(detail.clone())));
                }
            },
        };
        let label = format!("{id}@{}", chosen.version);
        if let Some(why) = chosen.refusal() {
            return Ok(refused(format!("{label} is {why}"), Some(detail.clone())));
        }
        let rating = detail.summary.rating;
        if let Some(min) = selection.min_rating {
            if rating.count == 0 {
                return Ok(refused(
                    format!("{id} has no ratings yet; min_rating is {:.1}", min.0),
                    Some(detail.clone()),
                ));
            }
            // The exact average (the shown one is rounded to a tenth: 3.95 shows as 4.0).
            let exact = if detail.reviews.is_empty() {
                rating.average
            } else {
                detail
                    .reviews
                    .iter()
                    .map(|r| f64::from(r.stars))
                    .sum::<f64>()
                    / detail.reviews.len() as f64
            };
            if exact < min.0 {
                return Ok(refused(
                    format!(
                        "{id} is rated {exact:.2}/5 ({} ratings), below min_rating {:.1}",
                        rating.count, min.0
                    ),
                    Some(detail.clone()),
                ));
            }
        }
        // An invalid signature is refused whatever the template says: the registry serves
        // something other than what was signed.
        if chosen.signature.status == "invalid"
            || (selection.require_signature && chosen.signature.status != "verified")
        {
            let invalid = chosen.signature.status == "invalid";
            let mut plan = refused(
                format!(
                    "{label} is {}{}{}",
                    chosen.signature.status,
                    chosen
                        .signature
                        .detail
                        .as_ref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default(),
                    if chosen.signature.status == "invalid" {
                        ""
                    } else {
                        " and require_signature is on"
                    }
                ),
                Some(detail.clone()),
            );
            plan.invalid_signature = invalid;
            return Ok(plan);
        }
        let newer = detail
            .summary
            .latest_version
            .as_ref()
            .filter(|l| semver::Version::parse(l).is_ok_and(|latest| latest > chosen.semver()))
            .cloned();
        let source = ListedSource {
            listing: id.to_string(),
            version: chosen.version.clone(),
        };
        let known_images = chosen
            .regions
            .iter()
            .map(|(region, image)| KnownImage {
                region: region.clone(),
                ami_id: image.ami_id.clone(),
                listing: Some(source.clone()),
            })
            .collect();
        let mut rating = if rating.count == 0 {
            "no ratings yet".to_string()
        } else {
            format!("rated {:.1}/5 ({})", rating.average, rating.count)
        };
        rating.push_str(
            &match (&chosen.signature.status[..], &chosen.signature.signer) {
                ("verified", Some(by)) => format!(", signature verified ({by})"),
                (other, _) => format!(", {other}"),
            },
        );
        Ok(CommunityPlan {
            tier: Arc::new(CommunityTier {
                offer: Offer::Usable {
                    listing: id,
                    name: detail.summary.name.clone(),
                    version: Box::new(chosen.clone()),
                    rating,
                },
            }),
            known_images,
            version: Some(chosen.version.clone()),
            listing: Some(detail),
            refusal: None,
            newer,
            invalid_signature: false,
        })
    }

    /// The resolver with the tier after dynamic_search, and the request with the listing's
    /// regions for cross_region.
    pub fn apply(&self, resolver: Resolver, request: &mut ResolveRequest) -> Resolver {
        request
            .known_images
            .extend(self.known_images.iter().cloned());
        resolver.insert_after(&TierId::DYNAMIC_SEARCH, self.tier.clone())
    }

    /// The tier with where it goes (after dynamic_search), for `LaunchRequest::added_tiers`.
    pub fn added_tier(&self) -> (Option<TierId>, Arc<dyn Tier>) {
        (Some(TierId::DYNAMIC_SEARCH), self.tier.clone())
    }

    /// The tier first in the chain, for a launch that names the listing: the listing decides
    /// before the template's own sources.
    pub fn pinned_tier(&self) -> (Option<TierId>, Arc<dyn Tier>) {
        (None, self.tier.clone())
    }
}

#[async_trait]
impl Tier for CommunityTier {
    fn id(&self) -> TierId {
        TIER_ID
    }

    async fn probe(&self, ctx: &ResolveContext<'_>) -> ProviderResult<Probe> {
        let (listing, name, version, rating) = match &self.offer {
            Offer::Refused(why) => return Ok(Probe::NotFound(why.clone())),
            Offer::Usable {
                listing,
                name,
                version,
                rating,
            } => (listing, name, version, rating),
        };
        let label = format!("{listing}@{}", version.version);
        let Some(entry) = version.regions.get(ctx.region) else {
            let elsewhere: Vec<&str> = version.regions.keys().map(String::as_str).collect();
            return Ok(Probe::NotFound(if elsewhere.is_empty() {
                format!("{label} has no image in any region")
            } else {
                format!(
                    "{label} has no image in {}; its images in {} are offered to cross_region",
                    ctx.region,
                    elsewhere.join(", ")
                )
            }));
        };
        let images = ctx
            .provider
            .describe_images_by_id(ctx.region, std::slice::from_ref(&entry.ami_id))
            .await?;
        let Some(image) = images.into_iter().find(|i| i.id == entry.ami_id) else {
            return Ok(Probe::NotFound(format!(
                "{label}'s image {} no longer exists in {} (or is not shared with you)",
                entry.ami_id, ctx.region
            )));
        };
        if image.state != ImageState::Available {
            return Ok(Probe::NotFound(format!(
                "{label}'s image {} in {} is {}",
                image.id, ctx.region, image.state
            )));
        }
        if let Some(why) = ctx.refusal(&image) {
            return Ok(Probe::NotFound(why));
        }
        if !ctx.architectures.contains(&image.architecture) {
            return Ok(Probe::NotFound(format!(
                "{label}'s image {} is {}, which this launch does not accept",
                image.id, image.architecture
            )));
        }
        let mut warnings = Vec::new();
        if image.is_deprecated_at(ctx.now) {
            warnings.push(format!("{} ({label}) is deprecated", image.id));
        }
        Ok(Probe::Found(Candidate {
            ami_id: image.id.clone(),
            ami_name: image.name.clone(),
            owner_id: image.owner_id.clone(),
            source_region: ctx.region.to_string(),
            architecture: image.architecture,
            copy: None,
            estimated_launch_seconds: cws_cost::AMI_BOOT_SECONDS,
            warnings,
            detail: format!("{} from listing {label} \"{name}\", {rating}", image.id),
            listing: Some(ListedSource {
                listing: listing.to_string(),
                version: version.version.clone(),
            }),
        }))
    }
}

//! Provenance tags: what cws writes on the images and instances it makes, so later
//! resolutions, `status` and the registry can tell where a resource came from.

use std::collections::BTreeMap;

use crate::model::Image;

/// The template slug an image serves.
pub const TEMPLATE: &str = "cws:template";
/// The template version an image was built from.
pub const TEMPLATE_VERSION: &str = "cws:template-version";
/// The image a copy was made from.
pub const SOURCE_AMI: &str = "cws:source-ami";
/// The region a copy was made from.
pub const SOURCE_REGION: &str = "cws:source-region";
/// The instance an image was created from.
pub const SOURCE_INSTANCE: &str = "cws:source-instance";
/// Who made the resource (`cws`).
pub const CREATED_BY: &str = "cws:created-by";
/// The `Name` tag EC2 consoles show.
pub const NAME: &str = "Name";
/// The intent a resource was made for: a token (at most 64 ASCII characters) that is also
/// the creating call's client token. A retry after a lost answer finds what the first attempt
/// made by this tag instead of making another (see [`crate::intent`]); backends that honour
/// client tokens (EC2, LocalCloud) return the first resource for a repeated token.
pub const INTENT: &str = "cws:intent";

/// The registry listing (`publisher/slug`) an image or instance was made from.
pub const LISTING: &str = "cws:listing";
/// The version of that listing.
pub const LISTING_VERSION: &str = "cws:listing-version";

/// Owner alias of AWS Marketplace images in `DescribeImages` owner filters.
pub const MARKETPLACE_OWNER_ALIAS: &str = "aws-marketplace";

/// Tags that mark an image as a copy of `source` made by cws for `template` at `version`.
///
/// The source's own tags are kept (a copy of a cws image stays findable by its template),
/// then the provenance keys are set.
pub fn provenance_tags(source: &Image, template: &str, version: &str) -> BTreeMap<String, String> {
    let mut t = source.tags.clone();
    // The source's intent is not the copy's: each creating call carries its own.
    t.remove(INTENT);
    t.insert(TEMPLATE.into(), template.into());
    t.entry(TEMPLATE_VERSION.into())
        .or_insert_with(|| version.into());
    t.insert(SOURCE_AMI.into(), source.id.clone());
    t.insert(SOURCE_REGION.into(), source.region.clone());
    t.insert(CREATED_BY.into(), "cws".into());
    t
}

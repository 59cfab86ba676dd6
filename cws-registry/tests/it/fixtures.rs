//! Small fixtures shared by the integration tests.

use cws_registry::*;

/// A non-admin actor `handle <handle@example.edu>`.
pub fn user(handle: &str) -> Actor {
    Actor::user(
        Identity::new(handle, format!("{handle}@example.edu"), None)
            .unwrap_or_else(|e| panic!("fixture identity {handle}: {e}")),
    )
}

/// A public listing's image of version 1.0.0 in us-east-1; `n` makes the image id unique.
pub fn publish(listing: &str, n: u64) -> Publish {
    let id: ListingId = listing
        .parse()
        .unwrap_or_else(|e| panic!("fixture listing {listing}: {e}"));
    Publish {
        name: id.slug.clone(),
        description: format!("fixture listing {listing}"),
        category: "machine-learning".into(),
        template: id.slug.clone(),
        visibility: Visibility::Public,
        version: parse_version("1.0.0").expect("fixture version"),
        template_digest: format!("sha256:{n:064x}"),
        region: "us-east-1".into(),
        image: RegionImage {
            ami_id: format!("ami-{n:017x}"),
            architecture: "x86_64".into(),
            snapshot_ids: vec![format!("snap-{n:017x}")],
            size_gib: Some(30),
        },
        notes: None,
        speedup: None,
        listing: id,
    }
}

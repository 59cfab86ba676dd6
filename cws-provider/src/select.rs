//! Image selection: the one deterministic order every tier, backend and wrapper agrees on.

use chrono::{DateTime, Utc};
use cws_template::Architecture;

use crate::model::{Image, ImageState};

/// Picks the best image deterministically: available only; within the accepted
/// architectures; non-deprecated first; preferred architecture first (the earlier in
/// `architectures`, the better); newest creation date; then name; then id. Returns the image
/// and whether it is deprecated at `now`.
///
/// The answer does not depend on the order the provider returned the images in.
pub fn select_image<'a>(
    images: &'a [Image],
    architectures: &[Architecture],
    now: DateTime<Utc>,
) -> Option<(&'a Image, bool)> {
    select_best(images, architectures, now)
}

/// [`select_image`] over any collection of image references, so a provider can pick from
/// its own store without copying every match out first (see
/// [`ImageCatalog::describe_best_image`](crate::ImageCatalog::describe_best_image)).
pub fn select_best<'a>(
    images: impl IntoIterator<Item = &'a Image>,
    architectures: &[Architecture],
    now: DateTime<Utc>,
) -> Option<(&'a Image, bool)> {
    let mut best: Option<Ranked<'a>> = None;
    for image in images {
        if image.state != ImageState::Available {
            continue;
        }
        let Some(arch_rank) = architectures.iter().position(|a| *a == image.architecture) else {
            continue;
        };
        let candidate = Ranked {
            image,
            deprecated: image.is_deprecated_at(now),
            arch_rank,
        };
        match &best {
            Some(b) if !candidate.beats(b) => {}
            _ => best = Some(candidate),
        }
    }
    best.map(|b| (b.image, b.deprecated))
}

/// An image with the parts of its rank that take work to compute.
struct Ranked<'a> {
    image: &'a Image,
    deprecated: bool,
    arch_rank: usize,
}

impl Ranked<'_> {
    /// Whether `self` sorts strictly before `other`: non-deprecated, preferred architecture,
    /// newer, then name and id (so the order is total and the pick deterministic).
    fn beats(&self, other: &Ranked<'_>) -> bool {
        let (a, b) = (self.image, other.image);
        self.deprecated
            .cmp(&other.deprecated)
            .then(self.arch_rank.cmp(&other.arch_rank))
            .then_with(|| b.creation_date.cmp(&a.creation_date))
            .then_with(|| b.name.cmp(&a.name))
            .then_with(|| a.id.cmp(&b.id))
            .is_lt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ec2_time;

    fn image(id: &str, arch: Architecture, created: &str) -> Image {
        Image::new(
            id,
            "us-east-1",
            id,
            "1",
            arch,
            ec2_time::parse(created).unwrap(),
        )
    }

    #[test]
    fn newest_available_preferred_architecture_wins_in_any_order() {
        let now = ec2_time::parse("2026-01-01T00:00:00Z").unwrap();
        let mut old = image("ami-old", Architecture::X86_64, "2025-01-01T00:00:00Z");
        old.tags.insert("k".into(), "v".into());
        let new = image("ami-new", Architecture::X86_64, "2025-10-02T10:00:00+02:00");
        let arm = image("ami-arm", Architecture::Arm64, "2025-12-01T00:00:00Z");
        let mut pending = image("ami-pending", Architecture::X86_64, "2025-12-31T00:00:00Z");
        pending.state = ImageState::Pending;
        let mut deprecated = image("ami-dep", Architecture::X86_64, "2025-12-30T00:00:00Z");
        deprecated.deprecation_time = Some(now);
        let all = [old, new, arm, pending, deprecated];
        let archs = [Architecture::X86_64, Architecture::Arm64];
        for rot in 0..all.len() {
            let mut v = all.to_vec();
            v.rotate_left(rot);
            let (pick, dep) = select_image(&v, &archs, now).unwrap();
            assert_eq!((pick.id.as_str(), dep), ("ami-new", false));
        }
        let (pick, _) = select_image(&all, &[Architecture::Arm64], now).unwrap();
        assert_eq!(pick.id, "ami-arm");
    }
}

//! Rules of the format that the schema's shape alone does not express.
//!
//! Runs on a fully merged [`Template`]; each violation names the key path
//! at fault so [`crate::issue::locate`] can point at it in whichever file
//! (child or parent) wrote it.

use crate::KNOWN_BASES;
use crate::issue::Issue;
use crate::locate::Seg;
use crate::model::{AmiConfig, AmiSearch, AmiStrategy, PackageManager, Template};
use crate::structure::clip;
use cws_util::suggest::{did_you_mean, quoted_list};

/// EC2's limit on user data (before base64 encoding).
pub(crate) const USER_DATA_LIMIT: usize = 16 * 1024;

fn path(segs: &[&str]) -> Vec<Seg> {
    segs.iter().map(|s| Seg::Key((*s).to_string())).collect()
}

fn path_i(segs: &[&str], index: usize) -> Vec<Seg> {
    let mut p = path(segs);
    p.push(Seg::Index(index));
    p
}

/// True for `[a-z0-9][a-z0-9-]*`.
pub(crate) fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// True for `ami-` followed by exactly 8 or 17 lowercase hex digits.
pub fn is_ami_id(s: &str) -> bool {
    s.strip_prefix("ami-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// True for the owner values EC2 accepts as trusted owners.
pub(crate) fn is_owner(s: &str) -> bool {
    matches!(s, "self" | "amazon" | "aws-marketplace")
        || (s.len() == 12 && s.chars().all(|c| c.is_ascii_digit()))
}

/// True for `family.size` instance type names (`m7g.xlarge`, `u-6tb1.metal`).
fn is_instance_type(s: &str) -> bool {
    let Some((family, size)) = s.split_once('.') else {
        return false;
    };
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    family.starts_with(|c: char| c.is_ascii_lowercase()) && ok(family) && ok(size)
}

/// Characters EC2 allows in AMI names, plus the `*` and `?` wildcards.
fn is_name_pattern_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "()[] ./-'@_*?".contains(c)
}

/// Checks every rule; returns every violation (in no particular order: the
/// caller orders them by position).
pub(crate) fn check(t: &Template) -> Vec<Issue> {
    let mut out = Vec::new();
    if t.name.trim().is_empty() {
        out.push(
            Issue::value(&path(&["name"]), "`name` must not be empty")
                .hint("give the template a display name, e.g. `name: Python ML`"),
        );
    }
    out.extend(check_slug(&t.slug, &path(&["slug"])));
    if !KNOWN_BASES.contains(&t.base.as_str()) {
        let list = quoted_list(KNOWN_BASES.iter().copied());
        let mut message = format!(
            "unknown value `{}` for `base`; expected one of {list}",
            clip(&t.base)
        );
        if let Some(best) = did_you_mean(&t.base, KNOWN_BASES.iter().copied()) {
            message.push_str(&format!("; did you mean `{best}`?"));
        }
        out.push(Issue::value(&path(&["base"]), message));
    }
    check_packages(t, &mut out);
    for (field, script) in [
        ("post_install", &t.post_install),
        ("user_data", &t.user_data),
    ] {
        if let Some(s) = script
            && s.len() > USER_DATA_LIMIT
        {
            out.push(
                Issue::value(
                    &path(&[field]),
                    format!(
                        "`{field}` is {} bytes; EC2 user data is limited to {USER_DATA_LIMIT}",
                        s.len()
                    ),
                )
                .hint("move the script to a file the instance downloads, or bake it into an AMI"),
            );
        }
    }
    check_instance_defaults(t, &mut out);
    check_tags(t.tags.iter(), &path(&["tags"]), &mut out);
    if let Some(parent) = &t.inherits {
        out.extend(check_slug(parent, &path(&["inherits"])));
    }
    match &t.ami_config {
        Some(c) => check_ami_config(c, &mut out),
        None if t.package_manager == Some(PackageManager::Ami) => {
            out.push(Issue::value(
                &path(&["package_manager"]),
                "`package_manager: ami` means the software ships in an AMI, but the template has no `ami_config`",
            )
            .hint("add an `ami_config` saying where the AMI comes from, or pick another package manager")
            .reads(&path(&["ami_config"])));
        }
        None => {}
    }
    out
}

fn check_slug(slug: &str, at: &[Seg]) -> Option<Issue> {
    if is_slug(slug) && slug.len() <= 64 {
        return None;
    }
    let suggestion: String = slug
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    let field = match at.last() {
        Some(Seg::Key(k)) => k.as_str(),
        _ => "slug",
    };
    let mut hint =
        "slugs use lowercase letters, digits and `-`, start with a letter or digit, and have at most 64 characters".to_string();
    if is_slug(&suggestion) && suggestion.len() <= 64 {
        hint.push_str(&format!(", e.g. `{suggestion}`"));
    }
    Some(Issue::value(at, format!("invalid `{field}` `{}`", clip(slug))).hint(hint))
}

fn check_packages(t: &Template, out: &mut Vec<Issue>) {
    let lists = [
        ("system", &t.packages.system),
        ("conda", &t.packages.conda),
        ("pip", &t.packages.pip),
        ("spack", &t.packages.spack),
    ];
    for (manager, list) in lists {
        for (i, pkg) in list.iter().enumerate() {
            let at = path_i(&["packages", manager], i);
            let problem = if pkg.trim().is_empty() {
                Some("is empty")
            } else if pkg.starts_with('-') {
                Some("starts with `-` (it would be read as an option)")
            } else if pkg.chars().any(char::is_control) {
                Some("contains a control character or line break")
            } else if manager == "system" && pkg.chars().any(char::is_whitespace) {
                Some("contains a space; list each package separately")
            } else {
                None
            };
            if let Some(problem) = problem {
                out.push(Issue::value(
                    &at,
                    format!("package `{}` in `packages.{manager}` {problem}", clip(pkg)),
                ));
            }
        }
    }
}

fn check_instance_defaults(t: &Template, out: &mut Vec<Issue>) {
    let d = &t.instance_defaults;
    for (field, value) in [("type", &d.instance_type), ("arm64_type", &d.arm64_type)] {
        if let Some(v) = value
            && !is_instance_type(v)
        {
            out.push(
                Issue::value(
                    &path(&["instance_defaults", field]),
                    format!(
                        "invalid instance type `{}` for `instance_defaults.{field}`",
                        clip(v)
                    ),
                )
                .hint("instance types look like `m6i.xlarge` (x86_64) or `m7g.xlarge` (Graviton)"),
            );
        }
    }
}

fn check_tags<'a>(
    tags: impl Iterator<Item = (&'a String, &'a String)>,
    at: &[Seg],
    out: &mut Vec<Issue>,
) {
    for (k, v) in tags {
        let mut key_path = at.to_vec();
        key_path.push(Seg::Key(k.clone()));
        let field = crate::locate::DisplayPath(at);
        if k.is_empty() || k.chars().count() > 128 {
            out.push(Issue::key(
                &key_path,
                format!("tag keys in `{field}` must have 1 to 128 characters"),
            ));
        } else if k.to_ascii_lowercase().starts_with("aws:") {
            out.push(
                Issue::key(
                    &key_path,
                    format!(
                        "tag key `{}` in `{field}` uses the reserved `aws:` prefix",
                        clip(k)
                    ),
                )
                .hint("AWS reserves `aws:` tags for itself; use your own prefix, e.g. `cws:`"),
            );
        }
        if v.chars().count() > 256 {
            out.push(Issue::value(
                &key_path,
                format!(
                    "tag `{}` in `{field}` is longer than 256 characters",
                    clip(k)
                ),
            ));
        }
    }
}

fn check_ami_config(c: &AmiConfig, out: &mut Vec<Issue>) {
    for (region, ami) in &c.ami_mappings {
        let at = path(&["ami_config", "ami_mappings", region]);
        if cws_regions::get(region).is_none() {
            let mut message = format!(
                "unknown region `{}` in `ami_config.ami_mappings`",
                clip(region)
            );
            if let Some(s) = cws_regions::suggest(region) {
                message.push_str(&format!("; did you mean `{s}`?"));
            }
            out.push(
                Issue::key(&at, message)
                    .hint("use an AWS region code such as `us-east-1` or `eu-west-1`"),
            );
        }
        if !is_ami_id(ami) {
            out.push(Issue::value(
                &at,
                format!("invalid AMI id `{}` for `ami_config.ami_mappings.{region}`", clip(ami)),
            )
            .hint("AMI ids are `ami-` followed by 8 or 17 lowercase hex digits, e.g. `ami-0123456789abcdef0`"));
        }
    }
    if let Some(search) = &c.ami_search {
        check_search(search, c, out);
    }
    if let Some(m) = &c.marketplace {
        let at = path(&["ami_config", "marketplace"]);
        let set = |f: &Option<String>| f.as_deref().is_some_and(|s| !s.trim().is_empty());
        if !set(&m.product_code) && !set(&m.product_id) && !set(&m.title) {
            // A child's `marketplace` merges with its parent's: judged on the whole.
            out.push(Issue::value(
                &at,
                "`ami_config.marketplace` needs at least one of `product_code`, `product_id` or `title`",
            )
            .reads(&at));
        }
        if let Some(id) = &m.product_id
            && !id.starts_with("prod-")
        {
            out.push(Issue::value(
                &path(&["ami_config", "marketplace", "product_id"]),
                format!("invalid Marketplace product id `{}`", clip(id)),
            )
            .hint("Marketplace product ids start with `prod-`; use `product_code` for the code on the AMI"));
        }
    }
    if let Some(community) = &c.community {
        check_community(community, out);
    }
    if c.strategy == AmiStrategy::AmiRequired && !c.has_ami_source() {
        out.push(Issue::value(
            &path(&["ami_config", "strategy"]),
            "`ami_required` needs an AMI source, but `ami_config` has no `ami_mappings`, `ami_search` or `marketplace`",
        )
        .hint("add one of them, or use `strategy: ami_preferred` to fall back to script provisioning")
        .reads(&path(&["ami_config"])));
    }
}

fn check_community(c: &crate::model::CommunityRef, out: &mut Vec<Issue>) {
    let slug_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && s.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    };
    let listing_ok = c
        .listing
        .split_once('/')
        .is_some_and(|(p, s)| slug_ok(p) && slug_ok(s));
    if !listing_ok {
        out.push(Issue::value(
            &path(&["ami_config", "community", "listing"]),
            format!(
                "invalid listing `{}` in `ami_config.community.listing`",
                clip(&c.listing)
            ),
        )
        .hint("write it as PUBLISHER/SLUG in lowercase, e.g. `alice/python-ml` (the registry lists them)"));
    }
    if let Some(ch) = &c.channel
        && !(slug_ok(ch) && ch.len() <= 32)
    {
        out.push(
            Issue::value(
                &path(&["ami_config", "community", "channel"]),
                format!(
                    "invalid channel `{}` in `ami_config.community.channel`",
                    clip(ch)
                ),
            )
            .hint("channels are lowercase names such as `latest` or `stable`"),
        );
    }
    if let Some(r) = c.min_rating
        && !(r.0.is_finite() && (1.0..=5.0).contains(&r.0))
    {
        out.push(
            Issue::value(
                &path(&["ami_config", "community", "min_rating"]),
                format!(
                    "`ami_config.community.min_rating` is {}, outside 1 to 5",
                    r.0
                ),
            )
            .hint("ratings are 1 to 5 stars, e.g. `min_rating: 4.0`"),
        );
    }
}

fn check_search(s: &AmiSearch, c: &AmiConfig, out: &mut Vec<Issue>) {
    let owners_at = path(&["ami_config", "ami_search", "owners"]);
    if s.owners.is_empty() {
        out.push(
            Issue::value(&owners_at, "`ami_config.ami_search.owners` is empty")
                .hint("trusted owners are required; use `self` for your own account"),
        );
    }
    for (i, owner) in s.owners.iter().enumerate() {
        if !is_owner(owner) {
            let mut hint =
                "owners are `self`, `amazon`, `aws-marketplace` or a 12-digit AWS account id"
                    .to_string();
            if matches!(owner.as_str(), "*" | "any" | "all") {
                hint = format!(
                    "searching every owner is not allowed: anyone can publish a look-alike image; {hint}"
                );
            }
            out.push(
                Issue::value(
                    &path_i(&["ami_config", "ami_search", "owners"], i),
                    format!(
                        "invalid owner `{}` in `ami_config.ami_search.owners`",
                        clip(owner)
                    ),
                )
                .hint(hint),
            );
        }
    }
    if let Some(p) = &s.name_pattern {
        let at = path(&["ami_config", "ami_search", "name_pattern"]);
        if p.trim().is_empty() || p.chars().count() > 128 {
            out.push(
                Issue::value(
                    &at,
                    "`ami_config.ami_search.name_pattern` must have 1 to 128 characters",
                )
                .hint("omit `name_pattern` to match every image of the trusted owners"),
            );
        } else if let Some(bad) = p.chars().find(|c| !is_name_pattern_char(*c)) {
            out.push(Issue::value(
                &at,
                format!("`ami_config.ami_search.name_pattern` contains `{bad}`, which AMI names cannot contain"),
            )
            .hint("AMI names use letters, digits, spaces and ( ) [ ] . / - ' @ _; `*` and `?` are wildcards"));
        }
    }
    check_tags(
        s.required_tags.iter(),
        &path(&["ami_config", "ami_search", "required_tags"]),
        out,
    );
    if let Some(pref) = c.preferred_architecture
        && !s.architectures.is_empty()
        && !s.architectures.contains(&pref)
    {
        out.push(Issue::value(
            &path(&["ami_config", "preferred_architecture"]),
            format!("`preferred_architecture` is `{pref}`, but `ami_search.architectures` does not include it"),
        )
        .hint(format!("add `{pref}` to `ami_search.architectures`, or prefer one of those listed"))
        .reads(&path(&["ami_config", "ami_search"])));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ami_ids() {
        assert!(is_ami_id("ami-12345678"));
        assert!(is_ami_id("ami-0123456789abcdef0"));
        assert!(!is_ami_id("ami-1234567"));
        assert!(!is_ami_id("ami-0123456789ABCDEF0"));
        assert!(!is_ami_id("ami-0123456789abcdef"));
        assert!(!is_ami_id("ami-g2345678"));
        assert!(!is_ami_id("snap-12345678"));
    }

    #[test]
    fn slugs_owners_and_types() {
        assert!(
            is_slug("python-ml")
                && is_slug("3d")
                && !is_slug("-x")
                && !is_slug("Py")
                && !is_slug("")
        );
        assert!(
            is_owner("self")
                && is_owner("704381954421")
                && !is_owner("70438195442")
                && !is_owner("*")
        );
        assert!(is_instance_type("m7g.xlarge") && is_instance_type("u-6tb1.metal"));
        assert!(
            !is_instance_type("m7g") && !is_instance_type("M7g.large") && !is_instance_type(".x")
        );
    }
}

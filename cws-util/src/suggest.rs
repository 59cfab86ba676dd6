//! "Did you mean" suggestions: the one policy behind every error that names a choice
//! (template fields and slugs, regions, instance types, CLI values).

/// Similarity of two spellings in `0.0..=1.0`, case-insensitive and
/// treating `-` and `_` alike (people mix them up in both directions).
fn similarity(a: &str, b: &str) -> f64 {
    let norm = |s: &str| s.trim().to_lowercase().replace('-', "_");
    let (a, b) = (norm(a), norm(b));
    if a == b {
        return 1.0;
    }
    if a.len() >= 3 && b.len() >= 3 && (a.starts_with(&b) || b.starts_with(&a)) {
        // A shortened spelling (`arm` for `arm64`) is a typo too, however many characters
        // it drops.
        return 0.8;
    }
    strsim::normalized_damerau_levenshtein(&a, &b)
}

/// Minimum similarity for a suggestion: a dropped, doubled or swapped character or two in a
/// field name, slug, region code or instance type suggests it (`stratgy`, `us-est-1`,
/// `m6i.larg`); an unrelated word (`colour`, `p4d.24xlarge` among `g5.xlarge`) does not.
const THRESHOLD: f64 = 0.76;

/// The single closest candidate, when one is close enough to be a typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(f64, &'a str)> = None;
    for c in candidates {
        let score = similarity(input, c);
        if score >= THRESHOLD && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Up to `max` close candidates, best first; candidates that contain the
/// input (e.g. `python` for `python-ml`) count as close.
pub fn close_matches<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Vec<String> {
    let needle = input.trim().to_lowercase();
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let mut score = similarity(input, c);
            if !needle.is_empty() && c.to_lowercase().contains(&needle) {
                score = score.max(0.75);
            }
            (score >= THRESHOLD).then_some((score, c))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let mut out: Vec<String> = Vec::new();
    for (_, c) in scored {
        if !out.iter().any(|o| o == c) {
            out.push(c.to_string());
        }
        if out.len() == max {
            break;
        }
    }
    out
}

/// Formats a list of choices as "`a`, `b`, `c`".
pub fn quoted_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_typos_not_strangers() {
        let fields = ["strategy", "ami_mappings", "ami_search", "marketplace"];
        assert_eq!(did_you_mean("stratgy", fields), Some("strategy"));
        assert_eq!(did_you_mean("ami-mappings", fields), Some("ami_mappings"));
        assert_eq!(did_you_mean("amisearch", fields), Some("ami_search"));
        assert_eq!(did_you_mean("colour", fields), None);
    }

    #[test]
    fn close_matches_include_substrings() {
        let slugs = ["python-ml", "python-research", "r-research", "gis-research"];
        let m = close_matches("python", slugs, 3);
        assert_eq!(m, vec!["python-ml", "python-research"]);
        assert_eq!(close_matches("pyton-ml", slugs, 3)[0], "python-ml");
        assert!(close_matches("zzzz", slugs, 3).is_empty());
    }
}

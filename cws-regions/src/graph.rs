//! The regional fallback graph: where to look for an image when the target
//! region has none.
//!
//! Every catalogue region has an ordered list of fallback regions. The list
//! comes from one of three places, recorded as its [`EdgeSource`]:
//!
//! * **Published** — the 17-region map cws has always shipped (see
//!   [`FallbackGraph::published`]); these are the regions AWS does not make
//!   you opt in to, and the map encodes latency and data-residency judgement
//!   that distance alone would miss (e.g. `ca-central-1` falls back to the
//!   US, not to the geographically close `ca-west-1`).
//! * **Override** — a user's `regions.yaml` or an explicit edge list.
//! * **Nearest** — every other region gets the three nearest regions by
//!   great-circle distance, *preferring regions that need no opt-in*: an
//!   opt-in region is disabled in an account until someone enables it, so
//!   falling back to one would usually fail. Opt-in regions are only chosen
//!   if fewer than three non-opt-in regions exist (never, with today's
//!   catalogue). Ties in distance are broken by region code.
//!
//! An explicitly empty list (`us-east-1: []` in an override file) means "no
//! fallbacks for this region"; it is the way to keep images from ever being
//! copied in from elsewhere, and is *not* replaced by the nearest regions.

use std::collections::VecDeque;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;

use crate::catalogue::{all, distance_km, index_of};
use crate::{RegionError, overrides};

/// Reads an override file whole, within [`crate::MAX_OVERRIDE_BYTES`].
fn read_override(path: &Path) -> Result<String, cws_util::fs::ReadError> {
    cws_util::fs::read_text_bounded(path, crate::MAX_OVERRIDE_BYTES)
}

/// How many nearest regions a region without explicit edges gets.
const NEAREST_COUNT: usize = 3;

/// How the [`FallbackGraph::from_edges`] input is named in error messages.
const EDGE_LIST_ORIGIN: &str = "the explicit fallback edge list";

/// The published fallback map, exactly as cws publishes it (see this crate's README). Order
/// within each list is the order regions are tried.
const PUBLISHED: &[(&str, &[&str])] = &[
    ("us-east-1", &["us-east-2", "us-west-2", "us-west-1"]),
    ("us-east-2", &["us-east-1", "us-west-2", "us-west-1"]),
    ("us-west-1", &["us-west-2", "us-east-1", "us-east-2"]),
    ("us-west-2", &["us-west-1", "us-east-1", "us-east-2"]),
    ("ca-central-1", &["us-east-1", "us-east-2"]),
    ("eu-west-1", &["eu-west-2", "eu-central-1", "us-east-1"]),
    ("eu-west-2", &["eu-west-1", "eu-central-1", "us-east-1"]),
    ("eu-west-3", &["eu-west-1", "eu-west-2", "eu-central-1"]),
    ("eu-central-1", &["eu-west-1", "eu-west-2", "us-east-1"]),
    ("eu-north-1", &["eu-west-1", "eu-central-1"]),
    (
        "ap-south-1",
        &["ap-southeast-1", "ap-northeast-1", "us-east-1"],
    ),
    (
        "ap-southeast-1",
        &["ap-southeast-2", "ap-northeast-1", "us-east-1"],
    ),
    (
        "ap-southeast-2",
        &["ap-southeast-1", "ap-northeast-1", "us-east-1"],
    ),
    (
        "ap-northeast-1",
        &["ap-northeast-2", "ap-southeast-1", "us-east-1"],
    ),
    (
        "ap-northeast-2",
        &["ap-northeast-1", "ap-southeast-1", "us-east-1"],
    ),
    (
        "ap-northeast-3",
        &["ap-northeast-1", "ap-northeast-2", "us-east-1"],
    ),
    ("sa-east-1", &["us-east-1", "us-east-2"]),
];

/// Where a region's fallback list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeSource {
    /// The published map shipped with cws.
    Published,
    /// Computed: the nearest regions by distance (no published or explicit edges).
    Nearest,
    /// Given by the user: an override file or an explicit edge list.
    Override,
}

impl fmt::Display for EdgeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EdgeSource::Published => "published",
            EdgeSource::Nearest => "nearest",
            EdgeSource::Override => "override",
        })
    }
}

/// One row of [`FallbackGraph::entries`]: a region and its direct fallbacks,
/// shaped for `cws regions fallbacks` and `GET /api/v1/regions/fallbacks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FallbackEntry {
    /// The region code.
    pub region: &'static str,
    /// The region's display name.
    pub name: &'static str,
    /// Whether the region must be enabled in the account before use.
    pub opt_in: bool,
    /// Where the fallback list came from.
    pub source: EdgeSource,
    /// The direct fallbacks, in the order they are tried.
    pub fallbacks: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    source: EdgeSource,
    /// Catalogue indexes, in order.
    targets: Vec<usize>,
}

/// Ordered fallback edges for every region in the catalogue.
///
/// Built once (from the published map, an override file or explicit edges)
/// and then read-only; all queries are deterministic and cheap. Two graphs
/// compare equal when every region has the same source and the same ordered
/// fallbacks, regardless of how they were built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackGraph {
    /// One node per catalogue region, aligned with [`all`].
    nodes: Vec<Node>,
}

impl FallbackGraph {
    /// The default graph: the published map, plus the nearest three regions
    /// (preferring non-opt-in regions) for every region the map leaves out.
    pub fn published() -> Self {
        static PUBLISHED_GRAPH: OnceLock<FallbackGraph> = OnceLock::new();
        PUBLISHED_GRAPH
            .get_or_init(|| {
                let mut graph = Self::nearest_only();
                for (region, targets) in PUBLISHED {
                    graph.nodes[known(region)] = Node {
                        source: EdgeSource::Published,
                        targets: targets.iter().map(|t| known(t)).collect(),
                    };
                }
                graph
            })
            .clone()
    }

    /// The published graph with the overrides in `text` (YAML) applied on top.
    ///
    /// Each region listed under `fallbacks` has its edges *replaced*; every
    /// other region keeps its default. `origin` names the source (normally the
    /// file path) in error messages. An empty document means no overrides.
    ///
    /// # Errors
    ///
    /// [`RegionError::InvalidGraph`], with line and column, for malformed
    /// YAML, an unknown top-level key, an unknown region (with a "did you
    /// mean"), a region listing itself, a target listed twice for one
    /// region, or a region listed twice.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Self, RegionError> {
        let mut graph = Self::published();
        for (region, targets) in overrides::parse(text, origin)? {
            graph.nodes[region] = Node {
                source: EdgeSource::Override,
                targets,
            };
        }
        Ok(graph)
    }

    /// Read an override file and apply it over the published graph, as
    /// [`FallbackGraph::from_yaml_str`] does. The file is read only if it is a
    /// regular file of at most [`MAX_OVERRIDE_BYTES`](crate::MAX_OVERRIDE_BYTES).
    ///
    /// # Errors
    ///
    /// [`RegionError::Io`] if the file cannot be read (including when it
    /// does not exist — see [`FallbackGraph::load_optional`] for the
    /// `$CWS_HOME/regions.yaml` case); [`RegionError::Refused`] if it is
    /// larger than the limit, not a regular file, or not UTF-8; otherwise as
    /// `from_yaml_str`.
    pub fn load(path: &Path) -> Result<Self, RegionError> {
        let text = read_override(path)?;
        Self::from_yaml_str(&text, &path.display().to_string())
    }

    /// Like [`FallbackGraph::load`], but a missing file means "no overrides"
    /// and yields the published graph. Meant for the implicit
    /// `$CWS_HOME/regions.yaml`, which most users never create; an explicit
    /// `--regions-file` should use `load` so a typo in the path is reported.
    ///
    /// # Errors
    ///
    /// As [`FallbackGraph::load`], except for a file that does not exist.
    pub fn load_optional(path: &Path) -> Result<Self, RegionError> {
        match read_override(path) {
            Ok(text) => Self::from_yaml_str(&text, &path.display().to_string()),
            Err(e) if e.is_not_found() => Ok(Self::published()),
            Err(e) => Err(e.into()),
        }
    }

    /// A graph with exactly these edges and no published ones: each listed
    /// region gets its list (source [`EdgeSource::Override`]); every region
    /// not listed gets its nearest three (source [`EdgeSource::Nearest`]).
    ///
    /// The result does not depend on the order regions are listed in, only
    /// on each region's own ordered list, so building from a `HashMap` is
    /// deterministic.
    ///
    /// # Errors
    ///
    /// [`RegionError::UnknownRegion`] for a code not in the catalogue;
    /// [`RegionError::InvalidGraph`] for a self-edge, a target repeated in
    /// one list, or a region listed twice.
    pub fn from_edges<I, K, V>(edges: I) -> Result<Self, RegionError>
    where
        I: IntoIterator<Item = (K, Vec<V>)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let invalid = |message: String| RegionError::InvalidGraph {
            origin: EDGE_LIST_ORIGIN.to_owned(),
            message,
            // Unknown codes in an edge list are `UnknownRegion` errors instead.
            unknown_region: None,
        };
        let mut graph = Self::nearest_only();
        let mut listed = vec![false; graph.nodes.len()];
        for (region, targets) in edges {
            let region = lookup_index(region.as_ref())?;
            let code = all()[region].code;
            if std::mem::replace(&mut listed[region], true) {
                return Err(invalid(overrides::duplicate_region_message(code)));
            }
            let mut indexes = Vec::with_capacity(targets.len());
            for target in targets {
                let target = lookup_index(target.as_ref())?;
                if target == region {
                    return Err(invalid(overrides::self_edge_message(code)));
                }
                if indexes.contains(&target) {
                    return Err(invalid(overrides::duplicate_target_message(
                        code,
                        all()[target].code,
                    )));
                }
                indexes.push(target);
            }
            graph.nodes[region] = Node {
                source: EdgeSource::Override,
                targets: indexes,
            };
        }
        Ok(graph)
    }

    /// The direct fallbacks of `region`, in the order they should be tried.
    /// Never contains `region` itself or a repeat.
    ///
    /// # Errors
    ///
    /// [`RegionError::UnknownRegion`] if `region` is not in the catalogue.
    pub fn fallbacks(&self, region: &str) -> Result<Vec<&'static str>, RegionError> {
        let node = &self.nodes[lookup_index(region)?];
        Ok(node.targets.iter().map(|&t| all()[t].code).collect())
    }

    /// Where the fallbacks of `region` came from.
    ///
    /// # Errors
    ///
    /// [`RegionError::UnknownRegion`] if `region` is not in the catalogue.
    pub fn source(&self, region: &str) -> Result<EdgeSource, RegionError> {
        Ok(self.nodes[lookup_index(region)?].source)
    }

    /// Regions to try after `region`, nearest hops first: a breadth-first
    /// walk over the edges in their listed order, so all direct fallbacks
    /// come before their fallbacks.
    ///
    /// The result never contains `region`, never repeats a region, is at
    /// most `max_regions` long, and depends only on the graph (cycles are
    /// harmless: a region is visited once).
    ///
    /// # Errors
    ///
    /// [`RegionError::UnknownRegion`] if `region` is not in the catalogue.
    pub fn walk(&self, region: &str, max_regions: usize) -> Result<Vec<&'static str>, RegionError> {
        let start = lookup_index(region)?;
        let mut visited = vec![false; self.nodes.len()];
        visited[start] = true;
        let mut queue = VecDeque::from([start]);
        let mut order = Vec::new();
        while let Some(current) = queue.pop_front() {
            for &next in &self.nodes[current].targets {
                if order.len() >= max_regions {
                    return Ok(order);
                }
                if !std::mem::replace(&mut visited[next], true) {
                    order.push(all()[next].code);
                    queue.push_back(next);
                }
            }
        }
        Ok(order)
    }

    /// Every catalogue region with its source and direct fallbacks, in
    /// catalogue (code) order.
    pub fn entries(&self) -> Vec<FallbackEntry> {
        all()
            .iter()
            .zip(&self.nodes)
            .map(|(region, node)| FallbackEntry {
                region: region.code,
                name: region.name,
                opt_in: region.opt_in,
                source: node.source,
                fallbacks: node.targets.iter().map(|&t| all()[t].code).collect(),
            })
            .collect()
    }

    /// Every region with its nearest regions and nothing else.
    fn nearest_only() -> Self {
        Self {
            nodes: (0..all().len())
                .map(|i| Node {
                    source: EdgeSource::Nearest,
                    targets: nearest(i),
                })
                .collect(),
        }
    }
}

impl Default for FallbackGraph {
    /// The published graph ([`FallbackGraph::published`]).
    fn default() -> Self {
        Self::published()
    }
}

/// Catalogue index of `code`, or an `UnknownRegion` error with a suggestion.
fn lookup_index(code: &str) -> Result<usize, RegionError> {
    index_of(code).ok_or_else(|| RegionError::UnknownRegion {
        region: code.to_owned(),
        suggestion: crate::suggest(code),
    })
}

/// Catalogue index of a code from a compile-time table. The `published_*`
/// tests prove every such code is in the catalogue.
fn known(code: &str) -> usize {
    index_of(code)
        .unwrap_or_else(|| panic!("published map names `{code}`, which is not in the catalogue"))
}

/// The [`NEAREST_COUNT`] regions nearest to `origin`, non-opt-in first, then
/// by distance, then by code.
fn nearest(origin: usize) -> Vec<usize> {
    let here = &all()[origin];
    let mut others: Vec<(bool, f64, &str, usize)> = all()
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != origin)
        .map(|(i, r)| (r.opt_in, distance_km(here, r), r.code, i))
        .collect();
    others.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.total_cmp(&b.1))
            .then_with(|| a.2.cmp(b.2))
    });
    others
        .into_iter()
        .take(NEAREST_COUNT)
        .map(|(.., i)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::get;

    fn graph() -> FallbackGraph {
        FallbackGraph::published()
    }

    fn ok<T>(result: Result<T, RegionError>) -> T {
        result.unwrap_or_else(|e| panic!("unexpected error: {e}"))
    }

    #[test]
    fn published_edges_are_exactly_the_documented_map() {
        let expected: &[(&str, &[&str])] = &[
            ("us-east-1", &["us-east-2", "us-west-2", "us-west-1"]),
            ("us-east-2", &["us-east-1", "us-west-2", "us-west-1"]),
            ("us-west-1", &["us-west-2", "us-east-1", "us-east-2"]),
            ("us-west-2", &["us-west-1", "us-east-1", "us-east-2"]),
            ("ca-central-1", &["us-east-1", "us-east-2"]),
            ("eu-west-1", &["eu-west-2", "eu-central-1", "us-east-1"]),
            ("eu-west-2", &["eu-west-1", "eu-central-1", "us-east-1"]),
            ("eu-west-3", &["eu-west-1", "eu-west-2", "eu-central-1"]),
            ("eu-central-1", &["eu-west-1", "eu-west-2", "us-east-1"]),
            ("eu-north-1", &["eu-west-1", "eu-central-1"]),
            (
                "ap-south-1",
                &["ap-southeast-1", "ap-northeast-1", "us-east-1"],
            ),
            (
                "ap-southeast-1",
                &["ap-southeast-2", "ap-northeast-1", "us-east-1"],
            ),
            (
                "ap-southeast-2",
                &["ap-southeast-1", "ap-northeast-1", "us-east-1"],
            ),
            (
                "ap-northeast-1",
                &["ap-northeast-2", "ap-southeast-1", "us-east-1"],
            ),
            (
                "ap-northeast-2",
                &["ap-northeast-1", "ap-southeast-1", "us-east-1"],
            ),
            (
                "ap-northeast-3",
                &["ap-northeast-1", "ap-northeast-2", "us-east-1"],
            ),
            ("sa-east-1", &["us-east-1", "us-east-2"]),
        ];
        let g = graph();
        for (region, targets) in expected {
            assert_eq!(ok(g.fallbacks(region)), targets.to_vec(), "{region}");
            assert_eq!(ok(g.source(region)), EdgeSource::Published, "{region}");
        }
        let published = g
            .entries()
            .into_iter()
            .filter(|e| e.source == EdgeSource::Published)
            .count();
        assert_eq!(
            published,
            expected.len(),
            "no region beyond the map is published"
        );
    }

    #[test]
    fn ap_south_1_example() {
        assert_eq!(
            ok(graph().fallbacks("ap-south-1")),
            ["ap-southeast-1", "ap-northeast-1", "us-east-1"]
        );
    }

    #[test]
    fn published_map_covers_exactly_the_non_opt_in_regions() {
        let g = graph();
        for region in all() {
            let expected = if region.opt_in {
                EdgeSource::Nearest
            } else {
                EdgeSource::Published
            };
            assert_eq!(ok(g.source(region.code)), expected, "{}", region.code);
        }
    }

    #[test]
    fn unmapped_region_gets_three_plausible_nearest() {
        let g = graph();
        let jakarta = ok(g.fallbacks("ap-southeast-3"));
        assert_eq!(jakarta.len(), 3);
        assert_eq!(
            jakarta[0], "ap-southeast-1",
            "Singapore is nearest to Jakarta"
        );
        for code in &jakarta {
            let r = ok(crate::lookup(code));
            assert_eq!(r.continent, crate::Continent::AsiaPacific, "{code}");
            assert!(!r.opt_in, "{code} requires opt-in");
        }
        assert_eq!(ok(g.source("ap-southeast-3")), EdgeSource::Nearest);

        // Milan and Zurich fall back within Europe; Cape Town to Europe or South America.
        assert!(
            ok(g.fallbacks("eu-south-1"))
                .iter()
                .all(|c| c.starts_with("eu-"))
        );
        assert!(ok(g.fallbacks("eu-central-2")).contains(&"eu-central-1"));
        assert_eq!(ok(g.fallbacks("me-central-1")).len(), 3);
        assert_eq!(ok(g.fallbacks("ca-west-1"))[0], "us-west-2");
        assert_eq!(ok(g.fallbacks("mx-central-1")).len(), 3);
    }

    #[test]
    fn nearest_is_sorted_by_distance_and_skips_opt_in() {
        for (i, region) in all().iter().enumerate() {
            let picks = nearest(i);
            assert_eq!(picks.len(), NEAREST_COUNT, "{}", region.code);
            assert!(!picks.contains(&i));
            let distances: Vec<f64> = picks
                .iter()
                .map(|&p| distance_km(region, &all()[p]))
                .collect();
            assert!(
                distances.windows(2).all(|w| w[0] <= w[1]),
                "{}",
                region.code
            );
            // Nothing non-opt-in that was skipped is nearer than the last pick.
            let last = distances[NEAREST_COUNT - 1];
            for (j, other) in all().iter().enumerate() {
                if j != i && !other.opt_in && !picks.contains(&j) {
                    assert!(
                        distance_km(region, other) >= last,
                        "{} skipped {}",
                        region.code,
                        other.code
                    );
                }
                if picks.contains(&j) {
                    assert!(
                        !other.opt_in,
                        "{} picked opt-in {}",
                        region.code, other.code
                    );
                }
            }
        }
    }

    #[test]
    fn walk_is_breadth_first_and_bounded() {
        let g = graph();
        assert_eq!(
            ok(g.walk("ca-central-1", 10)),
            ["us-east-1", "us-east-2", "us-west-2", "us-west-1"]
        );
        assert_eq!(ok(g.walk("ca-central-1", 1)), ["us-east-1"]);
        assert!(ok(g.walk("ca-central-1", 0)).is_empty());
        let from_ireland = ok(g.walk("eu-west-1", usize::MAX));
        assert_eq!(
            &from_ireland[..3],
            ["eu-west-2", "eu-central-1", "us-east-1"]
        );
        assert!(!from_ireland.contains(&"eu-west-1"));
    }

    #[test]
    fn unknown_regions_are_reported() {
        let g = graph();
        for result in [
            g.fallbacks("us-est-1").map(|_| ()),
            g.source("us-est-1").map(|_| ()),
            g.walk("us-est-1", 3).map(|_| ()),
        ] {
            match result {
                Err(RegionError::UnknownRegion { suggestion, .. }) => {
                    assert_eq!(suggestion, Some("us-east-1"));
                }
                other => panic!("expected UnknownRegion, got {other:?}"),
            }
        }
    }

    #[test]
    fn default_is_published_and_entries_cover_catalogue() {
        assert_eq!(FallbackGraph::default(), graph());
        let entries = graph().entries();
        assert_eq!(entries.len(), all().len());
        let first = &entries[0];
        assert_eq!(first.region, all()[0].code);
        let json = serde_json::to_value(&entries[0]).unwrap_or_default();
        assert_eq!(json["source"], "nearest", "{json}");
        assert_eq!(EdgeSource::Override.to_string(), "override");
        assert!(get(first.region).is_some());
    }

    #[test]
    fn from_edges_uses_only_given_edges() {
        let g = ok(FallbackGraph::from_edges([
            ("us-east-1", vec!["eu-west-1"]),
            ("eu-west-1", vec![]),
        ]));
        assert_eq!(ok(g.fallbacks("us-east-1")), ["eu-west-1"]);
        assert_eq!(ok(g.source("us-east-1")), EdgeSource::Override);
        assert!(
            ok(g.fallbacks("eu-west-1")).is_empty(),
            "explicit [] means none"
        );
        // Not listed: nearest, not published.
        assert_eq!(ok(g.source("ap-south-1")), EdgeSource::Nearest);
        assert_eq!(ok(g.fallbacks("us-east-2"))[0], "us-east-1");
        assert_eq!(ok(g.walk("us-east-1", 5)), ["eu-west-1"]);
    }

    #[test]
    fn from_edges_rejects_bad_input() {
        let unknown = FallbackGraph::from_edges([("us-east-1", vec!["us-est-2"])]);
        assert!(matches!(
            unknown,
            Err(RegionError::UnknownRegion {
                suggestion: Some("us-east-2"),
                ..
            })
        ));
        let unknown_key = FallbackGraph::from_edges([("mars-1", Vec::<&str>::new())]);
        assert!(matches!(
            unknown_key,
            Err(RegionError::UnknownRegion { .. })
        ));

        let message = |r: Result<FallbackGraph, RegionError>| match r {
            Err(e @ RegionError::InvalidGraph { .. }) => e.to_string(),
            other => panic!("expected InvalidGraph, got {other:?}"),
        };
        let m = message(FallbackGraph::from_edges([(
            "us-east-1",
            vec!["us-east-1"],
        )]));
        assert!(m.contains("lists itself"), "{m}");
        let m = message(FallbackGraph::from_edges([(
            "us-east-1",
            vec!["us-east-2", "us-east-2"],
        )]));
        assert!(
            m.contains("more than once in the fallbacks of `us-east-1`"),
            "{m}"
        );
        let m = message(FallbackGraph::from_edges([
            ("us-east-1", vec!["us-east-2"]),
            ("us-east-1", vec!["us-west-2"]),
        ]));
        assert!(m.contains("`us-east-1` is given more than once"), "{m}");
    }
}

//! Properties of `FallbackGraph` over generated graphs.
//!
//! Graphs are random subsets of the catalogue, each with a random edge list;
//! generated lists freely contain self-edges, repeated targets, repeated
//! regions and cycles. Invariants are checked against a simple oracle (a
//! depth-first reachability search) for every region in the catalogue.

use std::collections::{BTreeSet, HashSet};

use cws_regions::{EdgeSource, FallbackGraph, RegionError, all};
use proptest::prelude::*;

/// Raw generated input: (region index, target indexes), unvalidated.
type RawEdges = Vec<(usize, Vec<usize>)>;

fn raw_edges() -> impl Strategy<Value = RawEdges> {
    let n = all().len();
    prop::collection::vec((0..n, prop::collection::vec(0..n, 0..6)), 0..16)
}

fn codes(edges: &RawEdges) -> Vec<(&'static str, Vec<&'static str>)> {
    edges
        .iter()
        .map(|(k, vs)| (all()[*k].code, vs.iter().map(|v| all()[*v].code).collect()))
        .collect()
}

/// Whether `from_edges` must accept this input: no region twice, no
/// self-edge, no target twice in one list.
fn is_valid(edges: &RawEdges) -> bool {
    let mut keys = HashSet::new();
    edges.iter().all(|(k, vs)| {
        let mut seen = HashSet::new();
        keys.insert(*k) && vs.iter().all(|v| v != k && seen.insert(*v))
    })
}

/// Make any input valid the way a caller would: keep the first list given
/// for a region, drop self-edges, drop repeated targets (keeping order).
fn sanitize(edges: &RawEdges) -> RawEdges {
    let mut keys = HashSet::new();
    edges
        .iter()
        .filter(|(k, _)| keys.insert(*k))
        .map(|(k, vs)| {
            let mut seen = HashSet::new();
            let vs = vs
                .iter()
                .copied()
                .filter(|v| v != k && seen.insert(*v))
                .collect();
            (*k, vs)
        })
        .collect()
}

fn build(edges: &RawEdges) -> Result<FallbackGraph, RegionError> {
    FallbackGraph::from_edges(codes(edges))
}

/// Oracle: every region reachable from `origin` (excluding it), by DFS over
/// `fallbacks`.
fn reachable(
    graph: &FallbackGraph,
    origin: &'static str,
) -> Result<BTreeSet<&'static str>, RegionError> {
    let mut seen = BTreeSet::from([origin]);
    let mut stack = vec![origin];
    while let Some(region) = stack.pop() {
        for next in graph.fallbacks(region)? {
            if seen.insert(next) {
                stack.push(next);
            }
        }
    }
    seen.remove(origin);
    Ok(seen)
}

fn has_repeat(list: &[&str]) -> bool {
    let mut seen = HashSet::new();
    !list.iter().all(|c| seen.insert(*c))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary input is accepted exactly when it is valid, and a rejection
    /// is always `InvalidGraph` (every code here is a known region).
    #[test]
    fn arbitrary_edges_are_accepted_iff_valid(edges in raw_edges()) {
        match build(&edges) {
            Ok(_) => prop_assert!(is_valid(&edges), "accepted invalid input"),
            Err(RegionError::InvalidGraph { .. }) => prop_assert!(!is_valid(&edges), "rejected valid input"),
            Err(other) => prop_assert!(false, "unexpected error: {other}"),
        }
    }

    /// `fallbacks` returns exactly the given list for listed regions and the
    /// nearest three otherwise; never the origin, never a repeat.
    #[test]
    fn fallbacks_follow_the_edges(edges in raw_edges()) {
        let edges = sanitize(&edges);
        let graph = build(&edges)?;
        for (i, region) in all().iter().enumerate() {
            let direct = graph.fallbacks(region.code)?;
            prop_assert!(!direct.contains(&region.code), "{} falls back to itself", region.code);
            prop_assert!(!has_repeat(&direct), "{} repeats: {:?}", region.code, direct);
            match edges.iter().find(|(k, _)| *k == i) {
                Some((_, targets)) => {
                    let expected: Vec<_> = targets.iter().map(|t| all()[*t].code).collect();
                    prop_assert_eq!(&direct, &expected);
                    prop_assert_eq!(graph.source(region.code)?, EdgeSource::Override);
                }
                None => {
                    prop_assert_eq!(direct.len(), 3);
                    prop_assert_eq!(graph.source(region.code)?, EdgeSource::Nearest);
                }
            }
        }
    }

    /// `walk` visits exactly the reachable regions, breadth first, never the
    /// origin, never twice, at most `max_regions`, and a shorter walk is a
    /// prefix of a longer one.
    #[test]
    fn walk_is_a_bounded_loop_free_bfs(edges in raw_edges(), max in 0usize..40) {
        let graph = build(&sanitize(&edges))?;
        for region in all() {
            let full = graph.walk(region.code, usize::MAX)?;
            let bounded = graph.walk(region.code, max)?;

            prop_assert!(!full.contains(&region.code));
            prop_assert!(!has_repeat(&full), "{} repeats: {:?}", region.code, full);
            let visited: BTreeSet<_> = full.iter().copied().collect();
            prop_assert_eq!(&visited, &reachable(&graph, region.code)?);

            // Breadth first: the direct fallbacks come first, in order.
            let direct = graph.fallbacks(region.code)?;
            prop_assert_eq!(&full[..direct.len()], &direct[..]);

            prop_assert!(bounded.len() <= max);
            prop_assert_eq!(bounded.len(), max.min(full.len()));
            prop_assert_eq!(&bounded[..], &full[..bounded.len()]);
        }
    }

    /// Same edges, same answers: building twice, or from the same edges
    /// listed in another order, gives an equal graph and equal walks.
    #[test]
    fn graphs_are_deterministic(
        shuffled in raw_edges().prop_map(|e| sanitize(&e)).prop_flat_map(|e| (Just(e.clone()), Just(e).prop_shuffle())),
        max in 0usize..40,
    ) {
        let (edges, reordered) = shuffled;
        let a = build(&edges)?;
        let b = build(&edges)?;
        let c = build(&reordered)?;
        // A HashMap's iteration order is another "insertion order".
        let d = FallbackGraph::from_edges(codes(&edges).into_iter().collect::<std::collections::HashMap<_, _>>())?;
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
        prop_assert_eq!(&a, &d);
        for region in all() {
            let walk = a.walk(region.code, max)?;
            prop_assert_eq!(&walk, &b.walk(region.code, max)?);
            prop_assert_eq!(&walk, &c.walk(region.code, max)?);
            prop_assert_eq!(&walk, &d.walk(region.code, max)?);
            prop_assert_eq!(a.fallbacks(region.code)?, c.fallbacks(region.code)?);
        }
    }
}

/// A ring through every region plus a back edge: the walk from any region
/// must cover all others exactly once and stop.
#[test]
fn full_cycle_terminates_and_covers_everything() {
    let n = all().len();
    let edges: Vec<(&str, Vec<&str>)> = (0..n)
        .map(|i| {
            (
                all()[i].code,
                vec![all()[(i + 1) % n].code, all()[(i + n - 1) % n].code],
            )
        })
        .collect();
    let graph = FallbackGraph::from_edges(edges).unwrap_or_else(|e| panic!("{e}"));
    for region in all() {
        let walk = graph
            .walk(region.code, usize::MAX)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(walk.len(), n - 1, "{}", region.code);
        assert!(!walk.contains(&region.code));
        assert!(!has_repeat(&walk));
    }
}

/// The published graph satisfies the same invariants as generated ones.
#[test]
fn published_graph_invariants() {
    let graph = FallbackGraph::published();
    for region in all() {
        let walk = graph
            .walk(region.code, usize::MAX)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!walk.contains(&region.code));
        assert!(!has_repeat(&walk));
        let expected = reachable(&graph, region.code).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(walk.iter().copied().collect::<BTreeSet<_>>(), expected);
    }
}

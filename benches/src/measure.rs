//! Small measurement helpers: medians, counted resolutions, resident memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cws_provider::wrappers::CachingProvider;
use cws_provider::wrappers::CountingProvider;
use cws_provider::*;
use cws_resolver::*;

use crate::scenario::{Scenario, Walk};

/// The median of some durations (zero for none).
pub fn median(mut samples: Vec<Duration>) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// Provider calls made by one resolution, and by an identical repeat within the cache TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    /// The first resolution, cache cold.
    pub uncached: u64,
    /// The same resolution again, cache warm.
    pub cached_repeat: u64,
    /// Wall time of the repeat.
    pub repeat_wall: Duration,
}

/// Resolves `scenario` twice through `CachingProvider(CountingProvider(latency + walk))` and
/// counts the calls that reach the counting layer. A call is counted when it is made, so calls
/// the concurrent resolver cancels once the winner is certain still count: they were round
/// trips put on the wire.
pub async fn count_calls(scenario: &Scenario, walk: Walk, latency: Duration) -> Calls {
    let counted = Arc::new(CachingProvider::new(
        CountingProvider::new(walk.provider(scenario.cloud.clone(), latency)),
        Duration::from_secs(300),
    ));
    let env = ResolveEnv::new(counted.clone() as Arc<dyn CloudProvider>);
    let resolver = walk.resolver(&scenario.template);
    let req = scenario.request();
    resolver.resolve(&env, &req).await;
    let uncached = counted.inner().total();
    counted.inner().reset();
    let start = Instant::now();
    resolver.resolve(&env, &req).await;
    let repeat_wall = start.elapsed();
    Calls {
        uncached,
        cached_repeat: counted.inner().total(),
        repeat_wall,
    }
}

/// The process's resident set size in bytes (Linux `/proc/self/statm`; `None` elsewhere).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // 4 KiB pages on every Linux this runs on; statm has no page-size field.
    Some(resident_pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Case;

    #[test]
    fn median_of_odd_and_empty() {
        let ms = Duration::from_millis;
        assert_eq!(median(vec![ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(median(vec![]), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_repeat_makes_no_calls() {
        for s in Scenario::all().unwrap() {
            let calls = count_calls(&s, Walk::Waves, Duration::from_millis(20)).await;
            assert!(calls.uncached > 0, "{:?}", s.case);
            assert_eq!(calls.cached_repeat, 0, "{:?}", s.case);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn serial_walk_of_the_cross_region_case_makes_several_calls() {
        let s = Scenario::all()
            .unwrap()
            .into_iter()
            .find(|s| s.case == Case::CrossRegionThird)
            .unwrap();
        let calls = count_calls(&s, Walk::Serial, Duration::from_millis(20)).await;
        assert!(calls.uncached >= 4, "{calls:?}");
    }

    #[test]
    fn rss_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(rss_bytes().unwrap() > 0);
        }
    }
}

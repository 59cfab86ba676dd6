//! The compiled-in catalogue of AWS commercial regions.
//!
//! The catalogue is a sorted constant table rather than something fetched at
//! run time: templates are validated offline, the local simulated cloud needs
//! the same region list as the real one, and a region code that is not in the
//! table is almost always a typo worth reporting before any API call is made.

use std::fmt;

use serde::Serialize;

use crate::RegionError;

/// The broad geography a region belongs to.
///
/// Used to group regions in listings and to explain fallback choices
/// ("nearest region on the same continent"); ordering follows the enum so
/// listings are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Continent {
    /// United States, Canada and Mexico.
    NorthAmerica,
    /// South America.
    SouthAmerica,
    /// Europe.
    Europe,
    /// Asia and Oceania (AWS's "Asia Pacific" regions).
    AsiaPacific,
    /// The Middle East, including Israel.
    MiddleEast,
    /// Africa.
    Africa,
}

impl fmt::Display for Continent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Continent::NorthAmerica => "North America",
            Continent::SouthAmerica => "South America",
            Continent::Europe => "Europe",
            Continent::AsiaPacific => "Asia Pacific",
            Continent::MiddleEast => "Middle East",
            Continent::Africa => "Africa",
        })
    }
}

/// One AWS commercial region.
///
/// Coordinates are those of the city the region is named after (or its
/// announced location); they only need to be good enough to rank regions by
/// distance when choosing fallbacks, not to locate data centres.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Region {
    /// The region code used by every AWS API, e.g. `us-east-1`.
    pub code: &'static str,
    /// The display name AWS uses in its console, e.g. `US East (N. Virginia)`.
    pub name: &'static str,
    /// The continent the region is on.
    pub continent: Continent,
    /// Approximate latitude in decimal degrees (north positive).
    pub latitude: f64,
    /// Approximate longitude in decimal degrees (east positive).
    pub longitude: f64,
    /// Whether an account must explicitly enable the region before use.
    ///
    /// Opt-in regions are disabled by default, so a fallback that points at
    /// one can fail in an account that never enabled it.
    pub opt_in: bool,
}

const fn region(
    code: &'static str,
    name: &'static str,
    continent: Continent,
    latitude: f64,
    longitude: f64,
    opt_in: bool,
) -> Region {
    Region {
        code,
        name,
        continent,
        latitude,
        longitude,
        opt_in,
    }
}

use Continent::{Africa, AsiaPacific, Europe, MiddleEast, NorthAmerica, SouthAmerica};

/// The catalogue, sorted by code (a unit test enforces the order, which lets
/// [`get`] binary-search and keeps every listing deterministic).
#[rustfmt::skip]
static CATALOGUE: &[Region] = &[
    region("af-south-1",     "Africa (Cape Town)",         Africa,       -33.92,   18.42, true),
    region("ap-east-1",      "Asia Pacific (Hong Kong)",   AsiaPacific,   22.32,  114.17, true),
    region("ap-east-2",      "Asia Pacific (Taipei)",      AsiaPacific,   25.03,  121.57, true),
    region("ap-northeast-1", "Asia Pacific (Tokyo)",       AsiaPacific,   35.68,  139.69, false),
    region("ap-northeast-2", "Asia Pacific (Seoul)",       AsiaPacific,   37.57,  126.98, false),
    region("ap-northeast-3", "Asia Pacific (Osaka)",       AsiaPacific,   34.69,  135.50, false),
    region("ap-south-1",     "Asia Pacific (Mumbai)",      AsiaPacific,   19.08,   72.88, false),
    region("ap-south-2",     "Asia Pacific (Hyderabad)",   AsiaPacific,   17.39,   78.49, true),
    region("ap-southeast-1", "Asia Pacific (Singapore)",   AsiaPacific,    1.35,  103.82, false),
    region("ap-southeast-2", "Asia Pacific (Sydney)",      AsiaPacific,  -33.87,  151.21, false),
    region("ap-southeast-3", "Asia Pacific (Jakarta)",     AsiaPacific,   -6.21,  106.85, true),
    region("ap-southeast-4", "Asia Pacific (Melbourne)",   AsiaPacific,  -37.81,  144.96, true),
    region("ap-southeast-5", "Asia Pacific (Malaysia)",    AsiaPacific,   3.139,  101.69, true),
    region("ap-southeast-6", "Asia Pacific (New Zealand)", AsiaPacific,  -36.85,  174.76, true),
    region("ap-southeast-7", "Asia Pacific (Thailand)",    AsiaPacific,   13.76,  100.50, true),
    region("ca-central-1",   "Canada (Central)",           NorthAmerica,  45.50,  -73.57, false),
    region("ca-west-1",      "Canada West (Calgary)",      NorthAmerica,  51.05, -114.07, true),
    region("eu-central-1",   "Europe (Frankfurt)",         Europe,        50.11,    8.68, false),
    region("eu-central-2",   "Europe (Zurich)",            Europe,        47.38,    8.54, true),
    region("eu-north-1",     "Europe (Stockholm)",         Europe,        59.33,   18.07, false),
    region("eu-south-1",     "Europe (Milan)",             Europe,        45.46,    9.19, true),
    region("eu-south-2",     "Europe (Spain)",             Europe,        41.65,   -0.89, true),
    region("eu-west-1",      "Europe (Ireland)",           Europe,        53.35,   -6.26, false),
    region("eu-west-2",      "Europe (London)",            Europe,        51.51,   -0.13, false),
    region("eu-west-3",      "Europe (Paris)",             Europe,        48.86,    2.35, false),
    region("il-central-1",   "Israel (Tel Aviv)",          MiddleEast,    32.09,   34.78, true),
    region("me-central-1",   "Middle East (UAE)",          MiddleEast,    25.20,   55.27, true),
    region("me-south-1",     "Middle East (Bahrain)",      MiddleEast,    26.23,   50.59, true),
    region("mx-central-1",   "Mexico (Central)",           NorthAmerica,  20.59, -100.39, true),
    region("sa-east-1",      "South America (São Paulo)",  SouthAmerica, -23.55,  -46.63, false),
    region("us-east-1",      "US East (N. Virginia)",      NorthAmerica,  39.04,  -77.49, false),
    region("us-east-2",      "US East (Ohio)",             NorthAmerica,  39.96,  -83.00, false),
    region("us-west-1",      "US West (N. California)",    NorthAmerica,  37.77, -122.42, false),
    region("us-west-2",      "US West (Oregon)",           NorthAmerica,  45.84, -119.70, false),
];

/// Extra words people type instead of a code, mapped to the region they mean.
///
/// Only words that do not already appear in a region's display name are
/// listed; display names are searched separately by [`suggest`].
const ALIASES: &[(&str, &str)] = &[
    ("aragon", "eu-south-2"),
    ("auckland", "ap-southeast-6"),
    ("bangkok", "ap-southeast-7"),
    ("dubai", "me-central-1"),
    ("dublin", "eu-west-1"),
    ("kuala lumpur", "ap-southeast-5"),
    ("montreal", "ca-central-1"),
    ("queretaro", "mx-central-1"),
    ("sao paulo", "sa-east-1"),
    ("virginia", "us-east-1"),
    ("zaragoza", "eu-south-2"),
];

/// Mean Earth radius in kilometres (IUGG), used by [`distance_km`].
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// The whole catalogue, sorted by region code.
pub fn all() -> &'static [Region] {
    CATALOGUE
}

/// The region with exactly this code, if it is in the catalogue.
///
/// Matching is exact (AWS codes are lower case); use [`lookup`] when the code
/// comes from a user and a helpful error is wanted.
pub fn get(code: &str) -> Option<&'static Region> {
    index_of(code).map(|i| &CATALOGUE[i])
}

/// Position of `code` in [`all`], used by the graph to store edges densely.
pub(crate) fn index_of(code: &str) -> Option<usize> {
    CATALOGUE.binary_search_by(|r| r.code.cmp(code)).ok()
}

/// The known region code closest to `code`, or `None` when nothing is close.
///
/// Tries, in order: the code in another case or with stray whitespace, the
/// most similar code by edit distance (ties broken by code, so the answer is
/// deterministic), and finally a city or country name such as `frankfurt` or
/// `sao paulo` that matches exactly one region.
pub fn suggest(code: &str) -> Option<&'static str> {
    let needle = code.trim().to_lowercase();
    if needle.is_empty() {
        return None;
    }
    if let Some(region) = get(&needle) {
        return Some(region.code);
    }

    if let Some(code) = cws_util::suggest::did_you_mean(&needle, CATALOGUE.iter().map(|r| r.code)) {
        return Some(code);
    }

    suggest_by_place(&needle)
}

/// Match a place name against display names and [`ALIASES`]; only an
/// unambiguous match is returned ("europe" matches eight regions, so it
/// suggests nothing).
fn suggest_by_place(needle: &str) -> Option<&'static str> {
    let needle = needle.replace(['_', '-'], " ");
    if needle.chars().count() < 4 {
        return None;
    }
    let mut matches: Vec<&'static str> = CATALOGUE
        .iter()
        .filter(|r| r.name.to_lowercase().contains(&needle))
        .map(|r| r.code)
        .chain(
            ALIASES
                .iter()
                .filter(|(alias, _)| alias.contains(&needle))
                .map(|(_, code)| *code),
        )
        .collect();
    matches.sort_unstable();
    matches.dedup();
    match matches.as_slice() {
        [only] => Some(only),
        _ => None,
    }
}

/// The region with this code, or [`RegionError::UnknownRegion`] carrying a
/// "did you mean" suggestion for the user.
pub fn lookup(code: &str) -> Result<&'static Region, RegionError> {
    get(code).ok_or_else(|| RegionError::UnknownRegion {
        region: code.to_owned(),
        suggestion: suggest(code),
    })
}

/// Great-circle distance between two regions in kilometres (haversine).
///
/// Haversine on a sphere is within about 0.5% of the ellipsoidal distance,
/// far more precise than the city coordinates it is fed.
pub fn distance_km(a: &Region, b: &Region) -> f64 {
    let (lat1, lat2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (b.longitude - a.longitude).to_radians();
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    // Clamp guards against rounding pushing h a hair above 1 for antipodes.
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalogue_is_large_sorted_and_unique() {
        assert!(all().len() >= 30, "only {} regions", all().len());
        for pair in all().windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} must sort before {} (strictly, so codes are unique)",
                pair[0].code,
                pair[1].code
            );
        }
        let names: HashSet<_> = all().iter().map(|r| r.name).collect();
        assert_eq!(names.len(), all().len(), "display names must be unique");
    }

    #[test]
    fn coordinates_are_in_range() {
        for r in all() {
            assert!((-90.0..=90.0).contains(&r.latitude), "{}", r.code);
            assert!((-180.0..=180.0).contains(&r.longitude), "{}", r.code);
        }
    }

    #[test]
    fn codes_match_continents() {
        for r in all() {
            let expected = match r.code.split('-').next() {
                Some("us" | "ca" | "mx") => Continent::NorthAmerica,
                Some("sa") => Continent::SouthAmerica,
                Some("eu") => Continent::Europe,
                Some("ap") => Continent::AsiaPacific,
                Some("me" | "il") => Continent::MiddleEast,
                Some("af") => Continent::Africa,
                other => panic!("unexpected prefix {other:?} in {}", r.code),
            };
            assert_eq!(r.continent, expected, "{}", r.code);
        }
    }

    #[test]
    fn required_regions_are_present() {
        for code in [
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
            "ca-central-1",
            "ca-west-1",
            "mx-central-1",
            "sa-east-1",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "il-central-1",
            "me-south-1",
            "me-central-1",
            "af-south-1",
            "ap-east-1",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-7",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
        ] {
            assert!(get(code).is_some(), "{code} missing from the catalogue");
        }
    }

    #[test]
    fn opt_in_flags_match_aws() {
        for code in [
            "af-south-1",
            "ap-east-1",
            "me-south-1",
            "eu-south-1",
            "ap-southeast-3",
            "il-central-1",
            "mx-central-1",
        ] {
            assert!(lookup(code).map(|r| r.opt_in).unwrap_or(false), "{code}");
        }
        for code in ["us-east-1", "eu-west-1", "ap-northeast-3", "sa-east-1"] {
            assert!(!lookup(code).map(|r| r.opt_in).unwrap_or(true), "{code}");
        }
    }

    #[test]
    fn display_names_and_continents() {
        assert_eq!(
            get("us-east-1").map(|r| r.name),
            Some("US East (N. Virginia)")
        );
        assert_eq!(Continent::NorthAmerica.to_string(), "North America");
        assert_eq!(Continent::AsiaPacific.to_string(), "Asia Pacific");
        assert_eq!(Continent::MiddleEast.to_string(), "Middle East");
        assert_eq!(
            serde_json::to_value(Continent::SouthAmerica).ok(),
            Some(serde_json::json!("south_america"))
        );
    }

    #[test]
    fn get_is_exact() {
        assert!(get("US-EAST-1").is_none());
        assert!(get(" us-east-1").is_none());
        assert!(get("").is_none());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("us-est-1"), Some("us-east-1"));
        assert_eq!(suggest("US-EAST-1"), Some("us-east-1"));
        assert_eq!(suggest("eu-wset-1"), Some("eu-west-1"));
        assert_eq!(suggest("useast1"), Some("us-east-1"));
        assert_eq!(suggest("ap-southeast-9"), Some("ap-southeast-1"));
        assert_eq!(suggest("frankfurt"), Some("eu-central-1"));
        assert_eq!(suggest("Sao Paulo"), Some("sa-east-1"));
        assert_eq!(
            suggest("europe"),
            None,
            "ambiguous place names suggest nothing"
        );
        assert_eq!(suggest("banana"), None);
        assert_eq!(suggest(""), None);
    }

    #[test]
    fn lookup_reports_unknown_with_suggestion() {
        match lookup("us-est-1") {
            Err(RegionError::UnknownRegion { region, suggestion }) => {
                assert_eq!(region, "us-est-1");
                assert_eq!(suggestion, Some("us-east-1"));
            }
            other => panic!("expected UnknownRegion, got {other:?}"),
        }
        let message = lookup("us-est-1").map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            message,
            "unknown region `us-est-1`; did you mean `us-east-1`?"
        );
        match lookup("mars-1") {
            Err(RegionError::UnknownRegion { region, suggestion }) => {
                assert_eq!(region, "mars-1");
                assert_eq!(suggestion, None);
            }
            other => panic!("expected UnknownRegion, got {other:?}"),
        }
        assert_eq!(lookup("eu-west-1").map(|r| r.code).ok(), Some("eu-west-1"));
    }

    #[test]
    fn distances_are_plausible() {
        let d = |a: &str, b: &str| match (get(a), get(b)) {
            (Some(a), Some(b)) => distance_km(a, b),
            _ => panic!("unknown region in test"),
        };
        assert_eq!(d("us-east-1", "us-east-1"), 0.0);
        assert!((d("us-east-1", "us-east-2") - d("us-east-2", "us-east-1")).abs() < 1e-9);
        // London–Paris is about 344 km; Virginia–Ireland about 5,500 km.
        assert!((300.0..400.0).contains(&d("eu-west-2", "eu-west-3")));
        assert!((5_000.0..6_000.0).contains(&d("us-east-1", "eu-west-1")));
        // Nothing on Earth is further apart than half the circumference.
        for a in all() {
            for b in all() {
                let km = distance_km(a, b);
                assert!((0.0..=20_040.0).contains(&km), "{} {}", a.code, b.code);
            }
        }
    }
}

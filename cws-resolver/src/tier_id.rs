//! The open identifier of a resolution tier.

use std::borrow::{Borrow, Cow};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A tier's identity: a short `snake_case` name, stable in reports, JSON and consent
/// requests, and how tiers are placed in a chain ([`Resolver::insert_after`]).
///
/// The built-in tiers have constants; a tier from another crate names itself with
/// [`TierId::from_static`] (a name fixed in code) or [`TierId::new`] (a name from input,
/// checked):
///
/// ```
/// use cws_resolver::TierId;
/// const INSTITUTION: TierId = TierId::from_static("institution_catalogue");
/// assert_eq!(INSTITUTION, "institution_catalogue");
/// assert!(TierId::new("Not A Tier").is_err());
/// assert_eq!(TierId::new("dynamic_search").unwrap(), TierId::DYNAMIC_SEARCH);
/// ```
///
/// [`Resolver::insert_after`]: crate::Resolver::insert_after
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TierId(Cow<'static, str>);

/// A tier name that is not a `snake_case` identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{name}` is not a tier name: use 1 to {max} lowercase ASCII letters, digits and \
     underscores, starting with a letter",
    max = TierId::MAX_LEN
)]
pub struct InvalidTierId {
    /// The name given.
    pub name: String,
}

impl TierId {
    /// The template's mapped image for the region.
    pub const DIRECT_MAPPING: TierId = TierId::from_static("direct_mapping");
    /// A search by trusted owner, name pattern, architecture and tags.
    pub const DYNAMIC_SEARCH: TierId = TierId::from_static("dynamic_search");
    /// An AWS Marketplace product.
    pub const MARKETPLACE: TierId = TierId::from_static("marketplace");
    /// A copy from a fallback region.
    pub const CROSS_REGION: TierId = TierId::from_static("cross_region");
    /// A base OS image plus the provisioning script.
    pub const SCRIPT_FALLBACK: TierId = TierId::from_static("script_fallback");

    /// The built-in tiers, in default priority order.
    pub const BUILTIN: [TierId; 5] = [
        TierId::DIRECT_MAPPING,
        TierId::DYNAMIC_SEARCH,
        TierId::MARKETPLACE,
        TierId::CROSS_REGION,
        TierId::SCRIPT_FALLBACK,
    ];

    /// The longest accepted name.
    pub const MAX_LEN: usize = 64;

    /// A name fixed in code. It should be `snake_case` like the built-in names; unlike
    /// [`TierId::new`] it is not checked, so it can be used in `const` items.
    pub const fn from_static(name: &'static str) -> TierId {
        TierId(Cow::Borrowed(name))
    }

    /// A name from input: 1 to [`TierId::MAX_LEN`] lowercase ASCII letters, digits and
    /// underscores, starting with a letter.
    pub fn new(name: impl Into<String>) -> Result<TierId, InvalidTierId> {
        let name = name.into();
        let ok = name.len() <= Self::MAX_LEN
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(TierId(Cow::Owned(name)))
        } else {
            Err(InvalidTierId { name })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is one of the built-in tiers.
    pub fn is_builtin(&self) -> bool {
        Self::BUILTIN.contains(self)
    }
}

impl fmt::Display for TierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, so tables can align tier names.
        f.pad(self.as_str())
    }
}

/// Same as [`TierId::from_static`]: a name fixed in code.
impl From<&'static str> for TierId {
    fn from(name: &'static str) -> TierId {
        TierId::from_static(name)
    }
}

impl AsRef<str> for TierId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for TierId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for TierId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for TierId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<TierId> for &str {
    fn eq(&self, other: &TierId) -> bool {
        *self == other.as_str()
    }
}

impl Serialize for TierId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TierId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        TierId::new(name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_compare_with_strings() {
        for bad in [
            "",
            "Direct",
            "1tier",
            "has space",
            "dash-ed",
            &"a".repeat(65),
        ] {
            assert_eq!(
                TierId::new(bad).unwrap_err(),
                InvalidTierId { name: bad.into() }
            );
        }
        let id = TierId::new("institution_catalogue_2").unwrap();
        assert_eq!(id, "institution_catalogue_2");
        assert!(!id.is_builtin());
        assert!(TierId::CROSS_REGION.is_builtin());
        assert_eq!(
            format!("[{:<16}]", TierId::MARKETPLACE),
            "[marketplace     ]"
        );
        assert_eq!(
            serde_json::to_string(&TierId::SCRIPT_FALLBACK).unwrap(),
            "\"script_fallback\""
        );
        let back: TierId = serde_json::from_str("\"dynamic_search\"").unwrap();
        assert_eq!(back, TierId::DYNAMIC_SEARCH);
        assert!(serde_json::from_str::<TierId>("\"Bad Name\"").is_err());
        // Map lookups by &str work through Borrow (hashing agrees with str).
        let m: std::collections::BTreeMap<TierId, u8> = [(TierId::MARKETPLACE, 1)].into();
        assert_eq!(m.get("marketplace"), Some(&1));
    }
}

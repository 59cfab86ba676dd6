//! Parsing of the YAML override file (`$CWS_HOME/regions.yaml`, `--regions-file`).
//!
//! ```yaml
//! fallbacks:
//!   us-east-1: [us-west-2, us-east-2]
//!   eu-west-1: [eu-central-1]
//! ```
//!
//! Validation happens *while* deserialising, through `DeserializeSeed`s whose
//! string visitors check one region code at a time. That is what lets every
//! error carry the line and column of the offending code: `serde_norway`
//! attaches the position of the scalar whose visitor failed. The human
//! message is kept in a side channel ([`Ctx`]) so the final error is not
//! prefixed with serde's internal path syntax.
//!
//! An empty document, a bare `~` or `fallbacks:` with nothing under it all
//! mean "no overrides"; a region with nothing after its colon is an error
//! (write `[]` to mean "no fallbacks").

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::RegionError;
use crate::catalogue::{all, index_of, suggest};

/// The only top-level key an override file may have.
const TOP_KEY: &str = "fallbacks";

/// What a valid file contains: catalogue indexes of each listed region and
/// its ordered fallback targets, in file order.
pub(crate) type Overrides = Vec<(usize, Vec<usize>)>;

/// Parse and validate an override file. `origin` names the file in errors.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Overrides, RegionError> {
    let ctx = Ctx::default();
    let deserializer = serde_norway::Deserializer::from_str(text);
    FileSeed(&ctx).deserialize(deserializer).map_err(|err| {
        let problem = ctx.problem.into_inner();
        let unknown_region = problem.as_ref().and_then(|p| p.unknown_region.clone());
        RegionError::InvalidGraph {
            origin: origin.to_owned(),
            message: describe(&err, problem.map(|p| p.message)),
            unknown_region,
        }
    })
}

/// Turn a `serde_norway` error into "line L, column C: what; how to fix".
fn describe(err: &serde_norway::Error, problem: Option<String>) -> String {
    let location = err.location();
    let message = match problem {
        // One of our own validation failures: already says what to do.
        Some(problem) => problem,
        // A YAML syntax or shape error from the parser.
        None => {
            let mut raw = err.to_string();
            if let Some(loc) = &location {
                raw = raw.replacen(
                    &format!(" at line {} column {}", loc.line(), loc.column()),
                    "",
                    1,
                );
            }
            format!(
                "{raw}; the file must map each region to a list of fallback regions, \
                 e.g. `fallbacks: {{us-east-1: [us-west-2, us-east-2]}}`"
            )
        }
    };
    match location {
        Some(loc) => format!("line {}, column {}: {message}", loc.line(), loc.column()),
        None => message,
    }
}

/// One validation failure found while deserialising.
struct Problem {
    /// What is wrong and how to fix it.
    message: String,
    /// The code, when the failure is a region code the catalogue does not know.
    unknown_region: Option<String>,
}

impl From<String> for Problem {
    fn from(message: String) -> Self {
        Problem {
            message,
            unknown_region: None,
        }
    }
}

/// Shared validation state for one parse.
#[derive(Default)]
struct Ctx {
    /// The first validation failure, if any.
    problem: RefCell<Option<Problem>>,
    /// Whether `fallbacks:` was already seen (a repeated key is an error).
    seen_top_key: Cell<bool>,
}

impl Ctx {
    /// Record `message` and return it as a deserialisation error so that
    /// `serde_norway` attaches the current position to it.
    fn fail<E: de::Error>(&self, problem: impl Into<Problem>) -> E {
        let problem = problem.into();
        let error = E::custom(&problem.message);
        let mut slot = self.problem.borrow_mut();
        if slot.is_none() {
            *slot = Some(problem);
        }
        error
    }
}

/// `code` (in the role given, e.g. " (listed as a fallback of `x`)") is not
/// in the catalogue.
fn unknown_region(code: &str, role: &str) -> Problem {
    let fix = match suggest(code) {
        Some(s) => format!("did you mean `{s}`? Fix"),
        None => "fix".to_owned(),
    };
    Problem {
        message: format!("`{code}`{role} is not a known region; {fix} the code or remove it"),
        unknown_region: Some(code.to_owned()),
    }
}

pub(crate) fn self_edge_message(region: &str) -> String {
    format!(
        "`{region}` lists itself as a fallback; remove `{region}` from its own list \
         (a region is always tried before its fallbacks)"
    )
}

pub(crate) fn duplicate_target_message(region: &str, target: &str) -> String {
    format!(
        "`{target}` appears more than once in the fallbacks of `{region}`; list each region once"
    )
}

pub(crate) fn duplicate_region_message(region: &str) -> String {
    format!("`{region}` is given more than once; merge its fallbacks into a single list")
}

/// Reads one string scalar and validates it *inside* `visit_str`.
///
/// Failing inside the visitor (rather than after `String::deserialize`
/// returns) is what makes `serde_norway` report the scalar's own line and
/// column instead of the enclosing mapping's or sequence's.
struct Scalar<'a, F> {
    ctx: &'a Ctx,
    expecting: &'static str,
    check: F,
}

impl<'de, T, F: FnOnce(&str) -> Result<T, Problem>> Visitor<'de> for Scalar<'_, F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        (self.check)(value).map_err(|message| self.ctx.fail(message))
    }
}

/// The whole document: empty, or a mapping with only `fallbacks`.
struct FileSeed<'a>(&'a Ctx);

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = Overrides;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Overrides, D::Error> {
        // `deserialize_option` turns an empty file (or a bare `~`) into "no
        // overrides" instead of an error.
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
    type Value = Overrides;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping with a `fallbacks` key")
    }

    fn visit_none<E: de::Error>(self) -> Result<Overrides, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Overrides, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Overrides, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Overrides, A::Error> {
        let mut overrides = Vec::new();
        while map.next_key_seed(TopKeySeed(self.0))?.is_some() {
            overrides = map.next_value_seed(FallbacksSeed(self.0))?;
        }
        Ok(overrides)
    }
}

/// A top-level key; only `fallbacks`, once.
struct TopKeySeed<'a>(&'a Ctx);

impl<'de> DeserializeSeed<'de> for TopKeySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let ctx = self.0;
        d.deserialize_str(Scalar {
            ctx,
            expecting: "the key `fallbacks`",
            check: |key: &str| {
                if key != TOP_KEY {
                    let hint = if cws_util::suggest::did_you_mean(key, [TOP_KEY]).is_some() {
                        " (did you mean `fallbacks`?)"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "unknown top-level key `{key}`{hint}; the only key allowed is \
                         `{TOP_KEY}`, a mapping from region to its list of fallback regions"
                    )
                    .into());
                }
                if ctx.seen_top_key.replace(true) {
                    return Err(format!(
                        "`{TOP_KEY}` appears more than once; merge the entries into a single \
                         `{TOP_KEY}` mapping"
                    )
                    .into());
                }
                Ok(())
            },
        })
    }
}

/// The value of `fallbacks`: empty, or region -> list of regions.
struct FallbacksSeed<'a>(&'a Ctx);

impl<'de> DeserializeSeed<'de> for FallbacksSeed<'_> {
    type Value = Overrides;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Overrides, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for FallbacksSeed<'_> {
    type Value = Overrides;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping from region to its fallback regions, e.g. `us-east-1: [us-west-2]`")
    }

    fn visit_none<E: de::Error>(self) -> Result<Overrides, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Overrides, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Overrides, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Overrides, A::Error> {
        let mut overrides: Overrides = Vec::new();
        while let Some(region) = map.next_key_seed(RegionKeySeed {
            ctx: self.0,
            seen: &overrides,
        })? {
            let targets = map.next_value_seed(TargetsSeed {
                ctx: self.0,
                region,
            })?;
            overrides.push((region, targets));
        }
        Ok(overrides)
    }
}

/// A region key under `fallbacks`: known, and not repeated.
struct RegionKeySeed<'a> {
    ctx: &'a Ctx,
    seen: &'a Overrides,
}

impl<'de> DeserializeSeed<'de> for RegionKeySeed<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        let seen = self.seen;
        d.deserialize_str(Scalar {
            ctx: self.ctx,
            expecting: "a region code such as `us-east-1`",
            check: |code: &str| {
                let index = index_of(code).ok_or_else(|| unknown_region(code, ""))?;
                if seen.iter().any(|(s, _)| *s == index) {
                    return Err(duplicate_region_message(code).into());
                }
                Ok(index)
            },
        })
    }
}

/// The list of fallbacks of one region.
struct TargetsSeed<'a> {
    ctx: &'a Ctx,
    region: usize,
}

impl<'de> DeserializeSeed<'de> for TargetsSeed<'_> {
    type Value = Vec<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<usize>, D::Error> {
        // Through `deserialize_option` so that a missing list (`us-east-1:`
        // with nothing after it) is an error rather than silently meaning
        // "no fallbacks", which serde_norway would otherwise make it.
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for TargetsSeed<'_> {
    type Value = Vec<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a list of fallback regions for `{}`, e.g. [us-west-2, us-east-2] ([] for none)",
            all()[self.region].code
        )
    }

    fn visit_none<E: de::Error>(self) -> Result<Vec<usize>, E> {
        let region = all()[self.region].code;
        let example = if region == "us-east-1" {
            "us-east-2"
        } else {
            "us-east-1"
        };
        Err(self.ctx.fail(format!(
            "`{region}` has no list of fallbacks; give one, e.g. `{region}: [{example}]`, \
             or write `{region}: []` for no fallbacks"
        )))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<usize>, E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Vec<usize>, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<usize>, A::Error> {
        let mut targets = Vec::new();
        while let Some(target) = seq.next_element_seed(TargetSeed {
            ctx: self.ctx,
            region: self.region,
            seen: &targets,
        })? {
            targets.push(target);
        }
        Ok(targets)
    }
}

/// One fallback target: known, not the region itself, not repeated.
struct TargetSeed<'a> {
    ctx: &'a Ctx,
    region: usize,
    seen: &'a [usize],
}

impl<'de> DeserializeSeed<'de> for TargetSeed<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        let (own, seen) = (self.region, self.seen);
        let region = all()[own].code;
        d.deserialize_str(Scalar {
            ctx: self.ctx,
            expecting: "a region code such as `us-east-1`",
            check: |code: &str| {
                let Some(index) = index_of(code) else {
                    let role = format!(" (listed as a fallback of `{region}`)");
                    return Err(unknown_region(code, &role));
                };
                if index == own {
                    return Err(self_edge_message(region).into());
                }
                if seen.contains(&index) {
                    return Err(duplicate_target_message(region, code).into());
                }
                Ok(index)
            },
        })
    }
}

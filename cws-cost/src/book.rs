//! The price book: what things cost, by region, and how a user overrides it.
//!
//! The bundled book (`data/prices.toml`, sources in `PRICES.md`) holds us-east-1
//! list prices and a multiplier per region; a user override file in the same
//! format changes any of it. Both are read by one parser, so anything the
//! bundled file can say an override can say too.
//!
//! # File format
//!
//! ```toml
//! version = "2026-11-01"            # required in a full book; a label in an override
//!
//! [instances]                       # us-east-1 $/hour; other regions × multiplier
//! "m6i.large" = 0.096
//!
//! [region_prices."eu-west-1"]       # exact $/hour in one region (no multiplier)
//! "m6i.large" = 0.107
//!
//! [multipliers.regions]             # price level relative to us-east-1
//! eu-west-1 = 1.11
//! [multipliers.continents]          # for catalogued regions not listed above
//! europe = 1.17                     # north_america, south_america, europe,
//!                                   # asia_pacific, middle_east, africa
//! [snapshot]
//! gb_month = 0.05                   # EBS snapshot $/GB-month, every region...
//! [snapshot.regions]
//! sa-east-1 = 0.068                 # ...except these
//!
//! [transfer]                        # inter-region transfer $/GB by SOURCE region
//! default = 0.09                    # regions the catalogue does not know
//! [transfer.continents]
//! europe = 0.02
//! [transfer.regions]
//! ap-south-1 = 0.086
//! ```
//!
//! Amounts are TOML numbers or strings, read as exact decimals (at most six
//! decimal places). In an override, a type under `[instances]` gets a new
//! us-east-1 price that applies to *all* regions through the multipliers, and
//! replaces region-specific prices of that type from earlier layers; a type
//! under `[region_prices."<region>"]` is priced exactly, in that region only.
//! New instance types may be added; region codes must be known to
//! `cws-regions`. Every mistake is reported with the file, line, column, key
//! and fix.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::sync::LazyLock;

use cws_regions::Continent;
use serde::Deserialize;
use toml::Spanned;

use crate::CostError;
use crate::money::{MICROS_PER_DOLLAR, Money, clamp_i64, div_round_half_away, money_from_f64};

/// The bundled price book's source text.
pub(crate) const BUNDLED_PRICES: &str = include_str!("../data/prices.toml");

static BUNDLED: LazyLock<PriceBook> = LazyLock::new(|| {
    PriceBook::from_toml_str(
        BUNDLED_PRICES,
        "bundled price book (cws-cost/data/prices.toml)",
    )
    // The file is a compile-time constant; `every_bundled_price_parses` and
    // the other price-book tests prove it valid.
    .expect("the bundled price book is valid")
});

/// Instance, snapshot and transfer prices for every region, from a dated,
/// bundled list plus any user overrides.
///
/// Cheap to clone; [`PriceBook::bundled`] parses the embedded file once per
/// process.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceBook {
    version: String,
    overrides: Vec<String>,
    /// us-east-1 $/hour by instance type.
    base: BTreeMap<String, Money>,
    /// Exact $/hour by region, then instance type.
    regional: BTreeMap<&'static str, BTreeMap<String, Money>>,
    /// Price level relative to us-east-1, in millionths.
    region_multipliers: BTreeMap<&'static str, i64>,
    continent_multipliers: BTreeMap<Continent, i64>,
    snapshot_default: Money,
    snapshot_regions: BTreeMap<&'static str, Money>,
    transfer_default: Money,
    transfer_continents: BTreeMap<Continent, Money>,
    transfer_regions: BTreeMap<&'static str, Money>,
}

impl Default for PriceBook {
    /// The bundled book.
    fn default() -> PriceBook {
        PriceBook::bundled()
    }
}

impl PriceBook {
    /// The price book compiled into this crate (see `PRICES.md` for its
    /// sources and date).
    pub fn bundled() -> PriceBook {
        BUNDLED.clone()
    }

    /// Reads a complete price book (same format as the bundled one) from TOML.
    ///
    /// Unlike an override, a complete book must carry `version`,
    /// `snapshot.gb_month`, `transfer.default` and a value for every continent
    /// under `[multipliers.continents]` and `[transfer.continents]`, so that
    /// every region has a price. `origin` names the text in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<PriceBook, CostError> {
        let src = Source { text, origin };
        let raw = src.parse()?;
        let mut missing = Vec::new();
        if raw.version.is_none() {
            missing.push("`version`".to_string());
        }
        if raw.snapshot.gb_month.is_none() {
            missing.push("`gb_month` in [snapshot]".to_string());
        }
        if raw.transfer.default.is_none() {
            missing.push("`default` in [transfer]".to_string());
        }
        for (table, continents) in [
            ("multipliers.continents", &raw.multipliers.continents),
            ("transfer.continents", &raw.transfer.continents),
        ] {
            for (name, _) in CONTINENTS {
                if !continents.keys().any(|k| k.get_ref() == name) {
                    missing.push(format!("`{name}` in [{table}]"));
                }
            }
        }
        if !missing.is_empty() {
            return Err(CostError::InvalidPriceFile {
                origin: origin.to_owned(),
                message: format!(
                    "a complete price book needs {}; add them (see the bundled cws-cost/data/prices.toml for an example)",
                    missing.join(", ")
                ),
            });
        }
        let mut book = PriceBook {
            version: String::new(),
            overrides: Vec::new(),
            base: BTreeMap::new(),
            regional: BTreeMap::new(),
            region_multipliers: BTreeMap::new(),
            continent_multipliers: BTreeMap::new(),
            snapshot_default: Money::ZERO,
            snapshot_regions: BTreeMap::new(),
            transfer_default: Money::ZERO,
            transfer_continents: BTreeMap::new(),
            transfer_regions: BTreeMap::new(),
        };
        let version = book.apply(raw, &src)?;
        book.version = version.unwrap_or_default();
        Ok(book)
    }

    /// Applies a user override file on top of this book.
    ///
    /// Errors name the file, the line and column, the key and the fix. The file
    /// is read only if it is a regular file of at most
    /// [`MAX_PRICE_FILE_BYTES`](crate::MAX_PRICE_FILE_BYTES) (1 MiB); otherwise
    /// the error is [`CostError::Refused`], and [`CostError::Io`] when it cannot
    /// be read at all.
    pub fn with_overrides_file(self, path: &Path) -> Result<PriceBook, CostError> {
        let text = cws_util::fs::read_text_bounded(path, crate::MAX_PRICE_FILE_BYTES)?;
        self.with_overrides_str(&text, &path.display().to_string())
    }

    /// Applies override TOML text on top of this book; `origin` names the text
    /// in error messages (usually the file path).
    ///
    /// The resulting [`PriceBook::version`] is `<base>+<label>`, where the label
    /// is the override's own `version` or `overrides`, so every estimate shows
    /// that it used adjusted prices.
    pub fn with_overrides_str(mut self, text: &str, origin: &str) -> Result<PriceBook, CostError> {
        let src = Source { text, origin };
        let raw = src.parse()?;
        let label = self.apply(raw, &src)?;
        self.version = format!(
            "{}+{}",
            self.version,
            label.as_deref().unwrap_or("overrides")
        );
        self.overrides.push(origin.to_owned());
        Ok(self)
    }

    /// The price book's version: the date of the bundled list, plus a label for
    /// each override applied.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Where the overrides applied to this book came from, in order.
    pub fn overrides(&self) -> &[String] {
        &self.overrides
    }

    /// On-demand Linux $/hour for `instance_type` in `region`.
    ///
    /// An exact regional price wins; otherwise the us-east-1 price is scaled by
    /// the region's multiplier and rounded half-up to the micro-dollar.
    /// Unknown types and regions are errors with a "did you mean" suggestion.
    pub fn instance_hourly(&self, instance_type: &str, region: &str) -> Result<Money, CostError> {
        let info =
            cws_regions::get(region.trim()).ok_or_else(|| CostError::unknown_region(region))?;
        let ty = instance_type.trim().to_ascii_lowercase();
        if let Some(price) = self.regional.get(info.code).and_then(|m| m.get(&ty)) {
            return Ok(*price);
        }
        if let Some(base) = self.base.get(&ty) {
            return Ok(scale(*base, self.multiplier(info.code)));
        }
        let priced_in: Vec<String> = self
            .regional
            .iter()
            .filter(|(_, prices)| prices.contains_key(&ty))
            .map(|(region, _)| (*region).to_owned())
            .collect();
        if priced_in.is_empty() {
            Err(CostError::UnknownInstanceType {
                suggestion: self.suggest_type(&ty),
                instance_type: instance_type.to_owned(),
            })
        } else {
            Err(CostError::NoPriceInRegion {
                instance_type: instance_type.to_owned(),
                region: info.code.to_owned(),
                priced_in,
            })
        }
    }

    /// EBS snapshot storage $/GB-month in `region` (the standard price for
    /// regions without their own).
    pub fn snapshot_gb_month(&self, region: &str) -> Money {
        self.snapshot_regions
            .get(region.trim())
            .copied()
            .unwrap_or(self.snapshot_default)
    }

    /// Inter-region data transfer $/GB out of `source_region` (what copying a
    /// snapshot away from it costs per GB).
    pub fn transfer_per_gb(&self, source_region: &str) -> Money {
        let code = source_region.trim();
        if let Some(price) = self.transfer_regions.get(code) {
            return *price;
        }
        cws_regions::get(code)
            .and_then(|r| self.transfer_continents.get(&r.continent))
            .copied()
            .unwrap_or(self.transfer_default)
    }

    /// Every instance type with a price in at least one region, sorted.
    pub fn instance_types(&self) -> Vec<&str> {
        let all: BTreeSet<&str> = self
            .base
            .keys()
            .chain(self.regional.values().flat_map(BTreeMap::keys))
            .map(String::as_str)
            .collect();
        all.into_iter().collect()
    }

    /// The multiplier for `region` in millionths (1.0 = 1 000 000).
    fn multiplier(&self, region: &'static str) -> i64 {
        if let Some(m) = self.region_multipliers.get(region) {
            return *m;
        }
        cws_regions::get(region)
            .and_then(|r| self.continent_multipliers.get(&r.continent))
            .copied()
            .unwrap_or(MICROS_PER_DOLLAR)
    }

    fn suggest_type(&self, ty: &str) -> Option<String> {
        closest(ty, self.instance_types()).map(str::to_owned)
    }

    /// Validates `raw` completely, then merges it in. Returns the file's
    /// `version`, if any.
    fn apply(&mut self, raw: RawFile, src: &Source<'_>) -> Result<Option<String>, CostError> {
        let known_types: BTreeSet<String> = self
            .instance_types()
            .into_iter()
            .map(str::to_owned)
            .collect();

        let mut base = Vec::new();
        for (key, value) in &raw.instances {
            let ty = src.instance_type(key, value, &known_types, "[instances]")?;
            let price = src.amount(
                value,
                key.span(),
                &format!("`{ty}` in [instances]"),
                Bound::Positive,
            )?;
            base.push((ty, price));
        }

        let mut regional = Vec::new();
        for (region_key, prices) in &raw.region_prices {
            let region = src.region(region_key, "[region_prices]")?;
            let table = format!("[region_prices.\"{region}\"]");
            for (key, value) in prices {
                let ty = src.instance_type(key, value, &known_types, &table)?;
                let price = src.amount(
                    value,
                    key.span(),
                    &format!("`{ty}` in {table}"),
                    Bound::Positive,
                )?;
                regional.push((region, ty, price));
            }
        }

        let region_multipliers = src.region_amounts(
            &raw.multipliers.regions,
            "[multipliers.regions]",
            Bound::Positive,
        )?;
        let continent_multipliers = src.continent_amounts(
            &raw.multipliers.continents,
            "[multipliers.continents]",
            Bound::Positive,
        )?;
        let snapshot_default = raw
            .snapshot
            .gb_month
            .as_ref()
            .map(|v| {
                src.amount(
                    v.get_ref(),
                    v.span(),
                    "`gb_month` in [snapshot]",
                    Bound::NonNegative,
                )
            })
            .transpose()?;
        let snapshot_regions = src.region_amounts(
            &raw.snapshot.regions,
            "[snapshot.regions]",
            Bound::NonNegative,
        )?;
        let transfer_default = raw
            .transfer
            .default
            .as_ref()
            .map(|v| {
                src.amount(
                    v.get_ref(),
                    v.span(),
                    "`default` in [transfer]",
                    Bound::NonNegative,
                )
            })
            .transpose()?;
        let transfer_continents = src.continent_amounts(
            &raw.transfer.continents,
            "[transfer.continents]",
            Bound::NonNegative,
        )?;
        let transfer_regions = src.region_amounts(
            &raw.transfer.regions,
            "[transfer.regions]",
            Bound::NonNegative,
        )?;

        // Everything is valid: merge.
        for (ty, price) in base {
            // A new us-east-1 price applies to all regions, so drop exact
            // regional prices of this type that an earlier layer set.
            for prices in self.regional.values_mut() {
                prices.remove(&ty);
            }
            self.base.insert(ty, price);
        }
        for (region, ty, price) in regional {
            self.regional.entry(region).or_default().insert(ty, price);
        }
        self.regional.retain(|_, prices| !prices.is_empty());
        self.region_multipliers
            .extend(region_multipliers.into_iter().map(|(r, m)| (r, m.micros())));
        self.continent_multipliers.extend(
            continent_multipliers
                .into_iter()
                .map(|(c, m)| (c, m.micros())),
        );
        if let Some(price) = snapshot_default {
            self.snapshot_default = price;
        }
        self.snapshot_regions.extend(snapshot_regions);
        if let Some(price) = transfer_default {
            self.transfer_default = price;
        }
        self.transfer_continents.extend(transfer_continents);
        self.transfer_regions.extend(transfer_regions);

        Ok(raw.version.map(Spanned::into_inner))
    }
}

/// `price × multiplier`, with the multiplier in millionths, rounded half-up.
fn scale(price: Money, multiplier: i64) -> Money {
    let product = i128::from(price.micros()) * i128::from(multiplier);
    Money::from_micros(clamp_i64(div_round_half_away(
        product,
        i128::from(MICROS_PER_DOLLAR),
    )))
}

/// The candidate closest to `input`, when it is close enough to be a plausible typo (the
/// one cws-wide policy, [`cws_util::suggest::did_you_mean`]).
fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    cws_util::suggest::did_you_mean(input, candidates)
}

// ---------------------------------------------------------------------------
// Raw file shape (serde) and validation with source locations.

// Values are plain `toml::Value`s located through their keys' spans: wrapping
// values in `Spanned` breaks on dotted keys (`m6i.large = 0.1` unquoted),
// which we want to explain rather than fail on obscurely.
type Keyed = BTreeMap<Spanned<String>, toml::Value>;
type Amount = Spanned<toml::Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: Option<Spanned<String>>,
    #[serde(default)]
    instances: Keyed,
    #[serde(default)]
    region_prices: BTreeMap<Spanned<String>, Keyed>,
    #[serde(default)]
    multipliers: RawMultipliers,
    #[serde(default)]
    snapshot: RawSnapshot,
    #[serde(default)]
    transfer: RawTransfer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMultipliers {
    #[serde(default)]
    regions: Keyed,
    #[serde(default)]
    continents: Keyed,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    gb_month: Option<Amount>,
    #[serde(default)]
    regions: Keyed,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransfer {
    default: Option<Amount>,
    #[serde(default)]
    continents: Keyed,
    #[serde(default)]
    regions: Keyed,
}

/// Continent keys as written in price files, in `cws_regions::Continent` terms.
const CONTINENTS: [(&str, Continent); 6] = [
    ("north_america", Continent::NorthAmerica),
    ("south_america", Continent::SouthAmerica),
    ("europe", Continent::Europe),
    ("asia_pacific", Continent::AsiaPacific),
    ("middle_east", Continent::MiddleEast),
    ("africa", Continent::Africa),
];

#[derive(Clone, Copy)]
enum Bound {
    Positive,
    NonNegative,
}

/// A price file's text and name, for parsing and for locating errors.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Source<'_> {
    fn parse(&self) -> Result<RawFile, CostError> {
        toml::from_str::<RawFile>(self.text).map_err(|e| {
            let what = e.message().trim().replace('\n', "; ");
            let hint = if what.starts_with("unknown field") {
                "; the price file format is described in the cws-cost documentation (PriceBook)"
            } else {
                ""
            };
            match e.span() {
                Some(span) => self.error(span, format!("{what}{hint}")),
                None => CostError::InvalidPriceFile {
                    origin: self.origin.to_owned(),
                    message: format!("{what}{hint}"),
                },
            }
        })
    }

    fn error(&self, span: Range<usize>, message: String) -> CostError {
        let (line, column) = line_column(self.text, span.start);
        CostError::InvalidPriceFile {
            origin: self.origin.to_owned(),
            message: format!("line {line}, column {column}: {message}"),
        }
    }

    fn region(&self, key: &Spanned<String>, table: &str) -> Result<&'static str, CostError> {
        let code = key.get_ref().as_str();
        match cws_regions::get(code) {
            Some(region) => Ok(region.code),
            None => {
                let hint = match cws_regions::suggest(code) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "use an AWS region code such as `us-east-1`".to_string(),
                };
                Err(self.error(
                    key.span(),
                    format!("unknown region `{code}` in {table}; {hint}"),
                ))
            }
        }
    }

    fn instance_type(
        &self,
        key: &Spanned<String>,
        value: &toml::Value,
        known: &BTreeSet<String>,
        table: &str,
    ) -> Result<String, CostError> {
        let ty = key.get_ref().as_str();
        if let toml::Value::Table(inner) = value {
            // `m6i.large = 0.1` unquoted is the table `m6i` holding `large`.
            let example = inner
                .keys()
                .next()
                .map_or_else(|| format!("{ty}.large"), |size| format!("{ty}.{size}"));
            return Err(self.error(
                key.span(),
                format!("`{ty}` in {table} is a table, not a price; quote instance types, e.g. \"{example}\" = 0.096"),
            ));
        }
        if known.contains(ty) || is_instance_type_shape(ty) {
            return Ok(ty.to_owned());
        }
        let hint = match closest(&ty.to_ascii_lowercase(), known.iter().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => {
                "instance types are written family.size in lower case, e.g. `m6i.large`".to_string()
            }
        };
        Err(self.error(
            key.span(),
            format!("`{ty}` in {table} is not an EC2 instance type; {hint}"),
        ))
    }

    /// Reads a non-negative or positive amount; errors point at `span` (the
    /// value, or its key when the value has no span of its own).
    fn amount(
        &self,
        value: &toml::Value,
        span: Range<usize>,
        what: &str,
        bound: Bound,
    ) -> Result<Money, CostError> {
        let parsed = match value {
            toml::Value::Float(f) => money_from_f64(*f).map_err(|e| e.to_string()),
            toml::Value::Integer(i) => i
                .checked_mul(MICROS_PER_DOLLAR)
                .map(Money::from_micros)
                .ok_or_else(|| format!("{i} is too large")),
            toml::Value::String(s) => Money::parse(s).map_err(|e| e.to_string()),
            toml::Value::Table(_) => Err(
                "expected a number but found a table; quote keys that contain dots, e.g. \"m6i.large\" = 0.096"
                    .to_string(),
            ),
            other => Err(format!("expected a number like 0.096 but found a {}", other.type_str())),
        };
        let amount = parsed.map_err(|reason| {
            self.error(span.clone(), format!("bad value for {what}: {reason}"))
        })?;
        let ok = match bound {
            Bound::Positive => amount.is_positive(),
            Bound::NonNegative => !amount.is_negative(),
        };
        if ok {
            Ok(amount)
        } else {
            let need = match bound {
                Bound::Positive => "above zero",
                Bound::NonNegative => "zero or more",
            };
            Err(self.error(
                span,
                format!("bad value for {what}: {amount} is not allowed; it must be {need}"),
            ))
        }
    }

    fn region_amounts(
        &self,
        map: &Keyed,
        table: &str,
        bound: Bound,
    ) -> Result<Vec<(&'static str, Money)>, CostError> {
        map.iter()
            .map(|(key, value)| {
                let region = self.region(key, table)?;
                let amount =
                    self.amount(value, key.span(), &format!("`{region}` in {table}"), bound)?;
                Ok((region, amount))
            })
            .collect()
    }

    fn continent_amounts(
        &self,
        map: &Keyed,
        table: &str,
        bound: Bound,
    ) -> Result<Vec<(Continent, Money)>, CostError> {
        map.iter()
            .map(|(key, value)| {
                let name = key.get_ref().as_str();
                let Some((_, continent)) = CONTINENTS.iter().find(|(n, _)| *n == name) else {
                    let names: Vec<&str> = CONTINENTS.iter().map(|(n, _)| *n).collect();
                    let hint = match closest(name, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`? "),
                        None => String::new(),
                    };
                    return Err(self.error(
                        key.span(),
                        format!(
                            "unknown continent `{name}` in {table}; {hint}(known: {})",
                            names.join(", ")
                        ),
                    ));
                };
                let amount =
                    self.amount(value, key.span(), &format!("`{name}` in {table}"), bound)?;
                Ok((*continent, amount))
            })
            .collect()
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    // An error "at the end of the file" is about the last line, not the empty
    // one after the final newline.
    let offset = if offset >= text.len() && text.ends_with('\n') {
        text.len() - 1
    } else {
        offset.min(text.len())
    };
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Whether `ty` looks like an EC2 instance type: `family.size`, where the
/// family is lower-case letters, digits and dashes and the size is one EC2
/// uses (`nano` … `xlarge`, `<n>xlarge`, `metal`, `metal-<n>xl`).
///
/// This lets an override add a type the bundled book lacks (`p5.48xlarge`)
/// while still catching typos like `m6i.larg`.
fn is_instance_type_shape(ty: &str) -> bool {
    let Some((family, size)) = ty.split_once('.') else {
        return false;
    };
    let family_ok = family.starts_with(|c: char| c.is_ascii_lowercase())
        && family
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let numbered = |s: &str, suffix: &str| {
        s.strip_suffix(suffix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let size_ok = matches!(
        size,
        "nano" | "micro" | "small" | "medium" | "large" | "xlarge" | "metal"
    ) || numbered(size, "xlarge")
        || size
            .strip_prefix("metal-")
            .is_some_and(|s| numbered(s, "xl"));
    family_ok && size_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_type_shapes() {
        for ok in [
            "m6i.large",
            "p5.48xlarge",
            "u-6tb1.metal",
            "c7g.metal-48xl",
            "t3.nano",
        ] {
            assert!(is_instance_type_shape(ok), "{ok}");
        }
        for bad in [
            "m6i.larg",
            "m6i",
            "M6i.large",
            ".large",
            "m6i.xxlarge",
            "m6i.metal-xl",
            "6i.large",
        ] {
            assert!(!is_instance_type_shape(bad), "{bad}");
        }
    }

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        let eq = text.find('=').unwrap();
        assert_eq!(line_column(text, eq), (1, 3));
        let second_eq = text.rfind('=').unwrap();
        assert_eq!(line_column(text, second_eq), (2, 4));
        assert_eq!(line_column(text, 999), (2, 7));
    }

    #[test]
    fn scaling_rounds_half_up_to_the_micro_dollar() {
        // m6i.large in eu-west-1: 0.096 × 1.11 = 0.10656 exactly.
        assert_eq!(
            scale(Money::from_micros(96_000), 1_110_000).micros(),
            106_560
        );
        // 0.000001 × 1.5 = 0.0000015 → 0.000002.
        assert_eq!(scale(Money::from_micros(1), 1_500_000).micros(), 2);
        // 0.000001 × 1.4 = 0.0000014 → 0.000001.
        assert_eq!(scale(Money::from_micros(1), 1_400_000).micros(), 1);
    }

    #[test]
    fn closest_only_suggests_plausible_typos() {
        let known = ["m6i.large", "m6i.xlarge", "g5.xlarge"];
        assert_eq!(closest("m6i.larg", known), Some("m6i.large"));
        assert_eq!(closest("g5.xlarg", known), Some("g5.xlarge"));
        assert_eq!(closest("p4d.24xlarge", known), None);
    }

    #[test]
    fn continent_names_cover_every_continent() {
        let all: BTreeSet<Continent> = CONTINENTS.iter().map(|(_, c)| *c).collect();
        assert_eq!(all.len(), 6);
    }
}

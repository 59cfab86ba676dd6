//! Properties of the resolver against an oracle, over generated catalogues (cargo's
//! resolver-tests style): whatever the catalogue and strategy, the resolver never returns an
//! unavailable, wrong-architecture or untrusted image; `ami_required` never returns script
//! provisioning; the answer does not depend on the order the provider lists images in; and a
//! cross-region source is always on the region's fallback list. And completeness, against an
//! oracle computed from the catalogue alone: an available, accepted image mapped for the
//! region always wins; `ami_fallback` with a current base image always provisions by script;
//! `fallback_strategy: error` never copies or scripts, and `cross_region` never scripts; a
//! search picks the newest trusted match of the most preferred architecture. And agreement:
//! waves (with merged queries), the eager resolver, the sequential walk and many regions
//! resolved together all give the same answer.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use cws_provider::*;
use cws_resolver::*;
use cws_template::Architecture;
use proptest::prelude::*;

const ACCOUNT: &str = "123456789012";
const PUBLISHER: &str = "704381954421";
const STRANGER: &str = "999999999999";
const CANONICAL: &str = "099720109477";
const REGIONS: [&str; 5] = [
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ap-south-1",
    "ap-southeast-1",
];

/// A read-only catalogue that answers from a list, in the list's order (so order can be
/// shuffled). Only `ImageCatalog`: resolution never needs more.
#[derive(Debug)]
struct ListCatalog {
    images: Vec<Image>,
    /// Says it answers in memory: asked directly, one tier at a time, nothing merged.
    in_memory: bool,
    /// Whether it can say which account `self` is (a merged search needs it to split).
    knows_account: bool,
}

fn owner_matches(owners: &[String], owner: &str) -> bool {
    owners.iter().any(|o| match o.as_str() {
        "self" => owner == ACCOUNT,
        "aws-marketplace" => owner == "679593333241",
        other => other == owner,
    })
}

#[async_trait]
impl ImageCatalog for ListCatalog {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "list".into(),
            simulated: true,
            description: "test list provider".into(),
        }
    }
    async fn account_id(&self) -> ProviderResult<Option<String>> {
        Ok(self.knows_account.then(|| ACCOUNT.into()))
    }
    fn answers_in_memory(&self) -> bool {
        self.in_memory
    }
    async fn describe_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Image>> {
        Ok(self
            .images
            .iter()
            .filter(|i| i.region == region && ids.contains(&i.id))
            .cloned()
            .collect())
    }
    async fn describe_images(&self, region: &str, q: &ImageQuery) -> ProviderResult<Vec<Image>> {
        assert!(!q.owners.is_empty(), "searches must name trusted owners");
        Ok(self
            .images
            .iter()
            .filter(|i| i.region == region)
            .filter(|i| owner_matches(&q.owners, &i.owner_id))
            .filter(|i| q.matches_filters(i))
            .filter(|i| q.include_deprecated || !i.is_deprecated_at(t("2026-06-01T00:00:00Z")))
            .cloned()
            .collect())
    }
    async fn describe_snapshots(&self, _r: &str, _ids: &[String]) -> ProviderResult<Vec<Snapshot>> {
        Ok(vec![])
    }
    async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
        Ok(REGIONS.iter().map(|s| s.to_string()).collect())
    }
    async fn find_marketplace_products(
        &self,
        _q: &MarketplaceQuery,
    ) -> ProviderResult<Vec<MarketplaceProduct>> {
        Ok(vec![])
    }
}

#[derive(Debug, Clone)]
struct Catalogue {
    images: Vec<Image>,
    yaml: String,
    region: String,
    arch: Option<Architecture>,
    shuffle_seed: u64,
}

fn arb_image(idx: usize) -> impl Strategy<Value = Image> {
    (
        0..REGIONS.len(),
        prop_oneof![Just(Architecture::X86_64), Just(Architecture::Arm64)],
        prop_oneof![
            6 => Just(ImageState::Available),
            1 => Just(ImageState::Pending),
            1 => Just(ImageState::Failed)
        ],
        any::<bool>(),
        0u32..400,
        prop_oneof![
            Just(PUBLISHER),
            Just(ACCOUNT),
            Just(STRANGER),
            Just(CANONICAL)
        ],
        any::<bool>(),
        0u8..4,
    )
        .prop_map(
            move |(r, arch, state, deprecated, day, owner, tagged, name_kind)| {
                let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
                    + chrono::Duration::days(day as i64);
                let arch_s = if arch == Architecture::Arm64 {
                    "arm64"
                } else {
                    "amd64"
                };
                let name = match (owner, name_kind) {
                    (CANONICAL, _) => format!(
                        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch_s}-server-{}",
                        date.format("%Y%m%d")
                    ),
                    (_, 0) => format!("other-{idx}"),
                    // An impostor: anyone can publish an image with a convincing name.
                    (_, 3) => format!(
                        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch_s}-server-{}",
                        date.format("%Y%m%d")
                    ),
                    _ => format!("cws-t-{idx}"),
                };
                let mut tags = BTreeMap::new();
                if tagged && owner != CANONICAL {
                    tags.insert("cws:template".to_string(), "t".to_string());
                }
                Image {
                    id: format!("ami-{:017x}", 0x1000 + idx),
                    region: REGIONS[r].to_string(),
                    name,
                    owner_id: owner.to_string(),
                    architecture: arch,
                    state,
                    creation_date: t(&format!("{}T12:00:00.000Z", date.format("%Y-%m-%d"))),
                    deprecation_time: deprecated.then(|| t("2026-01-01T00:00:00.000Z")),
                    description: None,
                    tags,
                    product_codes: vec![],
                    snapshot_ids: vec![],
                    root_volume_gb: Some(8 + idx as u32),
                    public: true,
                }
            },
        )
}

fn arb_catalogue() -> impl Strategy<Value = Catalogue> {
    (0usize..14)
        .prop_flat_map(|n| {
            let images: Vec<_> = (0..n).map(arb_image).collect();
            (
                images,
                prop_oneof![Just("ami_preferred"), Just("ami_required"), Just("ami_fallback")],
                prop_oneof![
                    Just(None),
                    Just(Some("script_provisioning")),
                    Just(Some("cross_region")),
                    Just(Some("error"))
                ],
                proptest::collection::btree_map(0..REGIONS.len(), 0usize..20, 0..4),
                any::<bool>(),
                (0u8..5, any::<bool>()),
                0..REGIONS.len(),
                prop_oneof![Just(None), Just(Some(Architecture::X86_64)), Just(Some(Architecture::Arm64))],
                any::<u64>(),
            )
        })
        .prop_map(
            |(images, strategy, fallback, mappings, has_search, (owners_kind, tagged_search), region, arch, seed)| {
                let mut yaml = format!(
                    "name: T\nslug: t\nversion: 1.0.0\nbase: ubuntu-24.04\nami_config:\n  strategy: {strategy}\n"
                );
                if let Some(f) = fallback {
                    yaml.push_str(&format!("  fallback_strategy: {f}\n"));
                }
                if !mappings.is_empty() {
                    yaml.push_str("  ami_mappings:\n");
                    for (r, id) in &mappings {
                        yaml.push_str(&format!("    {}: ami-{:017x}\n", REGIONS[*r], 0x1000 + id));
                    }
                }
                let has_search = has_search || mappings.is_empty();
                if has_search {
                    // The user's own account may be listed by id too, beside or instead of
                    // `self`: the same account under two names.
                    let owners = match owners_kind {
                        0 => format!("[\"{PUBLISHER}\"]"),
                        1 => format!("[\"self\", \"{PUBLISHER}\"]"),
                        2 => format!("[\"self\", \"{PUBLISHER}\", \"{ACCOUNT}\"]"),
                        3 => format!("[\"{PUBLISHER}\", \"{ACCOUNT}\"]"),
                        _ => "[\"self\"]".to_string(),
                    };
                    yaml.push_str(&format!(
                        "  ami_search:\n    owners: {owners}\n    name_pattern: \"cws-t-*\"\n    architectures: [x86_64, arm64]\n"
                    ));
                    if tagged_search {
                        yaml.push_str("    required_tags:\n      cws:template: t\n");
                    }
                }
                Catalogue {
                    images,
                    yaml,
                    region: REGIONS[region].to_string(),
                    arch,
                    shuffle_seed: seed,
                }
            },
        )
}

fn shuffled(mut v: Vec<Image>, mut seed: u64) -> Vec<Image> {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
    v
}

fn resolve_with(images: Vec<Image>, c: &Catalogue) -> Resolution {
    let template =
        cws_template::parse_str(&c.yaml, "generated.yaml").expect("generated template is valid");
    let mut req = ResolveRequest::new(template.clone(), c.region.clone());
    req.architecture = c.arch;
    req.now = Some(t("2026-06-01T00:00:00.000Z"));
    resolve_in(&Resolver::for_template(&template), images, &req)
}

/// Resolves `req` against a [`ListCatalog`] of `images`, with the published fallback graph
/// and the bundled prices.
fn resolve_in(resolver: &Resolver, images: Vec<Image>, req: &ResolveRequest) -> Resolution {
    let mut one = resolve_many(resolver, images, std::slice::from_ref(req));
    one.pop().expect("one answer per request")
}

/// Resolves several requests together against one [`ListCatalog`].
fn resolve_many(
    resolver: &Resolver,
    images: Vec<Image>,
    reqs: &[ResolveRequest],
) -> Vec<Resolution> {
    let catalogue = ListCatalog {
        images,
        in_memory: false,
        knows_account: true,
    };
    resolve_many_on(catalogue, resolver, reqs)
}

/// Resolves several requests together against `catalogue`.
fn resolve_many_on(
    catalogue: ListCatalog,
    resolver: &Resolver,
    reqs: &[ResolveRequest],
) -> Vec<Resolution> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(resolver.resolve_many_in(
        &catalogue,
        &cws_regions::FallbackGraph::published(),
        &cws_cost::PriceBook::bundled(),
        reqs,
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn resolver_invariants(c in arb_catalogue()) {
        let template = cws_template::parse_str(&c.yaml, "generated.yaml").unwrap();
        let r = resolve_with(c.images.clone(), &c);
        let mut req = ResolveRequest::new(template.clone(), c.region.clone());
        req.architecture = c.arch;
        let accepted = req.architectures();

        // Never a provider failure: the list catalogue answers every read.
        prop_assert!(!r.failed_because_provider(), "{:#?}", r);

        if let Some(id) = &r.ami_id {
            let img = c.images.iter().find(|i| &i.id == id && Some(&i.region) == r.source_region.as_ref());
            let img = img.expect("the chosen image exists where the report says");
            prop_assert_eq!(img.state, ImageState::Available);
            prop_assert!(accepted.contains(&img.architecture), "arch {:?} not in {:?}", img.architecture, accepted);
            match &r.method {
                Method::ScriptFallback => prop_assert_eq!(img.owner_id.as_str(), CANONICAL),
                Method::DirectMapping => {
                    prop_assert_eq!(&img.region, &c.region);
                    let mapped = template.ami_config.as_ref().unwrap().ami_mappings.get(&c.region);
                    prop_assert_eq!(mapped, Some(id));
                }
                Method::DynamicSearch => {
                    prop_assert_eq!(&img.region, &c.region);
                    prop_assert!(img.owner_id == PUBLISHER || img.owner_id == ACCOUNT, "untrusted owner {}", img.owner_id);
                }
                Method::CrossRegion => {
                    let src = r.source_region.clone().unwrap();
                    let walk = cws_regions::FallbackGraph::published().walk(&c.region, 3).unwrap();
                    prop_assert!(walk.contains(&src.as_str()), "{} not in {:?}", src, walk);
                    prop_assert!(r.requires_copy);
                    // A mapped id is the template author's explicit choice; anything found by
                    // search must come from a trusted owner.
                    let mapped = template.ami_config.as_ref().unwrap().ami_mappings.get(&src);
                    if mapped != Some(id) {
                        prop_assert!(img.owner_id == PUBLISHER || img.owner_id == ACCOUNT, "untrusted owner {}", img.owner_id);
                    }
                }
                other => prop_assert!(false, "unexpected method {other}"),
            }
        }
        if template.strategy() == cws_template::AmiStrategy::AmiRequired {
            prop_assert_ne!(&r.method, &Method::ScriptFallback);
        }

        // Completeness, against an oracle written from the catalogue alone (it shares no code
        // with the tiers): what must be found is found.
        let strategy = template.strategy();
        let fallback = template.ami_config.as_ref().unwrap().effective_fallback();
        let usable = |i: &Image| {
            i.region == c.region
                && i.state == ImageState::Available
                && accepted.contains(&i.architecture)
        };
        // Script provisioning starts from a current base image: a deprecated one is not used.
        let now = t("2026-06-01T00:00:00.000Z");
        let canonical_base = c.images.iter().any(|i| {
            usable(i)
                && i.owner_id == CANONICAL
                && i.name.contains("ubuntu-noble-24.04")
                && i.deprecation_time.is_none_or(|d| d > now)
        });
        if strategy == cws_template::AmiStrategy::AmiFallback && canonical_base {
            // ami_fallback tries the script first, and a base image is there.
            prop_assert_eq!(&r.method, &Method::ScriptFallback, "{:#?}", r);
        } else if strategy != cws_template::AmiStrategy::AmiFallback {
            // An available, accepted image mapped for the region always wins.
            let mapped = template.ami_config.as_ref().unwrap().ami_mappings.get(&c.region);
            if let Some(id) = mapped
                && c.images.iter().any(|i| &i.id == id && usable(i))
            {
                prop_assert_eq!(&r.method, &Method::DirectMapping, "{:#?}", r);
                prop_assert_eq!(r.ami_id.as_ref(), Some(id));
            }
            // Each fallback_strategy does what it says.
            match fallback {
                cws_template::FallbackStrategy::Error => {
                    prop_assert!(
                        !matches!(r.method, Method::CrossRegion | Method::ScriptFallback),
                        "`error` allows neither a copy nor a script: {:?}", r.method
                    );
                }
                cws_template::FallbackStrategy::CrossRegion => {
                    prop_assert_ne!(&r.method, &Method::ScriptFallback);
                }
                _ => {}
            }
        }

        // The provider's listing order does not change the answer.
        let r2 = resolve_with(shuffled(c.images.clone(), c.shuffle_seed), &c);
        prop_assert_eq!(&r.method, &r2.method);
        prop_assert_eq!(&r.ami_id, &r2.ami_id);
        prop_assert_eq!(&r.source_region, &r2.source_region);

        // The concurrent resolver gives the sequential walk's answer.
        let mut req = req;
        req.now = Some(t("2026-06-01T00:00:00.000Z"));
        let r3 = resolve_in(&Resolver::for_template(&template).sequential(), c.images.clone(), &req);
        prop_assert_eq!(&r.method, &r3.method);
        prop_assert_eq!(&r.ami_id, &r3.ami_id);
        // The eager resolver (everything at once) agrees too: waves, merged queries and the
        // early script tier change the calls, never the answer.
        let r4 = resolve_in(&Resolver::for_template(&template).eager(), c.images.clone(), &req);
        prop_assert_eq!(&r.method, &r4.method);
        prop_assert_eq!(&r.ami_id, &r4.ami_id);
        prop_assert_eq!(&r.source_region, &r4.source_region);

        // Asked directly, as an in-memory backend is (no batching, one tier at a time).
        let direct = ListCatalog { images: c.images.clone(), in_memory: true, knows_account: true };
        let r5 = resolve_many_on(direct, &Resolver::for_template(&template), std::slice::from_ref(&req)).remove(0);
        prop_assert_eq!(&r.method, &r5.method);
        prop_assert_eq!(&r.ami_id, &r5.ami_id);
        prop_assert_eq!(&r.source_region, &r5.source_region);

        // A backend that cannot say which account `self` is: merged searches that need it to
        // split are asked again one by one.
        let anonymous = ListCatalog { images: c.images.clone(), in_memory: false, knows_account: false };
        let r6 = resolve_many_on(anonymous, &Resolver::for_template(&template), std::slice::from_ref(&req)).remove(0);
        prop_assert_eq!(&r.method, &r6.method);
        prop_assert_eq!(&r.ami_id, &r6.ami_id);
        prop_assert_eq!(&r.source_region, &r6.source_region);

        // Resolving every region together (shared and merged questions, as `ami test
        // --all-regions` does) gives each region the answer it gets alone, walked one tier
        // at a time.
        let reqs: Vec<ResolveRequest> = REGIONS
            .iter()
            .map(|region| {
                let mut q = ResolveRequest::new(template.clone(), *region);
                q.architecture = c.arch;
                q.now = Some(now);
                q
            })
            .collect();
        let many = resolve_many(&Resolver::for_template(&template), c.images.clone(), &reqs);
        prop_assert_eq!(many.len(), reqs.len());
        for (one_req, together) in reqs.iter().zip(&many) {
            let alone = resolve_in(&Resolver::for_template(&template).sequential(), c.images.clone(), one_req);
            prop_assert_eq!(&together.method, &alone.method, "{}", one_req.region);
            prop_assert_eq!(&together.ami_id, &alone.ami_id, "{}", one_req.region);
            prop_assert_eq!(&together.source_region, &alone.source_region, "{}", one_req.region);
        }

        // The newest trusted match wins a search: nothing the search accepts in the region is
        // of a more preferred architecture, or newer in the same one.
        if r.method == Method::DynamicSearch {
            let search = template.ami_config.as_ref().and_then(|cfg| cfg.ami_search.as_ref());
            let has_search = search.is_some();
            let lists_own_account = search
                .is_some_and(|s| s.owners.iter().any(|o| o == "self" || o == ACCOUNT));
            let needs_tag = search.is_some_and(|s| !s.required_tags.is_empty());
            let lists_publisher = search.is_some_and(|s| s.owners.iter().any(|o| o == PUBLISHER));
            let trusted = |i: &Image| {
                let named = i.name.starts_with("cws-t-");
                let tagged = i.tags.get("cws:template").map(String::as_str) == Some("t");
                let copy_of_ours = i.owner_id == ACCOUNT && tagged;
                (has_search
                    && named
                    && (tagged || !needs_tag)
                    && ((lists_publisher && i.owner_id == PUBLISHER)
                        || (lists_own_account && i.owner_id == ACCOUNT)))
                    || copy_of_ours
            };
            let rank = |i: &Image| {
                let pos = accepted.iter().position(|a| *a == i.architecture).unwrap_or(usize::MAX);
                (pos, std::cmp::Reverse(i.creation_date))
            };
            let best = c
                .images
                .iter()
                .filter(|i| usable(i) && trusted(i) && i.deprecation_time.is_none_or(|d| d > now))
                .map(rank)
                .min();
            let chosen = c
                .images
                .iter()
                .find(|i| Some(&i.id) == r.ami_id.as_ref() && i.region == c.region)
                .expect("the chosen image exists");
            if let Some(best) = best {
                prop_assert_eq!(rank(chosen), best, "{:#?}", r);
            }
        }

        let seen: BTreeSet<_> = r.attempts.iter().map(|a| a.tier.clone()).collect();
        prop_assert_eq!(seen.len(), r.attempts.len(), "each tier reported once");
    }
}

/// A time from its RFC 3339 spelling.
fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    cws_provider::ec2_time::parse(s).expect("a valid test time")
}

//! The [`Resolver`]: an ordered list of tiers, probed in waves, highest priority wins.
//!
//! A resolution is bound by provider round trips, and every call counts against an
//! account's `DescribeImages` rate limit. So by default the resolver asks in waves:
//!
//! 1. the launch region: every in-region tier's questions together (the mapped id, the
//!    template's search, a Marketplace image), sent at once and merged where EC2's filters
//!    allow it (see the `lookups` module);
//! 2. only if the launch region has nothing: the fallback regions, all at once, with the
//!    script tier's base image.
//!
//! A hit costs one round trip and one or two calls; a fall-through two round trips, which is
//! nothing beside the copy it leads to. The resolver commits as soon as the
//! highest-priority tier that can still win has answered, and drops the rest.
//! [`Resolver::eager`] sends every wave at once (one round trip whatever happens, more
//! calls); [`Resolver::sequential`] walks the tiers one at a time, the way other tools do.
//! All three give the same answer. [`Resolver::resolve_many`] runs several requests' waves
//! together, so a question two of them ask is asked once.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use cws_cost::PriceBook;
use cws_regions::FallbackGraph;
use cws_template::{AmiStrategy, Architecture, FallbackStrategy, Template};
use futures::FutureExt;
use futures::future::BoxFuture;

use chrono::{DateTime, Utc};
use cws_provider::{CloudProvider, ImageCatalog, ProviderError};

use crate::TierId;
use crate::lookups::{Batched, Flush, Lookups, Step};
use crate::report::{Attempt, Method, Outcome, ProviderLabel, Resolution};
use crate::tier::{self, Candidate, Probe, ResolveContext, Tier};

/// What a resolution runs against: a provider, the fallback graph and the prices.
#[derive(Clone)]
pub struct ResolveEnv {
    /// The backend.
    pub provider: Arc<dyn CloudProvider>,
    /// Regional fallbacks.
    pub fallbacks: FallbackGraph,
    /// Prices.
    pub prices: PriceBook,
    /// Where resolutions read from, when not from `provider`: a cache in front of it (an
    /// on-disk cache, say) whose answers may be stale. `provider` stays the fresh source:
    /// before anything is spent on a resolution, its chosen image is checked there by id
    /// (one call), and resolved again there if it is gone.
    pub reads: Option<Arc<dyn ImageCatalog>>,
}

impl std::fmt::Debug for ResolveEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolveEnv")
            .field("provider", &self.provider.info().name)
            .finish_non_exhaustive()
    }
}

impl ResolveEnv {
    /// What resolutions read from: [`reads`](Self::reads) when set, else the provider.
    pub fn catalog(&self) -> &dyn ImageCatalog {
        match &self.reads {
            Some(r) => r.as_ref(),
            None => self.provider.as_ref(),
        }
    }

    /// An environment with the published fallback graph and the bundled price book.
    pub fn new(provider: Arc<dyn CloudProvider>) -> Self {
        ResolveEnv {
            provider,
            fallbacks: FallbackGraph::published(),
            prices: PriceBook::bundled(),
            reads: None,
        }
    }
}

/// What to resolve.
#[derive(Debug, Clone)]
pub struct ResolveRequest {
    /// The template (inheritance merged).
    pub template: Template,
    /// Target region.
    pub region: String,
    /// A required architecture (`--arch`); `None` follows the template.
    pub architecture: Option<Architecture>,
    /// Tiers the user declined (tier → why), reported as `declined` without probing.
    pub declined: BTreeMap<TierId, String>,
    /// "Now" for deprecation checks; `None` uses the clock.
    pub now: Option<DateTime<Utc>>,
    /// Images known elsewhere to serve this template (a registry listing's regions):
    /// cross_region considers them after the template's own mapping and searches.
    pub known_images: Vec<crate::KnownImage>,
    /// Images that must not be chosen, by provenance tags (copies of revoked listing
    /// versions).
    pub refused: Vec<crate::RefusedProvenance>,
    /// When set, the only image owners any tier may return.
    pub allowed_owners: Option<crate::OwnerPolicy>,
}

impl ResolveRequest {
    /// A request for a template in a region, following the template's architecture.
    pub fn new(template: Template, region: impl Into<String>) -> Self {
        ResolveRequest {
            template,
            region: region.into(),
            architecture: None,
            declined: BTreeMap::new(),
            now: None,
            known_images: Vec::new(),
            refused: Vec::new(),
            allowed_owners: None,
        }
    }

    /// Acceptable architectures, preferred first: `--arch` alone when given; else the
    /// template's preferred architecture, then the others its search allows.
    pub fn architectures(&self) -> Vec<Architecture> {
        if let Some(a) = self.architecture {
            return vec![a];
        }
        let cfg = self.template.ami_config.as_ref();
        let preferred = cfg.and_then(|c| c.preferred_architecture);
        let allowed: Vec<Architecture> = cfg
            .and_then(|c| c.ami_search.as_ref())
            .map(|s| s.architectures.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        if let Some(p) = preferred {
            out.push(p);
        }
        for a in allowed {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        if out.is_empty() {
            out.push(Architecture::X86_64);
        }
        out
    }
}

/// How the resolver runs the probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// In waves: the launch region first, other regions only when it has nothing.
    Waves,
    /// All at once; commit as soon as the winner is certain; cancel the rest.
    Eager,
    /// All at once, and wait for every one (so the report says what every tier would do).
    Exhaustive,
    /// One after another, stopping at the first success.
    Sequential,
}

/// A forced tier that is not one of the built-in tiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown tier `{name}`{}; the tiers are {}",
    did_you_mean(suggestion),
    builtin_list()
)]
pub struct UnknownTier {
    /// The name given.
    pub name: String,
    /// A built-in tier it is close to.
    pub suggestion: Option<String>,
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

fn builtin_list() -> String {
    let builtin = TierId::BUILTIN;
    let names: Vec<&str> = builtin.iter().map(TierId::as_str).collect();
    names.join(", ")
}

/// An ordered list of tiers and how to run them.
#[derive(Clone)]
pub struct Resolver {
    tiers: Vec<Arc<dyn Tier>>,
    mode: Mode,
    forced: Option<TierId>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("tiers", &self.tier_ids())
            .field("mode", &self.mode)
            .finish()
    }
}

impl Resolver {
    /// A resolver over exactly these tiers, in priority order.
    pub fn new(tiers: Vec<Arc<dyn Tier>>) -> Self {
        Resolver {
            tiers,
            mode: Mode::Waves,
            forced: None,
        }
    }

    /// The standard tier chain for a strategy:
    ///
    /// | strategy | chain |
    /// |---|---|
    /// | ami_preferred | direct, dynamic, marketplace, cross_region, script |
    /// | ami_required | direct, dynamic, marketplace, cross_region |
    /// | ami_fallback | script, then direct, dynamic, marketplace, cross_region |
    ///
    /// `fallback_strategy` trims the end: `script_provisioning` keeps the script tier,
    /// `cross_region` ends after cross_region (no script), `error` ends after the in-region
    /// AMI tiers (no copy, no script).
    pub fn for_strategy(strategy: AmiStrategy, fallback: FallbackStrategy) -> Self {
        let mut ami = vec![
            TierId::DIRECT_MAPPING,
            TierId::DYNAMIC_SEARCH,
            TierId::MARKETPLACE,
        ];
        if fallback != FallbackStrategy::Error {
            ami.push(TierId::CROSS_REGION);
        }
        let ids: Vec<TierId> = match strategy {
            AmiStrategy::AmiRequired => ami,
            AmiStrategy::AmiFallback => std::iter::once(TierId::SCRIPT_FALLBACK)
                .chain(ami)
                .collect(),
            _ => {
                let mut v = ami;
                if fallback == FallbackStrategy::ScriptProvisioning {
                    v.push(TierId::SCRIPT_FALLBACK);
                }
                v
            }
        };
        Resolver::new(ids.iter().filter_map(tier::builtin).collect())
    }

    /// The chain a template asks for. A template without `ami_config` is a script template:
    /// script provisioning only.
    pub fn for_template(template: &Template) -> Self {
        match &template.ami_config {
            Some(cfg) => Resolver::for_strategy(cfg.strategy, cfg.effective_fallback()),
            None => Resolver::new(vec![Arc::new(tier::ScriptFallback)]),
        }
    }

    /// A resolver with a single forced built-in tier. A name that is not a built-in tier is
    /// an [`UnknownTier`] error carrying the valid ones.
    pub fn forced(name: &str) -> Result<Self, UnknownTier> {
        let builtin = TierId::BUILTIN;
        let unknown = || UnknownTier {
            name: name.to_string(),
            suggestion: cws_util::suggest::did_you_mean(name, builtin.iter().map(TierId::as_str))
                .map(str::to_string),
        };
        let id = TierId::new(name).map_err(|_| unknown())?;
        let t = tier::builtin(&id).ok_or_else(unknown)?;
        let mut r = Resolver::new(vec![t]);
        r.forced = Some(id);
        Ok(r)
    }

    /// Sends every tier's questions at once, other regions included, without waiting to see
    /// whether the launch region answers: one round trip whatever the outcome, at the price
    /// of calls a hit did not need. For embedders who value latency over API calls.
    pub fn eager(mut self) -> Self {
        self.mode = Mode::Eager;
        self
    }

    /// Walks the tiers one at a time (what Packer-style lookups do); for comparison.
    pub fn sequential(mut self) -> Self {
        self.mode = Mode::Sequential;
        self
    }

    /// Waits for every tier, so the report says what each would do (used by
    /// `--prefer-script`, which needs to know whether an AMI exists).
    pub fn exhaustive(mut self) -> Self {
        self.mode = Mode::Exhaustive;
        self
    }

    /// Moves the script tier to the front, keeping the rest in order (`--prefer-script`).
    pub fn script_first(mut self) -> Self {
        if let Some(pos) = self.tiers.iter().position(|t| !t.provides_ami()) {
            let t = self.tiers.remove(pos);
            self.tiers.insert(0, t);
        } else {
            self.tiers.insert(0, Arc::new(tier::ScriptFallback));
        }
        self
    }

    /// The tiers, in priority order.
    pub fn tiers(&self) -> &[Arc<dyn Tier>] {
        &self.tiers
    }

    /// The tiers' ids, in priority order.
    pub fn tier_ids(&self) -> Vec<TierId> {
        self.tiers.iter().map(|t| t.id()).collect()
    }

    /// Inserts a tier right after the tier `after` (at the end when the chain lacks it).
    pub fn insert_after(mut self, after: &TierId, tier: Arc<dyn Tier>) -> Self {
        let pos = self
            .tiers
            .iter()
            .position(|t| t.id() == *after)
            .map(|p| p + 1)
            .unwrap_or(self.tiers.len());
        self.tiers.insert(pos, tier);
        self
    }

    /// Puts a tier first in the chain.
    pub fn insert_first(mut self, tier: Arc<dyn Tier>) -> Self {
        self.tiers.insert(0, tier);
        self
    }

    /// Removes the tier with this id.
    pub fn without(mut self, id: &TierId) -> Self {
        self.tiers.retain(|t| t.id() != *id);
        self
    }

    /// Resolves a template in a region.
    pub async fn resolve(&self, env: &ResolveEnv, req: &ResolveRequest) -> Resolution {
        self.resolve_in(env.catalog(), &env.fallbacks, &env.prices, req)
            .await
    }

    /// Resolves against any [`ImageCatalog`]: a whole provider, or a read-only catalogue
    /// (an institution's image list, a test double) that cannot launch anything.
    pub async fn resolve_in(
        &self,
        catalog: &dyn ImageCatalog,
        fallbacks: &FallbackGraph,
        prices: &PriceBook,
        req: &ResolveRequest,
    ) -> Resolution {
        let mut all = self
            .resolve_many_in(catalog, fallbacks, prices, std::slice::from_ref(req))
            .await;
        all.pop()
            .unwrap_or_else(|| self.report(&catalog.info(), req, Vec::new()))
    }

    /// Resolves several requests (a template in many regions, say) together: their waves
    /// share calls, and a question one asks (another region's images, for a cross-region
    /// plan) is answered from what another already asked, not asked again. The answers are
    /// the ones [`resolve`](Self::resolve) gives for each alone, in the same order.
    pub async fn resolve_many(&self, env: &ResolveEnv, reqs: &[ResolveRequest]) -> Vec<Resolution> {
        self.resolve_many_in(env.catalog(), &env.fallbacks, &env.prices, reqs)
            .await
    }

    /// [`resolve_many`](Self::resolve_many) against any [`ImageCatalog`].
    pub async fn resolve_many_in(
        &self,
        catalog: &dyn ImageCatalog,
        fallbacks: &FallbackGraph,
        prices: &PriceBook,
        reqs: &[ResolveRequest],
    ) -> Vec<Resolution> {
        let env_info = catalog.info();
        // One "now" for the whole drive, so that the same question asked for two requests
        // is the same question.
        let drive_now = Utc::now();
        let lookups = Lookups::default();
        let batched = Batched {
            lookups: &lookups,
            inner: catalog,
        };
        // An in-memory backend is asked directly, one tier at a time: batching would only add
        // work, and the first answer decides before the next tier asks anything.
        let in_memory = catalog.answers_in_memory();
        let many = reqs.len() > 1;
        let provider: &dyn ImageCatalog = if in_memory { catalog } else { &batched };
        let ctxs: Vec<ResolveContext<'_>> = reqs
            .iter()
            .map(|req| ResolveContext {
                template: &req.template,
                region: &req.region,
                architectures: req.architectures(),
                provider,
                fallbacks,
                prices,
                now: req.now.unwrap_or(drive_now),
                known_images: &req.known_images,
                refused: &req.refused,
                allowed_owners: req.allowed_owners.as_ref(),
            })
            .collect();
        let n = self.tiers.len();
        let waves = if in_memory {
            (0..n).map(|i| vec![i]).collect()
        } else {
            self.waves()
        };
        let stop_when_decided = self.mode != Mode::Exhaustive;
        let mut runs: Vec<Run<'_>> = reqs
            .iter()
            .map(|req| {
                let mut results: Vec<Option<(TierResult, u64)>> = vec![None; n];
                for (i, t) in self.tiers.iter().enumerate() {
                    if let Some(why) = req.declined.get(&t.id()) {
                        results[i] = Some((TierResult::Declined(why.clone()), 0));
                    }
                }
                Run {
                    results,
                    pending: (0..n).map(|_| None).collect(),
                    started: vec![false; n],
                    next_wave: 0,
                    done: false,
                }
            })
            .collect();
        let mut flushes: Vec<Flush<'_>> = Vec::new();

        poll_fn(|cx| {
            loop {
                let mut progressed = false;
                for (run, ctx) in runs.iter_mut().zip(&ctxs) {
                    if run.done {
                        continue;
                    }
                    if run.poll_probes(cx, stop_when_decided) {
                        progressed = true;
                    }
                    if run.done {
                        continue;
                    }
                    if run.pending.iter().all(Option::is_none) {
                        // The wave is over: the winner is known, or the next wave starts.
                        if (stop_when_decided && decided(&run.results))
                            || run.next_wave >= waves.len()
                        {
                            run.done = true;
                            continue;
                        }
                        let before = lookups.queued();
                        self.start(run, ctx, &waves[run.next_wave]);
                        run.next_wave += 1;
                        // Probes queue their questions on their first poll.
                        run.poll_probes(cx, stop_when_decided);
                        // Several regions together (`ami test --all-regions`): their second
                        // wave is mostly answered from the others' first (a region's
                        // fallbacks are other regions of the run), so only the script tier's
                        // base image would need a round trip of its own. A first wave that
                        // asks for little (a region with no mapped id) takes it along. Alone,
                        // a resolution asks for the base image with its fallback regions,
                        // in the same second wave, and only if it gets there.
                        if self.mode == Mode::Waves
                            && !run.done
                            && !in_memory
                            && many
                            && run.next_wave == 1
                            && lookups.calls_for(before) < WAVE_CALL_BUDGET
                        {
                            let early: Vec<usize> = waves[1..]
                                .iter()
                                .flatten()
                                .copied()
                                .filter(|&i| !self.tiers[i].looks_in_other_regions())
                                .collect();
                            if !early.is_empty() {
                                self.start(run, ctx, &early);
                                run.poll_probes(cx, stop_when_decided);
                            }
                        }
                        progressed = true;
                    }
                }
                // Checked before any further call is started: once every answer is known,
                // calls not sent yet are never sent.
                if runs.iter().all(|r| r.done) {
                    return Poll::Ready(());
                }
                if lookups.has_queued() {
                    flushes.push(Flush::new(catalog, lookups.take(!in_memory)));
                }
                flushes.retain_mut(|f| match f.poll_step(cx) {
                    Step::Done => {
                        progressed = true;
                        false
                    }
                    Step::Progress => {
                        progressed = true;
                        true
                    }
                    Step::Pending => true,
                });
                if !progressed {
                    return Poll::Pending;
                }
            }
        })
        .await;
        // Dropping the runs' probes and any flush still in flight cancels what can no
        // longer change an answer.
        drop(flushes);
        runs.into_iter()
            .zip(reqs)
            .map(|(run, req)| {
                drop(run.pending);
                self.report(&env_info, req, run.results)
            })
            .collect()
    }

    /// The tiers in the order they are started, grouped into waves (tier indices).
    fn waves(&self) -> Vec<Vec<usize>> {
        let all: Vec<usize> = (0..self.tiers.len()).collect();
        match self.mode {
            Mode::Sequential => all.into_iter().map(|i| vec![i]).collect(),
            Mode::Eager | Mode::Exhaustive => vec![all],
            Mode::Waves => {
                let split = self
                    .tiers
                    .iter()
                    .position(|t| t.looks_in_other_regions())
                    .unwrap_or(self.tiers.len());
                let (first, rest) = all.split_at(split);
                [first.to_vec(), rest.to_vec()]
                    .into_iter()
                    .filter(|w| !w.is_empty())
                    .collect()
            }
        }
    }

    /// Starts the probes of these tiers that have not run yet.
    fn start<'f>(&'f self, run: &mut Run<'f>, ctx: &'f ResolveContext<'f>, tiers: &[usize]) {
        for &i in tiers {
            if run.started[i] || run.results[i].is_some() {
                continue;
            }
            run.started[i] = true;
            let t = self.tiers[i].clone();
            run.pending[i] = Some(async move { run_probe(t.as_ref(), ctx).await }.boxed());
        }
    }

    fn report(
        &self,
        info: &cws_provider::ProviderInfo,
        req: &ResolveRequest,
        results: Vec<Option<(TierResult, u64)>>,
    ) -> Resolution {
        let winner = results
            .iter()
            .position(|r| matches!(r, Some((TierResult::Found(_), _))));
        let winner_name = winner.map(|w| self.tiers[w].id());
        let mut attempts = Vec::with_capacity(results.len());
        let mut warnings = Vec::new();
        for (i, r) in results.iter().enumerate() {
            let name = self.tiers[i].id();
            let attempt = match r {
                None => Attempt {
                    tier: name,
                    outcome: Outcome::Skipped,
                    detail: match &winner_name {
                        Some(w) => format!("not needed: {w} answered first"),
                        None => "not run".into(),
                    },
                    duration_ms: 0,
                    ami_id: None,
                    error_kind: None,
                },
                Some((res, ms)) => {
                    let (outcome, detail, ami_id, error_kind) = match res {
                        TierResult::Found(c) => (
                            Outcome::Found,
                            c.detail.clone(),
                            Some(c.ami_id.clone()),
                            None,
                        ),
                        TierResult::NotFound(d) => (Outcome::NotFound, d.clone(), None, None),
                        TierResult::Skipped(d) => (Outcome::Skipped, d.clone(), None, None),
                        TierResult::Declined(d) => (Outcome::Declined, d.clone(), None, None),
                        TierResult::Failed(kind, d) => {
                            (Outcome::Failed, d.clone(), None, Some(kind.clone()))
                        }
                    };
                    Attempt {
                        tier: name,
                        outcome,
                        detail,
                        duration_ms: *ms,
                        ami_id,
                        error_kind,
                    }
                }
            };
            attempts.push(attempt);
        }
        let strategy = req.template.strategy();
        let mut res = Resolution {
            provider: ProviderLabel::from(info),
            template: req.template.slug.clone(),
            region: req.region.clone(),
            strategy,
            forced_tier: self.forced.clone(),
            method: Method::Failed,
            ami_id: None,
            ami_name: None,
            ami_owner: None,
            source_region: None,
            target_region: req.region.clone(),
            architecture: None,
            requires_copy: false,
            copy: None,
            estimated_launch_seconds: None,
            warnings: Vec::new(),
            attempts,
            listing: None,
            listing_version: None,
        };
        if let Some(w) = winner
            && let Some((TierResult::Found(c), _)) = &results[w]
        {
            let c: &Candidate = c;
            warnings.extend(c.warnings.iter().cloned());
            res.method = self.tiers[w].method();
            res.ami_id = Some(c.ami_id.clone());
            res.ami_name = Some(c.ami_name.clone());
            res.ami_owner = Some(c.owner_id.clone());
            res.source_region = Some(c.source_region.clone());
            res.architecture = Some(c.architecture);
            res.requires_copy = c.copy.is_some();
            res.copy = c.copy.clone();
            res.estimated_launch_seconds = Some(c.estimated_launch_seconds);
            // Any tier may land on an image a listing publishes (the template's own search
            // finding it, say): the report names the listing either way.
            let known = req
                .known_images
                .iter()
                .find(|k| k.region == c.source_region && k.ami_id == c.ami_id)
                .and_then(|k| k.listing.as_ref());
            if let Some(l) = c
                .listing
                .as_ref()
                .or(c.copy.as_ref().and_then(|p| p.listing.as_ref()))
                .or(known)
            {
                res.listing = Some(l.listing.clone());
                res.listing_version = Some(l.version.clone());
            }
            // An AMI found by a lower tier than script (e.g. --prefer-script) is worth a word.
            if !self.tiers[w].provides_ami()
                && let Some((j, alt)) = results.iter().enumerate().find_map(|(j, r)| match r {
                    Some((TierResult::Found(a), _)) if j != w && self.tiers[j].provides_ami() => {
                        Some((j, a))
                    }
                    _ => None,
                })
            {
                warnings.push(format!(
                    "an image is available via {}: {} launches in ~{} instead of ~{}",
                    self.tiers[j].id(),
                    alt.ami_id,
                    cws_util::duration::format_seconds(alt.estimated_launch_seconds),
                    cws_util::duration::format_seconds(c.estimated_launch_seconds)
                ));
            }
        }
        res.warnings = warnings;
        res
    }
}

/// A probe's result in a form that can be cloned into the report.
#[derive(Debug, Clone)]
enum TierResult {
    Found(Box<Candidate>),
    NotFound(String),
    Skipped(String),
    Declined(String),
    Failed(String, String),
}

async fn run_probe(t: &dyn Tier, ctx: &ResolveContext<'_>) -> (TierResult, u64) {
    let start = Instant::now();
    let r = t.probe(ctx).await;
    let ms = start.elapsed().as_millis() as u64;
    let r = match r {
        // Policy and refusals hold for every tier, an embedder's included.
        Ok(Probe::Found(c)) => match ctx.candidate_refusal(&c) {
            Some(why) => TierResult::NotFound(why),
            None => TierResult::Found(Box::new(c)),
        },
        Ok(Probe::NotFound(d)) => TierResult::NotFound(d),
        Ok(Probe::Skipped(d)) => TierResult::Skipped(d),
        Err(e) => TierResult::Failed(e.kind().to_string(), failure_detail(&e)),
    };
    (r, ms)
}

fn failure_detail(e: &ProviderError) -> String {
    format!("provider error: {e}")
}

/// How many calls the first wave may make before later in-region tiers wait for it.
const WAVE_CALL_BUDGET: usize = 2;

/// One request's probes during a drive.
struct Run<'f> {
    results: Vec<Option<(TierResult, u64)>>,
    pending: Vec<Option<BoxFuture<'f, (TierResult, u64)>>>,
    started: Vec<bool>,
    next_wave: usize,
    done: bool,
}

impl Run<'_> {
    /// Polls the running probes in priority order; true when one finished. Marks the run
    /// done (and drops its other probes) once the winner is certain, when asked to.
    fn poll_probes(&mut self, cx: &mut std::task::Context<'_>, stop_when_decided: bool) -> bool {
        let mut progressed = false;
        for i in 0..self.pending.len() {
            let Some(fut) = self.pending[i].as_mut() else {
                continue;
            };
            if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                self.pending[i] = None;
                self.results[i] = Some(r);
                progressed = true;
                if stop_when_decided && decided(&self.results) {
                    self.done = true;
                    for p in &mut self.pending {
                        *p = None;
                    }
                    return true;
                }
            }
        }
        progressed
    }
}

/// Whether the winner is certain: every tier before the first success has answered.
fn decided(results: &[Option<(TierResult, u64)>]) -> bool {
    for r in results {
        match r {
            None => return false,
            Some((TierResult::Found(_), _)) => return true,
            Some(_) => {}
        }
    }
    true
}

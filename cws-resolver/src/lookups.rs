//! The read-only questions of one resolution (or of many run together), asked as few times
//! and in as few calls as the backend allows.
//!
//! Tiers stay simple: each asks the catalogue what it needs, through [`Batched`], an
//! [`ImageCatalog`] view that does not call the backend itself. It queues the question and
//! waits. The resolver's driver polls every probe of a wave, so every question the wave
//! asks is queued before anything is sent. Then it sends them together as one [`flush`]:
//!
//! - the same question asked twice (a fallback region another region's resolution also
//!   searches, say) is asked once, and later askers get the answer already received;
//! - ids in the same region go in one `DescribeImages` by id;
//! - searches in the same region go in one `DescribeImages` when the filters allow it,
//!   and each asker gets back only the images its own query matches. Owners and names are
//!   OR-lists in EC2, so they can be unioned. Tags and product codes AND, so queries with
//!   different ones are not merged. Owner ids split by each image's `OwnerId`. `self` and
//!   the aliases (`amazon`, `aws-marketplace`) stand for accounts cws does not know without
//!   asking (a round trip): an image from a listed account id might be `self`'s as well.
//!   So a query naming any of them merges only with queries of exactly the same owners.
//!
//! The answers are the ones the separate calls would give (the oracle property tests
//! compare them).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cws_provider::{
    Image, ImageCatalog, ImageQuery, MarketplaceProduct, MarketplaceQuery, ProviderError,
    ProviderInfo, ProviderResult, Snapshot, select_image,
};
use cws_template::Architecture;
use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{BoxFuture, Shared, join_all};

/// One question, as the backend would be asked it alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// One image by id.
    Id { region: String, id: String },
    /// Every image a query matches.
    Search { region: String, query: ImageQuery },
    /// The image the resolver would pick among a query's matches.
    Best {
        region: String,
        query: ImageQuery,
        preferred: Vec<Architecture>,
        now: DateTime<Utc>,
    },
}

impl Key {
    fn query(&self) -> Option<&ImageQuery> {
        match self {
            Key::Id { .. } => None,
            Key::Search { query, .. } | Key::Best { query, .. } => Some(query),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Id(Option<Image>),
    Search(Arc<Vec<Image>>),
    Best(Option<(Image, bool)>),
}

type Reply = Result<Answer, Arc<ProviderError>>;
/// Questions waiting for one call, with where each answer goes.
type Askers = Vec<(Key, oneshot::Sender<Reply>)>;
type Waiter = Shared<oneshot::Receiver<Reply>>;

#[derive(Default)]
struct State {
    /// Every question asked so far: answered, or in flight, or queued.
    asked: HashMap<Key, Waiter>,
    /// Questions not sent yet, with where to put the answer.
    queue: Askers,
}

/// The questions of one drive: queued by [`Batched`], sent by [`flush`].
#[derive(Default)]
pub(crate) struct Lookups {
    state: Mutex<State>,
}

impl std::fmt::Debug for Lookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("Lookups")
            .field("asked", &s.asked.len())
            .field("queued", &s.queue.len())
            .finish()
    }
}

impl Lookups {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn ask(&self, key: Key) -> ProviderResult<Answer> {
        loop {
            let waiter = {
                let mut s = self.lock();
                match s.asked.get(&key) {
                    Some(w) => w.clone(),
                    None => {
                        let (tx, rx) = oneshot::channel();
                        let w = rx.shared();
                        s.asked.insert(key.clone(), w.clone());
                        s.queue.push((key.clone(), tx));
                        w
                    }
                }
            };
            match waiter.clone().await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => return Err(e.duplicate()),
                Err(oneshot::Canceled) => {
                    // The call carrying it was dropped unanswered: ask again.
                    let mut s = self.lock();
                    if s.asked.get(&key).is_some_and(|w| w.ptr_eq(&waiter)) {
                        s.asked.remove(&key);
                    }
                }
            }
        }
    }

    /// Whether questions are waiting to be sent.
    pub(crate) fn has_queued(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// How many queued questions there are.
    pub(crate) fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// How many calls the questions queued after the first `from` would take, merged.
    pub(crate) fn calls_for(&self, from: usize) -> usize {
        let s = self.lock();
        let mut id_regions: Vec<&str> = Vec::new();
        let mut groups: Vec<MergeKey> = Vec::new();
        for (key, _) in s.queue.iter().skip(from) {
            match key {
                Key::Id { region, .. } => {
                    if !id_regions.contains(&region.as_str()) {
                        id_regions.push(region);
                    }
                }
                Key::Search { region, query } | Key::Best { region, query, .. } => {
                    let mk = merge_key(region, query);
                    if !groups.contains(&mk) {
                        groups.push(mk);
                    }
                }
            }
        }
        id_regions.len() + groups.len()
    }

    /// Takes the queued questions and plans the calls that answer them (merging searches
    /// when `merge` is set; an in-memory backend is not merged for: see
    /// [`ImageCatalog::answers_in_memory`]).
    pub(crate) fn take(&self, merge: bool) -> Vec<Call> {
        let mut s = self.lock();
        let queue = std::mem::take(&mut s.queue);
        plan(queue, merge)
    }
}

/// One backend call and the questions it answers.
pub(crate) enum Call {
    /// `DescribeImages` by id in one region.
    Ids {
        region: String,
        askers: Vec<(String, oneshot::Sender<Reply>)>,
    },
    /// One search (merged or not) in one region.
    Search {
        region: String,
        query: ImageQuery,
        askers: Askers,
    },
}

/// What makes two searches mergeable: everything that ANDs must be equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MergeKey {
    region: String,
    tags: BTreeMap<String, String>,
    product_codes: Vec<String>,
    states: Vec<cws_provider::ImageState>,
    include_deprecated: bool,
    /// Empty when every owner is an account id or `self` (those merge, unioned, and split by
    /// each image's owner id; `self` is told apart by the caller's account id, asked in the
    /// same round trip when the split needs it). Otherwise (an alias such as `amazon`, which
    /// stands for accounts cws cannot list) the whole owner list, which must then be the same
    /// for every member.
    owners: Vec<String>,
}

/// The owner filter value for the caller's own account.
const SELF: &str = "self";

fn is_account_id(owner: &str) -> bool {
    owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit())
}

fn merge_key(region: &str, q: &ImageQuery) -> MergeKey {
    let mut product_codes = q.product_codes.clone();
    product_codes.sort();
    let mut states = q.accepted_states();
    states.sort_by_key(|s| s.to_string());
    let mut owners: Vec<String> = if q.owners.iter().all(|o| is_account_id(o) || o == SELF) {
        Vec::new()
    } else {
        q.owners.clone()
    };
    owners.sort();
    owners.dedup();
    MergeKey {
        region: region.to_string(),
        tags: q.tags.clone(),
        product_codes,
        states,
        include_deprecated: q.include_deprecated,
        owners,
    }
}

/// Groups queued questions into calls.
fn plan(queue: Askers, merge: bool) -> Vec<Call> {
    let mut ids: BTreeMap<String, Vec<(String, oneshot::Sender<Reply>)>> = BTreeMap::new();
    let mut groups: Vec<(MergeKey, Askers)> = Vec::new();
    for (key, tx) in queue {
        match &key {
            Key::Id { region, id } => {
                ids.entry(region.clone())
                    .or_default()
                    .push((id.clone(), tx));
            }
            Key::Search { region, query } | Key::Best { region, query, .. } => {
                let mk = merge_key(region, query);
                // Unmerged, only the same query shares a call.
                let same = |k: &MergeKey, members: &Askers| {
                    *k == mk
                        && (merge || members.first().and_then(|(m, _)| m.query()) == Some(query))
                };
                match groups.iter_mut().find(|(k, members)| same(k, members)) {
                    Some((_, members)) => members.push((key, tx)),
                    None => groups.push((mk, vec![(key, tx)])),
                }
            }
        }
    }
    let mut calls: Vec<Call> = ids
        .into_iter()
        .map(|(region, askers)| Call::Ids { region, askers })
        .collect();
    for (mk, members) in groups {
        let queries: Vec<&ImageQuery> = members.iter().filter_map(|(k, _)| k.query()).collect();
        let query = merged(&queries);
        calls.push(Call::Search {
            region: mk.region,
            query,
            askers: members,
        });
    }
    calls
}

/// The one query that returns everything each of `queries` would (they share a merge key).
fn merged(queries: &[&ImageQuery]) -> ImageQuery {
    let first = queries[0];
    if queries.iter().all(|q| *q == first) {
        return first.clone();
    }
    let mut q = first.clone();
    let mut owners: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut any_name = false;
    let mut archs: Vec<Architecture> = Vec::new();
    let mut any_arch = false;
    for m in queries {
        for o in &m.owners {
            if !owners.contains(o) {
                owners.push(o.clone());
            }
        }
        if m.names.is_empty() {
            any_name = true;
        }
        for n in &m.names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        if m.architectures.is_empty() {
            any_arch = true;
        }
        for a in &m.architectures {
            if !archs.contains(a) {
                archs.push(*a);
            }
        }
    }
    q.owners = owners;
    q.names = if any_name { Vec::new() } else { names };
    q.architectures = if any_arch { Vec::new() } else { archs };
    q
}

/// Whether an image returned for a merged call answers this query: its own filters, and its
/// owner. When the merged call unioned account ids (and `self`, standing for `account`),
/// the image belongs to the queries that list its owner; otherwise every member has the
/// merged call's owners (see `merge_key`).
fn answers(query: &ImageQuery, merged: &ImageQuery, account: Option<&str>, image: &Image) -> bool {
    let owner_ok = if merged.owners.iter().all(|o| is_account_id(o)) {
        query.owners.contains(&image.owner_id)
    } else if let Some(account) = account {
        // `self` among account ids, askers with different owners (`split_needs_account`).
        query
            .owners
            .iter()
            .any(|o| *o == image.owner_id || (o == SELF && account == image.owner_id))
    } else {
        // Every asker has the merged call's owners.
        true
    };
    owner_ok && query.matches_filters(image)
}

/// Whether splitting a merged call's answer needs the caller's account id: `self` is among
/// its owners and its askers do not all have the same owners.
fn split_needs_account(merged: &ImageQuery, askers: &[(Key, oneshot::Sender<Reply>)]) -> bool {
    if !merged.owners.iter().any(|o| o == SELF) {
        return false;
    }
    let sorted = |q: &ImageQuery| {
        let mut o = q.owners.clone();
        o.sort();
        o.dedup();
        o
    };
    let mut sets = askers.iter().filter_map(|(k, _)| k.query()).map(sorted);
    let first = sets.next();
    sets.any(|s| Some(&s) != first.as_ref())
}

/// The planned calls of one wave in flight, each handing its askers their answer as it
/// returns.
///
/// Calls are started in priority order (the order their questions were asked, which is
/// the order the driver polls the tiers in), and the driver gets control back whenever
/// one answers without waiting — a cached answer — before the next is started. If that
/// answer decides the resolution, the calls after it are never sent: a repeat whose
/// deciding answer is cached costs nothing, even when a lower tier's answer is not.
pub(crate) struct Flush<'a> {
    sends: Vec<Option<BoxFuture<'a, ()>>>,
    started: usize,
}

/// What one [`Flush::poll_step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Every call has answered.
    Done,
    /// A call answered (or one was started and answered at once): re-poll the askers
    /// before going on.
    Progress,
    /// Every call is on the wire; nothing answered yet.
    Pending,
}

impl<'a> Flush<'a> {
    /// The calls, not started yet.
    pub(crate) fn new(catalog: &'a dyn ImageCatalog, calls: Vec<Call>) -> Self {
        Flush {
            sends: calls
                .into_iter()
                .map(|call| Some(send(catalog, call).boxed()))
                .collect(),
            started: 0,
        }
    }

    /// Polls the calls in flight, then starts the next ones until one is waiting on the
    /// backend... or answers at once, which returns control to the driver.
    pub(crate) fn poll_step(&mut self, cx: &mut std::task::Context<'_>) -> Step {
        let mut answered = false;
        for slot in &mut self.sends[..self.started] {
            if let Some(f) = slot
                && f.as_mut().poll(cx).is_ready()
            {
                *slot = None;
                answered = true;
            }
        }
        if !answered {
            while self.started < self.sends.len() {
                let i = self.started;
                self.started += 1;
                if let Some(f) = &mut self.sends[i]
                    && f.as_mut().poll(cx).is_ready()
                {
                    self.sends[i] = None;
                    answered = true;
                    break;
                }
            }
        }
        if self.started == self.sends.len() && self.sends.iter().all(Option::is_none) {
            Step::Done
        } else if answered {
            Step::Progress
        } else {
            Step::Pending
        }
    }
}

async fn send(catalog: &dyn ImageCatalog, call: Call) {
    match call {
        Call::Ids { region, askers } => {
            let mut ids: Vec<String> = askers.iter().map(|(id, _)| id.clone()).collect();
            ids.dedup();
            match catalog.describe_images_by_id(&region, &ids).await {
                Ok(images) => {
                    for (id, tx) in askers {
                        let img = images.iter().find(|i| i.id == id).cloned();
                        let _ = tx.send(Ok(Answer::Id(img)));
                    }
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for (_, tx) in askers {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            }
        }
        Call::Search {
            region,
            query,
            mut askers,
        } => {
            // Asked alone for the best image: let the backend pick in place.
            if askers.len() == 1
                && let Key::Best { preferred, now, .. } = &askers[0].0
            {
                let (preferred, now) = (preferred.clone(), *now);
                let Some((_, tx)) = askers.pop() else {
                    return;
                };
                let r = catalog
                    .describe_best_image(&region, &query, &preferred, now)
                    .await;
                let _ = tx.send(r.map(Answer::Best).map_err(Arc::new));
                return;
            }
            // Telling `self`'s images from a listed publisher's needs the caller's account id:
            // asked beside the search, in the same round trip (and kept by the provider).
            let needs_account = split_needs_account(&query, &askers);
            let (found, account) = if needs_account {
                futures::join!(
                    catalog.describe_images(&region, &query),
                    catalog.account_id()
                )
            } else {
                (catalog.describe_images(&region, &query).await, Ok(None))
            };
            let account = account.ok().flatten();
            match found {
                Ok(images) => {
                    for (key, tx) in askers {
                        if needs_account && account.is_none() {
                            // The account cannot be learnt: this question is asked alone.
                            let _ = tx.send(ask_alone(catalog, &region, &key).await);
                            continue;
                        }
                        let mine = |q: &ImageQuery| -> Vec<Image> {
                            images
                                .iter()
                                .filter(|i| answers(q, &query, account.as_deref(), i))
                                .cloned()
                                .collect()
                        };
                        let answer = match &key {
                            Key::Search { query: q, .. } => Answer::Search(Arc::new(mine(q))),
                            Key::Best {
                                query: q,
                                preferred,
                                now,
                                ..
                            } => Answer::Best(
                                select_image(&mine(q), preferred, *now)
                                    .map(|(i, d)| (i.clone(), d)),
                            ),
                            Key::Id { .. } => continue,
                        };
                        let _ = tx.send(Ok(answer));
                    }
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for (_, tx) in askers {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

/// One search question asked on its own.
async fn ask_alone(catalog: &dyn ImageCatalog, region: &str, key: &Key) -> Reply {
    match key {
        Key::Search { query, .. } => catalog
            .describe_images(region, query)
            .await
            .map(|v| Answer::Search(Arc::new(v))),
        Key::Best {
            query,
            preferred,
            now,
            ..
        } => catalog
            .describe_best_image(region, query, preferred, *now)
            .await
            .map(Answer::Best),
        Key::Id { id, .. } => catalog
            .describe_images_by_id(region, std::slice::from_ref(id))
            .await
            .map(|v| Answer::Id(v.into_iter().find(|i| &i.id == id))),
    }
    .map_err(Arc::new)
}

/// The catalogue the tiers see during a drive: reads that identify images go through
/// [`Lookups`]; everything else goes straight to the backend.
pub(crate) struct Batched<'a> {
    pub(crate) lookups: &'a Lookups,
    pub(crate) inner: &'a dyn ImageCatalog,
}

impl std::fmt::Debug for Batched<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batched")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ImageCatalog for Batched<'_> {
    fn info(&self) -> ProviderInfo {
        self.inner.info()
    }

    async fn describe_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Image>> {
        let asks = ids.iter().map(|id| {
            self.lookups.ask(Key::Id {
                region: region.to_string(),
                id: id.clone(),
            })
        });
        let mut out = Vec::new();
        for r in join_all(asks).await {
            if let Answer::Id(Some(img)) = r? {
                out.push(img);
            }
        }
        Ok(out)
    }

    async fn describe_images(
        &self,
        region: &str,
        query: &ImageQuery,
    ) -> ProviderResult<Vec<Image>> {
        let key = Key::Search {
            region: region.to_string(),
            query: query.clone(),
        };
        match self.lookups.ask(key).await? {
            Answer::Search(images) => Ok(images.as_ref().clone()),
            _ => Ok(Vec::new()),
        }
    }

    async fn describe_best_image(
        &self,
        region: &str,
        query: &ImageQuery,
        preferred: &[Architecture],
        now: DateTime<Utc>,
    ) -> ProviderResult<Option<(Image, bool)>> {
        let key = Key::Best {
            region: region.to_string(),
            query: query.clone(),
            preferred: preferred.to_vec(),
            now,
        };
        match self.lookups.ask(key).await? {
            Answer::Best(pick) => Ok(pick),
            _ => Ok(None),
        }
    }

    async fn describe_snapshots(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Snapshot>> {
        self.inner.describe_snapshots(region, ids).await
    }

    async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
        self.inner.describe_regions().await
    }

    async fn find_marketplace_products(
        &self,
        query: &MarketplaceQuery,
    ) -> ProviderResult<Vec<MarketplaceProduct>> {
        self.inner.find_marketplace_products(query).await
    }

    async fn account_id(&self) -> ProviderResult<Option<String>> {
        self.inner.account_id().await
    }

    fn answers_in_memory(&self) -> bool {
        self.inner.answers_in_memory()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(owners: &[&str], name: &str) -> ImageQuery {
        ImageQuery::owned_by(owners.iter().copied()).name(name)
    }

    #[test]
    fn account_id_searches_merge_and_split_by_owner() {
        let a = q(&["111111111111"], "a-*");
        let b = q(&["222222222222"], "b-*");
        let m = merged(&[&a, &b]);
        assert_eq!(m.owners, ["111111111111", "222222222222"]);
        assert_eq!(m.names, ["a-*", "b-*"]);
        let now = Utc::now();
        let img_b_from_a = Image::new(
            "ami-1",
            "r",
            "b-1",
            "111111111111",
            Architecture::X86_64,
            now,
        );
        assert!(
            !answers(&a, &m, None, &img_b_from_a),
            "name is a's, owner is not"
        );
        assert!(
            !answers(&b, &m, None, &img_b_from_a),
            "owner is b's, name is not"
        );
        assert_eq!(merge_key("r", &a), merge_key("r", &b));
    }

    #[test]
    fn filters_that_and_are_never_merged() {
        let plain = q(&["111111111111"], "a-*");
        let tagged = plain.clone().tag("cws:template", "t");
        assert_ne!(merge_key("r", &plain), merge_key("r", &tagged));
        let coded = plain.clone().product_code("abc");
        assert_ne!(merge_key("r", &plain), merge_key("r", &coded));
        let deprecated = plain.clone().include_deprecated(true);
        assert_ne!(merge_key("r", &plain), merge_key("r", &deprecated));
        assert_ne!(merge_key("r", &plain), merge_key("s", &plain));
    }

    #[test]
    fn self_merges_with_account_ids_and_is_told_apart_by_the_account() {
        let own = q(&["self"], "a-*");
        let publisher = q(&["111111111111"], "a-*");
        assert_eq!(merge_key("r", &own), merge_key("r", &publisher));
        // Aliases stand for accounts cws cannot list: only the same owners merge.
        let amazon = q(&["amazon"], "a-*");
        assert_ne!(merge_key("r", &own), merge_key("r", &amazon));
        assert_eq!(
            merge_key("r", &amazon),
            merge_key("r", &q(&["amazon"], "b-*"))
        );
        // A template's search (self and a publisher) and the search for the user's copies.
        let search = q(&["self", "111111111111"], "a-*").tag("cws:template", "t");
        let provenance = ImageQuery::owned_by(["self"]).tag("cws:template", "t");
        assert_eq!(merge_key("r", &search), merge_key("r", &provenance));
        let m = merged(&[&search, &provenance]);
        assert!(m.names.is_empty(), "the copies' search takes any name");
        let mut img = Image::new(
            "ami-1",
            "r",
            "x-1",
            "111111111111",
            Architecture::X86_64,
            Utc::now(),
        );
        img.tags.insert("cws:template".into(), "t".into());
        // The publisher's image, for a user with another account: not a copy of theirs.
        assert!(!answers(&provenance, &m, Some("222222222222"), &img));
        // For the publisher itself, `self` is that account: it is.
        assert!(answers(&provenance, &m, Some("111111111111"), &img));
        assert!(
            !answers(&search, &m, Some("111111111111"), &img),
            "wrong name"
        );
        let askers: Askers = [search.clone(), provenance.clone()]
            .into_iter()
            .map(|q| {
                (
                    Key::Search {
                        region: "r".into(),
                        query: q,
                    },
                    oneshot::channel().0,
                )
            })
            .collect();
        assert!(split_needs_account(&m, &askers));
        assert!(!split_needs_account(&merged(&[&publisher]), &askers[..1]));
    }

    #[test]
    fn any_name_or_architecture_absorbs_the_others() {
        let a = q(&["111111111111"], "a-*").architectures([Architecture::Arm64]);
        let b = ImageQuery::owned_by(["222222222222"]);
        let m = merged(&[&a, &b]);
        assert!(m.names.is_empty());
        assert!(m.architectures.is_empty());
    }
}

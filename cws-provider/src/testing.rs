//! The provider conformance suite: one set of behavioural tests every [`CloudProvider`] must
//! pass (cargo feature `testing`).
//!
//! Shaped after `object_store`'s `integration.rs`: each check is a `pub async fn` taking
//! `&dyn CloudProvider` and a [`Fixture`] describing where to run, and asserting (panicking)
//! on any deviation. The same functions run against LocalCloud
//! in memory and on disk, and are written to pass against EC2 semantics (an emulator such as
//! moto, or a real account) too:
//!
//! - every resource gets a unique name from [`nonce`], so re-runs on shared state never
//!   collide, and every check cleans up what it made (terminate, deregister, delete
//!   snapshots);
//! - new images may come back `pending` on a real backend, so searches for them accept
//!   `pending` and `available`;
//! - only contract behaviour is asserted (error *kinds*, not message wording).
//!
//! ```no_run
//! # async fn demo() {
//! use cws_localcloud::LocalCloud;
//! use cws_provider::testing::run_all;
//! let cloud = LocalCloud::in_memory();
//! run_all(&cloud, &cws_localcloud::conformance_fixture()).await;
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

use cws_template::Architecture;

use crate::error::{ProviderError, ProviderResult};
use crate::ext::{ImageCatalogExt, InstancesExt};
use crate::model::{
    CopyImageRequest, CreateImageRequest, Image, ImageQuery, ImageState, InstanceFilter,
    InstanceState, LaunchPermission, RunInstanceRequest,
};
use crate::traits::CloudProvider;

/// Where and with what the suite runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// The region most checks run in.
    pub region: String,
    /// A second region, the target of cross-region copies.
    pub other_region: String,
    /// An available, public image in `region` (not owned by the provider's account) to search
    /// for, launch and copy.
    pub base_image_id: String,
    /// The architecture of `base_image_id`.
    pub architecture: Architecture,
    /// An instance type able to launch `base_image_id`.
    pub instance_type: String,
}

/// A short hex string unique to this call (time, process id and a counter), for resource
/// names that must not collide with earlier runs against the same backend.
pub fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let key = format!("{nanos}:{}:{n}", std::process::id());
    format!("{:012x}", hash(&key) >> 16)
}

/// A stable 64-bit hash of a string (for ids and names that must not collide).
fn hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// Asserts a call failed with the given [`ProviderError::kind`](crate::error::ProviderError::kind).
#[track_caller]
fn expect_kind<T: Debug>(result: ProviderResult<T>, kind: &str, what: &str) {
    match result {
        Ok(v) => panic!("{what}: expected a `{kind}` error, got Ok({v:?})"),
        Err(e) => assert_eq!(e.kind(), kind, "{what}: wrong error kind: {e}"),
    }
}

/// Unwraps a result with a message naming the step.
#[track_caller]
fn ok<T>(result: ProviderResult<T>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

/// States a freshly made image may be in on a real backend.
fn fresh_states() -> Vec<ImageState> {
    vec![ImageState::Pending, ImageState::Available]
}

fn other_arch(a: Architecture) -> Architecture {
    match a {
        Architecture::X86_64 => Architecture::Arm64,
        Architecture::Arm64 => Architecture::X86_64,
    }
}

/// A well-formed AMI id that does not exist.
fn unknown_image_id() -> String {
    format!("ami-0{:016x}", hash(&nonce()))
}

async fn base_image(p: &dyn CloudProvider, fx: &Fixture) -> Image {
    let found = ok(
        p.image(&fx.region, &fx.base_image_id).await,
        "describing the fixture's base image",
    );
    let image = found.unwrap_or_else(|| {
        panic!(
            "fixture base image {} does not exist in {}",
            fx.base_image_id, fx.region
        )
    });
    assert_eq!(
        image.architecture, fx.architecture,
        "fixture architecture disagrees with the base image"
    );
    image
}

/// Copies the base image into `region` under a unique name; the caller deregisters it.
async fn own_copy(p: &dyn CloudProvider, fx: &Fixture, region: &str, label: &str) -> Image {
    let request = CopyImageRequest {
        source_region: fx.region.clone(),
        source_image_id: fx.base_image_id.clone(),
        target_region: region.to_string(),
        name: format!("cws-conformance-{}-{label}", nonce()),
        description: Some("cws conformance suite".to_string()),
        tags: BTreeMap::new(),
    };
    ok(p.copy_image(&request).await, "copy_image")
}

/// Lookup by id: found with its fields; unknown ids are absent (alone or mixed with known
/// ones); a malformed id is invalid input.
pub async fn describe_by_id(p: &dyn CloudProvider, fx: &Fixture) {
    let base = base_image(p, fx).await;
    assert_eq!(base.id, fx.base_image_id);
    assert_eq!(base.region, fx.region);
    assert_eq!(base.state, ImageState::Available);
    assert!(!base.name.is_empty(), "images have names");

    let unknown = unknown_image_id();
    let none = ok(
        p.describe_images_by_id(&fx.region, std::slice::from_ref(&unknown))
            .await,
        "describe unknown id",
    );
    assert!(none.is_empty(), "unknown id must be absent, got {none:?}");

    let mixed = ok(
        p.describe_images_by_id(&fx.region, &[fx.base_image_id.clone(), unknown])
            .await,
        "describe known + unknown ids",
    );
    assert_eq!(
        mixed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![fx.base_image_id.as_str()]
    );

    expect_kind(
        p.describe_images_by_id(&fx.region, &["not-an-ami".to_string()])
            .await,
        "invalid_input",
        "malformed image id",
    );
}

/// Searches without trusted owners are refused: cws never searches "any owner".
pub async fn search_requires_owners(p: &dyn CloudProvider, fx: &Fixture) {
    let query = ImageQuery::default().name("ubuntu*");
    expect_kind(
        p.describe_images(&fx.region, &query).await,
        "invalid_input",
        "search with no owners",
    );
}

/// Name patterns (`*`, `?`), architecture and tag filters narrow a search as EC2's do.
pub async fn search_filters(p: &dyn CloudProvider, fx: &Fixture) {
    let base = base_image(p, fx).await;
    let ids = |images: Vec<Image>| images.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let search = |query: ImageQuery| async move {
        ok(
            p.describe_images(&fx.region, &query).await,
            "describe_images",
        )
    };
    let owner = || ImageQuery::owned_by([base.owner_id.clone()]);

    let exact = ids(search(owner().name(base.name.clone())).await);
    assert!(
        exact.contains(&base.id),
        "exact name must find the base image"
    );

    let cut = base.name.len() / 2;
    let cut = (0..=cut)
        .rev()
        .find(|i| base.name.is_char_boundary(*i))
        .unwrap_or(0);
    let prefix = format!("{}*", &base.name[..cut]);
    assert!(
        ids(search(owner().name(prefix.clone())).await).contains(&base.id),
        "{prefix}"
    );

    let mut one_char: Vec<char> = base.name.chars().collect();
    if let Some(last) = one_char.last_mut() {
        *last = '?';
    }
    let one_char: String = one_char.into_iter().collect();
    assert!(
        ids(search(owner().name(one_char.clone())).await).contains(&base.id),
        "{one_char}"
    );

    let nothing = search(owner().name(format!("cws-no-such-image-{}-*", nonce()))).await;
    assert!(
        nothing.is_empty(),
        "a pattern matching nothing returned {nothing:?}"
    );

    let same_arch = owner()
        .name(base.name.clone())
        .architectures([base.architecture]);
    assert!(ids(search(same_arch).await).contains(&base.id));
    let wrong_arch = owner()
        .name(base.name.clone())
        .architectures([other_arch(base.architecture)]);
    assert!(
        !ids(search(wrong_arch).await).contains(&base.id),
        "architecture filter ignored"
    );

    let missing_tag = owner()
        .name(base.name.clone())
        .tag("cws:conformance-absent", nonce());
    assert!(
        !ids(search(missing_tag).await).contains(&base.id),
        "tag filter ignored"
    );

    // `self` means the provider's own account, which does not own the public base image.
    let account = ok(p.account_id().await, "account_id");
    if account.as_ref() != Some(&base.owner_id) {
        let mine = ids(search(ImageQuery::owned_by(["self"]).name(base.name.clone())).await);
        assert!(
            !mine.contains(&base.id),
            "owner `self` matched another owner's image"
        );
    }
}

/// `describe_best_image` picks what selecting over `describe_images` picks, for every
/// architecture preference, with and without deprecated images, at different "now"s; it
/// refuses a search without owners like `describe_images` does.
pub async fn best_image_agrees_with_search(p: &dyn CloudProvider, fx: &Fixture) {
    let base = base_image(p, fx).await;
    // The base image's family: its name up to the last `-` (a build date, usually), then `*`.
    let family = match base.name.rfind('-') {
        Some(i) => format!("{}*", &base.name[..i]),
        None => base.name.clone(),
    };
    let owner = || ImageQuery::owned_by([base.owner_id.clone()]);
    let queries = [
        owner().name(base.name.clone()),
        owner().name(family.clone()),
        owner().name(family.clone()).include_deprecated(true),
        owner()
            .name(family.clone())
            .architectures([base.architecture]),
        owner().name(format!("cws-no-such-image-{}-*", nonce())),
    ];
    let preferences = [
        vec![base.architecture],
        vec![other_arch(base.architecture), base.architecture],
        vec![other_arch(base.architecture)],
    ];
    let nows = [
        "2020-01-01T00:00:00.000Z",
        "2026-11-22T00:00:00.000Z",
        "2999-01-01T00:00:00Z",
    ]
    .map(|t| crate::model::ec2_time::parse(t).expect("a valid time"));
    for query in &queries {
        let all = ok(
            p.describe_images(&fx.region, query).await,
            "describe_images",
        );
        for preferred in &preferences {
            for now in nows {
                let expected = crate::select::select_image(&all, preferred, now)
                    .map(|(i, d)| (i.id.clone(), d));
                let best = ok(
                    p.describe_best_image(&fx.region, query, preferred, now)
                        .await,
                    "describe_best_image",
                )
                .map(|(i, d)| (i.id, d));
                assert_eq!(
                    best, expected,
                    "describe_best_image disagrees with describe_images + select_image for \
                     {query:?}, preferring {preferred:?} at {now}"
                );
            }
        }
    }
    expect_kind(
        p.describe_best_image(
            &fx.region,
            &ImageQuery::default().name("ubuntu*"),
            &[base.architecture],
            nows[1],
        )
        .await,
        "invalid_input",
        "best-image search with no owners",
    );
}

/// Every operation refuses a region that does not exist.
pub async fn unknown_region_rejected(p: &dyn CloudProvider, fx: &Fixture) {
    let bogus = "mars-north-1";
    expect_kind(
        p.describe_images_by_id(bogus, std::slice::from_ref(&fx.base_image_id))
            .await,
        "invalid_input",
        "describe_images_by_id in an unknown region",
    );
    expect_kind(
        p.describe_images(bogus, &ImageQuery::owned_by(["self"]))
            .await,
        "invalid_input",
        "describe_images in an unknown region",
    );
    expect_kind(
        p.describe_instances(bogus, &InstanceFilter::default())
            .await,
        "invalid_input",
        "describe_instances in an unknown region",
    );
    let regions = ok(p.describe_regions().await, "describe_regions");
    assert!(regions.contains(&fx.region), "{} not listed", fx.region);
    assert!(
        regions.contains(&fx.other_region),
        "{} not listed",
        fx.other_region
    );
    assert!(!regions.iter().any(|r| r == bogus));
}

fn run_request(fx: &Fixture, name: &str) -> RunInstanceRequest {
    RunInstanceRequest {
        region: fx.region.clone(),
        name: name.to_string(),
        ami_id: fx.base_image_id.clone(),
        instance_type: fx.instance_type.clone(),
        architecture: fx.architecture,
        user_data: None,
        root_volume_gb: Some(12),
        tags: BTreeMap::from([("cws:conformance".to_string(), "true".to_string())]),
    }
}

fn by_name(name: &str) -> InstanceFilter {
    InstanceFilter {
        tags: BTreeMap::from([("Name".to_string(), name.to_string())]),
        ..InstanceFilter::default()
    }
}

/// Run → describe by `Name` → a duplicate name conflicts → stop → terminate → hidden (unless
/// asked for) → the name is free again; unknown instance ids are not found.
pub async fn instance_lifecycle(p: &dyn CloudProvider, fx: &Fixture) {
    let name = format!("cws-conformance-{}", nonce());
    let request = run_request(fx, &name);
    let inst = ok(p.run_instance(&request).await, "run_instance");
    assert_eq!(inst.name, name);
    assert_eq!(inst.region, fx.region);
    assert_eq!(inst.ami_id, fx.base_image_id);
    assert_eq!(inst.instance_type, fx.instance_type);
    assert_eq!(inst.architecture, fx.architecture);
    assert_eq!(inst.tags.get("Name"), Some(&name), "Name tag missing");
    assert_eq!(
        inst.tags.get("cws:conformance").map(String::as_str),
        Some("true")
    );
    assert!(
        matches!(inst.state, InstanceState::Pending | InstanceState::Running),
        "new instance is {}",
        inst.state
    );

    let found = ok(
        p.describe_instances(&fx.region, &by_name(&name)).await,
        "describe by Name",
    );
    assert_eq!(
        found.iter().map(|i| &i.id).collect::<Vec<_>>(),
        vec![&inst.id]
    );
    let by_id = InstanceFilter {
        ids: vec![inst.id.clone()],
        ..InstanceFilter::default()
    };
    let found = ok(
        p.describe_instances(&fx.region, &by_id).await,
        "describe by id",
    );
    assert_eq!(found.len(), 1);
    let via_ext = ok(
        p.instance_by_name(&fx.region, &name).await,
        "instance_by_name",
    );
    assert_eq!(via_ext.map(|i| i.id), Some(inst.id.clone()));

    match p.run_instance(&request).await {
        Ok(dup) => panic!(
            "a second live instance named {name} was launched: {}",
            dup.id
        ),
        Err(e) => {
            assert_eq!(e.kind(), "conflict", "duplicate name: {e}");
            assert!(
                e.to_string().contains(&inst.id),
                "the conflict must name the existing instance: {e}"
            );
        }
    }

    let stopped = ok(p.stop_instance(&fx.region, &inst.id).await, "stop_instance");
    assert!(
        matches!(
            stopped.state,
            InstanceState::Stopping | InstanceState::Stopped
        ),
        "stopped instance is {}",
        stopped.state
    );
    let started = ok(
        p.start_instance(&fx.region, &inst.id).await,
        "start_instance",
    );
    assert!(
        matches!(
            started.state,
            InstanceState::Pending | InstanceState::Running
        ),
        "started instance is {}",
        started.state
    );
    let stopped = ok(
        p.stop_instance(&fx.region, &inst.id).await,
        "stop_instance again",
    );
    assert!(
        matches!(
            stopped.state,
            InstanceState::Stopping | InstanceState::Stopped
        ),
        "stopped again, the instance is {}",
        stopped.state
    );
    let found = ok(
        p.describe_instances(&fx.region, &by_name(&name)).await,
        "describe stopped",
    );
    assert_eq!(found.len(), 1, "a stopped instance is still listed");

    let gone = ok(
        p.terminate_instance(&fx.region, &inst.id).await,
        "terminate_instance",
    );
    assert!(
        matches!(
            gone.state,
            InstanceState::ShuttingDown | InstanceState::Terminated
        ),
        "terminated instance is {}",
        gone.state
    );
    let live: Vec<_> = ok(
        p.describe_instances(&fx.region, &by_name(&name)).await,
        "describe",
    )
    .into_iter()
    .filter(|i| i.id == inst.id && i.state.is_live())
    .collect();
    assert!(live.is_empty(), "terminated instance still live: {live:?}");
    let hidden = ok(
        p.describe_instances(&fx.region, &by_name(&name)).await,
        "describe",
    );
    assert!(
        hidden
            .iter()
            .all(|i| i.id != inst.id || i.state != InstanceState::Terminated),
        "terminated instances are hidden unless asked for"
    );
    let with_terminated = InstanceFilter {
        include_terminated: true,
        ..by_name(&name)
    };
    let all = ok(
        p.describe_instances(&fx.region, &with_terminated).await,
        "describe all",
    );
    assert!(
        all.iter().any(|i| i.id == inst.id),
        "include_terminated shows it"
    );

    // The name is free again once the instance is gone.
    let again = ok(
        p.run_instance(&request).await,
        "run_instance reusing a freed name",
    );
    assert_ne!(again.id, inst.id);
    ok(p.terminate_instance(&fx.region, &again.id).await, "cleanup");

    let unknown = format!("i-0{:016x}", hash(&nonce()));
    expect_kind(
        p.stop_instance(&fx.region, &unknown).await,
        "not_found",
        "stop unknown instance",
    );
    expect_kind(
        p.terminate_instance(&fx.region, &unknown).await,
        "not_found",
        "terminate unknown instance",
    );
}

/// An instance type of the other architecture cannot launch the image.
pub async fn architecture_mismatch_rejected(p: &dyn CloudProvider, fx: &Fixture) {
    let wrong_type = match fx.architecture {
        Architecture::X86_64 => "t4g.micro",
        Architecture::Arm64 => "t3.micro",
    };
    let mut request = run_request(fx, &format!("cws-conformance-{}-arch", nonce()));
    request.instance_type = wrong_type.to_string();
    match p.run_instance(&request).await {
        Ok(inst) => {
            let _ = p.terminate_instance(&fx.region, &inst.id).await;
            panic!("{wrong_type} launched a {} image", fx.architecture);
        }
        Err(e) => assert_eq!(e.kind(), "invalid_input", "{e}"),
    }
}

/// An image made from an instance is owned by the account, has the instance's architecture,
/// and is found by id and by an owners=[self] search.
pub async fn create_image_from_instance(p: &dyn CloudProvider, fx: &Fixture) {
    let run = nonce();
    let inst = ok(
        p.run_instance(&run_request(fx, &format!("cws-conformance-{run}-src")))
            .await,
        "run_instance",
    );
    let request = CreateImageRequest {
        region: fx.region.clone(),
        instance_id: inst.id.clone(),
        name: format!("cws-conformance-{run}-image"),
        description: Some("cws conformance suite".to_string()),
        no_reboot: true,
        tags: BTreeMap::from([("cws:conformance".to_string(), run.clone())]),
    };
    let image = ok(p.create_image(&request).await, "create_image");
    assert!(image.id.starts_with("ami-"));
    assert_eq!(image.region, fx.region);
    assert_eq!(image.name, request.name);
    if let Some(account) = ok(p.account_id().await, "account_id") {
        assert_eq!(image.owner_id, account);
    }
    assert_eq!(image.architecture, fx.architecture);

    let by_id = ok(p.image(&fx.region, &image.id).await, "describe new image");
    assert_eq!(by_id.map(|i| i.id), Some(image.id.clone()));

    let query = ImageQuery {
        states: fresh_states(),
        ..ImageQuery::owned_by(["self"]).name(request.name.clone())
    };
    let mine = ok(
        p.describe_images(&fx.region, &query).await,
        "search own images",
    );
    assert!(
        mine.iter().any(|i| i.id == image.id),
        "owners=[self] must find it"
    );
    let tagged = ImageQuery {
        states: fresh_states(),
        ..ImageQuery::owned_by(["self"]).tag("cws:conformance", run.clone())
    };
    let mine = ok(
        p.describe_images(&fx.region, &tagged).await,
        "search by tag",
    );
    assert_eq!(
        mine.iter().map(|i| &i.id).collect::<Vec<_>>(),
        vec![&image.id]
    );

    // The name is taken now.
    let dup = p.create_image(&request).await;
    if let Ok(i) = &dup {
        let _ = p.deregister_image(&fx.region, &i.id).await;
    }
    assert!(
        dup.is_err(),
        "a second image with the same name was created"
    );

    ok(
        p.terminate_instance(&fx.region, &inst.id).await,
        "cleanup instance",
    );
    ok(
        p.deregister_image(&fx.region, &image.id).await,
        "cleanup image",
    );

    let unknown = CreateImageRequest {
        instance_id: format!("i-0{:016x}", hash(&nonce())),
        name: format!("cws-conformance-{}-none", nonce()),
        ..request
    };
    expect_kind(
        p.create_image(&unknown).await,
        "not_found",
        "create_image from an unknown instance",
    );
}

/// A cross-region copy is owned by the account, lands in the target region, and after
/// `create_tags` with provenance is found by a tag search there (not in the source region).
pub async fn copy_and_tag(p: &dyn CloudProvider, fx: &Fixture) {
    let run = nonce();
    let source = base_image(p, fx).await;
    let request = CopyImageRequest {
        source_region: fx.region.clone(),
        source_image_id: fx.base_image_id.clone(),
        target_region: fx.other_region.clone(),
        name: format!("cws-conformance-{run}-copy"),
        description: Some("cws conformance suite".to_string()),
        tags: BTreeMap::from([("cws:conformance".to_string(), run.clone())]),
    };
    let copy = ok(p.copy_image(&request).await, "copy_image");
    assert!(copy.id.starts_with("ami-"));
    assert_ne!(copy.id, source.id, "a copy gets a new id");
    assert_eq!(copy.region, fx.other_region);
    if let Some(account) = ok(p.account_id().await, "account_id") {
        assert_eq!(copy.owner_id, account);
    }
    assert_eq!(copy.architecture, source.architecture);

    let provenance = BTreeMap::from([
        ("cws:source-image".to_string(), source.id.clone()),
        ("cws:source-region".to_string(), fx.region.clone()),
        ("cws:conformance-run".to_string(), run.clone()),
    ]);
    ok(
        p.create_tags(&fx.other_region, &copy.id, &provenance).await,
        "create_tags on the copy",
    );
    let query = ImageQuery {
        states: fresh_states(),
        tags: provenance.clone(),
        ..ImageQuery::owned_by(["self"])
    };
    let found = ok(
        p.describe_images(&fx.other_region, &query).await,
        "tag search",
    );
    assert_eq!(
        found.iter().map(|i| &i.id).collect::<Vec<_>>(),
        vec![&copy.id]
    );
    let tags = &found[0].tags;
    for (k, v) in provenance.iter().chain(request.tags.iter()) {
        assert_eq!(tags.get(k), Some(v), "tag {k} missing on the copy");
    }
    let in_source = ok(
        p.describe_images(&fx.region, &query).await,
        "tag search at source",
    );
    assert!(
        in_source.is_empty(),
        "the copy is in the target region only"
    );

    if !copy.snapshot_ids.is_empty() && !source.snapshot_ids.is_empty() {
        let copy_gb = ok(p.image_size_gb(&copy).await, "copy size");
        let source_gb = ok(p.image_size_gb(&source).await, "source size");
        assert_eq!(copy_gb, source_gb, "a copy has the source's size");
    }

    expect_kind(
        p.create_tags(&fx.other_region, &unknown_image_id(), &provenance)
            .await,
        "not_found",
        "create_tags on an unknown image",
    );
    let missing = CopyImageRequest {
        source_image_id: unknown_image_id(),
        name: format!("cws-conformance-{}-missing", nonce()),
        ..request
    };
    expect_kind(
        p.copy_image(&missing).await,
        "not_found",
        "copy of an unknown image",
    );

    ok(
        p.deregister_image(&fx.other_region, &copy.id).await,
        "cleanup copy",
    );
}

/// Launch permissions on an own image: grant an account, make public, describe, revoke.
pub async fn launch_permissions(p: &dyn CloudProvider, fx: &Fixture) {
    let image = own_copy(p, fx, &fx.region, "perm").await;
    let other = LaunchPermission::Account("210987654321".to_string());
    let perms = || async {
        ok(
            p.describe_launch_permissions(&fx.region, &image.id).await,
            "describe_launch_permissions",
        )
    };

    let initial = perms().await;
    assert!(!initial.contains(&other));
    assert!(
        !initial.contains(&LaunchPermission::Public),
        "copies start private"
    );

    ok(
        p.modify_launch_permission(&fx.region, &image.id, &other, true)
            .await,
        "grant account",
    );
    assert!(perms().await.contains(&other), "granted account listed");

    ok(
        p.modify_launch_permission(&fx.region, &image.id, &LaunchPermission::Public, true)
            .await,
        "make public",
    );
    assert!(perms().await.contains(&LaunchPermission::Public));
    let described = ok(p.image(&fx.region, &image.id).await, "describe").map(|i| i.public);
    assert_eq!(described, Some(true), "a public image says so");

    ok(
        p.modify_launch_permission(&fx.region, &image.id, &other, false)
            .await,
        "revoke account",
    );
    ok(
        p.modify_launch_permission(&fx.region, &image.id, &LaunchPermission::Public, false)
            .await,
        "make private",
    );
    let after = perms().await;
    assert!(!after.contains(&other), "revoked account still listed");
    assert!(!after.contains(&LaunchPermission::Public), "still public");

    ok(p.deregister_image(&fx.region, &image.id).await, "cleanup");
}

/// A deregistered image is gone from searches and from lookups by id; deregistering it again
/// fails.
pub async fn deregister(p: &dyn CloudProvider, fx: &Fixture) {
    let image = own_copy(p, fx, &fx.region, "dereg").await;
    ok(
        p.deregister_image(&fx.region, &image.id).await,
        "deregister_image",
    );

    let by_id = ok(
        p.describe_images_by_id(&fx.region, std::slice::from_ref(&image.id))
            .await,
        "describe deregistered",
    );
    assert!(
        by_id
            .iter()
            .all(|i| i.id != image.id || i.state == ImageState::Deregistered),
        "deregistered image still described: {by_id:?}"
    );
    let query = ImageQuery {
        states: fresh_states(),
        ..ImageQuery::owned_by(["self"]).name(image.name.clone())
    };
    let found = ok(p.describe_images(&fx.region, &query).await, "search");
    assert!(
        found.is_empty(),
        "deregistered image still found: {found:?}"
    );

    assert!(
        p.deregister_image(&fx.region, &image.id).await.is_err(),
        "deregistering twice must fail"
    );
}

/// A well-formed snapshot id that does not exist.
fn unknown_snapshot_id() -> String {
    format!("snap-0{:016x}", hash(&nonce()))
}

/// The snapshots of an own image; a backend whose images have none cannot run the snapshot
/// checks, which is a conformance failure (cws shares and deletes through them).
fn own_snapshots(image: &Image) -> &[String] {
    assert!(
        !image.snapshot_ids.is_empty(),
        "image {} made by the account lists no snapshots",
        image.id
    );
    &image.snapshot_ids
}

/// Create-volume permission on an own image's snapshots: grant an account and everyone,
/// revoke both (each an idempotent success); an organization is invalid input (EC2 shares
/// snapshots with account ids and `all` only); an unknown snapshot is not found and a
/// malformed id invalid.
pub async fn snapshot_permissions(p: &dyn CloudProvider, fx: &Fixture) {
    let image = own_copy(p, fx, &fx.region, "snapperm").await;
    let other = LaunchPermission::Account("210987654321".to_string());
    for snap in own_snapshots(&image) {
        for (perm, add, what) in [
            (&other, true, "grant account"),
            (&LaunchPermission::Public, true, "grant everyone"),
            (&other, false, "revoke account"),
            (&LaunchPermission::Public, false, "revoke everyone"),
        ] {
            ok(
                p.modify_snapshot_permission(&fx.region, snap, perm, add)
                    .await,
                what,
            );
        }
        let org = LaunchPermission::Organization(
            "arn:aws:organizations::123456789012:organization/o-abcdefghij".to_string(),
        );
        expect_kind(
            p.modify_snapshot_permission(&fx.region, snap, &org, true)
                .await,
            "invalid_input",
            "share a snapshot with an organization",
        );
    }
    expect_kind(
        p.modify_snapshot_permission(&fx.region, &unknown_snapshot_id(), &other, true)
            .await,
        "not_found",
        "modify an unknown snapshot",
    );
    expect_kind(
        p.modify_snapshot_permission(&fx.region, "not-a-snapshot", &other, true)
            .await,
        "invalid_input",
        "modify a malformed snapshot id",
    );

    ok(p.deregister_image(&fx.region, &image.id).await, "cleanup");
    for snap in &image.snapshot_ids {
        ok(
            p.delete_snapshot(&fx.region, snap).await,
            "cleanup snapshot",
        );
    }
}

/// A snapshot cannot be deleted while an image uses it (conflict); once the image is
/// deregistered it can, and is then gone from `describe_snapshots`; deleting it again is not
/// found.
pub async fn delete_snapshot(p: &dyn CloudProvider, fx: &Fixture) {
    let image = own_copy(p, fx, &fx.region, "snapdel").await;
    let snaps = own_snapshots(&image).to_vec();
    for snap in &snaps {
        match p.delete_snapshot(&fx.region, snap).await {
            Err(ProviderError::SnapshotInUse {
                snapshot_id,
                region,
                ..
            }) => {
                assert_eq!(
                    (&snapshot_id, &region),
                    (snap, &fx.region),
                    "delete a snapshot its image still uses: the error names it"
                );
            }
            other => panic!(
                "delete a snapshot its image still uses: expected SnapshotInUse, got {other:?}"
            ),
        }
    }
    let still = ok(
        p.describe_snapshots(&fx.region, &snaps).await,
        "describe snapshots in use",
    );
    assert_eq!(still.len(), snaps.len(), "a refused delete deleted nothing");

    ok(
        p.deregister_image(&fx.region, &image.id).await,
        "deregister_image",
    );
    for snap in &snaps {
        ok(p.delete_snapshot(&fx.region, snap).await, "delete_snapshot");
    }
    let gone = ok(
        p.describe_snapshots(&fx.region, &snaps).await,
        "describe deleted snapshots",
    );
    assert!(
        gone.is_empty(),
        "deleted snapshots still described: {gone:?}"
    );
    for snap in &snaps {
        expect_kind(
            p.delete_snapshot(&fx.region, snap).await,
            "not_found",
            "delete a snapshot twice",
        );
    }
    expect_kind(
        p.delete_snapshot(&fx.region, "not-a-snapshot").await,
        "invalid_input",
        "delete a malformed snapshot id",
    );
}

/// Client-token semantics, for backends that honour them (EC2 and LocalCloud; moto does not,
/// so this is not part of [`run_all`]): a creating call repeated with the same
/// [`INTENT`](crate::tags::INTENT) answers the first resource and makes no second one, and a
/// token reused for a different request is a conflict.
pub async fn intent_tokens_are_idempotent(p: &dyn CloudProvider, fx: &Fixture) {
    use crate::tags::INTENT;
    let token = crate::intent::new_token();
    let name = format!("cws-conformance-{}-intent", nonce());
    let mut run = run_request(fx, &name);
    run.tags.insert(INTENT.into(), token.clone());
    let first = ok(p.run_instance(&run).await, "run_instance with an intent");
    let again = ok(p.run_instance(&run).await, "run_instance repeated");
    assert_eq!(
        again.id, first.id,
        "a repeated intent answers the first instance"
    );
    let filter = InstanceFilter {
        tags: BTreeMap::from([(INTENT.to_string(), token.clone())]),
        ..InstanceFilter::default()
    };
    let launched = ok(
        p.describe_instances(&fx.region, &filter).await,
        "describe by intent",
    );
    assert_eq!(launched.len(), 1, "one instance per intent: {launched:?}");
    let mut other = run.clone();
    other.name = format!("{name}-other");
    expect_kind(
        p.run_instance(&other).await,
        "conflict",
        "an intent reused for another instance",
    );

    let copy = CopyImageRequest {
        source_region: fx.region.clone(),
        source_image_id: fx.base_image_id.clone(),
        target_region: fx.other_region.clone(),
        name: format!("{name}-copy"),
        description: None,
        tags: BTreeMap::from([(INTENT.to_string(), crate::intent::new_token())]),
    };
    let first_copy = ok(p.copy_image(&copy).await, "copy_image with an intent");
    let again_copy = ok(p.copy_image(&copy).await, "copy_image repeated");
    assert_eq!(
        again_copy.id, first_copy.id,
        "a repeated intent answers the first copy"
    );

    let create = CreateImageRequest {
        region: fx.region.clone(),
        instance_id: first.id.clone(),
        name: format!("{name}-image"),
        description: None,
        no_reboot: true,
        tags: BTreeMap::from([(INTENT.to_string(), crate::intent::new_token())]),
    };
    let made = ok(p.create_image(&create).await, "create_image with an intent");
    let again_made = ok(p.create_image(&create).await, "create_image repeated");
    assert_eq!(
        again_made.id, made.id,
        "a repeated intent answers the first image"
    );
    let mut fresh = create.clone();
    fresh.tags.insert(INTENT.into(), crate::intent::new_token());
    expect_kind(
        p.create_image(&fresh).await,
        "conflict",
        "the same name under another intent",
    );

    // Clean up.
    for image in [&first_copy, &made] {
        ok(
            p.deregister_image(&image.region, &image.id).await,
            "deregister",
        );
    }
    ok(
        p.terminate_instance(&fx.region, &first.id).await,
        "terminate",
    );
}

/// Every check in order.
pub async fn run_all(p: &dyn CloudProvider, fx: &Fixture) {
    describe_by_id(p, fx).await;
    search_requires_owners(p, fx).await;
    search_filters(p, fx).await;
    best_image_agrees_with_search(p, fx).await;
    unknown_region_rejected(p, fx).await;
    instance_lifecycle(p, fx).await;
    architecture_mismatch_rejected(p, fx).await;
    create_image_from_instance(p, fx).await;
    copy_and_tag(p, fx).await;
    launch_permissions(p, fx).await;
    deregister(p, fx).await;
    snapshot_permissions(p, fx).await;
    delete_snapshot(p, fx).await;
}

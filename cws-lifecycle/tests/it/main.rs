//! The AMI lifecycle services on the simulated cloud: create, create-multi (with a failing
//! region and a re-run that finishes it), copy, share, info, deregister, waits, and the
//! pending-images record that survives an interrupted wait.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cws_lifecycle as lifecycle;
use cws_lifecycle::{
    CopyRequest, CreateMultiRequest, CreateRequest, DeregisterRequest, LifecycleError, NoProgress,
    PendingImages, PendingJob, RegionOutcome, ShareRequest, WaitOptions,
};
use cws_localcloud::{LOCAL_ACCOUNT_ID, LocalCloud};
use cws_provider::tags;
use cws_provider::wrappers::{CountingProvider, FaultKind, FaultProvider, FaultRule, Operation};
use cws_provider::*;
use cws_resolver::service::{self, ImageSource, LaunchRequest};
use cws_resolver::*;
use cws_template::{SearchPath, Template, TemplateStore};

const REGION: &str = "us-east-1";

fn template(slug: &str) -> Template {
    TemplateStore::bundled_only()
        .get(slug)
        .unwrap_or_else(|e| panic!("bundled {slug}: {e}"))
        .template
}

/// A user template that inherits the script-only python-research and switches it to the
/// account's own images of python-research.
fn my_python(dir: &std::path::Path) -> Template {
    std::fs::write(
        dir.join("my-python.yaml"),
        "name: My Python\nslug: my-python\nversion: 1.0.0\nbase: ubuntu-24.04\n\
         inherits: python-research\nami_config:\n  strategy: ami_preferred\n  ami_search:\n    \
         owners: [self]\n    required_tags: {\"cws:template\": python-research}\n",
    )
    .unwrap();
    TemplateStore::new(SearchPath::new(&[dir.to_path_buf()], None, None))
        .get("my-python")
        .unwrap()
        .template
}

async fn launch_box(env: &ResolveEnv, slug: &str, name: &str, region: &str) -> String {
    let report = service::launch(
        env,
        &LaunchRequest {
            template: template(slug),
            name: name.into(),
            region: region.into(),
            architecture: None,
            instance_type: None,
            dry_run: false,
            forced_tier: None,
            prefer_script: false,
            session_hours: "8".parse().unwrap(),
            added_tiers: Vec::new(),
            known_images: Vec::new(),
            refused: Vec::new(),
            allowed_owners: None,
        },
        &AssumeNo,
    )
    .await
    .unwrap();
    report.instance.expect("launched").id
}

fn create_req(slug: &str, instance: &str, name: &str) -> CreateRequest {
    CreateRequest {
        template: template(slug),
        instance: instance.into(),
        region: REGION.into(),
        name: name.into(),
        description: None,
        public: false,
        wait_for_running: false,
        no_reboot: false,
        tags: BTreeMap::from([("project".to_string(), "genomics".to_string())]),
        wait: WaitOptions::default(),
    }
}

fn multi_req(instance: &str, name: &str, regions: &[&str]) -> CreateMultiRequest {
    CreateMultiRequest {
        create: create_req("python-research", instance, name),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        concurrency: lifecycle::COPY_CONCURRENCY,
    }
}

#[tokio::test]
async fn create_tags_the_image_and_the_template_finds_it() {
    let env = ResolveEnv::new(Arc::new(LocalCloud::in_memory()));
    launch_box(&env, "python-research", "box", REGION).await;
    let home = tempfile::tempdir().unwrap();
    let pending = PendingImages::open(home.path());

    let report = lifecycle::create(
        &env,
        &create_req("python-research", "box", "My Setup"),
        &AssumeYes,
        Some(&pending),
        &NoProgress,
    )
    .await
    .unwrap();
    let img = &report.image;
    assert_eq!(img.state, ImageState::Available);
    assert_eq!(img.region, REGION);
    assert_eq!(img.name, "My Setup");
    assert_eq!(img.template, "python-research");
    assert!(!img.reused);
    assert!(report.provider.simulated);
    for (k, v) in [
        (tags::TEMPLATE, "python-research"),
        (tags::TEMPLATE_VERSION, "1.0.0"),
        (tags::CREATED_BY, "cws"),
        ("Name", "My Setup"),
        ("project", "genomics"),
    ] {
        assert_eq!(img.tags.get(k).map(String::as_str), Some(v), "tag {k}");
    }
    // The record of the image in flight is gone once it is available.
    assert!(pending.list().unwrap().is_empty());

    // `ami list --template python-research` shows it as the account's own image.
    let listing =
        service::list_template_images(&env, &template("python-research"), &[REGION.into()]).await;
    let listed = listing
        .images
        .iter()
        .find(|i| i.id == img.ami_id)
        .expect("listed");
    assert_eq!(listed.source, ImageSource::Private);

    // A template searching for the account's python-research images resolves to it.
    let dir = tempfile::tempdir().unwrap();
    let t = my_python(dir.path());
    let r = Resolver::for_template(&t)
        .resolve(&env, &ResolveRequest::new(t.clone(), REGION))
        .await;
    assert_eq!(r.method, Method::DynamicSearch, "{r:#?}");
    assert_eq!(r.ami_id.as_deref(), Some(img.ami_id.as_str()));

    // The suggested ami_config maps the region and searches for the template's images.
    let cfg = &report.ami_config;
    assert_eq!(cfg.ami_mappings.get(REGION), Some(&img.ami_id));
    let search = cfg.ami_search.as_ref().expect("search");
    assert_eq!(search.owners, ["self"]);
    assert_eq!(
        search.required_tags.get(tags::TEMPLATE).map(String::as_str),
        Some("python-research")
    );
    // ...and with it, python-research itself launches from the image.
    let mut switched = template("python-research");
    switched.ami_config = Some(cfg.clone());
    let r = Resolver::for_template(&switched)
        .resolve(&env, &ResolveRequest::new(switched.clone(), REGION))
        .await;
    assert_eq!(r.method, Method::DirectMapping, "{r:#?}");
}

#[tokio::test]
async fn create_again_reuses_the_image_and_another_instance_cannot_take_its_name() {
    let cloud = Arc::new(CountingProvider::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(cloud.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    launch_box(&env, "python-research", "other", REGION).await;
    let req = create_req("python-research", "box", "My Setup");
    let first = lifecycle::create(&env, &req, &AssumeYes, None, &NoProgress)
        .await
        .unwrap();
    cloud.reset();
    let again = lifecycle::create(&env, &req, &AssumeYes, None, &NoProgress)
        .await
        .unwrap();
    assert!(again.image.reused);
    assert_eq!(again.image.ami_id, first.image.ami_id);
    assert_eq!(cloud.count(Operation::CreateImage), 0);
    assert!(!again.warnings.is_empty());

    let err = lifecycle::create(
        &env,
        &create_req("python-research", "other", "My Setup"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LifecycleError::NameTaken { .. }), "{err}");
    assert!(err.is_invalid_input());
    assert!(err.to_string().contains(&first.image.ami_id), "{err}");
}

#[tokio::test]
async fn an_instance_that_is_not_running_is_an_error_and_an_unknown_one_is_not_found() {
    let env = ResolveEnv::new(Arc::new(LocalCloud::in_memory()));
    let id = launch_box(&env, "python-research", "box", REGION).await;
    env.provider.stop_instance(REGION, &id).await.unwrap();
    let err = lifecycle::create(
        &env,
        &create_req("python-research", "box", "Stopped Box"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap_err();
    match &err {
        LifecycleError::InstanceNotRunning { state, .. } => {
            assert_eq!(*state, InstanceState::Stopped)
        }
        other => panic!("expected InstanceNotRunning, got {other}"),
    }
    assert!(err.is_invalid_input());

    let unknown = lifecycle::create(
        &env,
        &create_req("python-research", "nobody", "Nobody"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            unknown,
            LifecycleError::Provider(ProviderError::NotFound { .. })
        ),
        "{unknown}"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_for_running_waits_for_a_booting_instance() {
    let scripted = Arc::new(Scripted::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(scripted.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    // The instance reports `pending` for its next three descriptions.
    scripted.instance_pending.store(3, Ordering::SeqCst);
    let err = lifecycle::create(
        &env,
        &create_req("python-research", "box", "Booting"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            LifecycleError::InstanceNotRunning {
                state: InstanceState::Pending,
                ..
            }
        ),
        "{err}"
    );

    scripted.instance_pending.store(3, Ordering::SeqCst);
    let mut req = create_req("python-research", "box", "Booting");
    req.wait_for_running = true;
    let events = Recorder::default();
    let report = lifecycle::create(&env, &req, &AssumeYes, None, &events)
        .await
        .unwrap();
    assert_eq!(report.image.state, ImageState::Available);
    let seen = events.0.lock().unwrap();
    assert!(
        seen.iter().any(|e| e.starts_with("waiting_for_instance")),
        "{seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_gives_up_at_the_limit_and_the_record_says_how_to_finish() {
    let scripted = Arc::new(Scripted::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(scripted.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    let home = tempfile::tempdir().unwrap();
    let pending = PendingImages::open(home.path());
    *scripted.new_image_state.lock().unwrap() = Some(ImageState::Pending);
    let mut req = create_req("python-research", "box", "Slow Image");
    req.wait = WaitOptions::with_timeout(Duration::from_secs(600));

    let started = tokio::time::Instant::now();
    let err = lifecycle::create(&env, &req, &AssumeYes, Some(&pending), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, LifecycleError::Timeout { .. }), "{err}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(600) && waited < Duration::from_secs(620),
        "{waited:?}"
    );

    // The image is still recorded, with the job that finishes it.
    let status = lifecycle::pending_status(&env, &pending).await.unwrap();
    assert_eq!(status.images.len(), 1);
    let s = &status.images[0];
    assert_eq!(s.state, Some(ImageState::Pending));
    assert_eq!(s.record.operation, "create");
    assert_eq!(
        s.record.job,
        Some(PendingJob::Create {
            template: "python-research".into(),
            instance: "box".into(),
            name: "Slow Image".into(),
            region: "us-east-1".into(),
            regions: vec![],
            public: false,
        })
    );
    assert_eq!(s.record.legacy_finish, None);
    assert_eq!(s.next, lifecycle::NextStep::WaitAndFinish);

    // Once the image is done, running the same command again finds it and clears the record.
    *scripted.new_image_state.lock().unwrap() = None;
    let done = lifecycle::create(&env, &req, &AssumeYes, Some(&pending), &NoProgress)
        .await
        .unwrap();
    assert!(done.image.reused);
    assert_eq!(Some(done.image.ami_id), s.record.image_id);
    assert!(pending.list().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_wait_leaves_the_image_recorded() {
    let scripted = Arc::new(Scripted::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(scripted.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    let home = tempfile::tempdir().unwrap();
    let pending = PendingImages::open(home.path());
    *scripted.new_image_state.lock().unwrap() = Some(ImageState::Pending);
    let req = multi_req("box", "Interrupted", &["us-east-1", "us-west-2"]);

    // What Ctrl-C does in the CLI: the future is dropped in the middle of its wait.
    let cut = tokio::time::timeout(
        Duration::from_secs(5),
        lifecycle::create_multi(&env, &req, &AssumeYes, Some(&pending), &NoProgress),
    )
    .await;
    assert!(cut.is_err(), "the wait must still be running");

    let status = lifecycle::pending_status(&env, &pending).await.unwrap();
    assert_eq!(status.images.len(), 1, "{status:?}");
    let s = &status.images[0];
    assert_eq!(s.state, Some(ImageState::Pending));
    assert_eq!(s.record.operation, "create-multi");
    assert_eq!(
        s.record.job,
        Some(PendingJob::Create {
            template: "python-research".into(),
            instance: "box".into(),
            name: "Interrupted".into(),
            region: "us-east-1".into(),
            regions: vec!["us-east-1".into(), "us-west-2".into()],
            public: false,
        })
    );
}

/// `ami create` of the instance `box` as `name`, which must end in ImageFailed (failed).
async fn create_failed_image(env: &ResolveEnv, name: &str) -> LifecycleError {
    let err = lifecycle::create(
        env,
        &create_req("python-research", "box", name),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            LifecycleError::ImageFailed {
                state: ImageState::Failed,
                ..
            }
        ),
        "{err}"
    );
    err
}

#[tokio::test(start_paused = true)]
async fn a_provider_waiter_takes_over_once_the_image_is_pending_and_progress_keeps_coming() {
    let scripted = Arc::new(Scripted::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(scripted.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    *scripted.new_image_state.lock().unwrap() = Some(ImageState::Pending);
    *scripted.native_waiter.lock().unwrap() =
        Some((Duration::from_secs(90), ImageState::Available));

    let events = Recorder::default();
    let started = tokio::time::Instant::now();
    let report = lifecycle::create(
        &env,
        &create_req("python-research", "box", "Waited For"),
        &AssumeYes,
        None,
        &events,
    )
    .await
    .unwrap();
    let waited = started.elapsed();
    assert_eq!(report.image.state, ImageState::Available);
    assert_eq!(
        scripted.native_waits.load(Ordering::SeqCst),
        1,
        "the provider's waiter ran once, after the first poll saw the image pending"
    );
    assert!(
        waited >= Duration::from_secs(90) && waited < Duration::from_secs(95),
        "the waiter, not polling, decided when it was done: {waited:?}"
    );
    let seen = events.0.lock().unwrap().clone();
    let waiting = seen.iter().filter(|e| *e == "waiting").count();
    assert!(
        waiting >= 90 / 5,
        "progress every 5 s while the provider waits: {seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("available"),
        "{seen:?}"
    );

    // A waiter that ends in `failed` stops the wait at once with the usual error.
    *scripted.new_image_state.lock().unwrap() = Some(ImageState::Pending);
    *scripted.native_waiter.lock().unwrap() = Some((Duration::from_secs(30), ImageState::Failed));
    let started = tokio::time::Instant::now();
    create_failed_image(&env, "Waited For Nothing").await;
    assert!(started.elapsed() < Duration::from_secs(35));

    // A waiter that runs out of time ends in the same timeout error as polling.
    *scripted.new_image_state.lock().unwrap() = Some(ImageState::Pending);
    *scripted.native_waiter.lock().unwrap() =
        Some((Duration::from_secs(3600), ImageState::Available));
    let mut req = create_req("python-research", "box", "Waited Too Long");
    req.wait = WaitOptions::with_timeout(Duration::from_secs(600));
    let started = tokio::time::Instant::now();
    let err = lifecycle::create(&env, &req, &AssumeYes, None, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, LifecycleError::Timeout { .. }), "{err}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(600) && waited < Duration::from_secs(620),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_failed_image_stops_the_wait_at_once() {
    let scripted = Arc::new(Scripted::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(scripted.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    *scripted.new_image_state.lock().unwrap() = Some(ImageState::Failed);
    let err = create_failed_image(&env, "Broken").await;
    assert!(
        matches!(
            &err,
            LifecycleError::ImageFailed {
                state: ImageState::Failed,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn create_multi_with_a_failing_region_reports_it_and_a_rerun_finishes_only_it() {
    let counting = CountingProvider::new(LocalCloud::in_memory());
    let faulty = Arc::new(FaultProvider::new(counting));
    let env = ResolveEnv::new(faulty.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    let home = tempfile::tempdir().unwrap();
    let pending = PendingImages::open(home.path());
    faulty.fail(
        FaultRule::new(FaultKind::PermissionDenied)
            .operation(Operation::CopyImage)
            .region("eu-west-1"),
    );
    let regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-1"];
    let req = multi_req("box", "My Setup", &regions);

    let report = lifecycle::create_multi(&env, &req, &AssumeYes, Some(&pending), &NoProgress)
        .await
        .unwrap();
    assert!(!report.complete);
    let by_region: BTreeMap<&str, _> = report
        .regions
        .iter()
        .map(|r| (r.region.as_str(), r))
        .collect();
    assert_eq!(by_region["us-east-1"].outcome, RegionOutcome::Source);
    assert_eq!(by_region["us-west-2"].outcome, RegionOutcome::Copied);
    assert_eq!(by_region["ap-southeast-1"].outcome, RegionOutcome::Copied);
    let failed = by_region["eu-west-1"];
    assert_eq!(failed.outcome, RegionOutcome::Failed);
    assert_eq!(failed.error_kind.as_deref(), Some("permission_denied"));
    assert!(
        failed.error.as_deref().unwrap().contains("ec2:CopyImage"),
        "{failed:?}"
    );
    assert_eq!(report.failed().count(), 1);
    // Rows come in the order asked for, the source first.
    let order: Vec<&str> = report.regions.iter().map(|r| r.region.as_str()).collect();
    assert_eq!(order, regions);
    let finish = report.finish.clone().expect("the job that finishes it");
    assert_eq!(finish.operation(), "create-multi");
    // The master stays recorded until every region is done.
    let recorded = pending.list().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].image_id.as_deref(),
        Some(report.master.ami_id.as_str())
    );
    assert_eq!(recorded[0].job.as_ref(), Some(&finish));

    // Copies carry provenance and the template tag from the master.
    let copy_id = by_region["us-west-2"].ami_id.clone().unwrap();
    let copy = env
        .provider
        .image("us-west-2", &copy_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(copy.tags[tags::SOURCE_AMI], report.master.ami_id);
    assert_eq!(copy.tags[tags::SOURCE_REGION], REGION);
    assert_eq!(copy.tags[tags::TEMPLATE], "python-research");
    assert_eq!(copy.name, "My Setup");

    // The fault clears; running the same request again finishes only the missing region,
    // and asks (and prices) only that: the image and the copies already made are not.
    faulty.clear();
    faulty.inner().reset();
    let declined = Asked::new(false);
    let err = lifecycle::create_multi(&env, &req, &declined, Some(&pending), &NoProgress)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "nothing was copied: `My Setup` ({}) stays in us-east-1",
            report.master.ami_id
        )),
        "{err}"
    );
    let asked = Asked::new(true);
    let again = lifecycle::create_multi(&env, &req, &asked, Some(&pending), &NoProgress)
        .await
        .unwrap();
    match asked.last() {
        ConsentRequest::CreateMulti {
            copies,
            existing_image,
            ..
        } => {
            assert_eq!(
                existing_image.as_deref(),
                Some(report.master.ami_id.as_str())
            );
            let priced: Vec<&str> = copies.iter().map(|c| c.target_region.as_str()).collect();
            assert_eq!(priced, ["eu-west-1"]);
        }
        other => panic!("asked {other:?}"),
    }
    assert!(again.complete, "{:?}", again.regions);
    assert!(again.master.reused);
    assert_eq!(again.master.ami_id, report.master.ami_id);
    assert_eq!(faulty.inner().count(Operation::CreateImage), 0);
    assert_eq!(faulty.inner().count(Operation::CopyImage), 1);
    let outcomes: Vec<RegionOutcome> = again.regions.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            RegionOutcome::Source,
            RegionOutcome::AlreadyPresent,
            RegionOutcome::Copied,
            RegionOutcome::AlreadyPresent
        ]
    );
    assert_eq!(
        again.regions[1].ami_id, by_region["us-west-2"].ami_id,
        "the existing copy is reused, not made again"
    );
    assert!(again.finish.is_none());
    assert!(pending.list().unwrap().is_empty());
    assert_eq!(again.ami_config.ami_mappings.len(), 4);
    // Once everything is there, a re-run spends nothing and asks nothing.
    let silent = Asked::new(false);
    let done = lifecycle::create_multi(&env, &req, &silent, Some(&pending), &NoProgress)
        .await
        .unwrap();
    assert!(done.complete);
    assert!(silent.questions.lock().unwrap().is_empty());

    // Every region now resolves my-python to a local image.
    let dir = tempfile::tempdir().unwrap();
    let t = my_python(dir.path());
    let regions: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
    for row in service::test_regions(&env, &t, &regions, None).await {
        assert_eq!(
            row.status,
            service::RegionStatus::Available,
            "{}: {}",
            row.region,
            row.detail
        );
    }
}

#[tokio::test(start_paused = true)]
async fn create_multi_copies_at_most_four_at_a_time() {
    let scripted = Arc::new(Scripted::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(scripted.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    *scripted.copy_delay.lock().unwrap() = Duration::from_secs(2);
    let regions = [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-west-2",
        "eu-central-1",
        "ap-southeast-1",
    ];
    let report = lifecycle::create_multi(
        &env,
        &multi_req("box", "Wide", &regions),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(report.complete);
    assert_eq!(report.regions.len(), regions.len());
    let peak = scripted.copies_peak.load(Ordering::SeqCst);
    assert_eq!(
        peak,
        lifecycle::COPY_CONCURRENCY,
        "copies overlap, but never more than the bound"
    );
    let ids: BTreeSet<_> = report.regions.iter().map(|r| r.ami_id.clone()).collect();
    assert_eq!(ids.len(), regions.len(), "one image per region");
}

#[tokio::test]
async fn create_multi_checks_its_regions() {
    let env = ResolveEnv::new(Arc::new(LocalCloud::in_memory()));
    let err = lifecycle::create_multi(
        &env,
        &multi_req("box", "X Image", &["us-east-1", "mars-north-1"]),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert!(err.to_string().contains("mars-north-1"), "{err}");
    let err = lifecycle::create_multi(
        &env,
        &multi_req("box", "X Image", &[]),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
}

#[tokio::test]
async fn copy_asks_first_tags_provenance_and_never_copies_twice() {
    let cloud = Arc::new(CountingProvider::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(cloud.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    let made = lifecycle::create(
        &env,
        &create_req("python-research", "box", "To Copy"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap();
    let req = CopyRequest {
        image_id: made.image.ami_id.clone(),
        source_region: REGION.into(),
        target_region: "eu-west-1".into(),
        wait: WaitOptions::default(),
    };
    let asked = Asked::new(false);
    let err = lifecycle::copy_to_region(&env, &req, &asked, None, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, LifecycleError::Declined(_)), "{err}");
    assert_eq!(cloud.count(Operation::CopyImage), 0);
    match asked.last() {
        ConsentRequest::Copy {
            plan,
            target_region,
            ..
        } => {
            assert_eq!(target_region, "eu-west-1");
            assert!(
                plan.estimated_cost_usd.micros() > 0,
                "the cost is asked about"
            );
            assert!(plan.estimated_seconds > 0, "the time is asked about");
        }
        other => panic!("{other:?}"),
    }

    let report = lifecycle::copy_to_region(&env, &req, &AssumeYes, None, &NoProgress)
        .await
        .unwrap();
    assert!(!report.reused);
    assert_eq!(report.region, "eu-west-1");
    assert_eq!(report.state, ImageState::Available);
    assert_eq!(report.template.as_deref(), Some("python-research"));
    assert!(report.estimate.snapshot_gb > 0);
    let copy = env
        .provider
        .image("eu-west-1", &report.ami_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(copy.tags[tags::SOURCE_AMI], made.image.ami_id);
    assert_eq!(copy.tags[tags::TEMPLATE], "python-research");

    // Asking again finds the copy; nothing is spent, so nothing is asked.
    let again = lifecycle::copy_to_region(&env, &req, &AssumeNo, None, &NoProgress)
        .await
        .unwrap();
    assert!(again.reused);
    assert_eq!(again.ami_id, report.ami_id);
    assert_eq!(cloud.count(Operation::CopyImage), 1);

    let same = CopyRequest {
        target_region: REGION.into(),
        ..req.clone()
    };
    let err = lifecycle::copy_to_region(&env, &same, &AssumeYes, None, &NoProgress)
        .await
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
}

#[tokio::test]
async fn share_grants_and_revokes_launch_permission() {
    let cloud = Arc::new(LocalCloud::in_memory());
    let env = ResolveEnv::new(cloud.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    let made = lifecycle::create(
        &env,
        &create_req("python-research", "box", "Shared"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap();
    let id = made.image.ami_id.clone();
    let accounts = [
        LaunchPermission::Account("111122223333".into()),
        LaunchPermission::Account("444455556666".into()),
    ];
    let report = lifecycle::share(
        &env,
        &ShareRequest {
            image_id: id.clone(),
            region: REGION.into(),
            permissions: accounts.to_vec(),
            revoke: false,
        },
        &AssumeYes,
    )
    .await
    .unwrap();
    assert_eq!(report.action, "granted");
    let perms = env
        .provider
        .describe_launch_permissions(REGION, &id)
        .await
        .unwrap();
    for a in &accounts {
        assert!(perms.contains(a), "{perms:?}");
        assert!(report.launch_permissions.contains(a));
    }
    // The snapshots are shared with the same accounts, so they can copy the image too.
    let snaps = report.snapshots.snapshot_ids.clone();
    assert!(!snaps.is_empty());
    assert!(report.snapshots.done && report.complete());
    assert_eq!(report.snapshots.changed, snaps);
    assert!(report.snapshots.failed.is_empty());
    assert!(
        report
            .snapshots
            .detail
            .contains("granted to account 111122223333"),
        "{}",
        report.snapshots.detail
    );
    for snap in &snaps {
        assert_eq!(
            cloud.create_volume_permissions(REGION, snap).unwrap(),
            accounts.to_vec()
        );
    }

    let info = lifecycle::image_info(&env, REGION, &id).await.unwrap();
    assert_eq!(info.shared_with.as_deref(), Some(&perms[..]));
    assert!(info.size_gb > 0);
    assert_eq!(info.snapshots.len(), made_snapshot_count(&env, &id).await);

    let revoked = lifecycle::share(
        &env,
        &ShareRequest {
            image_id: id.clone(),
            region: REGION.into(),
            permissions: vec![accounts[0].clone()],
            revoke: true,
        },
        &AssumeYes,
    )
    .await
    .unwrap();
    assert_eq!(revoked.action, "revoked");
    let perms = env
        .provider
        .describe_launch_permissions(REGION, &id)
        .await
        .unwrap();
    assert_eq!(perms, [accounts[1].clone()]);
    assert!(revoked.snapshots.detail.contains("revoked from"));
    for snap in &snaps {
        assert_eq!(
            cloud.create_volume_permissions(REGION, snap).unwrap(),
            [accounts[1].clone()]
        );
    }

    // An organization gets launch permission only: EC2 cannot share snapshots with one.
    let org = LaunchPermission::Organization(
        "arn:aws:organizations::123456789012:organization/o-abcdefghij".into(),
    );
    let to_org = lifecycle::share(
        &env,
        &ShareRequest {
            image_id: id.clone(),
            region: REGION.into(),
            permissions: vec![org.clone(), LaunchPermission::Public],
            revoke: false,
        },
        &AssumeYes,
    )
    .await
    .unwrap();
    assert!(to_org.launch_permissions.contains(&org));
    assert!(to_org.complete(), "{:?}", to_org.snapshots);
    assert!(
        to_org
            .snapshots
            .detail
            .contains("cannot share snapshots with an organization"),
        "{}",
        to_org.snapshots.detail
    );
    assert!(
        env.provider
            .image(REGION, &id)
            .await
            .unwrap()
            .unwrap()
            .public
    );
    for snap in &snaps {
        assert_eq!(
            cloud.create_volume_permissions(REGION, snap).unwrap(),
            [accounts[1].clone(), LaunchPermission::Public]
        );
    }

    let bad = lifecycle::share(
        &env,
        &ShareRequest {
            image_id: id.clone(),
            region: REGION.into(),
            permissions: vec![LaunchPermission::Account("12".into())],
            revoke: false,
        },
        &AssumeYes,
    )
    .await
    .unwrap_err();
    assert!(bad.is_invalid_input(), "{bad}");
    let nobody = lifecycle::share(
        &env,
        &ShareRequest {
            image_id: id,
            region: REGION.into(),
            permissions: vec![],
            revoke: false,
        },
        &AssumeYes,
    )
    .await
    .unwrap_err();
    assert!(nobody.is_invalid_input(), "{nobody}");
}

async fn made_snapshot_count(env: &ResolveEnv, id: &str) -> usize {
    env.provider
        .image(REGION, id)
        .await
        .unwrap()
        .unwrap()
        .snapshot_ids
        .len()
}

#[tokio::test]
async fn someone_elses_image_can_be_inspected_but_not_shared_or_deregistered() {
    let env = ResolveEnv::new(Arc::new(LocalCloud::in_memory()));
    let base = env
        .provider
        .describe_images(
            REGION,
            &ImageQuery::owned_by(["099720109477"]).name("ubuntu/images/*noble*amd64*"),
        )
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("a seeded Ubuntu image");
    assert_ne!(base.owner_id, LOCAL_ACCOUNT_ID);
    let info = lifecycle::image_info(&env, REGION, &base.id).await.unwrap();
    assert!(info.shared_with.is_none());
    assert!(
        info.shared_with_error
            .as_deref()
            .unwrap()
            .contains("permission denied")
    );
    let err = lifecycle::share(
        &env,
        &ShareRequest {
            image_id: base.id.clone(),
            region: REGION.into(),
            permissions: vec![LaunchPermission::Public],
            revoke: false,
        },
        &AssumeYes,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            LifecycleError::Provider(ProviderError::PermissionDenied { .. })
        ),
        "{err}"
    );
    let err = lifecycle::deregister(
        &env,
        &DeregisterRequest {
            image_id: base.id,
            region: REGION.into(),
            delete_snapshots: false,
        },
        &AssumeYes,
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            LifecycleError::Provider(ProviderError::PermissionDenied { .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn deregister_asks_first_and_forgets_the_pending_record() {
    let env = ResolveEnv::new(Arc::new(LocalCloud::in_memory()));
    launch_box(&env, "python-research", "box", REGION).await;
    let made = lifecycle::create(
        &env,
        &create_req("python-research", "box", "Doomed"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap();
    let id = made.image.ami_id.clone();
    let home = tempfile::tempdir().unwrap();
    let pending = PendingImages::open(home.path());
    pending
        .add(lifecycle::PendingImage {
            image_id: Some(id.clone()),
            region: REGION.into(),
            name: "Doomed".into(),
            operation: "create".into(),
            template: Some("python-research".into()),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            job: Some(PendingJob::Create {
                template: "python-research".into(),
                instance: "box".into(),
                name: "Doomed".into(),
                region: REGION.into(),
                regions: vec![],
                public: false,
            }),
            legacy_finish: None,
            intent: None,
        })
        .unwrap();
    let req = DeregisterRequest {
        image_id: id.clone(),
        region: REGION.into(),
        delete_snapshots: true,
    };
    let asked = Asked::new(false);
    let err = lifecycle::deregister(&env, &req, &asked, Some(&pending))
        .await
        .unwrap_err();
    assert!(matches!(err, LifecycleError::Declined(_)), "{err}");
    assert!(
        matches!(asked.last(), ConsentRequest::Deregister { image, .. } if image.id == id),
        "{:?}",
        asked.last()
    );
    assert!(env.provider.image(REGION, &id).await.unwrap().is_some());

    let report = lifecycle::deregister(&env, &req, &AssumeYes, Some(&pending))
        .await
        .unwrap();
    assert!(env.provider.image(REGION, &id).await.unwrap().is_none());
    assert!(report.pending_record_removed);
    assert!(pending.list().unwrap().is_empty());
    // The snapshots went with it: nothing left to pay for.
    let snaps = report.snapshots.snapshot_ids.clone();
    assert!(!snaps.is_empty());
    assert!(report.complete());
    assert_eq!(report.snapshots.changed, snaps);
    assert_eq!(report.snapshots_monthly_cost, cws_cost::Money::ZERO);
    assert!(
        env.provider
            .describe_snapshots(REGION, &snaps)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn deregister_keeps_snapshots_unless_asked_and_reports_what_they_cost() {
    let env = ResolveEnv::new(Arc::new(LocalCloud::in_memory()));
    launch_box(&env, "python-research", "box", REGION).await;
    let made = lifecycle::create(
        &env,
        &create_req("python-research", "box", "Kept"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap();
    let req = DeregisterRequest {
        image_id: made.image.ami_id.clone(),
        region: REGION.into(),
        delete_snapshots: false,
    };
    let asked = Asked::new(true);
    let report = lifecycle::deregister(&env, &req, &asked, None)
        .await
        .unwrap();
    assert!(
        matches!(
            asked.last(),
            ConsentRequest::Deregister {
                delete_snapshots: false,
                ..
            }
        ),
        "{:?}",
        asked.last()
    );
    let snaps = report.snapshots.snapshot_ids.clone();
    assert!(report.complete(), "keeping was what was asked");
    assert!(report.snapshots.changed.is_empty());
    assert!(report.snapshots_monthly_cost > cws_cost::Money::ZERO);
    assert!(
        report.snapshots.detail.starts_with("kept"),
        "{}",
        report.snapshots.detail
    );
    assert_eq!(
        env.provider
            .describe_snapshots(REGION, &snaps)
            .await
            .unwrap()
            .len(),
        snaps.len()
    );
}

#[tokio::test]
async fn a_snapshot_that_cannot_be_deleted_is_reported_and_the_image_stays_deregistered() {
    let faults = Arc::new(FaultProvider::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(faults.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    let made = lifecycle::create(
        &env,
        &create_req("python-research", "box", "Stubborn"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap();
    faults.fail(
        FaultRule::new(FaultKind::PermissionDenied)
            .operation(Operation::DeleteSnapshot)
            .always(),
    );
    let report = lifecycle::deregister(
        &env,
        &DeregisterRequest {
            image_id: made.image.ami_id.clone(),
            region: REGION.into(),
            delete_snapshots: true,
        },
        &AssumeYes,
        None,
    )
    .await
    .unwrap();
    assert!(
        env.provider
            .image(REGION, &made.image.ami_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!report.complete());
    assert_eq!(
        report.snapshots.failed.len(),
        report.snapshots.snapshot_ids.len()
    );
    assert_eq!(report.snapshots.failed[0].kind, "permission_denied");
    assert!(
        report.snapshots.detail.contains("ec2:DeleteSnapshot"),
        "{}",
        report.snapshots.detail
    );
    assert!(report.snapshots_monthly_cost > cws_cost::Money::ZERO);

    // Sharing reports a snapshot it cannot change the same way, after the launch permission.
    faults.clear();
    launch_box(&env, "python-research", "box2", REGION).await;
    let other = lifecycle::create(
        &env,
        &create_req("python-research", "box2", "Half shared"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap();
    faults.fail(
        FaultRule::new(FaultKind::Throttled)
            .operation(Operation::ModifySnapshotPermission)
            .times(1),
    );
    let share = ShareRequest {
        image_id: other.image.ami_id.clone(),
        region: REGION.into(),
        permissions: vec![LaunchPermission::Account("111122223333".into())],
        revoke: false,
    };
    let half = lifecycle::share(&env, &share, &AssumeYes).await.unwrap();
    assert!(!half.complete());
    assert_eq!(half.snapshots.failed[0].kind, "throttled");
    assert!(half.launch_permissions.contains(&share.permissions[0]));
    assert!(half.snapshots.detail.contains("run the same command again"));
    // The rule is spent: re-running finishes the job.
    let again = lifecycle::share(&env, &share, &AssumeYes).await.unwrap();
    assert!(again.complete(), "{:?}", again.snapshots);
}

// ---------------------------------------------------------------------------------------------
// Test doubles

/// Consent that records the request and answers as told.
struct Asked {
    answer: bool,
    questions: Mutex<Vec<ConsentRequest>>,
}

impl Asked {
    fn new(answer: bool) -> Self {
        Asked {
            answer,
            questions: Mutex::new(Vec::new()),
        }
    }

    fn last(&self) -> ConsentRequest {
        self.questions
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a question was asked")
    }
}

impl Consent for Asked {
    fn confirm(&self, question: &ConsentRequest) -> bool {
        self.questions.lock().unwrap().push(question.clone());
        self.answer
    }
}

/// Progress that remembers the kinds of events it saw.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl lifecycle::Progress for Recorder {
    fn event(&self, event: &lifecycle::ProgressEvent) {
        let v = serde_json::to_value(event).unwrap();
        self.0
            .lock()
            .unwrap()
            .push(v["event"].as_str().unwrap_or("?").to_string());
    }
}

/// LocalCloud with the slowness of a real cloud, on demand: instances that are still
/// booting, images that stay pending (or fail), and copies that take time (while counting
/// how many run at once).
#[derive(Debug)]
struct Scripted {
    inner: LocalCloud,
    /// Instances report `pending` for this many more descriptions.
    instance_pending: AtomicU32,
    /// Images made or copied from now on report this state.
    new_image_state: Mutex<Option<ImageState>>,
    /// The images that state applies to.
    overridden: Mutex<BTreeMap<String, ImageState>>,
    copy_delay: Mutex<Duration>,
    copies_now: AtomicUsize,
    copies_peak: AtomicUsize,
    /// A waiter of the provider's own (like EC2's SDK waiter): after this long, the image ends
    /// in this state. `None`: no waiter, the caller polls.
    native_waiter: Mutex<Option<(Duration, ImageState)>>,
    native_waits: AtomicU32,
}

impl Scripted {
    fn new(inner: LocalCloud) -> Self {
        Scripted {
            inner,
            instance_pending: AtomicU32::new(0),
            new_image_state: Mutex::new(None),
            overridden: Mutex::new(BTreeMap::new()),
            copy_delay: Mutex::new(Duration::ZERO),
            copies_now: AtomicUsize::new(0),
            copies_peak: AtomicUsize::new(0),
            native_waiter: Mutex::new(None),
            native_waits: AtomicU32::new(0),
        }
    }

    fn track(&self, image: &mut Image) {
        let forced = *self.new_image_state.lock().unwrap();
        if let Some(state) = forced {
            self.overridden
                .lock()
                .unwrap()
                .insert(image.id.clone(), state);
            image.state = state;
        }
    }

    fn patch(&self, mut images: Vec<Image>) -> Vec<Image> {
        let forced = *self.new_image_state.lock().unwrap();
        let overridden = self.overridden.lock().unwrap();
        for img in &mut images {
            if let (Some(state), true) = (forced, overridden.contains_key(&img.id)) {
                img.state = state;
            }
        }
        images
    }
}

#[async_trait]
impl ImageCatalog for Scripted {
    fn info(&self) -> ProviderInfo {
        self.inner.info()
    }
    async fn describe_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Image>> {
        Ok(self.patch(self.inner.describe_images_by_id(region, ids).await?))
    }
    async fn describe_images(
        &self,
        region: &str,
        query: &ImageQuery,
    ) -> ProviderResult<Vec<Image>> {
        // Searches see the real states; only polls by id are slowed down. Searching with
        // pending accepted must still find a pending image, so patch, then re-filter.
        let mut wide = query.clone();
        wide.states = vec![
            ImageState::Pending,
            ImageState::Available,
            ImageState::Failed,
        ];
        let found = self.patch(self.inner.describe_images(region, &wide).await?);
        let accepted = query.accepted_states();
        Ok(found
            .into_iter()
            .filter(|i| accepted.contains(&i.state))
            .collect())
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
}

#[async_trait]
impl ImageAdmin for Scripted {
    async fn copy_image(&self, request: &CopyImageRequest) -> ProviderResult<Image> {
        let now = self.copies_now.fetch_add(1, Ordering::SeqCst) + 1;
        self.copies_peak.fetch_max(now, Ordering::SeqCst);
        let delay = *self.copy_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let r = self.inner.copy_image(request).await;
        self.copies_now.fetch_sub(1, Ordering::SeqCst);
        let mut image = r?;
        self.track(&mut image);
        Ok(image)
    }
    async fn create_image(&self, request: &CreateImageRequest) -> ProviderResult<Image> {
        let mut image = self.inner.create_image(request).await?;
        self.track(&mut image);
        Ok(image)
    }
    async fn create_tags(
        &self,
        region: &str,
        resource_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> ProviderResult<()> {
        self.inner.create_tags(region, resource_id, tags).await
    }
    async fn modify_launch_permission(
        &self,
        region: &str,
        image_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        self.inner
            .modify_launch_permission(region, image_id, permission, add)
            .await
    }
    async fn describe_launch_permissions(
        &self,
        region: &str,
        image_id: &str,
    ) -> ProviderResult<Vec<LaunchPermission>> {
        self.inner
            .describe_launch_permissions(region, image_id)
            .await
    }
    async fn modify_snapshot_permission(
        &self,
        region: &str,
        snapshot_id: &str,
        permission: &LaunchPermission,
        add: bool,
    ) -> ProviderResult<()> {
        self.inner
            .modify_snapshot_permission(region, snapshot_id, permission, add)
            .await
    }
    async fn deregister_image(&self, region: &str, image_id: &str) -> ProviderResult<()> {
        self.inner.deregister_image(region, image_id).await
    }
    async fn delete_snapshot(&self, region: &str, snapshot_id: &str) -> ProviderResult<()> {
        self.inner.delete_snapshot(region, snapshot_id).await
    }
    async fn wait_image_available(
        &self,
        region: &str,
        image_id: &str,
        max_wait: Duration,
    ) -> ProviderResult<WaitOutcome<Image>> {
        let Some((takes, ends_in)) = *self.native_waiter.lock().unwrap() else {
            return Err(ProviderError::Unsupported {
                provider: "scripted".into(),
                operation: "an image waiter".into(),
                reason: "not scripted".into(),
            });
        };
        self.native_waits.fetch_add(1, Ordering::SeqCst);
        if takes > max_wait {
            tokio::time::sleep(max_wait).await;
            return Ok(WaitOutcome::TimedOut);
        }
        tokio::time::sleep(takes).await;
        self.overridden
            .lock()
            .unwrap()
            .insert(image_id.to_string(), ends_in);
        *self.new_image_state.lock().unwrap() = Some(ends_in);
        let image = self
            .describe_images_by_id(region, &[image_id.to_string()])
            .await?
            .pop()
            .expect("the image exists");
        Ok(match ends_in {
            ImageState::Available => WaitOutcome::Ready(image),
            _ => WaitOutcome::Failed(image),
        })
    }
}

#[async_trait]
impl Instances for Scripted {
    async fn run_instance(&self, request: &RunInstanceRequest) -> ProviderResult<Instance> {
        self.inner.run_instance(request).await
    }
    async fn describe_instances(
        &self,
        region: &str,
        filter: &InstanceFilter,
    ) -> ProviderResult<Vec<Instance>> {
        let mut found = self.inner.describe_instances(region, filter).await?;
        let booting = self
            .instance_pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if booting {
            for i in &mut found {
                if i.state == InstanceState::Running {
                    i.state = InstanceState::Pending;
                }
            }
        }
        Ok(found)
    }
    async fn stop_instance(&self, region: &str, instance_id: &str) -> ProviderResult<Instance> {
        self.inner.stop_instance(region, instance_id).await
    }
    async fn terminate_instance(
        &self,
        region: &str,
        instance_id: &str,
    ) -> ProviderResult<Instance> {
        self.inner.terminate_instance(region, instance_id).await
    }
}

#[tokio::test]
async fn an_unreadable_pending_record_stops_create_before_any_image_is_made() {
    let env = ResolveEnv::new(Arc::new(LocalCloud::in_memory()));
    launch_box(&env, "python-research", "box", REGION).await;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("pending-images.json"), "{ not json").unwrap();
    let pending = PendingImages::open(home.path());
    let own = || async {
        env.provider
            .describe_images(REGION, &ImageQuery::owned_by(["self"]))
            .await
            .unwrap()
            .len()
    };
    let before = own().await;
    let err = lifecycle::create(
        &env,
        &create_req("python-research", "box", "Untracked"),
        &AssumeYes,
        Some(&pending),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LifecycleError::PendingFile { .. }), "{err}");
    assert_eq!(own().await, before, "no image was made");
    let err = lifecycle::create_multi(
        &env,
        &multi_req("box", "Untracked", &["us-east-1", "us-west-2"]),
        &AssumeYes,
        Some(&pending),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, LifecycleError::PendingFile { .. }), "{err}");
    assert_eq!(own().await, before, "no image was made");
}

/// The backend acts, then the answer is lost (what a dropped connection does after EC2
/// carried out the call): one launch, one copy and one create each still make exactly one
/// resource, tagged with its intent, and report it.
#[tokio::test(start_paused = true)]
async fn a_lost_answer_never_makes_a_second_resource() {
    let faults = Arc::new(FaultProvider::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(faults.clone());
    let lose = |op| {
        faults.fail(
            FaultRule::new(FaultKind::LostResponse)
                .operation(op)
                .times(1),
        );
    };

    // Launch: RunInstances is carried out, its answer lost, and the instance adopted.
    lose(Operation::RunInstance);
    let id = launch_box(&env, "python-research", "box", REGION).await;
    let boxes = faults
        .inner()
        .describe_instances(REGION, &InstanceFilter::default())
        .await
        .unwrap();
    let named: Vec<_> = boxes.iter().filter(|i| i.name == "box").collect();
    assert_eq!(named.len(), 1, "one launch, one instance: {named:?}");
    assert_eq!(named[0].id, id);
    assert!(named[0].tags.contains_key(tags::INTENT));

    // Create: CreateImage's answer is lost; the image is adopted by name and intent.
    lose(Operation::CreateImage);
    let made = lifecycle::create(
        &env,
        &create_req("python-research", "box", "Lost Answer"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap();
    let own = faults
        .inner()
        .describe_images(REGION, &ImageQuery::owned_by(["self"]).name("Lost Answer"))
        .await
        .unwrap();
    assert_eq!(own.len(), 1, "one create, one image: {own:?}");
    assert_eq!(own[0].id, made.image.ami_id);

    // Copy: CopyImage's answer is lost; one copy, with its provenance tags.
    lose(Operation::CopyImage);
    let copied = lifecycle::copy_to_region(
        &env,
        &CopyRequest {
            image_id: made.image.ami_id.clone(),
            source_region: REGION.into(),
            target_region: "eu-west-1".into(),
            wait: WaitOptions::default(),
        },
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap();
    let copies = faults
        .inner()
        .describe_images(
            "eu-west-1",
            &ImageQuery::owned_by(["self"]).name("Lost Answer"),
        )
        .await
        .unwrap();
    assert_eq!(copies.len(), 1, "one copy: {copies:?}");
    assert_eq!(copies[0].id, copied.ami_id);
    assert_eq!(
        copies[0].tags.get(tags::SOURCE_AMI),
        Some(&made.image.ami_id)
    );
    assert_eq!(faults.injected(), 3, "every lost answer was exercised");
}

/// The record is written before CreateImage is sent: stopping while the call is unanswered
/// (here: its answer lost and the lookups failing, then the command dropped as Ctrl-C does)
/// leaves a record with the intent, `ami status` finds the image by it, and a re-run makes
/// no second image.
#[tokio::test(start_paused = true)]
async fn an_unanswered_create_is_recorded_before_the_call_and_found_by_its_intent() {
    let faults = Arc::new(FaultProvider::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(faults.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    let home = tempfile::tempdir().unwrap();
    let pending = PendingImages::open(home.path());
    faults.fail(FaultRule::new(FaultKind::LostResponse).operation(Operation::CreateImage));
    // The name check before the call goes through; the lookups after the lost answer fail.
    faults.fail(
        FaultRule::new(FaultKind::Unavailable)
            .operation(Operation::DescribeImages)
            .after(1),
    );
    let req = create_req("python-research", "box", "Unanswered");
    let cut = tokio::time::timeout(
        Duration::from_millis(100),
        lifecycle::create(&env, &req, &AssumeYes, Some(&pending), &NoProgress),
    )
    .await;
    assert!(cut.is_err(), "still retrying when interrupted");

    let recorded = pending.list().unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].image_id, None, "the call never answered");
    let token = recorded[0]
        .intent
        .clone()
        .expect("the intent is recorded first");
    assert_eq!(recorded[0].name, "Unanswered");

    faults.clear();
    let status = lifecycle::pending_status(&env, &pending).await.unwrap();
    let s = &status.images[0];
    let made = s.record.image_id.clone().expect("found by its intent");
    assert_eq!(s.state, Some(ImageState::Available));
    assert_eq!(s.next, lifecycle::NextStep::Finish);
    let image = faults.inner().image(REGION, &made).await.unwrap().unwrap();
    assert_eq!(image.tags.get(tags::INTENT), Some(&token));

    // Running the command again finishes the job with that image, and forgets the record.
    let again = lifecycle::create(&env, &req, &AssumeYes, Some(&pending), &NoProgress)
        .await
        .unwrap();
    assert_eq!(again.image.ami_id, made);
    let own = faults
        .inner()
        .describe_images(REGION, &ImageQuery::owned_by(["self"]).name("Unanswered"))
        .await
        .unwrap();
    assert_eq!(own.len(), 1, "{own:?}");
    assert!(pending.list().unwrap().is_empty());
}

/// A request refused outright made nothing: its write-ahead record goes away. One that never
/// reached the cloud stays as unconfirmed, and the re-run reuses its intent.
#[tokio::test(start_paused = true)]
async fn refused_requests_leave_no_record_and_unconfirmed_ones_are_retried_with_their_intent() {
    let faults = Arc::new(FaultProvider::new(LocalCloud::in_memory()));
    let env = ResolveEnv::new(faults.clone());
    launch_box(&env, "python-research", "box", REGION).await;
    let home = tempfile::tempdir().unwrap();
    let pending = PendingImages::open(home.path());
    let req = create_req("python-research", "box", "Refused");

    faults.fail(
        FaultRule::new(FaultKind::PermissionDenied)
            .operation(Operation::CreateImage)
            .times(1),
    );
    let err = lifecycle::create(&env, &req, &AssumeYes, Some(&pending), &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ec2:CreateImage"), "{err}");
    assert!(pending.list().unwrap().is_empty(), "a refusal made nothing");

    // Never reaching the cloud: every attempt fails before it, lookups find nothing.
    faults.fail(FaultRule::new(FaultKind::Unavailable).operation(Operation::CreateImage));
    lifecycle::create(&env, &req, &AssumeYes, Some(&pending), &NoProgress)
        .await
        .unwrap_err();
    let recorded = pending.list().unwrap();
    assert_eq!(recorded.len(), 1);
    let token = recorded[0].intent.clone().unwrap();
    faults.clear();
    let status = lifecycle::pending_status(&env, &pending).await.unwrap();
    assert_eq!(status.images[0].next, lifecycle::NextStep::Unconfirmed);

    let done = lifecycle::create(&env, &req, &AssumeYes, Some(&pending), &NoProgress)
        .await
        .unwrap();
    let image = faults
        .inner()
        .image(REGION, &done.image.ami_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        image.tags.get(tags::INTENT),
        Some(&token),
        "the re-run reused the intent"
    );
    assert!(pending.list().unwrap().is_empty());
}

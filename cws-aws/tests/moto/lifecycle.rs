//! The AMI lifecycle services (issue 5) on the AWS provider, against moto: create from an
//! instance (tags, waits, found again on a re-run), create-multi to three regions with an
//! injected copy failure in one and a re-run that finishes it, copy with consent and
//! provenance tags, share (launch permissions read back with `DescribeImageAttribute`,
//! create-volume permissions with `DescribeSnapshotAttribute`), and deregister with snapshot
//! deletion.
//!
//! Each test starts its own moto on a free loopback port. Without moto the tests print why
//! they skip and pass, except under `CI`, where they fail (`MotoServer::start_or_skip`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_ec2 as ec2;
use cws_aws::AwsProvider;
use cws_aws::moto_harness::{MOTO_ACCOUNT_ID, MotoServer};
use cws_lifecycle as lifecycle;
use cws_lifecycle::{
    CopyRequest, CreateMultiRequest, CreateRequest, DeregisterRequest, LifecycleError, NoProgress,
    PendingImages, RegionOutcome, ShareRequest, WaitOptions,
};
use cws_provider::tags;
use cws_provider::wrappers::{CountingProvider, FaultKind, FaultProvider, FaultRule, Operation};
use cws_provider::*;
use cws_resolver::service::{self, ImageSource, LaunchRequest};
use cws_resolver::*;
use cws_template::{SearchPath, Template, TemplateStore};

const REGION: &str = "us-east-1";

// ---------------------------------------------------------------------------------------------
// Helpers

async fn moto_provider() -> Option<(MotoServer, Arc<AwsProvider>)> {
    let moto = MotoServer::start_or_skip()?;
    let provider = moto
        .provider()
        .await
        .unwrap_or_else(|e| panic!("provider for moto at {}: {e}", moto.endpoint()));
    Some((moto, Arc::new(provider)))
}

/// A raw EC2 client on moto, to read back what the trait has no call for (create-volume
/// permissions).
async fn ec2_client(moto: &MotoServer, region: &str) -> ec2::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(cws_aws::https_client())
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(ec2::config::Credentials::new(
            "testing", "testing", None, None, "cws-test",
        ))
        .endpoint_url(moto.endpoint())
        .load()
        .await;
    ec2::Client::new(&sdk)
}

/// Who may create volumes from a snapshot: account ids and whether the group `all` may.
async fn create_volume_permissions(
    client: &ec2::Client,
    snapshot: &str,
) -> (BTreeSet<String>, bool) {
    let out = client
        .describe_snapshot_attribute()
        .snapshot_id(snapshot)
        .attribute(ec2::types::SnapshotAttributeName::CreateVolumePermission)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeSnapshotAttribute {snapshot}: {e:?}"));
    let perms = out.create_volume_permissions();
    let users = perms
        .iter()
        .filter_map(|p| p.user_id().map(str::to_string))
        .collect();
    let public = perms
        .iter()
        .any(|p| p.group() == Some(&ec2::types::PermissionGroup::All));
    (users, public)
}

fn template(slug: &str) -> Template {
    TemplateStore::bundled_only()
        .get(slug)
        .unwrap_or_else(|e| panic!("bundled {slug}: {e}"))
        .template
}

/// A user template that inherits the script-only python-research and searches for the
/// account's own python-research images.
fn my_python(dir: &std::path::Path) -> Template {
    std::fs::write(
        dir.join("my-python.yaml"),
        "name: My Python\nslug: my-python\nversion: 1.0.0\nbase: ubuntu-24.04\n\
         inherits: python-research\nami_config:\n  strategy: ami_preferred\n  ami_search:\n    \
         owners: [self]\n    required_tags: {\"cws:template\": python-research}\n",
    )
    .expect("write my-python");
    TemplateStore::new(SearchPath::new(&[dir.to_path_buf()], None, None))
        .get("my-python")
        .expect("my-python")
        .template
}

/// `cws launch python-research NAME`: a running workstation to image; returns its id.
async fn launch_box(env: &ResolveEnv, name: &str) -> String {
    let report = service::launch(
        env,
        &LaunchRequest {
            template: template("python-research"),
            name: name.into(),
            region: REGION.into(),
            architecture: None,
            instance_type: None,
            dry_run: false,
            forced_tier: None,
            prefer_script: false,
            session_hours: "8".parse().expect("hours"),
            added_tiers: Vec::new(),
            known_images: Vec::new(),
            refused: Vec::new(),
            allowed_owners: None,
        },
        &AssumeNo,
    )
    .await
    .unwrap_or_else(|e| panic!("launch {name}: {e}"));
    report.instance.expect("launched").id
}

/// Short polls: moto answers at once, so a wait is one or two round trips.
fn quick_wait() -> WaitOptions {
    WaitOptions {
        first_poll: std::time::Duration::from_millis(50),
        ..WaitOptions::default()
    }
}

fn create_req(instance: &str, name: &str) -> CreateRequest {
    CreateRequest {
        template: template("python-research"),
        instance: instance.into(),
        region: REGION.into(),
        name: name.into(),
        description: Some("made by lifecycle_moto".into()),
        public: false,
        wait_for_running: false,
        no_reboot: true,
        tags: BTreeMap::from([("project".to_string(), "genomics".to_string())]),
        wait: quick_wait(),
    }
}

async fn made_image(env: &ResolveEnv, instance: &str, name: &str) -> lifecycle::CreatedImage {
    lifecycle::create(
        env,
        &create_req(instance, name),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .unwrap_or_else(|e| panic!("ami create {name}: {e}"))
    .image
}

/// Consent that records the question and answers as told.
struct Asked {
    answer: bool,
    questions: Mutex<Vec<String>>,
}

impl Consent for Asked {
    fn confirm(&self, question: &ConsentRequest) -> bool {
        self.questions
            .lock()
            .expect("questions")
            .push(format!("{question:?}"));
        self.answer
    }
}

// ---------------------------------------------------------------------------------------------
// Create

#[tokio::test(flavor = "multi_thread")]
async fn create_from_an_instance_tags_waits_and_the_template_finds_it() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let env = ResolveEnv::new(p.clone());
    let instance = launch_box(&env, "box").await;
    let home = tempfile::tempdir().expect("home");
    let pending = PendingImages::open(home.path());

    let report = lifecycle::create(
        &env,
        &create_req("box", "My Setup"),
        &AssumeYes,
        Some(&pending),
        &NoProgress,
    )
    .await
    .expect("ami create");
    assert!(!report.provider.simulated);
    let img = &report.image;
    assert_eq!(img.state, ImageState::Available);
    assert_eq!(
        (img.region.as_str(), img.name.as_str()),
        (REGION, "My Setup")
    );
    assert_eq!(img.instance_id, instance);
    assert!(!img.reused);
    assert!(
        pending.list().expect("pending").is_empty(),
        "the record goes once the image is available"
    );

    // The tags are on the image as EC2 describes it, not only in the report.
    let described = p
        .image(REGION, &img.ami_id)
        .await
        .expect("describe")
        .expect("the image exists");
    assert_eq!(described.owner_id, MOTO_ACCOUNT_ID);
    for (k, v) in [
        (tags::TEMPLATE, "python-research"),
        (tags::TEMPLATE_VERSION, "1.0.0"),
        (tags::CREATED_BY, "cws"),
        ("Name", "My Setup"),
        ("project", "genomics"),
        (lifecycle::SOURCE_INSTANCE_TAG, instance.as_str()),
    ] {
        assert_eq!(
            described.tags.get(k).map(String::as_str),
            Some(v),
            "tag {k}: {:?}",
            described.tags
        );
    }

    // `ami list --template python-research` shows it as the account's own (private) image.
    let listing =
        service::list_template_images(&env, &template("python-research"), &[REGION.into()]).await;
    let listed = listing
        .images
        .iter()
        .find(|i| i.id == img.ami_id)
        .unwrap_or_else(|| panic!("not listed: {listing:?}"));
    assert_eq!(listed.source, ImageSource::Private);

    // A template searching the account's python-research images resolves to it.
    let dir = tempfile::tempdir().expect("templates");
    let t = my_python(dir.path());
    let r = Resolver::for_template(&t)
        .resolve(&env, &ResolveRequest::new(t.clone(), REGION))
        .await;
    assert_eq!(r.method, Method::DynamicSearch, "{r:#?}");
    assert_eq!(r.ami_id.as_deref(), Some(img.ami_id.as_str()));

    // Running the same command again finds the image (by name and tags) instead of failing
    // on the taken name.
    let again = lifecycle::create(
        &env,
        &create_req("box", "My Setup"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .expect("ami create again");
    assert!(again.image.reused);
    assert_eq!(again.image.ami_id, img.ami_id);

    // A stopped instance is an error unless the caller waits for it to run.
    p.stop_instance(REGION, &instance).await.expect("stop");
    let err = lifecycle::create(
        &env,
        &create_req("box", "Stopped Box"),
        &AssumeYes,
        None,
        &NoProgress,
    )
    .await
    .expect_err("a stopped instance cannot be imaged without --wait-for-running");
    assert!(
        matches!(err, LifecycleError::InstanceNotRunning { .. }),
        "{err}"
    );
    assert!(err.is_invalid_input());
}

// ---------------------------------------------------------------------------------------------
// Create-multi

#[tokio::test(flavor = "multi_thread")]
async fn create_multi_with_a_failing_region_reports_it_and_a_rerun_finishes_only_it() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let faulty = Arc::new(FaultProvider::new(CountingProvider::new(p.clone())));
    let env = ResolveEnv::new(faulty.clone());
    launch_box(&env, "box").await;
    let home = tempfile::tempdir().expect("home");
    let pending = PendingImages::open(home.path());
    faulty.fail(
        FaultRule::new(FaultKind::Unavailable)
            .operation(Operation::CopyImage)
            .region("eu-west-1"),
    );
    let regions = ["us-east-1", "us-west-2", "eu-west-1"];
    let req = CreateMultiRequest {
        create: create_req("box", "My Setup"),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        concurrency: lifecycle::COPY_CONCURRENCY,
    };

    let report = lifecycle::create_multi(&env, &req, &AssumeYes, Some(&pending), &NoProgress)
        .await
        .expect("create-multi");
    assert!(!report.complete);
    let outcomes: Vec<(&str, RegionOutcome)> = report
        .regions
        .iter()
        .map(|r| (r.region.as_str(), r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("us-east-1", RegionOutcome::Source),
            ("us-west-2", RegionOutcome::Copied),
            ("eu-west-1", RegionOutcome::Failed),
        ]
    );
    let failed = &report.regions[2];
    assert_eq!(failed.error_kind.as_deref(), Some("unavailable"));
    let finish = report.finish.clone().expect("the job that finishes it");
    assert_eq!(finish.operation(), "create-multi", "{finish:?}");
    let recorded = pending.list().expect("pending");
    assert_eq!(
        recorded.len(),
        2,
        "the master stays recorded until every region is done, and the copy whose request \
         went unanswered is recorded by its intent: {recorded:?}"
    );
    assert_eq!(
        recorded[0].image_id.as_deref(),
        Some(report.master.ami_id.as_str())
    );
    assert_eq!(recorded[0].job.as_ref(), Some(&finish));
    assert_eq!(recorded[1].region, "eu-west-1");
    assert_eq!(recorded[1].image_id, None);
    assert!(recorded[1].intent.is_some());

    // The copy in us-west-2 is a real EC2 copy, tagged with its provenance.
    let copy_id = report.regions[1].ami_id.clone().expect("copy id");
    let copy = p
        .image("us-west-2", &copy_id)
        .await
        .expect("describe copy")
        .expect("the copy exists");
    assert_eq!(copy.name, "My Setup");
    assert_eq!(copy.owner_id, MOTO_ACCOUNT_ID);
    assert_eq!(copy.tags[tags::SOURCE_AMI], report.master.ami_id);
    assert_eq!(copy.tags[tags::SOURCE_REGION], REGION);
    assert_eq!(copy.tags[tags::TEMPLATE], "python-research");
    assert!(
        p.image("eu-west-1", &copy_id)
            .await
            .expect("describe")
            .is_none(),
        "nothing landed in the failed region"
    );

    // The fault clears; the same request finishes only the missing region.
    faulty.clear();
    faulty.inner().reset();
    let again = lifecycle::create_multi(&env, &req, &AssumeYes, Some(&pending), &NoProgress)
        .await
        .expect("create-multi again");
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
            RegionOutcome::Copied
        ]
    );
    assert_eq!(again.regions[1].ami_id.as_deref(), Some(copy_id.as_str()));
    assert!(again.finish.is_none());
    assert!(pending.list().expect("pending").is_empty());
    assert_eq!(again.ami_config.ami_mappings.len(), 3);

    // The three regions now resolve a template searching for the images.
    let dir = tempfile::tempdir().expect("templates");
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

// ---------------------------------------------------------------------------------------------
// Copy

#[tokio::test(flavor = "multi_thread")]
async fn copy_asks_with_time_and_cost_then_tags_the_copy_with_its_provenance() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let counting = Arc::new(CountingProvider::new(p.clone()));
    let env = ResolveEnv::new(counting.clone());
    launch_box(&env, "box").await;
    let made = made_image(&env, "box", "To Copy").await;
    let req = CopyRequest {
        image_id: made.ami_id.clone(),
        source_region: REGION.into(),
        target_region: "eu-west-1".into(),
        wait: quick_wait(),
    };

    let refuse = Asked {
        answer: false,
        questions: Mutex::new(Vec::new()),
    };
    let err = lifecycle::copy_to_region(&env, &req, &refuse, None, &NoProgress)
        .await
        .expect_err("declined");
    assert!(matches!(err, LifecycleError::Declined(_)), "{err}");
    assert_eq!(counting.count(Operation::CopyImage), 0, "nothing copied");
    let question = refuse
        .questions
        .lock()
        .expect("questions")
        .last()
        .cloned()
        .expect("a question was asked");
    assert!(question.contains("eu-west-1"), "{question}");
    assert!(
        question.contains("estimated_cost_usd"),
        "the cost is asked about: {question}"
    );

    let report = lifecycle::copy_to_region(&env, &req, &AssumeYes, None, &NoProgress)
        .await
        .expect("copy with consent");
    assert!(!report.reused);
    assert_eq!(report.region, "eu-west-1");
    assert_eq!(report.state, ImageState::Available);
    assert_eq!(report.template.as_deref(), Some("python-research"));
    assert!(report.estimate.snapshot_gb > 0, "{:?}", report.estimate);
    let copy = p
        .image("eu-west-1", &report.ami_id)
        .await
        .expect("describe")
        .expect("the copy exists");
    assert_eq!(copy.tags[tags::SOURCE_AMI], made.ami_id);
    assert_eq!(copy.tags[tags::SOURCE_REGION], REGION);
    assert_eq!(copy.tags[tags::TEMPLATE], "python-research");

    // Asking again finds the copy by its provenance: nothing is spent, nothing asked.
    let again = lifecycle::copy_to_region(&env, &req, &AssumeNo, None, &NoProgress)
        .await
        .expect("copy again");
    assert!(again.reused);
    assert_eq!(again.ami_id, report.ami_id);
    assert_eq!(counting.count(Operation::CopyImage), 1);
}

// ---------------------------------------------------------------------------------------------
// Share

#[tokio::test(flavor = "multi_thread")]
async fn share_sets_launch_and_create_volume_permissions_and_revoke_undoes_them() {
    let Some((moto, p)) = moto_provider().await else {
        return;
    };
    let env = ResolveEnv::new(p.clone());
    launch_box(&env, "box").await;
    let made = made_image(&env, "box", "Shared").await;
    let id = made.ami_id.clone();
    let client = ec2_client(&moto, REGION).await;
    let accounts = [
        LaunchPermission::Account("111122223333".into()),
        LaunchPermission::Account("444455556666".into()),
    ];
    let share = |permissions: Vec<LaunchPermission>, revoke: bool| ShareRequest {
        image_id: id.clone(),
        region: REGION.into(),
        permissions,
        revoke,
    };

    let report = lifecycle::share(&env, &share(accounts.to_vec(), false), &AssumeYes)
        .await
        .expect("share");
    assert_eq!(report.action, "granted");
    assert!(report.complete(), "{:?}", report.snapshots);
    let snaps = report.snapshots.snapshot_ids.clone();
    assert!(!snaps.is_empty(), "an EBS image has snapshots");
    assert_eq!(report.snapshots.changed, snaps);
    // DescribeImageAttribute (launchPermission), through the trait.
    let perms = p
        .describe_launch_permissions(REGION, &id)
        .await
        .expect("describe_launch_permissions");
    for a in &accounts {
        assert!(perms.contains(a), "{perms:?}");
        assert!(report.launch_permissions.contains(a));
    }
    let both: BTreeSet<String> = ["111122223333", "444455556666"].map(String::from).into();
    for snap in &snaps {
        assert_eq!(
            create_volume_permissions(&client, snap).await,
            (both.clone(), false),
            "{snap}"
        );
    }
    let info = lifecycle::image_info(&env, REGION, &id)
        .await
        .expect("ami info");
    assert_eq!(info.shared_with.as_deref(), Some(&perms[..]));
    assert_eq!(info.snapshots.len(), snaps.len());

    // Revoking one account takes it off the image and the snapshots.
    let revoked = lifecycle::share(&env, &share(vec![accounts[0].clone()], true), &AssumeYes)
        .await
        .expect("revoke");
    assert_eq!(revoked.action, "revoked");
    assert!(revoked.complete());
    assert_eq!(
        p.describe_launch_permissions(REGION, &id)
            .await
            .expect("describe"),
        [accounts[1].clone()]
    );
    for snap in &snaps {
        let (users, public) = create_volume_permissions(&client, snap).await;
        assert_eq!(users, BTreeSet::from(["444455556666".to_string()]));
        assert!(!public);
    }

    // Public: the image says so, the snapshots are open to the group `all`; and back.
    let public = lifecycle::share(
        &env,
        &share(vec![LaunchPermission::Public], false),
        &AssumeYes,
    )
    .await
    .expect("make public");
    assert!(
        public
            .launch_permissions
            .contains(&LaunchPermission::Public)
    );
    assert!(
        p.image(REGION, &id)
            .await
            .expect("describe")
            .expect("image")
            .public
    );
    for snap in &snaps {
        assert!(create_volume_permissions(&client, snap).await.1, "{snap}");
    }
    lifecycle::share(
        &env,
        &share(vec![LaunchPermission::Public], true),
        &AssumeYes,
    )
    .await
    .expect("make private");
    assert!(
        !p.image(REGION, &id)
            .await
            .expect("describe")
            .expect("image")
            .public
    );
    for snap in &snaps {
        assert!(!create_volume_permissions(&client, snap).await.1, "{snap}");
    }
}

// ---------------------------------------------------------------------------------------------
// Deregister

#[tokio::test(flavor = "multi_thread")]
async fn deregister_deletes_the_snapshots_when_asked_and_keeps_them_otherwise() {
    let Some((_moto, p)) = moto_provider().await else {
        return;
    };
    let env = ResolveEnv::new(p.clone());
    launch_box(&env, "box").await;
    let doomed = made_image(&env, "box", "Doomed").await;
    let kept = made_image(&env, "box", "Kept").await;
    let snapshots_of = |id: String| {
        let p = p.clone();
        async move {
            p.image(REGION, &id)
                .await
                .expect("describe")
                .expect("image")
                .snapshot_ids
        }
    };
    let doomed_snaps = snapshots_of(doomed.ami_id.clone()).await;
    let kept_snaps = snapshots_of(kept.ami_id.clone()).await;
    assert!(!doomed_snaps.is_empty() && !kept_snaps.is_empty());

    // EC2 refuses to delete a snapshot its image still uses: a typed conflict naming the
    // snapshot and the image, not a crash.
    match p.delete_snapshot(REGION, &doomed_snaps[0]).await {
        Err(e @ ProviderError::SnapshotInUse { .. }) => {
            assert_eq!(e.kind(), "conflict");
            let ProviderError::SnapshotInUse {
                snapshot_id,
                region,
                image_id,
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(snapshot_id, &doomed_snaps[0]);
            assert_eq!(region, REGION);
            assert_eq!(image_id.as_deref(), Some(doomed.ami_id.as_str()), "{e}");
            assert!(e.to_string().contains("deregister the image first"), "{e}");
        }
        other => panic!("expected SnapshotInUse, got {other:?}"),
    }

    let report = lifecycle::deregister(
        &env,
        &DeregisterRequest {
            image_id: doomed.ami_id.clone(),
            region: REGION.into(),
            delete_snapshots: true,
        },
        &AssumeYes,
        None,
    )
    .await
    .expect("deregister --delete-snapshots");
    assert!(report.complete(), "{:?}", report.snapshots);
    assert_eq!(report.snapshots.changed, doomed_snaps);
    assert_eq!(report.snapshots_monthly_cost, cws_cost::Money::ZERO);
    assert!(
        p.image(REGION, &doomed.ami_id)
            .await
            .expect("describe")
            .is_none(),
        "the image is gone"
    );
    assert!(
        p.describe_snapshots(REGION, &doomed_snaps)
            .await
            .expect("describe snapshots")
            .is_empty(),
        "its snapshots are gone"
    );

    // Without --delete-snapshots they stay (and keep costing), as EC2 does.
    let report = lifecycle::deregister(
        &env,
        &DeregisterRequest {
            image_id: kept.ami_id.clone(),
            region: REGION.into(),
            delete_snapshots: false,
        },
        &AssumeYes,
        None,
    )
    .await
    .expect("deregister");
    assert!(report.snapshots.changed.is_empty());
    assert!(report.snapshots_monthly_cost > cws_cost::Money::ZERO);
    assert_eq!(
        p.describe_snapshots(REGION, &kept_snaps)
            .await
            .expect("describe snapshots")
            .len(),
        kept_snaps.len()
    );
    // They can still be deleted later, and then they are gone.
    for snap in &kept_snaps {
        p.delete_snapshot(REGION, snap).await.expect("delete later");
        assert_eq!(
            p.delete_snapshot(REGION, snap)
                .await
                .expect_err("deleted twice")
                .kind(),
            "not_found"
        );
    }
}

//! Concurrent writers on one persisted LocalCloud never lose each other's writes, and the
//! seeded state is deterministic.
//!
//! Separate `LocalCloud::open` handles on one directory behave like separate processes: each
//! has its own in-memory copy and its own lock-file handle (advisory locks are per open file
//! description), so the only thing keeping them consistent is the on-disk protocol. The last
//! test also runs real child processes.

use cws_provider::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Barrier};

use cws_localcloud::LocalCloud;

use cws_template::Architecture;

const REGION: &str = "us-east-1";
const WRITERS: usize = 8;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The newest Ubuntu 24.04 amd64 image, found the way a user would.
async fn ubuntu(cloud: &LocalCloud) -> String {
    cloud
        .describe_images(
            REGION,
            &ImageQuery::owned_by(["099720109477"])
                .name("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"),
        )
        .await
        .unwrap()
        .pop()
        .unwrap()
        .id
}

fn launch(home: &Path, name: &str) -> String {
    block_on(async {
        let cloud = LocalCloud::open(home).unwrap();
        let ami = ubuntu(&cloud).await;
        cloud
            .run_instance(&RunInstanceRequest {
                region: REGION.to_string(),
                name: name.to_string(),
                ami_id: ami,
                instance_type: "t3.micro".to_string(),
                architecture: Architecture::X86_64,
                user_data: None,
                root_volume_gb: None,
                tags: Default::default(),
            })
            .await
            .unwrap()
            .id
    })
}

fn names_on_disk(home: &Path) -> BTreeSet<String> {
    block_on(async {
        LocalCloud::open(home)
            .unwrap()
            .describe_instances(REGION, &InstanceFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect()
    })
}

#[test]
fn eight_concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = Arc::new(dir.path().to_path_buf());
    // All writers start together on an empty home, so seeding races too.
    let barrier = Arc::new(Barrier::new(WRITERS));
    let handles: Vec<_> = (0..WRITERS)
        .map(|i| {
            let home = home.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                launch(&home, &format!("worker-{i}"))
            })
        })
        .collect();
    let ids: BTreeSet<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(ids.len(), WRITERS, "every instance got its own id");

    let expected: BTreeSet<String> = (0..WRITERS).map(|i| format!("worker-{i}")).collect();
    assert_eq!(names_on_disk(&home), expected);
    // Seeding happened exactly once: no duplicated images.
    assert_eq!(
        LocalCloud::open(&home).unwrap().image_count(),
        LocalCloud::in_memory().image_count()
    );
}

#[test]
fn reopened_cloud_sees_the_same_seeded_ids() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ids = |home: &Path| {
        block_on(async {
            let cloud = LocalCloud::open(home).unwrap();
            let mut all = BTreeSet::new();
            for region in [REGION, "eu-west-1", "ap-southeast-1"] {
                for owner in ["099720109477", "amazon", "136693071363", "704381954421"] {
                    let q = ImageQuery::owned_by([owner]).include_deprecated(true);
                    for img in cloud.describe_images(region, &q).await.unwrap() {
                        all.insert(img.id);
                    }
                }
            }
            all
        })
    };
    let first = ids(a.path());
    assert!(first.len() > 50, "seeded images are searchable");
    assert_eq!(ids(a.path()), first, "re-opening keeps the ids");
    assert_eq!(ids(b.path()), first, "another home seeds the same ids");
    let memory = block_on(async {
        let cloud = LocalCloud::in_memory();
        cloud
            .describe_images(REGION, &ImageQuery::owned_by(["amazon"]))
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect::<BTreeSet<_>>()
    });
    assert!(
        memory.is_subset(&first),
        "in-memory seeding matches the persisted one"
    );
}

#[test]
fn seeded_python_ml_mappings_exist_in_their_regions() {
    let dir = tempfile::tempdir().unwrap();
    let bundled = cws_template::bundled()
        .iter()
        .find(|b| b.slug == "python-ml")
        .expect("python-ml is bundled");
    let template = cws_template::parse_str(bundled.source, bundled.slug).unwrap();
    let mappings = template.ami_config.unwrap().ami_mappings;
    assert!(!mappings.is_empty());
    block_on(async {
        let cloud = LocalCloud::open(dir.path()).unwrap();
        for (region, id) in &mappings {
            let image = cloud.image(region, id).await.unwrap();
            let image = image.unwrap_or_else(|| panic!("{id} missing in {region}"));
            assert_eq!(
                image.tags.get("cws:template").map(String::as_str),
                Some("python-ml")
            );
        }
    });
}

// Eight separate *processes* writing at once are covered end to end by
// `cws-cli/tests/it/cli.rs::eight_concurrent_launches_all_survive`, which runs eight `cws launch`
// binaries on one $CWS_HOME; here eight threads each open their own LocalCloud on the same
// directory, which exercises the same file locking.

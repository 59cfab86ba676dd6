use super::*;
use cws_provider::{Image, LaunchPermission};
use cws_template::Architecture;
use std::collections::BTreeMap;
use std::fs;

fn entry(id: &str, region: &str) -> PendingImage {
    PendingImage {
        image_id: Some(id.into()),
        region: region.into(),
        name: "n".into(),
        operation: "create".into(),
        template: None,
        started_at: now_rfc3339(),
        job: Some(PendingJob::Create {
            template: "t".into(),
            instance: "box".into(),
            name: "n".into(),
            region: region.into(),
            regions: vec![],
            public: false,
        }),
        legacy_finish: None,
        intent: None,
    }
}

#[test]
fn share_details_say_what_happened_and_that_orgs_get_no_snapshots() {
    let mut image = Image {
        id: "ami-00000001".into(),
        region: "us-east-1".into(),
        name: "n".into(),
        owner_id: "123456789012".into(),
        architecture: Architecture::X86_64,
        state: ImageState::Available,
        creation_date: chrono::Utc::now(),
        deprecation_time: None,
        description: None,
        tags: BTreeMap::new(),
        product_codes: vec![],
        snapshot_ids: vec!["snap-00000001".into(), "snap-00000002".into()],
        root_volume_gb: Some(8),
        public: false,
    };
    let account = LaunchPermission::Account("111122223333".into());
    let org = LaunchPermission::Organization(
        "arn:aws:organizations::123456789012:organization/o-abc".into(),
    );
    let all_ok = SnapshotAction::new(
        &image.snapshot_ids,
        image
            .snapshot_ids
            .iter()
            .map(|s| (s.clone(), Ok(())))
            .collect(),
        String::new(),
    );
    assert!(all_ok.done);
    let text = share_snapshot_detail(&image, std::slice::from_ref(&account), false, &all_ok);
    assert!(
        text.starts_with("create-volume permission granted to account 111122223333 on 2 snapshots"),
        "{text}"
    );
    assert!(!text.contains("organization"), "{text}");

    let with_org = share_snapshot_detail(&image, &[account.clone(), org.clone()], true, &all_ok);
    assert!(
        with_org.contains("revoked from account 111122223333"),
        "{with_org}"
    );
    assert!(
        with_org.contains("cannot share snapshots with an organization"),
        "{with_org}"
    );
    let org_only = SnapshotAction::new(&image.snapshot_ids, vec![], String::new());
    let org_text = share_snapshot_detail(&image, std::slice::from_ref(&org), false, &org_only);
    assert!(
        org_text.starts_with("EC2 cannot share snapshots"),
        "{org_text}"
    );

    let half = SnapshotAction::new(
        &image.snapshot_ids,
        vec![
            ("snap-00000001".into(), Ok(())),
            (
                "snap-00000002".into(),
                Err(ProviderError::Throttled {
                    message: "slow down".into(),
                }),
            ),
        ],
        String::new(),
    );
    assert!(!half.done);
    assert_eq!(half.changed, ["snap-00000001"]);
    assert_eq!(half.failed[0].kind, "throttled");
    let text = share_snapshot_detail(&image, std::slice::from_ref(&account), false, &half);
    assert!(text.contains("on 1 snapshot,"), "{text}");
    assert!(
        text.contains("1 snapshot could not be changed (snap-00000002: throttled"),
        "{text}"
    );

    image.snapshot_ids.clear();
    let none = share_snapshot_detail(&image, &[account], false, &org_only);
    assert!(none.contains("no snapshots"), "{none}");
}

#[test]
fn pending_records_add_replace_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let p = PendingImages::open(dir.path());
    assert!(p.list().unwrap().is_empty());
    p.add(entry("ami-00000001", "us-east-1")).unwrap();
    p.add(entry("ami-00000002", "us-west-2")).unwrap();
    let mut again = entry("ami-00000001", "us-east-1");
    again.name = "renamed".into();
    p.add(again).unwrap();
    let list = p.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].name, "renamed");
    assert!(p.remove("us-east-1", "ami-00000001").unwrap());
    assert!(!p.remove("us-east-1", "ami-00000001").unwrap());
    assert!(p.remove("us-west-2", "ami-00000002").unwrap());
    // An empty record leaves no file behind, and no temporary files either.
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn concurrent_writers_lose_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pending-images.json");
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let p = PendingImages::at(&path);
            std::thread::spawn(move || {
                for i in 0..10 {
                    p.add(entry(&format!("ami-{t:04}{i:04}"), "us-east-1"))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(PendingImages::at(&path).list().unwrap().len(), 80);
}

#[test]
fn a_corrupt_record_is_an_error_naming_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let p = PendingImages::open(dir.path());
    fs::write(p.path(), b"{nope").unwrap();
    let err = p.list().unwrap_err().to_string();
    assert!(err.contains("pending-images.json"), "{err}");
    assert!(err.contains("move it aside"), "{err}");
    // Writing refuses too, rather than replacing what it cannot read.
    assert!(p.add(entry("ami-00000001", "us-east-1")).is_err());
}

#[test]
fn a_pending_file_over_the_limit_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = PendingImages::open(dir.path());
    // Sparse: refused by its size, so nothing is read.
    fs::File::create(p.path())
        .unwrap()
        .set_len(MAX_PENDING_BYTES + 1)
        .unwrap();
    let err = p.list().unwrap_err();
    assert!(
        matches!(&err, LifecycleError::PendingFileRefused(cws_util::fs::ReadError::TooLarge { path, limit })
            if path == p.path() && *limit == MAX_PENDING_BYTES),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(shown.contains("pending-images.json"), "{shown}");
    assert!(shown.contains("16 MiB"), "{shown}");
    // Writing refuses too, rather than replacing what it did not read.
    assert!(matches!(
        p.add(entry("ami-00000001", "us-east-1")),
        Err(LifecycleError::PendingFileRefused(_))
    ));
    assert_eq!(fs::metadata(p.path()).unwrap().len(), MAX_PENDING_BYTES + 1);
}

#[test]
fn a_pending_path_that_is_not_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = PendingImages::open(dir.path());
    fs::create_dir(p.path()).unwrap();
    let err = p.list().unwrap_err();
    assert!(
        matches!(
            &err,
            LifecycleError::PendingFileRefused(cws_util::fs::ReadError::NotAFile { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

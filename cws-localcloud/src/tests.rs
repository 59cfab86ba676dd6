use super::*;

/// An error and its sources, the way the CLI prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}
use cws_provider::{ImageCatalogExt, InstancesExt};

const US_EAST: &str = "us-east-1";

fn run(fut: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fut);
}

fn image(id: &str, region: &str, name: &str, owner: &str) -> Image {
    Image {
        id: id.to_string(),
        region: region.to_string(),
        name: name.to_string(),
        owner_id: owner.to_string(),
        architecture: Architecture::X86_64,
        state: ImageState::Available,
        creation_date: cws_provider::ec2_time::parse("2025-01-01T00:00:00.000Z").unwrap(),
        deprecation_time: None,
        description: None,
        tags: BTreeMap::new(),
        product_codes: Vec::new(),
        snapshot_ids: Vec::new(),
        root_volume_gb: None,
        public: false,
    }
}

fn noble(region: &str, arch: &str, date: &str) -> String {
    seed::seeded_image_id(
        region,
        &format!("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-{date}"),
    )
}

fn run_request(name: &str, ami: &str, instance_type: &str) -> RunInstanceRequest {
    RunInstanceRequest {
        region: US_EAST.to_string(),
        name: name.to_string(),
        ami_id: ami.to_string(),
        instance_type: instance_type.to_string(),
        architecture: Architecture::X86_64,
        user_data: None,
        root_volume_gb: None,
        tags: BTreeMap::new(),
    }
}

fn bundled(slug: &str) -> cws_template::Template {
    seed::bundled_templates()
        .into_iter()
        .find(|t| t.slug == slug)
        .unwrap_or_else(|| panic!("bundled template {slug} missing"))
}

#[test]
fn info_says_simulated_and_where_state_lives() {
    let mem = LocalCloud::in_memory();
    let info = mem.info();
    assert_eq!(info.name, "local");
    assert!(info.simulated);
    let account = futures::executor::block_on(mem.account_id()).unwrap();
    assert_eq!(account.as_deref(), Some(LOCAL_ACCOUNT_ID));
    assert!(
        info.description
            .starts_with("LocalCloud (simulated EC2; state in")
    );
    assert!(mem.state_path().is_none());

    let dir = tempfile::tempdir().unwrap();
    let disk = LocalCloud::open(dir.path()).unwrap();
    let path = disk.state_path().unwrap().to_path_buf();
    assert_eq!(path, dir.path().join("localcloud").join("state.json"));
    assert!(
        disk.info()
            .description
            .contains(&path.display().to_string())
    );
    assert!(format!("{disk:?}").contains("state.json"));
}

#[test]
fn instance_type_families_map_to_architectures() {
    use Architecture::{Arm64, X86_64};
    for (t, arch) in [
        ("t3.micro", Some(X86_64)),
        ("m6i.xlarge", Some(X86_64)),
        ("m7i-flex.large", Some(X86_64)),
        ("c6in.large", Some(X86_64)),
        ("g5.xlarge", Some(X86_64)),
        ("t4g.micro", Some(Arm64)),
        ("m7g.xlarge", Some(Arm64)),
        ("c7gn.large", Some(Arm64)),
        ("r6gd.large", Some(Arm64)),
        ("g5g.xlarge", Some(Arm64)),
        ("im4gn.large", Some(Arm64)),
        ("a1.medium", Some(Arm64)),
        ("m7g", None),
        ("large", None),
        (".large", None),
        ("7g.large", None),
    ] {
        assert_eq!(instance_type_architecture(t), arch, "{t}");
    }
}

#[test]
fn searches_need_trusted_owners_and_resolve_aliases() {
    run(async {
        let cloud = LocalCloud::in_memory();
        let err = cloud
            .describe_images(US_EAST, &ImageQuery::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        assert!(err.to_string().contains("trusted owners are required"));

        let err = cloud
            .describe_images(US_EAST, &ImageQuery::owned_by(["anyone"]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");

        let amazon = cloud
            .describe_images(
                US_EAST,
                &ImageQuery::owned_by(["amazon"]).name("al2023-ami-*"),
            )
            .await
            .unwrap();
        // Three releases × two archs, the oldest release deprecated.
        assert_eq!(amazon.len(), 4);
        assert!(amazon.iter().all(|i| i.owner_id == AMAZON_OWNER));
        let literal = cloud
            .describe_images(
                US_EAST,
                &ImageQuery::owned_by([AMAZON_OWNER]).name("al2023-ami-*"),
            )
            .await
            .unwrap();
        assert_eq!(amazon, literal);

        let mine = cloud
            .describe_images(US_EAST, &ImageQuery::owned_by(["self"]))
            .await
            .unwrap();
        assert!(mine.is_empty(), "a fresh account owns no images");
    });
}

#[test]
fn deprecated_images_hidden_from_search_but_found_by_id() {
    run(async {
        let cloud = LocalCloud::in_memory();
        let query = ImageQuery::owned_by([CANONICAL_OWNER])
            .name("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*");
        let current = cloud.describe_images(US_EAST, &query).await.unwrap();
        let names: Vec<_> = current.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251002",
            ]
        );
        let all = cloud
            .describe_images(US_EAST, &query.clone().include_deprecated(true))
            .await
            .unwrap();
        assert_eq!(all.len(), 3);

        let old = noble(US_EAST, "amd64", "20250115");
        let by_id = cloud.image(US_EAST, &old).await.unwrap().unwrap();
        assert!(by_id.deprecation_time.is_some());
        assert_eq!(by_id.snapshot_ids.len(), 1);
        let snaps = cloud
            .describe_snapshots(US_EAST, &by_id.snapshot_ids)
            .await
            .unwrap();
        assert_eq!(snaps[0].size_gb, 8);
        assert_eq!(cloud.image_size_gb(&by_id).await.unwrap(), 8);
    });
}

#[test]
fn ids_and_regions_are_validated() {
    run(async {
        let cloud = LocalCloud::in_memory();
        let err = cloud
            .describe_images_by_id(US_EAST, &["ami-XYZ".to_string()])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        let absent = cloud
            .describe_images_by_id(US_EAST, &["ami-0123456789abcdef0".to_string()])
            .await
            .unwrap();
        assert!(absent.is_empty());
        assert!(
            cloud
                .image(US_EAST, "ami-12345678")
                .await
                .unwrap()
                .is_none()
        );

        let err = cloud
            .describe_images_by_id("us-est-1", &[])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        assert!(
            err.to_string().contains("did you mean `us-east-1`"),
            "{err}"
        );
        let err = cloud
            .describe_snapshots(US_EAST, &["vol-1".to_string()])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        let err = cloud
            .stop_instance(US_EAST, "instance-1")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        let regions = cloud.describe_regions().await.unwrap();
        assert_eq!(regions.len(), cws_regions::all().len());
    });
}

#[test]
fn python_ml_mappings_are_seeded_with_exact_ids() {
    run(async {
        let cloud = LocalCloud::in_memory();
        let t = bundled("python-ml");
        let cfg = t.ami_config.as_ref().unwrap();
        assert!(!cfg.ami_mappings.is_empty());
        for (region, id) in &cfg.ami_mappings {
            let img = cloud.image(region, id).await.unwrap().unwrap();
            assert_eq!(img.owner_id, cws_template::CWS_PUBLISHER_ACCOUNT);
            assert!(img.public);
            assert_eq!(
                img.name,
                format!(
                    "cws-python-ml-{}-{}",
                    t.version,
                    cfg.preferred_architecture
                        .unwrap_or(Architecture::X86_64)
                        .as_str()
                )
            );
            assert_eq!(img.tags["cws:template"], "python-ml");
            assert_eq!(img.tags["cws:template-version"], t.version.to_string());
            assert_eq!(img.tags["Name"], img.name);
            assert_eq!(cloud.image_size_gb(&img).await.unwrap(), 60);
            // The template's own search finds the mapped image too.
            let search = cfg.ami_search.as_ref().unwrap();
            let mut q = ImageQuery::owned_by(search.owners.clone());
            q.names = search.name_pattern.iter().cloned().collect();
            q.tags = search.required_tags.clone();
            let found = cloud.describe_images(region, &q).await.unwrap();
            assert!(found.iter().any(|i| &i.id == id), "{region}");
        }
        // Unmapped regions have no python-ml image (cross-region territory).
        let q = ImageQuery::owned_by([cws_template::CWS_PUBLISHER_ACCOUNT]).name("cws-python-ml-*");
        assert!(
            cloud
                .describe_images("us-east-2", &q)
                .await
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn search_only_templates_get_findable_images_in_two_regions() {
    run(async {
        let cloud = LocalCloud::in_memory();
        let t = bundled("bioinformatics");
        let cfg = t.ami_config.as_ref().unwrap();
        let search = cfg.ami_search.as_ref().unwrap();
        let mut q = ImageQuery::owned_by(search.owners.clone());
        q.names = search.name_pattern.iter().cloned().collect();
        q.tags = search.required_tags.clone();
        q.architectures = search.architectures.clone();
        for region in SEARCH_IMAGE_REGIONS {
            let found = cloud.describe_images(region, &q).await.unwrap();
            let archs: BTreeSet<_> = found.iter().map(|i| i.architecture).collect();
            assert!(archs.contains(&Architecture::X86_64), "{region}");
            assert!(archs.contains(&Architecture::Arm64), "{region}");
            assert!(
                found
                    .iter()
                    .any(|i| i.tags["cws:template-version"] == t.version.to_string()),
                "the newest release is the template's version"
            );
            let all = cloud
                .describe_images(region, &q.clone().include_deprecated(true))
                .await
                .unwrap();
            assert!(all.len() > found.len(), "the oldest release is deprecated");
        }
        assert!(
            cloud
                .describe_images("eu-west-1", &q)
                .await
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn marketplace_templates_get_a_product_and_coded_images() {
    run(async {
        let cloud = LocalCloud::in_memory();
        let t = bundled("gis-research");
        let mp = t.ami_config.as_ref().unwrap().marketplace.clone().unwrap();
        let code = mp.product_code.clone().unwrap();

        let by_code = cloud
            .find_marketplace_products(&MarketplaceQuery {
                product_code: Some(code.clone()),
                ..MarketplaceQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(by_code.len(), 1);
        let product = &by_code[0];
        assert_eq!(
            product.subscribe_url,
            format!(
                "https://aws.amazon.com/marketplace/pp/{}",
                product.product_id
            )
        );
        if let Some(id) = &mp.product_id {
            assert_eq!(&product.product_id, id);
        }
        let by_title = cloud
            .find_marketplace_products(&MarketplaceQuery {
                title: Some(product.title.to_uppercase()),
                ..MarketplaceQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(&by_title, &by_code);
        let mismatch = cloud
            .find_marketplace_products(&MarketplaceQuery {
                product_code: Some(code.clone()),
                product_id: Some("prod-nope".to_string()),
                title: None,
            })
            .await
            .unwrap();
        assert!(mismatch.is_empty(), "every set field must match");

        let q = ImageQuery::owned_by(["aws-marketplace"]).product_code(code.clone());
        for region in MARKETPLACE_REGIONS {
            let imgs = cloud.describe_images(region, &q).await.unwrap();
            assert!(!imgs.is_empty(), "{region}");
            assert!(imgs.iter().all(|i| i.owner_id == MARKETPLACE_OWNER));
        }
        assert!(
            cloud
                .describe_images("sa-east-1", &q)
                .await
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn visibility_follows_ownership_public_flag_and_grants() {
    run(async {
        let cloud = LocalCloud::empty();
        let private = image("ami-0aaaaaaaaaaaaaaa1", US_EAST, "theirs", "999999999999");
        let shared = image("ami-0aaaaaaaaaaaaaaa2", US_EAST, "shared", "999999999999");
        cloud.insert_image(private.clone(), 8).unwrap();
        cloud.insert_image(shared.clone(), 8).unwrap();
        cloud
            .write(|s| {
                let stored = s
                    .region_mut(US_EAST)
                    .images
                    .get_mut(shared.id.as_str())
                    .unwrap();
                stored
                    .permissions
                    .push(LaunchPermission::Account(LOCAL_ACCOUNT_ID.to_string()));
                Ok(())
            })
            .unwrap();
        let ids = [private.id.clone(), shared.id.clone()];
        let found = cloud.describe_images_by_id(US_EAST, &ids).await.unwrap();
        assert_eq!(
            found.iter().map(|i| &i.id).collect::<Vec<_>>(),
            vec![&shared.id]
        );
        let q = ImageQuery::owned_by(["999999999999"]);
        let found = cloud.describe_images(US_EAST, &q).await.unwrap();
        assert_eq!(found.len(), 1);
        // Launching an invisible image is "not found", as in EC2.
        let err = cloud
            .run_instance(&run_request("x", &private.id, "t3.micro"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "not_found");
        // Someone else's image cannot be re-shared or deregistered by us.
        let err = cloud
            .modify_launch_permission(US_EAST, &shared.id, &LaunchPermission::Public, true)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "permission_denied");
        let err = cloud
            .deregister_image(US_EAST, &shared.id)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "permission_denied");
        let err = cloud
            .describe_launch_permissions(US_EAST, &shared.id)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "permission_denied");
    });
}

#[test]
fn run_instance_checks_architecture_names_and_images() {
    run(async {
        let cloud = LocalCloud::in_memory();
        let amd = noble(US_EAST, "amd64", "20251002");
        let arm = noble(US_EAST, "arm64", "20251002");

        let err = cloud
            .run_instance(&run_request("a", &amd, "m7g.large"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        let msg = err.to_string();
        assert!(msg.contains("m7g.large") && msg.contains(&amd), "{msg}");
        assert!(msg.contains("arm64") && msg.contains("x86_64"), "{msg}");

        let err = cloud
            .run_instance(&run_request("a", &amd, "bogus"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");

        let graviton = cloud
            .run_instance(&run_request("arm-box", &arm, "m7g.large"))
            .await
            .unwrap();
        assert_eq!(graviton.architecture, Architecture::Arm64);
        assert_eq!(graviton.state, InstanceState::Running);
        assert!(is_hex_id(&graviton.id, "i"));

        let err = cloud
            .run_instance(&run_request("arm-box", &amd, "t3.micro"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "conflict");
        assert!(err.to_string().contains(&graviton.id));

        // Same name in another region is fine.
        let mut elsewhere = run_request(
            "arm-box",
            &noble("eu-west-1", "amd64", "20251002"),
            "t3.micro",
        );
        elsewhere.region = "eu-west-1".to_string();
        cloud.run_instance(&elsewhere).await.unwrap();

        let missing = cloud
            .run_instance(&run_request("b", "ami-0123456789abcdef0", "t3.micro"))
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), "not_found");

        let err = cloud
            .run_instance(&run_request("  ", &amd, "t3.micro"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
    });
}

#[test]
fn instances_stop_terminate_and_tag() {
    run(async {
        let cloud = LocalCloud::in_memory();
        let amd = noble(US_EAST, "amd64", "20251002");
        let mut req = run_request("box", &amd, "t3.large");
        req.root_volume_gb = Some(30);
        req.tags
            .insert("cws:template".to_string(), "python-ml".to_string());
        let inst = cloud.run_instance(&req).await.unwrap();
        assert_eq!(inst.tags["Name"], "box");

        let tags = BTreeMap::from([("Name".to_string(), "renamed".to_string())]);
        cloud.create_tags(US_EAST, &inst.id, &tags).await.unwrap();
        let renamed = cloud.require_instance(US_EAST, "renamed").await.unwrap();
        assert_eq!(renamed.id, inst.id);
        assert_eq!(renamed.name, "renamed");
        let tagged = cloud
            .describe_instances(
                US_EAST,
                &InstanceFilter {
                    tags: BTreeMap::from([("cws:template".to_string(), "python-ml".to_string())]),
                    ..InstanceFilter::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(tagged.len(), 1);

        let img = cloud
            .create_image(&CreateImageRequest {
                region: US_EAST.to_string(),
                instance_id: inst.id.clone(),
                name: "from-box".to_string(),
                description: None,
                no_reboot: false,
                tags: BTreeMap::new(),
            })
            .await
            .unwrap();
        assert_eq!(img.owner_id, LOCAL_ACCOUNT_ID);
        assert_eq!(img.root_volume_gb, Some(30));
        assert_eq!(cloud.image_size_gb(&img).await.unwrap(), 30);
        assert_eq!(img.state, ImageState::Available);

        let stopped = cloud.stop_instance(US_EAST, &inst.id).await.unwrap();
        assert_eq!(stopped.state, InstanceState::Stopped);
        let gone = cloud.terminate_instance(US_EAST, &inst.id).await.unwrap();
        assert_eq!(gone.state, InstanceState::Terminated);
        let err = cloud.stop_instance(US_EAST, &inst.id).await.unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        let err = cloud
            .create_image(&CreateImageRequest {
                region: US_EAST.to_string(),
                instance_id: inst.id.clone(),
                name: "from-dead-box".to_string(),
                description: None,
                no_reboot: false,
                tags: BTreeMap::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        assert!(
            cloud
                .instance_by_name(US_EAST, "renamed")
                .await
                .unwrap()
                .is_none()
        );

        let err = cloud
            .create_tags(US_EAST, "i-0123456789abcdef0", &tags)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "not_found");
        let err = cloud
            .create_tags(US_EAST, "vpc-1", &tags)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        let reserved = BTreeMap::from([("aws:x".to_string(), "y".to_string())]);
        let err = cloud
            .create_tags(US_EAST, &img.id, &reserved)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        cloud
            .create_tags(US_EAST, &img.snapshot_ids[0], &tags)
            .await
            .unwrap();
    });
}

#[test]
fn copies_keep_size_and_codes_and_names_stay_unique() {
    run(async {
        let cloud = LocalCloud::in_memory();
        let t = bundled("python-ml");
        let (region, id) = t
            .ami_config
            .as_ref()
            .unwrap()
            .ami_mappings
            .iter()
            .next()
            .map(|(r, i)| (r.clone(), i.clone()))
            .unwrap();
        let req = CopyImageRequest {
            source_region: region.clone(),
            source_image_id: id.clone(),
            target_region: "us-east-2".to_string(),
            name: "cws-python-ml-copy".to_string(),
            description: None,
            tags: BTreeMap::from([("cws:source-image".to_string(), id.clone())]),
        };
        let copy = cloud.copy_image(&req).await.unwrap();
        assert_eq!(copy.region, "us-east-2");
        assert_eq!(copy.owner_id, LOCAL_ACCOUNT_ID);
        assert_eq!(
            copy.state,
            ImageState::Available,
            "copies complete instantly"
        );
        assert!(!copy.public);
        assert_eq!(copy.tags["cws:source-image"], id);
        assert_eq!(cloud.image_size_gb(&copy).await.unwrap(), 60);
        let snaps = cloud
            .describe_snapshots("us-east-2", &copy.snapshot_ids)
            .await
            .unwrap();
        assert_eq!(snaps.len(), 1);

        let err = cloud.copy_image(&req).await.unwrap_err();
        assert_eq!(err.kind(), "conflict");
        assert!(err.to_string().contains(&copy.id));

        let missing = CopyImageRequest {
            source_image_id: "ami-0123456789abcdef0".to_string(),
            name: "other".to_string(),
            ..req.clone()
        };
        assert_eq!(
            cloud.copy_image(&missing).await.unwrap_err().kind(),
            "not_found"
        );
        let bad_name = CopyImageRequest {
            name: "x".to_string(),
            ..req.clone()
        };
        assert_eq!(
            cloud.copy_image(&bad_name).await.unwrap_err().kind(),
            "invalid_input"
        );

        cloud.deregister_image("us-east-2", &copy.id).await.unwrap();
        assert!(cloud.image("us-east-2", &copy.id).await.unwrap().is_none());
        assert_eq!(
            cloud
                .deregister_image("us-east-2", &copy.id)
                .await
                .unwrap_err()
                .kind(),
            "not_found"
        );
        // The name is free again after deregistering.
        cloud.copy_image(&req).await.unwrap();
    });
}

#[test]
fn launch_permissions_round_trip() {
    run(async {
        let cloud = LocalCloud::in_memory();
        let copy = cloud
            .copy_image(&CopyImageRequest {
                source_region: US_EAST.to_string(),
                source_image_id: noble(US_EAST, "amd64", "20251002"),
                target_region: US_EAST.to_string(),
                name: "mine".to_string(),
                description: None,
                tags: BTreeMap::new(),
            })
            .await
            .unwrap();
        let acct = LaunchPermission::Account("210987654321".to_string());
        let org = LaunchPermission::Organization(
            "arn:aws:organizations::210987654321:organization/o-abc".to_string(),
        );
        for p in [&acct, &org, &LaunchPermission::Public] {
            cloud
                .modify_launch_permission(US_EAST, &copy.id, p, true)
                .await
                .unwrap();
        }
        // Granting twice does not duplicate.
        cloud
            .modify_launch_permission(US_EAST, &copy.id, &acct, true)
            .await
            .unwrap();
        let perms = cloud
            .describe_launch_permissions(US_EAST, &copy.id)
            .await
            .unwrap();
        assert_eq!(
            perms,
            vec![LaunchPermission::Public, org.clone(), acct.clone()]
        );
        assert!(
            cloud
                .image(US_EAST, &copy.id)
                .await
                .unwrap()
                .unwrap()
                .public
        );

        let err = cloud
            .modify_launch_permission(
                US_EAST,
                &copy.id,
                &LaunchPermission::Account("12".to_string()),
                true,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        for p in [&acct, &org, &LaunchPermission::Public] {
            cloud
                .modify_launch_permission(US_EAST, &copy.id, p, false)
                .await
                .unwrap();
        }
        assert!(
            cloud
                .describe_launch_permissions(US_EAST, &copy.id)
                .await
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn snapshot_permissions_belong_to_the_owner_and_persist() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let cloud = LocalCloud::open(dir.path()).unwrap();
        let copy = cloud
            .copy_image(&CopyImageRequest {
                source_region: US_EAST.to_string(),
                source_image_id: noble(US_EAST, "amd64", "20251002"),
                target_region: US_EAST.to_string(),
                name: "mine".to_string(),
                description: None,
                tags: BTreeMap::new(),
            })
            .await
            .unwrap();
        let snap = copy.snapshot_ids[0].clone();
        let acct = LaunchPermission::Account("210987654321".to_string());
        assert!(
            cloud
                .create_volume_permissions(US_EAST, &snap)
                .unwrap()
                .is_empty()
        );
        for p in [&acct, &LaunchPermission::Public, &acct] {
            cloud
                .modify_snapshot_permission(US_EAST, &snap, p, true)
                .await
                .unwrap();
        }
        // Granting twice does not duplicate, and another handle on the same home sees it.
        let again = LocalCloud::open(dir.path()).unwrap();
        assert_eq!(
            again.create_volume_permissions(US_EAST, &snap).unwrap(),
            vec![LaunchPermission::Public, acct.clone()]
        );

        let bad = [
            LaunchPermission::Account("12".to_string()),
            LaunchPermission::Organization(
                "arn:aws:organizations::210987654321:organization/o-abc".to_string(),
            ),
        ];
        for p in &bad {
            let err = cloud
                .modify_snapshot_permission(US_EAST, &snap, p, true)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), "invalid_input", "{err}");
        }
        let org_err = cloud
            .modify_snapshot_permission(US_EAST, &snap, &bad[1], true)
            .await
            .unwrap_err()
            .to_string();
        assert!(org_err.contains("organization"), "{org_err}");

        // The base image's snapshot is Canonical's: neither shareable nor deletable by us.
        let base = cloud
            .image(US_EAST, &noble(US_EAST, "amd64", "20251002"))
            .await
            .unwrap()
            .unwrap();
        let theirs = &base.snapshot_ids[0];
        for err in [
            cloud
                .modify_snapshot_permission(US_EAST, theirs, &acct, true)
                .await
                .unwrap_err(),
            cloud.delete_snapshot(US_EAST, theirs).await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), "permission_denied", "{err}");
            assert!(err.to_string().contains(CANONICAL_OWNER), "{err}");
        }
        assert_eq!(
            cloud
                .create_volume_permissions(US_EAST, theirs)
                .unwrap_err()
                .kind(),
            "permission_denied"
        );

        // In use while the image exists; deleting it afterwards drops its permissions too.
        let err = cloud.delete_snapshot(US_EAST, &snap).await.unwrap_err();
        assert_eq!(err.kind(), "conflict");
        assert!(err.to_string().contains(&copy.id), "{err}");
        cloud.deregister_image(US_EAST, &copy.id).await.unwrap();
        // A snapshot left behind by a deregistration is still ours to share.
        cloud
            .modify_snapshot_permission(US_EAST, &snap, &acct, false)
            .await
            .unwrap();
        cloud.delete_snapshot(US_EAST, &snap).await.unwrap();
        assert!(
            cloud
                .describe_snapshots(US_EAST, std::slice::from_ref(&snap))
                .await
                .unwrap()
                .is_empty()
        );
        for err in [
            cloud.delete_snapshot(US_EAST, &snap).await.unwrap_err(),
            cloud
                .modify_snapshot_permission(US_EAST, &snap, &acct, true)
                .await
                .unwrap_err(),
            cloud.create_volume_permissions(US_EAST, &snap).unwrap_err(),
        ] {
            assert_eq!(err.kind(), "not_found", "{err}");
        }
        let state = std::fs::read_to_string(cloud.state_path().unwrap()).unwrap();
        assert!(
            !state.contains(&snap),
            "no trace of the deleted snapshot is persisted"
        );
        assert_eq!(
            cloud
                .delete_snapshot(US_EAST, "snap-nope")
                .await
                .unwrap_err()
                .kind(),
            "invalid_input"
        );
    });
}

#[test]
fn inserted_images_are_searchable_and_duplicates_refused() {
    run(async {
        let cloud = LocalCloud::empty();
        assert_eq!(cloud.image_count(), 0);
        let img = image(
            "ami-0bbbbbbbbbbbbbbb1",
            US_EAST,
            "bench-1",
            LOCAL_ACCOUNT_ID,
        );
        cloud.insert_image(img.clone(), 20).unwrap();
        assert_eq!(cloud.image_count(), 1);
        let got = cloud.image(US_EAST, &img.id).await.unwrap().unwrap();
        assert_eq!(got.root_volume_gb, Some(20));
        assert_eq!(cloud.image_size_gb(&got).await.unwrap(), 20);
        assert_eq!(
            cloud.insert_image(img.clone(), 20).unwrap_err().kind(),
            "conflict"
        );
        let bad = image("ami-nothex", US_EAST, "x", LOCAL_ACCOUNT_ID);
        assert_eq!(
            cloud.insert_image(bad, 8).unwrap_err().kind(),
            "invalid_input"
        );
        let twice = image("ami-0bbbbbbbbbbbbbbb2", US_EAST, "y", LOCAL_ACCOUNT_ID);
        assert_eq!(
            cloud
                .insert_images([(twice.clone(), 8), (twice, 8)])
                .unwrap_err()
                .kind(),
            "conflict"
        );
        assert_eq!(cloud.image_count(), 1, "a refused batch adds nothing");

        cloud
            .insert_marketplace_product(MarketplaceProduct {
                product_id: "prod-x".to_string(),
                product_code: "code".to_string(),
                title: "X".to_string(),
                subscribe_url: "https://example.com".to_string(),
            })
            .unwrap();
        let all = cloud
            .find_marketplace_products(&MarketplaceQuery::default())
            .await
            .unwrap();
        assert_eq!(all.len(), 1);
    });
}

#[test]
fn owner_prefix_index_answers_large_catalogues() {
    run(async {
        let cloud = LocalCloud::empty();
        let regions: Vec<&str> = cws_regions::all().iter().take(10).map(|r| r.code).collect();
        let owners = ["111111111111", "222222222222", LOCAL_ACCOUNT_ID];
        let mut batch = Vec::new();
        for n in 0..6000u64 {
            let region = regions[(n % regions.len() as u64) as usize];
            let owner = owners[(n % 3) as usize];
            let family = if n % 5 == 0 { "cws-python-ml" } else { "other" };
            let mut img = image(
                &store::hex_id("ami", &n.to_string()),
                region,
                &format!("{family}-{n}"),
                owner,
            );
            img.public = true;
            batch.push((img, 8));
        }
        cloud.insert_images(batch).unwrap();
        assert_eq!(cloud.image_count(), 6000);
        let q = ImageQuery::owned_by(["self", "111111111111"]).name("cws-python-ml-*");
        let found = cloud.describe_images(regions[0], &q).await.unwrap();
        // Oracle: the same filter applied by brute force.
        let expected = (0..6000u64)
            .filter(|n| n % regions.len() as u64 == 0 && n % 5 == 0 && n % 3 != 1)
            .count();
        assert_eq!(found.len(), expected);
        assert!(found.iter().all(|i| i.name.starts_with("cws-python-ml-")));
    });
}

#[test]
fn persisted_state_is_shared_between_handles() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let a = LocalCloud::open(dir.path()).unwrap();
        let b = LocalCloud::open(dir.path()).unwrap();
        let amd = noble(US_EAST, "amd64", "20251002");
        let inst = a
            .run_instance(&run_request("shared", &amd, "t3.micro"))
            .await
            .unwrap();
        // b sees a's write without reopening, and cannot reuse the name.
        let seen = b.require_instance(US_EAST, "shared").await.unwrap();
        assert_eq!(seen.id, inst.id);
        let err = b
            .run_instance(&run_request("shared", &amd, "t3.micro"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "conflict");
        // Ids stay unique across handles because the counter is persisted.
        let other = b
            .run_instance(&run_request("other", &amd, "t3.micro"))
            .await
            .unwrap();
        assert_ne!(other.id, inst.id);
        assert_eq!(a.image_count(), LocalCloud::in_memory().image_count());
    });
}

#[test]
fn a_removed_state_file_is_reseeded_deterministically() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let cloud = LocalCloud::open(dir.path()).unwrap();
        let path = cloud.state_path().unwrap().to_path_buf();
        std::fs::remove_file(&path).unwrap();
        let amd = noble(US_EAST, "amd64", "20251002");
        assert!(cloud.image(US_EAST, &amd).await.unwrap().is_some());
        cloud
            .run_instance(&run_request("after", &amd, "t3.micro"))
            .await
            .unwrap();
        assert!(path.exists(), "the next write persists the reseeded state");
    });
}

#[test]
fn corrupt_state_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = LocalCloud::open(dir.path()).unwrap();
    let path = cloud.state_path().unwrap().to_path_buf();
    drop(cloud);
    std::fs::write(&path, "garbage").unwrap();
    let err = LocalCloud::open(dir.path()).unwrap_err();
    let msg = chain(&err);
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("Move it aside"), "{msg}");
    // And it is left alone for the user to inspect.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "garbage");
}

#[test]
fn persisted_reads_share_the_state_and_only_a_reload_takes_the_write_lock() {
    run(async {
        let home = tempfile::tempdir().unwrap();
        let cloud = LocalCloud::open(home.path()).unwrap();
        let writes = || cloud.write_locks.load(std::sync::atomic::Ordering::Relaxed);
        let region = US_EAST;
        let query = ImageQuery::owned_by(["amazon"]);
        let before = writes();
        for _ in 0..5 {
            assert!(
                !cloud
                    .describe_images(region, &query)
                    .await
                    .unwrap()
                    .is_empty()
            );
            cloud.describe_regions().await.unwrap();
        }
        assert_eq!(
            writes(),
            before,
            "reads of an unchanged file must not take the write lock"
        );

        // Another process (another LocalCloud on the same home) changes the file: the next
        // read reloads it, under the write lock, once.
        let amd = noble(US_EAST, "amd64", "20251002");
        let other = LocalCloud::open(home.path()).unwrap();
        other
            .run_instance(&run_request("elsewhere", &amd, "t3.micro"))
            .await
            .unwrap();
        let seen = cloud
            .describe_instances(region, &InstanceFilter::default())
            .await
            .unwrap();
        assert!(seen.iter().any(|i| i.name == "elsewhere"), "{seen:?}");
        assert_eq!(writes(), before + 1);
        cloud.describe_regions().await.unwrap();
        assert_eq!(writes(), before + 1);

        // A write takes it, as it must.
        cloud
            .run_instance(&run_request("here", &amd, "t3.micro"))
            .await
            .unwrap();
        assert_eq!(writes(), before + 2);
    });
}

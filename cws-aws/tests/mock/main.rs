//! The AWS provider's Marketplace paths on the real SDK types, with a scripted HTTP client in
//! place of the network (moto has no Marketplace Catalog service).
//!
//! The scripted client answers by operation — the Catalog API's REST paths, and the
//! `Action=` of EC2 and STS query requests — with the documents AWS sends, so requests are
//! built, signed and answers parsed by the SDK exactly as against AWS.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use cws_aws::{AwsConfig, AwsProvider};
use cws_provider::*;
use cws_resolver::*;
use cws_template::Architecture;

/// One canned answer.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

fn xml(status: u16, body: impl Into<String>) -> Answer {
    Answer {
        status,
        headers: vec![("content-type", "text/xml;charset=UTF-8")],
        body: body.into(),
    }
}

fn json(status: u16, body: impl Into<String>) -> Answer {
    Answer {
        status,
        headers: vec![("content-type", "application/json")],
        body: body.into(),
    }
}

fn json_error(status: u16, error_type: &'static str, message: &str) -> Answer {
    Answer {
        status,
        headers: vec![
            ("content-type", "application/json"),
            ("x-amzn-errortype", error_type),
        ],
        body: format!(r#"{{"Message":"{message}"}}"#),
    }
}

/// What an operation is, from the request: the Catalog API's path or the query `Action`.
fn operation(uri: &str, body: &str) -> String {
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return action.to_string();
    }
    let path = uri.split("://").nth(1).unwrap_or(uri);
    let path = path.split_once('/').map(|(_, p)| p).unwrap_or("");
    path.split(['?', '/']).next().unwrap_or("").to_string()
}

type Script = dyn Fn(&str, &str, &str) -> Answer + Send + Sync;

/// An HTTP client that answers from a script and records every request.
#[derive(Clone)]
struct Scripted {
    script: Arc<Script>,
    log: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scripted")
    }
}

impl Scripted {
    fn new(script: impl Fn(&str, &str, &str) -> Answer + Send + Sync + 'static) -> Self {
        Scripted {
            script: Arc::new(script),
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// (operation, uri, body) of every request so far.
    fn requests(&self) -> Vec<(String, String, String)> {
        self.log.lock().expect("log").clone()
    }

    fn count(&self, op: &str) -> usize {
        self.requests().iter().filter(|(o, _, _)| o == op).count()
    }
}

impl HttpConnector for Scripted {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let uri = request.uri().to_string();
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let op = operation(&uri, &body);
        self.log
            .lock()
            .expect("log")
            .push((op.clone(), uri.clone(), body.clone()));
        let answer = (self.script)(&op, &uri, &body);
        let status = StatusCode::try_from(answer.status).expect("valid status");
        let mut response = HttpResponse::new(status, SdkBody::from(answer.body));
        for (k, v) in answer.headers {
            response.headers_mut().insert(k, v);
        }
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Scripted {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

const ACCOUNT: &str = "210987654321";

fn sts_identity() -> Answer {
    xml(
        200,
        format!(
            r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::{ACCOUNT}:user/researcher</Arn>
    <UserId>AIDACWSTEST</UserId>
    <Account>{ACCOUNT}</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>cws-test</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#
        ),
    )
}

const PRODUCT_ID: &str = "prod-rstudio0123";
const PRODUCT_CODE: &str = "cwsmpcode123";
const MP_IMAGE: &str = "ami-0a9a9a00000a0001";

fn list_entities() -> Answer {
    json(
        200,
        format!(
            r#"{{"EntitySummaryList":[
  {{"Name":"RStudio Server Pro","EntityType":"AmiProduct","EntityId":"{PRODUCT_ID}",
    "EntityArn":"arn:aws:aws-marketplace:us-east-1:{ACCOUNT}:AWSMarketplace/AmiProduct/{PRODUCT_ID}",
    "LastModifiedDate":"2025-01-20T00:00:00Z","Visibility":"Public",
    "AmiProductSummary":{{"ProductTitle":"RStudio Server Pro","Visibility":"Public"}}}},
  {{"Name":"Jupyter Box","EntityType":"AmiProduct","EntityId":"prod-jupyter0456",
    "EntityArn":"arn:aws:aws-marketplace:us-east-1:{ACCOUNT}:AWSMarketplace/AmiProduct/prod-jupyter0456",
    "LastModifiedDate":"2025-01-21T00:00:00Z","Visibility":"Public",
    "AmiProductSummary":{{"ProductTitle":"Jupyter Box","Visibility":"Public"}}}}
]}}"#
        ),
    )
}

fn describe_entity(uri: &str) -> Answer {
    let (id, title, code) = if uri.contains(PRODUCT_ID) {
        (PRODUCT_ID, "RStudio Server Pro", PRODUCT_CODE)
    } else if uri.contains("prod-jupyter0456") {
        ("prod-jupyter0456", "Jupyter Box", "jupytercode456")
    } else {
        return json_error(404, "ResourceNotFoundException", "Entity not found");
    };
    json(
        200,
        format!(
            r#"{{"EntityType":"AmiProduct@1.0","EntityIdentifier":"{id}@1",
  "EntityArn":"arn:aws:aws-marketplace:us-east-1:{ACCOUNT}:AWSMarketplace/AmiProduct/{id}",
  "LastModifiedDate":"2025-01-20T00:00:00Z",
  "DetailsDocument":{{"Description":{{"ProductTitle":"{title}","ProductCode":"{code}",
    "ShortDescription":"A test product","Visibility":"Public"}},
    "Versions":[{{"VersionTitle":"2025.01","Sources":[{{"Image":"{MP_IMAGE}"}}]}}]}}}}"#
        ),
    )
}

fn marketplace_image() -> Answer {
    xml(
        200,
        format!(
            r#"<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>cws-test</requestId>
  <imagesSet><item>
    <imageId>{MP_IMAGE}</imageId>
    <imageState>available</imageState>
    <imageOwnerId>679593333241</imageOwnerId>
    <creationDate>2025-01-20T08:00:00.000Z</creationDate>
    <isPublic>true</isPublic>
    <architecture>x86_64</architecture>
    <name>cws-mp-rstudio-2025.01-x86_64</name>
    <rootDeviceType>ebs</rootDeviceType>
    <rootDeviceName>/dev/sda1</rootDeviceName>
    <productCodes><item><productCode>{PRODUCT_CODE}</productCode><type>marketplace</type></item></productCodes>
    <blockDeviceMapping><item><deviceName>/dev/sda1</deviceName>
      <ebs><snapshotId>snap-0123456789abcdef0</snapshotId><volumeSize>16</volumeSize></ebs>
    </item></blockDeviceMapping>
  </item></imagesSet>
</DescribeImagesResponse>"#
        ),
    )
}

fn no_instances() -> Answer {
    xml(
        200,
        r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>cws-test</requestId><reservationSet/></DescribeInstancesResponse>"#,
    )
}

fn x86_instance_type() -> Answer {
    xml(
        200,
        r#"<DescribeInstanceTypesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>cws-test</requestId>
  <instanceTypeSet><item>
    <instanceType>m6i.xlarge</instanceType>
    <processorInfo><supportedArchitectures><item>x86_64</item></supportedArchitectures></processorInfo>
  </item></instanceTypeSet>
</DescribeInstanceTypesResponse>"#,
    )
}

fn ec2_error(status: u16, code: &str, message: &str) -> Answer {
    xml(
        status,
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>cws-test</RequestID></Response>"#
        ),
    )
}

async fn provider(http: &Scripted, access_key: &str, secret: &str) -> AwsProvider {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .http_client(http.clone())
        .credentials_provider(Credentials::new(access_key, secret, None, None, "cws-test"))
        .load()
        .await;
    let cfg = AwsConfig {
        max_attempts: 2,
        ..AwsConfig::default()
    };
    AwsProvider::from_sdk_config(cfg, sdk)
        .await
        .expect("provider")
}

fn no_images() -> Answer {
    xml(
        200,
        r#"<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>cws-test</requestId><imagesSet/></DescribeImagesResponse>"#,
    )
}

/// The happy catalogue: STS, ListEntities, DescribeEntity, and the Marketplace image for
/// searches owned by `aws-marketplace` or by its id (nothing for other owners).
fn catalogue(op: &str, uri: &str, body: &str) -> Answer {
    match op {
        "GetCallerIdentity" => sts_identity(),
        "ListEntities" => list_entities(),
        "DescribeEntity" => describe_entity(uri),
        "DescribeImages"
            if body.contains("Owner.1=aws-marketplace") || body.contains("ImageId.1=") =>
        {
            marketplace_image()
        }
        "DescribeImages" => no_images(),
        other => ec2_error(400, "InvalidAction", &format!("unexpected {other}")),
    }
}

#[tokio::test]
async fn a_product_id_is_described_directly() {
    let http = Scripted::new(catalogue);
    let p = provider(&http, "AKIDTEST", "secret").await;
    assert_eq!(
        p.account_id().await.unwrap().as_deref(),
        Some(ACCOUNT),
        "account id from STS"
    );
    let query = MarketplaceQuery {
        product_id: Some(PRODUCT_ID.into()),
        ..MarketplaceQuery::default()
    };
    let found = p.find_marketplace_products(&query).await.expect("lookup");
    assert_eq!(found.len(), 1);
    let product = &found[0];
    assert_eq!(product.product_id, PRODUCT_ID);
    assert_eq!(product.product_code, PRODUCT_CODE);
    assert_eq!(product.title, "RStudio Server Pro");
    assert_eq!(
        product.subscribe_url,
        format!("https://aws.amazon.com/marketplace/pp/{PRODUCT_ID}")
    );
    assert_eq!(http.count("ListEntities"), 0, "no listing for a known id");
    let (_, uri, _) = http
        .requests()
        .into_iter()
        .find(|(op, _, _)| op == "DescribeEntity")
        .expect("described");
    assert!(
        uri.starts_with("https://catalog.marketplace.us-east-1.amazonaws.com/DescribeEntity?"),
        "{uri}"
    );
    assert!(uri.contains("catalog=AWSMarketplace"), "{uri}");
    assert!(uri.contains(&format!("entityId={PRODUCT_ID}")), "{uri}");
}

#[tokio::test]
async fn a_title_lists_ami_products_and_filters_them() {
    let http = Scripted::new(catalogue);
    let p = provider(&http, "AKIDTEST", "secret").await;
    let query = MarketplaceQuery {
        title: Some("rstudio".into()),
        ..MarketplaceQuery::default()
    };
    let found = p.find_marketplace_products(&query).await.expect("lookup");
    assert_eq!(
        found
            .iter()
            .map(|p| p.product_id.as_str())
            .collect::<Vec<_>>(),
        [PRODUCT_ID]
    );
    let (_, uri, body) = http
        .requests()
        .into_iter()
        .find(|(op, _, _)| op == "ListEntities")
        .expect("listed");
    assert!(uri.ends_with("/ListEntities"), "{uri}");
    let sent: serde_json::Value = serde_json::from_str(&body).expect("json body");
    assert_eq!(sent["Catalog"], "AWSMarketplace");
    assert_eq!(sent["EntityType"], "AmiProduct");
    assert_eq!(
        sent["EntityTypeFilters"]["AmiProductFilters"]["ProductTitle"]["WildCardValue"],
        "rstudio"
    );

    let by_code = MarketplaceQuery {
        product_code: Some("jupytercode456".into()),
        ..MarketplaceQuery::default()
    };
    let found = p.find_marketplace_products(&by_code).await.expect("lookup");
    assert_eq!(
        found.iter().map(|p| p.title.as_str()).collect::<Vec<_>>(),
        ["Jupyter Box"]
    );
}

#[tokio::test]
async fn unknown_products_are_absent() {
    let http = Scripted::new(catalogue);
    let p = provider(&http, "AKIDTEST", "secret").await;
    let query = MarketplaceQuery {
        product_id: Some("prod-doesnotexist".into()),
        ..MarketplaceQuery::default()
    };
    assert!(
        p.find_marketplace_products(&query)
            .await
            .expect("lookup")
            .is_empty()
    );
}

#[tokio::test]
async fn catalogue_errors_are_typed() {
    let http = Scripted::new(|op, _, _| match op {
        "GetCallerIdentity" => sts_identity(),
        "ListEntities" => json_error(
            403,
            "AccessDeniedException",
            "User is not authorized to perform aws-marketplace:ListEntities",
        ),
        _ => json_error(500, "InternalServiceException", "try later"),
    });
    let p = provider(&http, "AKIDTEST", "secret").await;
    let err = p
        .find_marketplace_products(&MarketplaceQuery {
            title: Some("x".into()),
            ..MarketplaceQuery::default()
        })
        .await
        .expect_err("denied");
    match &err {
        ProviderError::PermissionDenied { action, .. } => {
            assert_eq!(action, "aws-marketplace:ListEntities")
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    let err = p
        .find_marketplace_products(&MarketplaceQuery {
            product_id: Some(PRODUCT_ID.into()),
            ..MarketplaceQuery::default()
        })
        .await
        .expect_err("server trouble");
    match &err {
        ProviderError::Unavailable { endpoint, .. } => {
            assert_eq!(
                endpoint,
                "https://catalog.marketplace.us-east-1.amazonaws.com"
            )
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(
        http.count("DescribeEntity"),
        2,
        "retried once (max_attempts 2)"
    );
}

#[tokio::test]
async fn marketplace_tier_finds_the_image_by_product_title() {
    let http = Scripted::new(catalogue);
    let p = Arc::new(provider(&http, "AKIDTEST", "secret").await);
    let t = cws_template::parse_str(
        r#"
name: RStudio from Marketplace
slug: rstudio-mp
version: 1.0.0
base: ubuntu-24.04
ami_config:
  strategy: ami_required
  marketplace:
    title: RStudio
"#,
        "mock",
    )
    .expect("template");
    let env = ResolveEnv::new(p.clone());
    let r = Resolver::for_template(&t)
        .resolve(&env, &ResolveRequest::new(t.clone(), "us-east-1"))
        .await;
    assert_eq!(r.method, cws_resolver::Method::Marketplace, "{r:#?}");
    assert_eq!(r.ami_id.as_deref(), Some(MP_IMAGE), "{r:#?}");
    let (_, _, body) = http
        .requests()
        .into_iter()
        .find(|(op, _, body)| op == "DescribeImages" && body.contains("aws-marketplace"))
        .expect("image search");
    assert!(body.contains("Owner.1=aws-marketplace"), "{body}");
    assert!(body.contains(&format!("Value.1={PRODUCT_CODE}")), "{body}");
    let image = p
        .describe_images_by_id("us-east-1", &[MP_IMAGE.to_string()])
        .await
        .expect("by id");
    assert_eq!(image[0].product_codes, [PRODUCT_CODE]);
    assert_eq!(image[0].root_volume_gb, Some(16));
}

#[tokio::test]
async fn opt_in_required_on_launch_says_to_subscribe() {
    let with_link = "In order to use this AWS Marketplace product you need to accept terms and subscribe. To do so please visit https://aws.amazon.com/marketplace/pp?sku=cwsmpcode123";
    for (message, link) in [
        (
            with_link,
            "https://aws.amazon.com/marketplace/pp?sku=cwsmpcode123",
        ),
        (
            "You must subscribe first.",
            "https://aws.amazon.com/marketplace/pp?sku=cwsmpcode123",
        ),
    ] {
        let http = Scripted::new(move |op, _, _| match op {
            "GetCallerIdentity" => sts_identity(),
            "DescribeImages" => marketplace_image(),
            "DescribeInstances" => no_instances(),
            "DescribeInstanceTypes" => x86_instance_type(),
            "RunInstances" => ec2_error(401, "OptInRequired", message),
            other => ec2_error(400, "InvalidAction", &format!("unexpected {other}")),
        });
        let p = provider(&http, "AKIDTEST", "secret").await;
        let err = p
            .run_instance(&RunInstanceRequest {
                region: "us-east-1".into(),
                name: "rstudio-1".into(),
                ami_id: MP_IMAGE.into(),
                instance_type: "m6i.xlarge".into(),
                architecture: Architecture::X86_64,
                user_data: Some("#!/bin/sh\necho hi\n".into()),
                root_volume_gb: Some(8),
                tags: BTreeMap::from([("cws:managed".to_string(), "true".to_string())]),
            })
            .await
            .expect_err("not subscribed");
        match &err {
            ProviderError::PermissionDenied { message, .. } => {
                assert!(
                    message.starts_with(&format!("subscribe to this product first: {link}")),
                    "{message}"
                );
            }
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
        // What was asked of RunInstances: one instance, tags, base64 user data, and a root
        // volume no smaller than the image's snapshot (8 requested, 16 in the image).
        let (_, _, body) = http
            .requests()
            .into_iter()
            .find(|(op, _, _)| op == "RunInstances")
            .expect("RunInstances sent");
        for part in [
            "MinCount=1",
            "MaxCount=1",
            "InstanceType=m6i.xlarge",
            "BlockDeviceMapping.1.DeviceName=%2Fdev%2Fsda1",
            "BlockDeviceMapping.1.Ebs.VolumeSize=16",
            "TagSpecification.1.ResourceType=instance",
            "UserData=IyEvYmluL3NoCmVjaG8gaGkK",
        ] {
            assert!(body.contains(part), "{part} missing from {body}");
        }
        assert_eq!(
            http.count("RunInstances"),
            1,
            "an opt-in error is not retried"
        );
    }
}

#[tokio::test]
async fn debug_output_and_info_hold_no_secrets() {
    let http = Scripted::new(catalogue);
    let p = provider(&http, "AKIDSECRETACCESSKEY", "wJalrXUtnFEMIsupersecret").await;
    // Construction makes no call: the account id is looked up when first asked.
    assert_eq!(p.requests_sent(), 0);
    p.account_id().await.expect("account id");
    assert_eq!(p.requests_sent(), 1, "the STS lookup is counted");
    let debug = format!("{p:?}");
    let info = format!("{:?}", p.info());
    for text in [&debug, &info] {
        assert!(!text.contains("AKIDSECRETACCESSKEY"), "{text}");
        assert!(!text.contains("wJalrXUtnFEMIsupersecret"), "{text}");
    }
    assert!(debug.contains(ACCOUNT), "{debug}");
    assert!(info.contains("AWS EC2"), "{info}");
    let _ = p
        .find_marketplace_products(&MarketplaceQuery {
            product_id: Some(PRODUCT_ID.into()),
            ..MarketplaceQuery::default()
        })
        .await
        .expect("lookup");
    assert_eq!(p.requests_sent(), 2);
}

fn console(instance_id: &str, text: Option<&str>) -> Answer {
    let output = text
        .map(|t| {
            format!(
                "<output>{}</output>",
                aws_smithy_types::base64::encode(t.as_bytes())
            )
        })
        .unwrap_or_default();
    xml(
        200,
        format!(
            r#"<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>cws-test</requestId><instanceId>{instance_id}</instanceId><timestamp>2026-11-30T08:00:00.000Z</timestamp>{output}</GetConsoleOutputResponse>"#
        ),
    )
}

/// `GetConsoleOutput` as EC2 answers it (base64, with the console's prefixes and carriage
/// returns) is read back to the provisioning script's outcome line; an instance with no
/// console yet answers no output, which is "no outcome yet", not an error.
#[tokio::test]
async fn console_output_is_decoded_and_its_outcome_read() {
    const FAILED: &str = "i-0aaaaaaaaaaaaaaa1";
    const BOOTING: &str = "i-0bbbbbbbbbbbbbbb2";
    let text = "[    4.2] cloud-init[812]: + pip install --no-input numpy\r\n\
                [   61.0] cloud-init[812]: ERROR: No matching distribution found for numpy\r\n\
                [   61.1] cloud-init[812]: CWS-PROVISION-RESULT: failed exit=1 template=python-ml \
                version=1.0.0 step=pip packages (virtual environment in /opt/cws/venv)\r\n";
    let http = Scripted::new(move |op, _uri, body| match op {
        "GetCallerIdentity" => sts_identity(),
        "GetConsoleOutput" if body.contains(FAILED) => console(FAILED, Some(text)),
        "GetConsoleOutput" => console(BOOTING, None),
        other => ec2_error(400, "InvalidAction", &format!("unexpected {other}")),
    });
    let p = provider(&http, "AKIDEXAMPLE", "secret").await;
    let got = p
        .console_output("us-east-1", FAILED)
        .await
        .expect("console output");
    let got = got.expect("a console");
    assert!(got.contains("No matching distribution"), "{got}");
    assert_eq!(
        cws_template::provisioning_outcome(&got),
        Some(cws_template::ProvisioningOutcome::Failed {
            step: Some("pip packages (virtual environment in /opt/cws/venv)".into()),
            exit_code: Some(1),
        })
    );
    assert_eq!(
        p.console_output("us-east-1", BOOTING)
            .await
            .expect("console output"),
        None
    );
    assert_eq!(http.count("GetConsoleOutput"), 2);
    // The latest output is asked for, not what EC2 buffered at boot.
    assert!(
        http.requests()
            .iter()
            .filter(|(op, _, _)| op == "GetConsoleOutput")
            .all(|(_, _, body)| body.contains("Latest=true")),
        "{:?}",
        http.requests()
    );
    // An instance type that cannot give the latest output is asked again without it.
    let older = Scripted::new(move |op, _uri, body| match op {
        "GetCallerIdentity" => sts_identity(),
        "GetConsoleOutput" if body.contains("Latest=true") => ec2_error(
            400,
            "UnsupportedOperation",
            "This instance type does not support the latest console output",
        ),
        "GetConsoleOutput" => console(FAILED, Some(text)),
        other => ec2_error(400, "InvalidAction", &format!("unexpected {other}")),
    });
    let p2 = provider(&older, "AKIDEXAMPLE", "secret").await;
    let got = p2
        .console_output("us-east-1", FAILED)
        .await
        .expect("console output without Latest");
    assert!(got.is_some_and(|t| t.contains("CWS-PROVISION-RESULT")));
    assert_eq!(older.count("GetConsoleOutput"), 2);
    // The request names the instance.
    assert!(
        http.requests()
            .iter()
            .any(|(op, _, body)| op == "GetConsoleOutput"
                && body.contains("InstanceId=i-0aaaaaaaaaaaaaaa1")),
    );
    // A refusal is typed, naming the IAM action to grant.
    let denied = Scripted::new(|op, _, _| match op {
        "GetCallerIdentity" => sts_identity(),
        _ => ec2_error(403, "UnauthorizedOperation", "You are not authorized"),
    });
    let p = provider(&denied, "AKIDEXAMPLE", "secret").await;
    let err = p
        .console_output("us-east-1", FAILED)
        .await
        .expect_err("denied");
    assert!(err.to_string().contains("ec2:GetConsoleOutput"), "{err}");
}

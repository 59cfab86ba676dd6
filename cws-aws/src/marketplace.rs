//! AWS Marketplace catalogue lookups (`aws-sdk-marketplacecatalog`).
//!
//! The Marketplace tier needs a product's *code* (what images carry) when a template names
//! the product by id or title. The Catalog API gives it in two steps: `ListEntities` finds
//! `AmiProduct` entities (by id or title), `DescribeEntity` returns each one's details
//! document, which holds the product code. Lookups are bounded (a few pages, a few dozen
//! entities) so a vague title cannot turn one resolution into hundreds of calls.
//!
//! The Catalog API lives in us-east-1 only, whatever region cws launches in. It lists the
//! entities the caller's account owns or has been shared (sellers, private-marketplace
//! administrators); for a public product that is not visible this way, name the product code
//! in the template instead, which skips the catalogue entirely.

use aws_sdk_marketplacecatalog as mpc;
use aws_smithy_types::Document;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::errors::{CallContext, map_sdk_error};
use cws_provider::{MarketplaceProduct, MarketplaceQuery};
use cws_provider::{ProviderError, ProviderResult};

/// The catalogue cws reads.
pub(super) const CATALOG: &str = "AWSMarketplace";
/// The entity type of single-AMI products.
pub(super) const ENTITY_TYPE: &str = "AmiProduct";
/// The only region the Catalog API is served from.
pub(super) const CATALOG_REGION: &str = "us-east-1";
/// The Catalog API's own endpoint (what calls go to unless an endpoint URL is configured).
pub(super) fn default_endpoint() -> String {
    format!("https://catalog.marketplace.{CATALOG_REGION}.amazonaws.com")
}

/// At most this many `ListEntities` pages per lookup.
const MAX_PAGES: usize = 5;
/// At most this many entities described per lookup.
const MAX_ENTITIES: usize = 25;
/// `DescribeEntity` calls in flight at once.
const CONCURRENCY: usize = 5;

/// The subscription page of a product.
pub(super) fn subscribe_url(product_id: &str) -> String {
    format!("https://aws.amazon.com/marketplace/pp/{product_id}")
}

/// Finds the products matching `query`.
pub(super) async fn find_products(
    client: &mpc::Client,
    endpoint: &str,
    query: &MarketplaceQuery,
) -> ProviderResult<Vec<MarketplaceProduct>> {
    let candidates: Vec<(String, Option<String>)> = match &query.product_id {
        // A product id needs no listing: describe it directly.
        Some(id) => vec![(id.clone(), None)],
        None => list_entities(client, endpoint, query.title.as_deref()).await?,
    };
    let described: Vec<Option<MarketplaceProduct>> = stream::iter(candidates)
        .map(|(id, title)| async move { describe(client, endpoint, &id, title).await })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(described
        .into_iter()
        .flatten()
        .filter(|p| matches(query, p))
        .collect())
}

/// Whether a product satisfies every field the query sets.
pub(super) fn matches(query: &MarketplaceQuery, p: &MarketplaceProduct) -> bool {
    query
        .product_id
        .as_ref()
        .is_none_or(|id| *id == p.product_id)
        && query
            .product_code
            .as_ref()
            .is_none_or(|c| *c == p.product_code)
        && query
            .title
            .as_ref()
            .is_none_or(|t| p.title.to_lowercase().contains(&t.to_lowercase()))
}

fn call(action: &'static str, endpoint: &str, what: Option<String>) -> CallContext {
    CallContext {
        action,
        region: CATALOG_REGION.to_string(),
        endpoint: endpoint.to_string(),
        custom_endpoint: endpoint != default_endpoint(),
        what,
    }
}

/// Entity ids (with their listed titles) of AMI products, optionally filtered by title.
async fn list_entities(
    client: &mpc::Client,
    endpoint: &str,
    title: Option<&str>,
) -> ProviderResult<Vec<(String, Option<String>)>> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut req = client
            .list_entities()
            .catalog(CATALOG)
            .entity_type(ENTITY_TYPE)
            .max_results(50)
            .set_next_token(token.clone());
        if let Some(t) = title {
            req = req.entity_type_filters(mpc::types::EntityTypeFilters::AmiProductFilters(
                mpc::types::AmiProductFilters::builder()
                    .product_title(
                        mpc::types::AmiProductTitleFilter::builder()
                            .wild_card_value(t)
                            .build(),
                    )
                    .build(),
            ));
        }
        let out = req
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &call("aws-marketplace:ListEntities", endpoint, None)))?;
        for s in out.entity_summary_list() {
            if let Some(id) = s.entity_id() {
                let title = s
                    .ami_product_summary()
                    .and_then(|a| a.product_title())
                    .or(s.name())
                    .map(str::to_string);
                found.push((id.to_string(), title));
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() || found.len() >= MAX_ENTITIES {
            break;
        }
    }
    found.truncate(MAX_ENTITIES);
    Ok(found)
}

/// One product's details; `None` when the entity does not exist or carries no product code.
async fn describe(
    client: &mpc::Client,
    endpoint: &str,
    entity_id: &str,
    listed_title: Option<String>,
) -> ProviderResult<Option<MarketplaceProduct>> {
    let out = match client
        .describe_entity()
        .catalog(CATALOG)
        .entity_id(entity_id)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            return match map_sdk_error(
                e,
                &call(
                    "aws-marketplace:DescribeEntity",
                    endpoint,
                    Some(format!("Marketplace product {entity_id}")),
                ),
            ) {
                ProviderError::NotFound { .. } => Ok(None),
                other => Err(other),
            };
        }
    };
    let details = match (out.details_document(), out.details()) {
        (Some(doc), _) => to_json(doc),
        (None, Some(text)) => serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
        (None, None) => serde_json::Value::Null,
    };
    Ok(product_from_details(entity_id, &details, listed_title))
}

/// Builds a product from an `AmiProduct` details document: the product code is the
/// `ProductCode` field (under `Description` in today's schema; found wherever it is), the
/// title `ProductTitle`, else the title the listing gave.
pub(super) fn product_from_details(
    entity_id: &str,
    details: &serde_json::Value,
    listed_title: Option<String>,
) -> Option<MarketplaceProduct> {
    let code = find_string(details, "ProductCode")?;
    let title = find_string(details, "ProductTitle")
        .or(listed_title)
        .unwrap_or_else(|| entity_id.to_string());
    Some(MarketplaceProduct {
        product_id: entity_id.to_string(),
        product_code: code,
        title,
        subscribe_url: subscribe_url(entity_id),
    })
}

/// The first non-empty string under `key`, searching objects depth-first.
fn find_string(v: &serde_json::Value, key: &str) -> Option<String> {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(s)) = map.get(key)
                && !s.is_empty()
            {
                return Some(s.clone());
            }
            map.values().find_map(|child| find_string(child, key))
        }
        serde_json::Value::Array(items) => items.iter().find_map(|child| find_string(child, key)),
        _ => None,
    }
}

/// A smithy document as JSON.
fn to_json(doc: &Document) -> serde_json::Value {
    use aws_smithy_types::Number;
    match doc {
        Document::Object(map) => {
            serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        Document::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Document::Number(Number::PosInt(n)) => serde_json::Value::from(*n),
        Document::Number(Number::NegInt(n)) => serde_json::Value::from(*n),
        Document::Number(Number::Float(f)) => serde_json::Value::from(*f),
        Document::String(s) => serde_json::Value::String(s.clone()),
        Document::Bool(b) => serde_json::Value::Bool(*b),
        Document::Null => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn product_code_is_found_in_the_description() {
        let details = serde_json::json!({
            "Description": {
                "ProductTitle": "RStudio Server Pro",
                "ProductCode": "cwsmpcode123",
                "Visibility": "Public"
            },
            "Versions": [{"Sources": [{"Image": "ami-1"}]}]
        });
        let p = product_from_details("prod-abc", &details, None).expect("product");
        assert_eq!(p.product_id, "prod-abc");
        assert_eq!(p.product_code, "cwsmpcode123");
        assert_eq!(p.title, "RStudio Server Pro");
        assert_eq!(
            p.subscribe_url,
            "https://aws.amazon.com/marketplace/pp/prod-abc"
        );
    }

    #[test]
    fn no_product_code_is_no_product() {
        let details = serde_json::json!({"Description": {"ProductTitle": "x"}});
        assert!(product_from_details("prod-1", &details, None).is_none());
        let details = serde_json::json!({"ProductCode": "c"});
        let p = product_from_details("prod-1", &details, Some("Listed".into())).expect("product");
        assert_eq!(p.title, "Listed");
    }

    #[test]
    fn queries_match_every_set_field() {
        let p = MarketplaceProduct {
            product_id: "prod-1".into(),
            product_code: "code".into(),
            title: "RStudio Server".into(),
            subscribe_url: subscribe_url("prod-1"),
        };
        assert!(matches(&MarketplaceQuery::default(), &p));
        let by_title = MarketplaceQuery {
            title: Some("rstudio".into()),
            ..MarketplaceQuery::default()
        };
        assert!(matches(&by_title, &p));
        let wrong_code = MarketplaceQuery {
            product_code: Some("other".into()),
            ..by_title
        };
        assert!(!matches(&wrong_code, &p));
    }

    #[test]
    fn documents_convert_to_json() {
        let doc = Document::Object(HashMap::from([
            (
                "a".to_string(),
                Document::Array(vec![
                    Document::Number(aws_smithy_types::Number::PosInt(1)),
                    Document::Number(aws_smithy_types::Number::NegInt(-2)),
                    Document::Number(aws_smithy_types::Number::Float(0.5)),
                ]),
            ),
            ("b".to_string(), Document::Bool(true)),
            ("c".to_string(), Document::Null),
            ("d".to_string(), Document::String("s".into())),
        ]));
        assert_eq!(
            to_json(&doc),
            serde_json::json!({"a": [1, -2, 0.5], "b": true, "c": null, "d": "s"})
        );
    }
}

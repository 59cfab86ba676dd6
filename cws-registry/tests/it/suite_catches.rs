//! The conformance suites are not vacuous: a store (or token store) with one deliberate fault
//! fails its suite, in the check that covers the fault.

use async_trait::async_trait;
use cws_registry::*;

/// One fault a [`Faulty`] store has.
#[derive(Clone, Copy)]
enum Fault {
    /// browse returns its listings in reverse order.
    BrowseReversed,
    /// listing() returns versions oldest first.
    VersionsOldestFirst,
    /// rate() turns 0 and 6+ stars into 1 and 5 instead of refusing them.
    StarsClamped,
    /// reviews() returns oldest first.
    ReviewsOldestFirst,
    /// record_download forgets who launched.
    DownloadsAnonymous,
    /// listing() shows every listing to everyone (as if the viewer were an admin).
    IgnoresVisibility,
    /// find_image finds nothing.
    FindsNoImage,
    /// A non-admin may clear reports.
    AnyoneClearsReports,
}

/// A SQLite store with one fault.
struct Faulty {
    inner: Box<dyn Registry>,
    fault: Fault,
}

fn everyone() -> Actor {
    Actor::admin(Identity::new("Anyone", "anyone@example.edu", None).expect("identity"))
}

#[async_trait]
impl Registry for Faulty {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn publish(&self, actor: &Actor, p: &Publish) -> RegistryResult<Published> {
        self.inner.publish(actor, p).await
    }
    async fn listing(
        &self,
        viewer: Option<&Actor>,
        id: &ListingId,
    ) -> RegistryResult<ListingDetail> {
        let everyone = everyone();
        let viewer = match self.fault {
            Fault::IgnoresVisibility => Some(&everyone),
            _ => viewer,
        };
        let mut d = self.inner.listing(viewer, id).await?;
        if let Fault::VersionsOldestFirst = self.fault {
            d.versions.reverse();
        }
        Ok(d)
    }
    async fn browse(
        &self,
        viewer: Option<&Actor>,
        query: &BrowseQuery,
    ) -> RegistryResult<Vec<ListingSummary>> {
        let mut found = self.inner.browse(viewer, query).await?;
        if let Fault::BrowseReversed = self.fault {
            found.reverse();
        }
        Ok(found)
    }
    async fn find_image(
        &self,
        viewer: Option<&Actor>,
        ami_id: &str,
    ) -> RegistryResult<Vec<ImageListing>> {
        match self.fault {
            Fault::FindsNoImage => Ok(Vec::new()),
            _ => self.inner.find_image(viewer, ami_id).await,
        }
    }
    async fn set_channel(
        &self,
        actor: &Actor,
        id: &ListingId,
        channel: &str,
        version: &semver::Version,
    ) -> RegistryResult<()> {
        self.inner.set_channel(actor, id, channel, version).await
    }
    async fn rate(
        &self,
        actor: &Actor,
        id: &ListingId,
        stars: u8,
        review: Option<&str>,
    ) -> RegistryResult<RatingSummary> {
        let stars = match self.fault {
            Fault::StarsClamped => stars.clamp(1, 5),
            _ => stars,
        };
        self.inner.rate(actor, id, stars, review).await
    }
    async fn reviews(&self, viewer: Option<&Actor>, id: &ListingId) -> RegistryResult<Vec<Review>> {
        let mut r = self.inner.reviews(viewer, id).await?;
        if let Fault::ReviewsOldestFirst = self.fault {
            r.reverse();
        }
        Ok(r)
    }
    async fn record_download(&self, d: &Download) -> RegistryResult<()> {
        let mut d = d.clone();
        if let Fault::DownloadsAnonymous = self.fault {
            d.by = None;
        }
        self.inner.record_download(&d).await
    }
    async fn report(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        reason: ReportReason,
        message: Option<&str>,
    ) -> RegistryResult<ReportOutcome> {
        self.inner.report(actor, id, version, reason, message).await
    }
    async fn clear_reports(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
    ) -> RegistryResult<()> {
        match self.fault {
            Fault::AnyoneClearsReports => self.inner.clear_reports(&everyone(), id, version).await,
            _ => self.inner.clear_reports(actor, id, version).await,
        }
    }
    async fn sign_version(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        signed: &cws_registry::trust::SignedDocument,
    ) -> RegistryResult<()> {
        self.inner.sign_version(actor, id, version, signed).await
    }
    async fn import(&self, actor: &Actor, export: &ListingExport) -> RegistryResult<Imported> {
        self.inner.import(actor, export).await
    }
    async fn refusals(&self) -> RegistryResult<Vec<Refusal>> {
        self.inner.refusals().await
    }
    async fn revoke(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        reason: &str,
    ) -> RegistryResult<Revocation> {
        self.inner.revoke(actor, id, version, reason).await
    }
}

async fn run_with(fault: Fault) {
    testing::conformance(|| async move {
        Box::new(Faulty {
            inner: testing::temp_sqlite().await,
            fault,
        }) as Box<dyn Registry>
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "check `browse_sorts_and_limits` failed: browse(sort score) order")]
async fn catches_browse_out_of_order() {
    run_with(Fault::BrowseReversed).await;
}

#[tokio::test]
#[should_panic(expected = "check `versions_newest_first_in_semver_order` failed")]
async fn catches_versions_oldest_first() {
    run_with(Fault::VersionsOldestFirst).await;
}

#[tokio::test]
#[should_panic(expected = "check `rate_refuses_stars_out_of_range` failed: bob rates 0 stars")]
async fn catches_stars_out_of_range_accepted() {
    run_with(Fault::StarsClamped).await;
}

#[tokio::test]
#[should_panic(expected = "check `reviews_newest_first` failed")]
async fn catches_reviews_oldest_first() {
    run_with(Fault::ReviewsOldestFirst).await;
}

#[tokio::test]
#[should_panic(
    expected = "check `verified_use_needs_a_download_by_the_author` failed: verified_use of bob"
)]
async fn catches_unverified_use() {
    run_with(Fault::DownloadsAnonymous).await;
}

#[tokio::test]
#[should_panic(
    expected = "check `private_listing_visible_to_publisher_only` failed: listing(alice/secret-lab) as anonymous"
)]
async fn catches_private_listing_shown() {
    run_with(Fault::IgnoresVisibility).await;
}

#[tokio::test]
#[should_panic(expected = "check `find_image_finds_published_regions` failed")]
async fn catches_image_not_found() {
    run_with(Fault::FindsNoImage).await;
}

#[tokio::test]
#[should_panic(
    expected = "check `clear_reports_is_admin_only` failed: bob (not an admin) clears the reports"
)]
async fn catches_non_admin_clearing_reports() {
    run_with(Fault::AnyoneClearsReports).await;
}

/// One fault a [`FaultyTokens`] store has.
#[derive(Clone, Copy)]
enum TokenFault {
    /// authenticate() ignores expiry (finds a token whatever `now`).
    IgnoresExpiry,
    /// authenticate() finds revoked tokens.
    IgnoresRevocation,
    /// list_tokens() returns oldest first.
    ListOldestFirst,
    /// revoke_token() of a revoked token moves its revocation time.
    RevokeAgainMovesTime,
}

/// A SQLite token store with one fault.
struct FaultyTokens {
    inner: Box<dyn TokenStore>,
    fault: TokenFault,
}

#[async_trait]
impl TokenStore for FaultyTokens {
    async fn create_token(&self, t: &NewToken) -> RegistryResult<IssuedToken> {
        self.inner.create_token(t).await
    }
    async fn list_tokens(&self) -> RegistryResult<Vec<TokenInfo>> {
        let mut all = self.inner.list_tokens().await?;
        if let TokenFault::ListOldestFirst = self.fault {
            all.reverse();
        }
        Ok(all)
    }
    async fn revoke_token(&self, id: &str) -> RegistryResult<TokenInfo> {
        let was_revoked = self
            .inner
            .list_tokens()
            .await?
            .iter()
            .any(|t| t.id == id && t.revoked_at.is_some());
        let mut info = self.inner.revoke_token(id).await?;
        if was_revoked && let TokenFault::RevokeAgainMovesTime = self.fault {
            info.revoked_at = info
                .revoked_at
                .map(|at| at + chrono::TimeDelta::milliseconds(1));
        }
        Ok(info)
    }
    async fn authenticate(
        &self,
        secret: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> RegistryResult<Option<TokenInfo>> {
        match self.fault {
            TokenFault::IgnoresExpiry => self.inner.authenticate(secret, chrono::Utc::now()).await,
            TokenFault::IgnoresRevocation => {
                let found = self.inner.authenticate(secret, now).await?;
                if found.is_some() {
                    return Ok(found);
                }
                Ok(self.inner.list_tokens().await?.into_iter().find(|t| {
                    t.revoked_at.is_some() && secret.starts_with(&format!("cws_{}_", t.id))
                }))
            }
            _ => self.inner.authenticate(secret, now).await,
        }
    }
}

async fn run_tokens_with(fault: TokenFault) {
    testing::token_conformance(|| async move {
        Box::new(FaultyTokens {
            inner: testing::temp_sqlite_tokens().await,
            fault,
        }) as Box<dyn TokenStore>
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "check `token_expired_is_none` failed: authenticate 2 s later")]
async fn catches_expired_token_accepted() {
    run_tokens_with(TokenFault::IgnoresExpiry).await;
}

#[tokio::test]
#[should_panic(expected = "check `token_revoked_is_none` failed: authenticate(revoked token)")]
async fn catches_revoked_token_accepted() {
    run_tokens_with(TokenFault::IgnoresRevocation).await;
}

#[tokio::test]
#[should_panic(expected = "check `token_list_newest_first` failed: token list order")]
async fn catches_token_list_oldest_first() {
    run_tokens_with(TokenFault::ListOldestFirst).await;
}

#[tokio::test]
#[should_panic(expected = "check `token_revoked_is_none` failed: revoked_at after revoking again")]
async fn catches_revoking_again_moving_the_time() {
    run_tokens_with(TokenFault::RevokeAgainMovesTime).await;
}

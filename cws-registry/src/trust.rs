//! Signed listing versions: the version document, its canonical form, SSH signatures
//! (namespace [`NAMESPACE`]), git's allowed-signers file, and the status every output shows.
//!
//! A version revision is described by a JSON document (listing id, publisher and email,
//! version, revision number, per-region image ids, architectures and snapshot ids, template
//! slug and digest, created_at) serialized canonically (RFC 8785 for the values it holds:
//! object keys sorted, no whitespace, integers and strings only) and signed with the
//! publisher's OpenSSH key in the SSH signature format, so `ssh-keygen -Y verify -n
//! cws-listing` checks it too. The crypto is the RustCrypto `ssh-key` crate's.
//!
//! Status: `verified` (the signature holds, the signing key is in the allowed signers for the
//! publisher's email, and the document matches what the registry serves), `unsigned` (no
//! signature, or the newest revision is not signed yet), `untrusted` (a valid signature by a
//! key not allowed for that publisher) and `invalid` (the signature does not verify, or the
//! document and the registry disagree: other image ids, or an older revision than the one
//! signed — a substitution or a rollback).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ssh_key::{HashAlg, PrivateKey, PublicKey, SshSig};

use crate::model::{ListingId, RegionImage, SignatureInfo, VersionInfo};
use crate::{RegistryError, RegistryResult};

/// The SSH signature namespace of listing documents.
pub const NAMESPACE: &str = "cws-listing";
/// The document type tag.
pub const DOCUMENT_TYPE: &str = "cws-listing-version/1";
/// The largest allowed-signers file read: 1 MiB.
pub const MAX_ALLOWED_SIGNERS_BYTES: u64 = 1024 * 1024;
/// The largest private key file read: 64 KiB.
pub const MAX_KEY_BYTES: u64 = 64 * 1024;

/// A signed revision of a version, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDocument {
    /// The revision the document describes.
    pub revision: u32,
    /// The canonical JSON document.
    pub document: String,
    /// The SSH signature, armored (`-----BEGIN SSH SIGNATURE-----`).
    pub signature: String,
}

/// What a version document says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionDocument {
    /// [`DOCUMENT_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// `publisher/slug`.
    pub listing: String,
    /// The publisher's handle.
    pub publisher: String,
    /// The publisher's email: the principal the signing key must be allowed for.
    pub publisher_email: String,
    /// Semver.
    pub version: String,
    /// Revision number.
    pub revision: u32,
    /// Images by region.
    pub regions: std::collections::BTreeMap<String, DocumentRegion>,
    /// Template slug.
    pub template: String,
    /// Template digest.
    pub template_digest: String,
    /// When the version was first published (RFC 3339).
    pub created_at: String,
    /// The version's revocation, once revoked: revoking makes a new revision, signed again, so
    /// a mirror cannot strip a signed revocation without serving an older revision (refused
    /// as a rollback) or a document that no longer matches (invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<DocumentRevocation>,
}

/// A revocation as the version document records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentRevocation {
    /// Why.
    pub reason: String,
    /// Who revoked (handle).
    pub by: String,
}

/// One region of a version document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentRegion {
    /// Image id.
    pub ami_id: String,
    /// Architecture.
    pub architecture: String,
    /// Snapshot ids.
    pub snapshot_ids: Vec<String>,
}

impl From<&RegionImage> for DocumentRegion {
    fn from(r: &RegionImage) -> DocumentRegion {
        DocumentRegion {
            ami_id: r.ami_id.clone(),
            architecture: r.architecture.clone(),
            snapshot_ids: r.snapshot_ids.clone(),
        }
    }
}

/// The document for a version as the registry holds it now.
pub fn version_document(
    listing: &ListingId,
    publisher_email: &str,
    template: &str,
    v: &VersionInfo,
) -> VersionDocument {
    VersionDocument {
        kind: DOCUMENT_TYPE.into(),
        listing: listing.to_string(),
        publisher: listing.publisher.clone(),
        publisher_email: publisher_email.to_string(),
        version: v.version.clone(),
        revision: v.revision,
        regions: v
            .regions
            .iter()
            .map(|(r, i)| (r.clone(), DocumentRegion::from(i)))
            .collect(),
        template: template.to_string(),
        template_digest: v.template_digest.clone(),
        created_at: v
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        revoked: v.revoked.as_ref().map(|r| DocumentRevocation {
            reason: r.reason.clone(),
            by: r.by.clone(),
        }),
    }
}

/// Canonical JSON: object keys sorted (by UTF-16 code units, as RFC 8785 says; for the ASCII
/// keys documents use that is byte order), no insignificant whitespace, serde_json's string
/// escaping (the same as RFC 8785's for strings). Documents hold only strings, integers,
/// arrays and objects, for which this is RFC 8785.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The canonical text of a document.
pub fn canonical_document(doc: &VersionDocument) -> String {
    canonical_json(&serde_json::to_value(doc).unwrap_or(Value::Null))
}

/// Signs a canonical document with a private key (already decrypted).
pub fn sign_document(document: &str, key: &PrivateKey) -> RegistryResult<String> {
    let sig = key
        .sign(NAMESPACE, HashAlg::Sha512, document.as_bytes())
        .map_err(|e| RegistryError::invalid("signing key", "(the key)", &e.to_string()))?;
    sig.to_pem(ssh_key::LineEnding::LF)
        .map_err(|e| RegistryError::invalid("signature", "(the signature)", &e.to_string()))
}

/// Reads an OpenSSH private key file (bounded). An encrypted key is returned as is; decrypt it
/// with [`PrivateKey::decrypt`].
pub fn read_private_key(path: &Path) -> RegistryResult<PrivateKey> {
    let text = cws_util::fs::read_text_bounded(path, MAX_KEY_BYTES).map_err(|e| {
        RegistryError::invalid("signing key", &path.display().to_string(), &e.to_string())
    })?;
    PrivateKey::from_openssh(text.trim()).map_err(|e| {
        RegistryError::invalid(
            "signing key",
            &path.display().to_string(),
            &format!("an OpenSSH private key (ssh-keygen -t ed25519): {e}"),
        )
    })
}

/// One line of an allowed-signers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedSigner {
    /// Principals (emails) the key may sign for.
    pub principals: Vec<String>,
    /// Namespaces it may sign in (empty: any).
    pub namespaces: Vec<String>,
    /// The key.
    pub key: PublicKey,
}

/// git's allowed-signers file: `principals [options] keytype base64 [comment]` per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedSigners {
    /// The entries.
    pub signers: Vec<AllowedSigner>,
}

impl AllowedSigners {
    /// Parses the file's text; `origin` names it in errors (with the line number).
    pub fn parse(text: &str, origin: &str) -> RegistryResult<AllowedSigners> {
        let mut signers = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| {
                RegistryError::invalid(
                    &format!("{origin}:{}", n + 1),
                    line,
                    &format!("`PRINCIPALS [namespaces=\"cws-listing\"] ssh-ed25519 KEY` ({why})"),
                )
            };
            let tokens = split_quoted(line);
            let Some((principals, rest)) = tokens.split_first() else {
                continue;
            };
            let key_at = rest
                .iter()
                .position(|t| {
                    t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-")
                })
                .ok_or_else(|| bad("no key type"))?;
            let mut namespaces = Vec::new();
            let mut restricted = false;
            let mut unsupported = false;
            for opt in rest[..key_at].iter().flat_map(|o| split_options(o)) {
                let (name, value) = match opt.split_once('=') {
                    Some((n, v)) => (n.to_ascii_lowercase(), v.trim_matches('"').to_string()),
                    None => (opt.to_ascii_lowercase(), String::new()),
                };
                match name.as_str() {
                    "namespaces" => {
                        restricted = true;
                        namespaces.extend(
                            value
                                .split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty()),
                        );
                    }
                    // Certificate authorities and validity windows are not supported: such a
                    // line trusts nothing here (never more than OpenSSH would).
                    "cert-authority" | "valid-before" | "valid-after" => unsupported = true,
                    _ => {}
                }
            }
            if unsupported {
                continue;
            }
            // `namespaces=""` allows no namespace at all.
            if restricted && namespaces.is_empty() {
                continue;
            }
            let Some(b64) = rest.get(key_at + 1) else {
                return Err(bad("no key after its type"));
            };
            let key = PublicKey::from_openssh(&format!("{} {b64}", rest[key_at]))
                .map_err(|e| bad(&e.to_string()))?;
            signers.push(AllowedSigner {
                principals: principals
                    .trim_matches('"')
                    .split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
                namespaces,
                key,
            });
        }
        Ok(AllowedSigners { signers })
    }

    /// Reads a file if it exists (bounded); a missing file is empty.
    pub fn load(path: &Path) -> RegistryResult<AllowedSigners> {
        match cws_util::fs::read_text_bounded(path, MAX_ALLOWED_SIGNERS_BYTES) {
            Ok(text) => AllowedSigners::parse(&text, &path.display().to_string()),
            Err(e) if e.is_not_found() => Ok(AllowedSigners::default()),
            Err(e) => Err(RegistryError::invalid(
                "allowed signers",
                &path.display().to_string(),
                &e.to_string(),
            )),
        }
    }

    /// The principals this key may sign listings for.
    pub fn principals_for(&self, key: &ssh_key::public::KeyData) -> Vec<&str> {
        self.signers
            .iter()
            .filter(|s| s.key.key_data() == key)
            .filter(|s| s.namespaces.is_empty() || s.namespaces.iter().any(|n| n == NAMESPACE))
            .flat_map(|s| s.principals.iter().map(String::as_str))
            .collect()
    }
}

/// Splits `a,b="x,y",c` at the commas outside quotes.
fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn split_quoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn status(status: &str, signer: Option<String>, detail: Option<String>) -> SignatureInfo {
    SignatureInfo {
        status: status.into(),
        signer,
        detail,
    }
}

/// Checks a version's signed document against what the registry serves and the allowed
/// signers. `publisher_email` is the listing's recorded publisher email.
pub fn check_version(
    listing: &ListingId,
    publisher_email: &str,
    template: &str,
    v: &VersionInfo,
    signed: Option<&SignedDocument>,
    allowed: &AllowedSigners,
) -> SignatureInfo {
    let Some(signed) = signed else {
        return status("unsigned", None, None);
    };
    let invalid = |why: String| status("invalid", None, Some(why));
    let doc: VersionDocument = match serde_json::from_str(&signed.document) {
        Ok(d) => d,
        Err(e) => return invalid(format!("the signed document does not parse: {e}")),
    };
    if canonical_document(&doc) != signed.document {
        return invalid("the signed document is not in canonical form".into());
    }
    let sig = match SshSig::from_pem(&signed.signature) {
        Ok(s) => s,
        Err(e) => return invalid(format!("the signature does not parse: {e}")),
    };
    if sig.namespace() != NAMESPACE {
        return invalid(format!(
            "the signature is for namespace `{}`, not `{NAMESPACE}`",
            sig.namespace()
        ));
    }
    let key = PublicKey::from(sig.public_key().clone());
    if let Err(e) = key.verify(NAMESPACE, signed.document.as_bytes(), &sig) {
        return invalid(format!("the signature does not verify: {e}"));
    }
    // The document must describe what the registry serves.
    let now = version_document(listing, publisher_email, template, v);
    if doc.kind != DOCUMENT_TYPE
        || doc.listing != now.listing
        || doc.publisher != now.publisher
        || doc.version != now.version
    {
        return invalid(format!(
            "the signature is for {}@{}, not {}@{}",
            doc.listing, doc.version, now.listing, now.version
        ));
    }
    if doc.revision != signed.revision {
        return invalid("the stored revision differs from the signed one".into());
    }
    if doc.revision > v.revision {
        return invalid(format!(
            "revision {} is served where revision {} was signed (a rollback)",
            v.revision, doc.revision
        ));
    }
    for (region, r) in &doc.regions {
        match now.regions.get(region) {
            Some(served) if served == r => {}
            Some(served) => {
                return invalid(format!(
                    "{region} serves {} where the signed document has {}",
                    served.ami_id, r.ami_id
                ));
            }
            None => {
                return invalid(format!(
                    "{region} ({}) is signed but no longer served",
                    r.ami_id
                ));
            }
        }
    }
    // Under the signed revision, nothing but the signed regions may be served: a region added
    // without a new revision is a substitution.
    if doc.revision == v.revision
        && let Some(extra) = now.regions.keys().find(|r| !doc.regions.contains_key(*r))
    {
        return invalid(format!(
            "{extra} ({}) is served under revision {} but was not signed in it",
            now.regions[extra].ami_id, v.revision
        ));
    }
    // A signed revocation must still be served; the registry may know of a newer (unsigned)
    // one, which the status below reports as an unsigned revision.
    if doc.revoked.is_some() && doc.revoked != now.revoked {
        return invalid(
            "the signed revocation of this version is missing or changed (stripped)".into(),
        );
    }
    if doc.template_digest != now.template_digest
        || doc.created_at != now.created_at
        || doc.publisher_email != now.publisher_email
        || doc.template != now.template
    {
        return invalid(
            "the signed template, digest, date or email differs from the registry's".into(),
        );
    }
    let principals = allowed.principals_for(sig.public_key());
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    if !principals.iter().any(|p| *p == doc.publisher_email) {
        return status(
            "untrusted",
            Some(
                principals
                    .first()
                    .map(|p| p.to_string())
                    .unwrap_or(fingerprint.clone()),
            ),
            Some(if principals.is_empty() {
                format!("signed by {fingerprint}, a key not in the allowed signers")
            } else {
                format!(
                    "signed by a key allowed for {}, not for the publisher {}",
                    principals.join(", "),
                    doc.publisher_email
                )
            }),
        );
    }
    if doc.revision < v.revision {
        return status(
            "unsigned",
            Some(doc.publisher_email.clone()),
            Some(format!(
                "revision {} is not signed (revision {} is, by {})",
                v.revision, doc.revision, doc.publisher_email
            )),
        );
    }
    status("verified", Some(doc.publisher_email), None)
}

/// The status browse shows for a listing: its latest version's signed document checked
/// against the signature, the allowed signers and the revision the registry serves. (`info` and
/// launches also compare the document's image ids with the registry's: [`annotate`].)
pub fn check_summary(s: &crate::model::ListingSummary, allowed: &AllowedSigners) -> SignatureInfo {
    let (revision, signed) = &s.latest_signed;
    let Some(signed) = signed else {
        return status("unsigned", None, None);
    };
    let doc: VersionDocument = match serde_json::from_str(&signed.document) {
        Ok(d) => d,
        Err(e) => return status("invalid", None, Some(format!("unparseable document: {e}"))),
    };
    // The regions are taken from the document itself here: browse does not load them.
    let v = VersionInfo {
        version: s.latest_version.clone().unwrap_or_default(),
        revision: *revision,
        regions: doc
            .regions
            .iter()
            .map(|(r, d)| {
                (
                    r.clone(),
                    RegionImage {
                        ami_id: d.ami_id.clone(),
                        architecture: d.architecture.clone(),
                        snapshot_ids: d.snapshot_ids.clone(),
                        size_gib: None,
                    },
                )
            })
            .collect(),
        template_digest: doc.template_digest.clone(),
        created_at: chrono::DateTime::parse_from_rfc3339(&doc.created_at)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default(),
        notes: None,
        speedup: None,
        signature: SignatureInfo::unsigned(),
        revoked: None,
        quarantined: None,
        downloads: 0,
        signed: None,
    };
    check_version(
        &s.id,
        &s.publisher_email,
        &s.template,
        &v,
        Some(signed),
        allowed,
    )
}

/// Fills in the signature status of every version of a listing, and of the listing (its
/// latest version's).
pub fn annotate(d: &mut crate::model::ListingDetail, allowed: &AllowedSigners) {
    let id = d.summary.id.clone();
    let email = d.summary.publisher_email.clone();
    let template = d.summary.template.clone();
    for v in &mut d.versions {
        v.signature = check_version(&id, &email, &template, v, v.signed.as_ref(), allowed);
    }
    if let Some(latest) = d
        .versions
        .iter()
        .find(|v| Some(&v.version) == d.summary.latest_version.as_ref())
    {
        d.summary.signature = latest.signature.clone();
    }
}

/// A listing as one exportable document, signatures included.
pub fn export(d: &crate::model::ListingDetail) -> crate::model::ListingExport {
    crate::model::ListingExport {
        format: crate::model::EXPORT_FORMAT.into(),
        id: d.summary.id.clone(),
        name: d.summary.name.clone(),
        description: d.summary.description.clone(),
        category: d.summary.category.clone(),
        template: d.summary.template.clone(),
        visibility: d.summary.visibility.clone(),
        creator: d.creator.clone(),
        publisher_email: d.summary.publisher_email.clone(),
        versions: d
            .versions
            .iter()
            .map(|v| crate::model::ExportedVersion {
                version: v.version.clone(),
                revision: v.revision,
                regions: v.regions.clone(),
                template_digest: v.template_digest.clone(),
                created_at: v.created_at,
                notes: v.notes.clone(),
                speedup: v.speedup,
                revoked: v.revoked.clone(),
                signed: v.signed.clone(),
            })
            .collect(),
    }
}

/// The status of each version of an export, checked against its own contents (what the
/// importing registry will serve) and the allowed signers.
pub fn check_export(
    e: &crate::model::ListingExport,
    allowed: &AllowedSigners,
) -> Vec<(String, SignatureInfo)> {
    e.versions
        .iter()
        .map(|x| {
            let v = VersionInfo {
                version: x.version.clone(),
                revision: x.revision,
                regions: x.regions.clone(),
                template_digest: x.template_digest.clone(),
                created_at: x.created_at,
                notes: x.notes.clone(),
                speedup: x.speedup,
                signature: SignatureInfo::unsigned(),
                revoked: x.revoked.clone(),
                quarantined: None,
                downloads: 0,
                signed: None,
            };
            let s = check_version(
                &e.id,
                &e.publisher_email,
                &e.template,
                &v,
                x.signed.as_ref(),
                allowed,
            );
            (x.version.clone(), s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEeY06iPXMA8WVvj4jK+MDCtKhZboYTocEOW/OiThFSs";

    fn principals(line: &str) -> Vec<String> {
        let a = AllowedSigners::parse(line, "test").unwrap();
        a.signers
            .iter()
            .filter(|s| s.namespaces.is_empty() || s.namespaces.iter().any(|n| n == NAMESPACE))
            .flat_map(|s| s.principals.clone())
            .collect()
    }

    #[test]
    fn allowed_signers_options_are_read_as_openssh_does_or_trust_nothing() {
        assert_eq!(principals(&format!("alice@x.org {KEY}")), ["alice@x.org"]);
        assert_eq!(
            principals(&format!("alice@x.org namespaces=\"git,cws-listing\" {KEY}")),
            ["alice@x.org"]
        );
        assert!(principals(&format!("alice@x.org namespaces=\"git\" {KEY}")).is_empty());
        assert!(principals(&format!("alice@x.org namespaces=\"\" {KEY}")).is_empty());
        assert!(principals(&format!("alice@x.org cert-authority {KEY}")).is_empty());
        assert!(principals(&format!("alice@x.org valid-before=\"20300101\" {KEY}")).is_empty());
        assert_eq!(
            principals(&format!(
                "a@x.org,b@y.org namespaces=\"cws-listing\" {KEY} comment"
            )),
            ["a@x.org", "b@y.org"]
        );
    }
}

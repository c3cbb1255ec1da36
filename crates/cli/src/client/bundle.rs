//! `shedu ca import-bundle`: every CA certificate of a PEM bundle (an existing hierarchy: roots,
//! intermediates, cross-certificates) imported for tracking, parents before children so that each
//! intermediate is linked to its issuer, behind the bulk import's progress bar and report. A CA already
//! on the server (same SHA-256 fingerprint) counts as done, so the same command finishes an interrupted
//! import.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};
use shedu_pki::{CertInfo, is_signed_by, pem_encode_cert, pem_to_der_certs};

use super::api::{Api, HttpError};
use super::bulk::{self, Item, Outcome, Words};
use super::output::items;

/// What opens every PEM certificate.
const CERT_LABEL: &str = "-----BEGIN CERTIFICATE-----";

/// Options of `shedu ca import-bundle`.
#[derive(Debug, Args)]
pub(crate) struct CaImportBundleArgs {
    /// The PEM file: CA certificates in any order.
    file: PathBuf,
    /// Prefix of the CA names (each CA is named after its CN, else its fingerprint).
    #[arg(long, default_value = "")]
    name_prefix: String,
}

/// The order to import `ders` in: each certificate after any other one of the bundle that signed it
/// (self-signed roots and certificates whose issuer is not in the bundle first). A cycle (two CAs
/// cross-signing each other) is broken in file order.
fn parents_first(ders: &[Vec<u8>]) -> Vec<usize> {
    let n = ders.len();
    let signed_by: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i && is_signed_by(&ders[i], &ders[j]))
                .collect()
        })
        .collect();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let before = order.len();
        for i in 0..n {
            if !placed[i] && signed_by[i].iter().all(|&j| placed[j]) {
                placed[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            // Only cycles are left: take the first one left, and go on.
            if let Some(i) = (0..n).find(|&i| !placed[i]) {
                placed[i] = true;
                order.push(i);
            }
        }
    }
    order
}

/// The bundle as import items, parents first; a certificate that is not a CA's is a failed item.
fn read_bundle(file: &Path, prefix: &str) -> anyhow::Result<Vec<Item>> {
    let pem = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !pem
        .windows(CERT_LABEL.len())
        .any(|w| w == CERT_LABEL.as_bytes())
    {
        bail!("{} holds no certificate", file.display());
    }
    let ders = pem_to_der_certs(&pem)
        .map_err(|e| anyhow::anyhow!("{} is not a PEM bundle: {e}", file.display()))?;
    if ders.is_empty() {
        bail!("{} holds no certificate", file.display());
    }
    Ok(parents_first(&ders)
        .into_iter()
        .map(|i| {
            let der = &ders[i];
            let info = CertInfo::from_der(der);
            let label = match &info {
                Ok(info) => format!("certificate {} ({})", i + 1, info.subject),
                Err(_) => format!("certificate {}", i + 1),
            };
            let body = match info {
                Err(e) => Err(format!("not a certificate: {e}")),
                Ok(info) if !info.is_ca => Err("not a CA certificate".to_string()),
                Ok(info) => {
                    let name = info
                        .common_name
                        .clone()
                        .unwrap_or_else(|| info.fingerprint.chars().take(16).collect());
                    Ok(json!({
                        "fingerprint": info.fingerprint,
                        "request": {"name": format!("{prefix}{name}"), "certificate_pem": pem_encode_cert(der)},
                    }))
                }
            };
            Item { label, body }
        })
        .collect())
}

/// Runs `shedu ca import-bundle`.
pub(crate) async fn import_bundle(api: &Api, a: &CaImportBundleArgs) -> anyhow::Result<()> {
    let bundle = read_bundle(&a.file, &a.name_prefix)?;
    let list = api.get(&["api", "v1", "cas"], &[]).await?;
    let present: HashSet<String> = items(&list)?
        .iter()
        .filter_map(|c| c["fingerprint_sha256"].as_str().map(str::to_lowercase))
        .collect();
    let words = Words {
        items: "CAs",
        done: "imported",
    };
    let present = &present;
    // One at a time, in order: a child's import finds its parent already there.
    bulk::import(bundle, &words, 1, |body: Value| async move {
        let fingerprint = body["fingerprint"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        if present.contains(&fingerprint) {
            return Outcome::AlreadyThere;
        }
        match api
            .post(&["api", "v1", "cas", "import"], &body["request"])
            .await
        {
            Ok(_) => Outcome::Done,
            Err(e) if e.downcast_ref::<HttpError>().is_some() => Outcome::Failed(e.to_string()),
            Err(e) => Outcome::Failed(format!("{e:#}")),
        }
    })
    .await
}

//! The validation authority: OCSP answers and CRLs for every CA the platform manages.
//!
//! OCSP answers without a nonce are cached as signed bytes keyed by (CA, serial, CertID hash), so a repeated
//! question costs a map lookup. Revocation is safe against that cache: `revoke` commits, then removes the
//! certificate's entries and bumps the CA's revocation epoch under the cache lock before it returns; a
//! response computed from a status read before the bump is never inserted, so no answer produced after the
//! revoke call returned can say `good`. Nonce requests are signed on demand with the delegated responder key.
//!
//! Signed answers are also kept in the database (`ocsp_answers`, written in batches by a background task),
//! so a restart or another replica serves them instead of signing again. Each is kept with the status,
//! revocation time and reason it says, and is read only together with the certificate's row and only when
//! those still match: after a revocation commits, no replica reads a `good` answer from there.
//!
//! CRLs are rebuilt when the set of revoked certificates changed (a cheap indexed count checked on each
//! fetch, which also works across replicas) or when half their validity has passed, and stored so their
//! numbers keep increasing across restarts.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use shedu_keys::{CaSigner, Signer, SoftwareKey};
use shedu_pki::ocsp::{
    self, CertIdHash, CertStatus, IssuerHashes, OcspError, OcspRequest, Responder, SingleResponse,
};
use shedu_pki::{
    AttrType, CertInfo, CrlParams, CrlScope, KeyType, RevocationReason, RevokedEntry, Serial,
    Subject, Validity, build_crl, issue_ocsp_responder,
};
use shedu_store::{CrlRow, OcspAnswerRow, ResponderRow, StatusRow};
use tokio::sync::mpsc;

use crate::error::{poisoned, signing_err, store_err};
use crate::registry::{LoadedCa, Registry, usable_issuer};
use crate::{Error, Status};

/// Most signed OCSP answers kept in memory (about 0.5 KiB each for P-256 responders).
const MAX_CACHED_ANSWERS: usize = 200_000;

/// Lifetime of a delegated responder certificate; it is replaced when a third of it remains.
const RESPONDER_DAYS: u32 = 30;

/// VA timing and addressing.
#[derive(Clone, Debug)]
pub struct VaConfig {
    /// Base URL written into certificates for OCSP, CRLs and the issuer certificate (no trailing slash).
    pub public_url: String,
    /// nextUpdate − thisUpdate of OCSP responses, seconds.
    pub ocsp_validity_secs: i64,
    /// nextUpdate − thisUpdate of CRLs, seconds.
    pub crl_validity_secs: i64,
}

impl Default for VaConfig {
    fn default() -> Self {
        VaConfig {
            public_url: "http://127.0.0.1:8080".into(),
            ocsp_validity_secs: 86_400,
            crl_validity_secs: 86_400,
        }
    }
}

/// A signed OCSP response with what HTTP caching needs.
#[derive(Clone, Debug)]
pub struct OcspAnswer {
    /// The DER `OCSPResponse`.
    pub der: Arc<Vec<u8>>,
    /// thisUpdate (for Last-Modified); `None` for error responses.
    pub this_update: Option<i64>,
    /// nextUpdate (bounds max-age); `None` for error responses and nonce answers.
    pub next_update: Option<i64>,
    /// SHA-256 of the DER, hex (the ETag).
    pub etag: String,
}

impl OcspAnswer {
    fn error(status: OcspError) -> OcspAnswer {
        let der = ocsp::error_response(status);
        OcspAnswer {
            etag: shedu_pki::fingerprint_sha256(&der),
            der: Arc::new(der),
            this_update: None,
            next_update: None,
        }
    }
}

/// Which CRL of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrlKind {
    /// The complete CRL.
    Full,
    /// The delta CRL on top of the latest complete one.
    Delta,
}

impl CrlKind {
    fn as_str(self) -> &'static str {
        match self {
            CrlKind::Full => "full",
            CrlKind::Delta => "delta",
        }
    }
}

/// A CRL ready to serve.
#[derive(Clone, Debug)]
pub struct CrlAnswer {
    /// DER.
    pub der: Arc<Vec<u8>>,
    /// cRLNumber.
    pub number: i64,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate.
    pub next_update: i64,
}

type OcspKey = (String, Serial, CertIdHash);

/// The CertID hashes of every managed CA, with its id.
type IssuerIndex = Arc<Vec<(IssuerHashes, String)>>;

struct CachedCrl {
    answer: CrlAnswer,
    /// (revoked count, latest revocation time) when built.
    marker: (i64, i64),
}

/// The VA's in-memory state, kept in the [`Registry`] because revocations and new CAs (from any
/// capability) must reach it before they return.
#[derive(Default)]
pub(crate) struct VaState {
    /// Issuer hashes of every managed CA, rebuilt when CAs change.
    issuers: RwLock<Option<IssuerIndex>>,
    responders: RwLock<HashMap<String, Arc<LoadedResponder>>>,
    cache: RwLock<OcspCache>,
    crls: tokio::sync::Mutex<HashMap<(String, i64, CrlKind), CachedCrl>>,
    responder_creation: tokio::sync::Mutex<()>,
    /// Signed answers on their way to the database (see [`keep_answers`]); started on first use.
    keep: std::sync::OnceLock<mpsc::Sender<OcspAnswerRow>>,
}

/// Answers waiting to be written at most; past it an answer is not kept (a later request signs again).
const KEEP_QUEUE: usize = 8_192;

/// Writes signed answers to the database in batches, each batch also forgetting answers older than one
/// validity period; ends when the VA is dropped.
async fn keep_answers(
    store: shedu_store::Store,
    clock: Arc<dyn crate::Clock>,
    validity_secs: i64,
    mut rx: mpsc::Receiver<OcspAnswerRow>,
) {
    let mut batch = Vec::with_capacity(512);
    while rx.recv_many(&mut batch, 512).await > 0 {
        let forget_before = clock.now() - validity_secs;
        if let Err(e) = store.put_ocsp_answers(&batch, forget_before).await {
            tracing::warn!(error = %e, answers = batch.len(), "could not keep signed OCSP answers");
        }
        batch.clear();
    }
}

/// The name a kept answer records for the CertID hash its request used.
fn hash_name(hash: CertIdHash) -> Option<&'static str> {
    match hash {
        CertIdHash::Sha1 => Some("sha1"),
        CertIdHash::Sha256 => Some("sha256"),
        CertIdHash::Unsupported => None,
    }
}

#[derive(Default)]
struct OcspCache {
    answers: HashMap<OcspKey, OcspAnswer>,
    /// Per CA, bumped on each revocation.
    epochs: HashMap<String, u64>,
    /// Bumped when every answer is forgotten.
    generation: u64,
}

impl OcspCache {
    /// What must not change between reading a status and caching the answer built from it.
    fn epoch(&self, ca_id: &str) -> (u64, u64) {
        (
            self.generation,
            self.epochs.get(ca_id).copied().unwrap_or(0),
        )
    }
}

struct LoadedResponder {
    signer: CaSigner,
    key_type: KeyType,
    key_hash: [u8; 20],
    certs: Vec<Vec<u8>>,
    not_after: i64,
}

impl VaState {
    /// Forgets cached answers for a certificate that was just revoked.
    pub(crate) fn forget_certificate(&self, ca_id: &str, serial: &Serial) {
        if let Ok(mut cache) = self.cache.write() {
            *cache.epochs.entry(ca_id.to_string()).or_default() += 1;
            for hash in [CertIdHash::Sha1, CertIdHash::Sha256] {
                cache
                    .answers
                    .remove(&(ca_id.to_string(), serial.clone(), hash));
            }
        }
    }

    /// Forgets every cached answer, responder and the issuer index.
    pub(crate) fn forget_all(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.answers.clear();
            cache.generation += 1;
        }
        if let Ok(mut responders) = self.responders.write() {
            responders.clear();
        }
        self.forget_issuers();
    }

    /// Forgets the issuer index after a CA was added.
    pub(crate) fn forget_issuers(&self) {
        if let Ok(mut issuers) = self.issuers.write() {
            *issuers = None;
        }
    }
}

/// The validation authority: OCSP and CRLs.
#[derive(Debug)]
pub struct Va {
    reg: Arc<Registry>,
}

impl Va {
    pub(crate) fn new(reg: Arc<Registry>) -> Va {
        Va { reg }
    }

    /// Answers an OCSP request (DER). Never fails: problems become OCSP error statuses.
    pub async fn ocsp(&self, request_der: &[u8]) -> OcspAnswer {
        let Ok(request) = OcspRequest::from_der(request_der) else {
            return OcspAnswer::error(OcspError::MalformedRequest);
        };
        match self.answer_ocsp(&request).await {
            Ok(answer) => answer,
            Err(AnswerError::NotAuthoritative) => OcspAnswer::error(OcspError::Unauthorized),
            Err(AnswerError::Service(e)) => {
                tracing::warn!(error = %e, "OCSP answer failed");
                match e {
                    Error::Unavailable(_) => OcspAnswer::error(OcspError::TryLater),
                    _ => OcspAnswer::error(OcspError::InternalError),
                }
            }
        }
    }

    async fn answer_ocsp(&self, request: &OcspRequest) -> Result<OcspAnswer, AnswerError> {
        let issuers = self.issuer_index().await?;
        let owner = |id: &ocsp::CertId| {
            issuers
                .iter()
                .find(|(h, _)| h.matches(id))
                .map(|(_, ca)| ca.clone())
        };
        let owners: Vec<Option<String>> = request.entries.iter().map(owner).collect();
        // One response has one signer: the CA of the first entry we know. Entries of other issuers are `unknown`.
        let ca_id = owners
            .iter()
            .flatten()
            .next()
            .cloned()
            .ok_or(AnswerError::NotAuthoritative)?;
        let single = request.nonce.is_none() && request.entries.len() == 1;
        let key = single.then(|| {
            (
                ca_id.clone(),
                request.entries[0].serial.clone(),
                request.entries[0].hash,
            )
        });
        let now = self.reg.clock.now();
        let epoch = {
            let cache = self.reg.va.cache.read().map_err(|_| poisoned())?;
            // On a cluster, only while this replica's lease says the cache is true (`cluster.rs`).
            let usable = self.reg.coherence.caches_usable();
            if let Some(hit) = key
                .as_ref()
                .filter(|_| usable)
                .and_then(|k| cache.answers.get(k))
            {
                let fresh_until =
                    hit.this_update.unwrap_or(0) + self.reg.va_config.ocsp_validity_secs / 2;
                if now < fresh_until {
                    crate::metrics::ocsp_answer("cache");
                    return Ok(hit.clone());
                }
            }
            cache.epoch(&ca_id)
        };

        // A cacheable question: the answer signed for the certificate's current state may be in the
        // database already, from this replica before a restart or from another one.
        let validity = self.reg.va_config.ocsp_validity_secs;
        let mut known: Option<Option<StatusRow>> = None;
        if let Some((_, serial, hash)) = &key
            && let Some(hash_name) = hash_name(*hash)
        {
            match self
                .reg
                .store
                .certificate_status_with_answer(&ca_id, &serial.to_hex(), hash_name)
                .await
            {
                Ok((_, Some((der, this_update)))) if now < this_update + validity / 2 => {
                    let answer = OcspAnswer {
                        etag: shedu_pki::fingerprint_sha256(&der),
                        der: Arc::new(der),
                        this_update: Some(this_update),
                        next_update: Some(this_update + validity),
                    };
                    crate::metrics::ocsp_answer("stored");
                    self.remember(key, &ca_id, epoch, &answer)?;
                    return Ok(answer);
                }
                Ok((row, _)) => known = Some(Some(row)),
                Err(shedu_store::Error::NotFound) => known = Some(None),
                Err(e) => return Err(store_err("certificate status")(e).into()),
            }
        }

        let loaded = self.reg.loaded(&ca_id).await?;
        let responder = self.responder(&loaded, now).await?;
        let this_update = now;
        let next_update = now + validity;
        let mut answers = Vec::with_capacity(request.entries.len());
        for (entry, owner) in request.entries.iter().zip(&owners) {
            let status = if owner.as_deref() != Some(ca_id.as_str()) {
                CertStatus::Unknown
            } else if let Some(row) = &known {
                status_of(row.as_ref())
            } else {
                self.cert_status(&ca_id, &entry.serial).await?
            };
            answers.push(SingleResponse {
                cert_id_raw: &entry.raw,
                status,
                this_update,
                next_update,
            });
        }
        let signer = Responder {
            key: &responder.signer,
            key_type: responder.key_type,
            key_hash: responder.key_hash,
            certs: &responder.certs,
        };
        let der = ocsp::build_response(&signer, now, &answers, request.nonce.as_deref())
            .map_err(signing_err(&ca_id))?;
        crate::metrics::ocsp_answer("signed");
        let answer = OcspAnswer {
            etag: shedu_pki::fingerprint_sha256(&der),
            der: Arc::new(der),
            this_update: Some(this_update),
            next_update: request.nonce.is_none().then_some(next_update),
        };
        if let (Some((_, serial, hash)), Some(Some(row))) = (&key, &known)
            && let Some(hash_name) = hash_name(*hash)
        {
            self.keep(OcspAnswerRow {
                ca_id: ca_id.clone(),
                serial: serial.to_hex(),
                cert_id_hash: hash_name.to_string(),
                status: row.status.clone(),
                revoked_at: row.revoked_at,
                reason: row.reason.clone(),
                this_update,
                der: answer.der.to_vec(),
            });
        }
        self.remember(key, &ca_id, epoch, &answer)?;
        Ok(answer)
    }

    /// Keeps a signed answer in memory under `key`, unless a revocation of the CA happened since `epoch`
    /// (when its status was read).
    fn remember(
        &self,
        key: Option<OcspKey>,
        ca_id: &str,
        epoch: (u64, u64),
        answer: &OcspAnswer,
    ) -> Result<(), Error> {
        let Some(key) = key else {
            return Ok(());
        };
        let mut cache = self.reg.va.cache.write().map_err(|_| poisoned())?;
        if cache.epoch(ca_id) == epoch {
            // Bounded memory: past the cap an arbitrary entry makes room (a miss only costs one signature).
            if cache.answers.len() >= MAX_CACHED_ANSWERS
                && let Some(evict) = cache.answers.keys().next().cloned()
            {
                cache.answers.remove(&evict);
            }
            cache.answers.insert(key, answer.clone());
        }
        Ok(())
    }

    /// Queues a signed answer for the database; dropped when the queue is full (it is only a cache).
    fn keep(&self, row: OcspAnswerRow) {
        let tx = self.reg.va.keep.get_or_init(|| {
            let (tx, rx) = mpsc::channel(KEEP_QUEUE);
            tokio::spawn(keep_answers(
                self.reg.store.clone(),
                self.reg.clock.clone(),
                self.reg.va_config.ocsp_validity_secs,
                rx,
            ));
            tx
        });
        let _ = tx.try_send(row);
    }

    async fn cert_status(&self, ca_id: &str, serial: &Serial) -> Result<CertStatus, Error> {
        match self
            .reg
            .store
            .certificate_status(ca_id, &serial.to_hex())
            .await
        {
            Ok(row) => Ok(status_of(Some(&row))),
            Err(shedu_store::Error::NotFound) => Ok(status_of(None)),
            Err(e) => Err(store_err("certificate status")(e)),
        }
    }

    async fn issuer_index(&self) -> Result<IssuerIndex, Error> {
        if let Some(index) = self.reg.va.issuers.read().map_err(|_| poisoned())?.clone() {
            return Ok(index);
        }
        let cas = self.reg.store.list_cas().await.map_err(store_err("CAs"))?;
        let mut index = Vec::with_capacity(cas.len());
        for ca in cas {
            let info = CertInfo::from_der(&ca.certificate_der)?;
            index.push((
                IssuerHashes::new(&info.subject_der, &info.public_key_bits),
                ca.id,
            ));
        }
        let index = Arc::new(index);
        *self.reg.va.issuers.write().map_err(|_| poisoned())? = Some(index.clone());
        Ok(index)
    }

    /// The signer of a CA's OCSP responses: its delegated responder (created or rotated as needed), or
    /// the CA key itself when the CA is configured so.
    async fn responder(
        &self,
        loaded: &LoadedCa,
        now: i64,
    ) -> Result<Arc<LoadedResponder>, AnswerError> {
        let ca_id = &loaded.ca.id;
        if let Some(r) = self
            .reg
            .va
            .responders
            .read()
            .map_err(|_| poisoned())?
            .get(ca_id)
            && r.not_after - now > i64::from(RESPONDER_DAYS) * 86_400 / 3
        {
            return Ok(r.clone());
        }
        let issuer = loaded
            .issuer
            .as_ref()
            .ok_or(AnswerError::NotAuthoritative)?;
        let responder = if loaded.va.ocsp_signing == "ca" {
            let signer = issuer.key().clone();
            LoadedResponder {
                key_type: loaded.ca.key_type,
                key_hash: ocsp::key_hash(signer.0.public_key()),
                signer,
                certs: Vec::new(),
                not_after: loaded.ca.not_after,
            }
        } else {
            let _guard = self.reg.va.responder_creation.lock().await;
            self.delegated_responder(loaded, now).await?
        };
        let responder = Arc::new(responder);
        self.reg
            .va
            .responders
            .write()
            .map_err(|_| poisoned())?
            .insert(ca_id.clone(), responder.clone());
        Ok(responder)
    }

    async fn delegated_responder(
        &self,
        loaded: &LoadedCa,
        now: i64,
    ) -> Result<LoadedResponder, Error> {
        let ca = &loaded.ca;
        let owner = format!("ocsp-responder:{}", ca.id);
        let stored = self
            .reg
            .store
            .ocsp_responder(&ca.id)
            .await
            .map_err(store_err("OCSP responder"))?;
        if let Some(row) =
            stored.filter(|r| r.not_after - now > i64::from(RESPONDER_DAYS) * 86_400 / 3)
        {
            let key_type: KeyType = row.key_type.parse()?;
            let key = Arc::new(self.reg.keystore.open(&owner, key_type, &row.key_sealed)?);
            return Ok(responder_from(key, row.certificate_der, row.not_after));
        }
        // Create (or rotate) the responder: a P-256 key signed by the CA for RESPONDER_DAYS.
        let issuer = usable_issuer(loaded, now)?;
        let key = Arc::new(SoftwareKey::generate(KeyType::EcP256)?);
        // A CA name may be 128 characters; a CN may be 64 (RFC 5280 ub-common-name).
        let cn: String = format!("OCSP responder for {}", ca.name)
            .chars()
            .take(AttrType::CommonName.max_len())
            .collect();
        let dn = Subject::new(vec![(AttrType::CommonName, cn.trim_end().to_string())])?.to_dn()?;
        let days = RESPONDER_DAYS.min(days_left(ca.not_after, now));
        let validity = Validity::within_issuer(now, Some(days), RESPONDER_DAYS, ca.not_after)?;
        let der = issue_ocsp_responder(
            dn,
            &CaSigner(key.clone()),
            validity,
            &Serial::random(),
            issuer,
        )
        .map_err(signing_err(&ca.id))?;
        let row = ResponderRow {
            ca_id: ca.id.clone(),
            certificate_der: der.clone(),
            key_type: KeyType::EcP256.as_str().into(),
            key_sealed: self.reg.keystore.seal(&owner, &key)?,
            not_after: validity.not_after,
            created_at: now,
        };
        self.reg
            .store
            .put_ocsp_responder(&row)
            .await
            .map_err(store_err("OCSP responder"))?;
        Ok(responder_from(key, der, validity.not_after))
    }

    /// A CA's CRL (full or delta) for one partition, rebuilt when revocations changed or it aged.
    pub async fn crl(&self, ca_id: &str, shard: i64, kind: CrlKind) -> Result<CrlAnswer, Error> {
        let loaded = self.reg.loaded(ca_id).await?;
        let shards = loaded.va.crl_shards.max(1);
        if shard < 0 || shard >= shards {
            return Err(Error::NotFound(format!(
                "CRL partition {shard} of CA {ca_id}"
            )));
        }
        let now = self.reg.clock.now();
        let marker = self
            .reg
            .store
            .revocation_marker(ca_id)
            .await
            .map_err(store_err("revocations"))?;
        let mut crls = self.reg.va.crls.lock().await;
        let key = (ca_id.to_string(), shard, kind);
        if let Some(c) = crls.get(&key)
            && c.marker == marker
            && now < c.answer.this_update + self.reg.va_config.crl_validity_secs / 2
        {
            return Ok(c.answer.clone());
        }
        // Signed by another replica (or before a restart): served as stored while it is current, so every
        // replica of a cluster serves the same CRL and number. Otherwise one replica at a time signs it.
        let current = |stored: Option<CrlRow>| {
            stored.filter(|row| {
                row.marker == marker
                    && now < row.this_update + self.reg.va_config.crl_validity_secs / 2
            })
        };
        let wait_until = std::time::Instant::now() + CRL_LOCK_WAIT;
        let lock = loop {
            if let Some(row) = current(self.stored_crl(ca_id, shard, kind).await?) {
                return Ok(adopt(&mut crls, key, row, marker));
            }
            if let Some(lock) = self
                .reg
                .store
                .try_lock_job(&format!("shedu-crl:{ca_id}:{shard}:{}", kind.as_str()))
                .await
                .map_err(store_err("CRL lock"))?
            {
                break lock;
            }
            if std::time::Instant::now() >= wait_until {
                return Err(Error::Internal(format!(
                    "CRL {} of CA {ca_id} partition {shard}: another replica has held its signing lock \
                     for {} s",
                    kind.as_str(),
                    CRL_LOCK_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The previous holder may have stored it between the check and the lock.
        if let Some(row) = current(self.stored_crl(ca_id, shard, kind).await?) {
            lock.release().await;
            return Ok(adopt(&mut crls, key, row, marker));
        }
        let issuer = usable_issuer(&loaded, now).map_err(|_| {
            Error::conflict(
                "ca-without-key",
                format!("CA {ca_id} cannot sign CRLs (no key, or expired)"),
            )
        })?;
        let (since, scope_base) = match kind {
            CrlKind::Full => (None, None),
            CrlKind::Delta => {
                // The delta builds on the stored complete CRL; make one first if there is none.
                let base = match self
                    .reg
                    .store
                    .crl(ca_id, shard, "full")
                    .await
                    .map_err(store_err("CRL"))?
                {
                    Some(b) => b,
                    None => {
                        drop(crls);
                        Box::pin(self.crl(ca_id, shard, CrlKind::Full)).await?;
                        crls = self.reg.va.crls.lock().await;
                        self.reg
                            .store
                            .crl(ca_id, shard, "full")
                            .await
                            .map_err(store_err("CRL"))?
                            .ok_or_else(|| Error::Internal("complete CRL vanished".into()))?
                    }
                };
                (Some(base.this_update), Some(base.number))
            }
        };
        let rows = self
            .reg
            .store
            .revoked_certificates(ca_id, since)
            .await
            .map_err(store_err("revocations"))?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in rows {
            let serial: Serial = r.serial.parse()?;
            if shard_of(&serial, shards) != shard {
                continue;
            }
            entries.push(RevokedEntry {
                serial: serial.as_bytes().to_vec(),
                revoked_at: r.revoked_at,
                reason: r
                    .reason
                    .as_deref()
                    .and_then(|s| s.parse().ok())
                    .filter(|r| *r != RevocationReason::Unspecified),
                invalidity_date: r.invalidity_date,
            });
        }
        let number = self
            .reg
            .store
            .next_crl_number(ca_id)
            .await
            .map_err(store_err("CRL number"))?;
        let partition_url =
            (shards > 1).then(|| crl_url(&self.reg.va_config, ca_id, shard, shards));
        let delta_url = format!(
            "{}/delta",
            crl_url(&self.reg.va_config, ca_id, shard, shards)
        );
        let scope = match scope_base {
            None => CrlScope::Full {
                freshest: Some(&delta_url),
            },
            Some(base_number) => CrlScope::Delta {
                base_number: base_number as u64,
            },
        };
        let info = CertInfo::from_der(&loaded.ca.certificate_der)?;
        let key_id = info
            .subject_key_id
            .clone()
            .unwrap_or_else(|| ocsp::key_hash(&info.public_key_bits).to_vec());
        let params = CrlParams {
            issuer_der: &info.subject_der,
            issuer_key_id: &key_id,
            number: number as u64,
            this_update: now,
            next_update: now + self.reg.va_config.crl_validity_secs,
            revoked: &entries,
            scope,
            distribution_point: partition_url.as_deref(),
        };
        let der =
            build_crl(&params, issuer.key(), loaded.ca.key_type).map_err(signing_err(ca_id))?;
        let row = CrlRow {
            number,
            this_update: now,
            next_update: params.next_update,
            der,
            marker,
        };
        self.reg
            .store
            .put_crl(ca_id, shard, kind.as_str(), &row)
            .await
            .map_err(store_err("CRL"))?;
        lock.release().await;
        crate::metrics::job_work("crl", 1);
        tracing::info!(ca = %ca_id, shard, kind = kind.as_str(), number, "CRL signed");
        Ok(adopt(&mut crls, key, row, marker))
    }

    async fn stored_crl(
        &self,
        ca_id: &str,
        shard: i64,
        kind: CrlKind,
    ) -> Result<Option<CrlRow>, Error> {
        self.reg
            .store
            .crl(ca_id, shard, kind.as_str())
            .await
            .map_err(store_err("CRL"))
    }

    /// Rebuilds every CRL that was served before and is past half its validity (the lifecycle job calls this).
    pub async fn refresh_crls(&self) -> Result<usize, Error> {
        let now = self.reg.clock.now();
        let due: Vec<(String, i64, CrlKind)> = {
            let crls = self.reg.va.crls.lock().await;
            crls.iter()
                .filter(|(_, c)| {
                    now >= c.answer.this_update + self.reg.va_config.crl_validity_secs / 2
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        for (ca, shard, kind) in &due {
            self.crl(ca, *shard, *kind).await?;
        }
        Ok(due.len())
    }
}

/// How long a replica waits for another one signing the same CRL before it gives up (the other's lock dies
/// with its database session, so a killed replica holds it no longer than its connection lives).
const CRL_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Caches `row` as the CRL for `key` and answers it.
fn adopt(
    crls: &mut HashMap<(String, i64, CrlKind), CachedCrl>,
    key: (String, i64, CrlKind),
    row: CrlRow,
    marker: (i64, i64),
) -> CrlAnswer {
    let answer = CrlAnswer {
        der: Arc::new(row.der),
        number: row.number,
        this_update: row.this_update,
        next_update: row.next_update,
    };
    crls.insert(
        key,
        CachedCrl {
            answer: answer.clone(),
            marker,
        },
    );
    answer
}

/// The URL of a CA's CRL partition.
pub(crate) fn crl_url(config: &VaConfig, ca_id: &str, shard: i64, shards: i64) -> String {
    if shards > 1 {
        format!("{}/crl/{ca_id}/{shard}", config.public_url)
    } else {
        format!("{}/crl/{ca_id}", config.public_url)
    }
}

/// The CRL partition of a serial: fixed by the serial and the CA's (immutable) partition count.
pub(crate) fn shard_of(serial: &Serial, shards: i64) -> i64 {
    if shards <= 1 {
        return 0;
    }
    let digest = shedu_pki::fingerprint_sha256(serial.as_bytes());
    let first = u64::from_str_radix(&digest[..16], 16).unwrap_or(0);
    (first % shards as u64) as i64
}

/// What OCSP says of a certificate in this state (`None`: the CA never issued it).
fn status_of(row: Option<&StatusRow>) -> CertStatus {
    match row {
        Some(row) if row.status == Status::Revoked.as_str() => CertStatus::Revoked {
            at: row.revoked_at.unwrap_or_default(),
            reason: row
                .reason
                .as_deref()
                .and_then(|r| r.parse::<RevocationReason>().ok())
                .filter(|r| *r != RevocationReason::Unspecified),
        },
        Some(_) => CertStatus::Good,
        None => CertStatus::Unknown,
    }
}

fn responder_from(key: Arc<SoftwareKey>, cert: Vec<u8>, not_after: i64) -> LoadedResponder {
    let key_hash = ocsp::key_hash(key.public_key());
    LoadedResponder {
        key_type: key.key_type(),
        signer: CaSigner(key),
        key_hash,
        certs: vec![cert],
        not_after,
    }
}

fn days_left(not_after: i64, now: i64) -> u32 {
    u32::try_from(((not_after - now) / 86_400).max(1)).unwrap_or(u32::MAX)
}

enum AnswerError {
    /// No managed CA can answer (unknown issuer, or a CA without a key).
    NotAuthoritative,
    Service(Error),
}

impl From<Error> for AnswerError {
    fn from(e: Error) -> Self {
        AnswerError::Service(e)
    }
}

impl From<shedu_pki::Error> for AnswerError {
    fn from(e: shedu_pki::Error) -> Self {
        AnswerError::Service(e.into())
    }
}

//! Cluster coherence: several replicas on one PostgreSQL database keep their caches (signed OCSP answers,
//! loaded CAs, the OCSP issuer index, trust anchors, secret-store callers, KMIP objects) true to what any
//! replica committed.
//!
//! - **Changes reach every replica.** Triggers notify each revocation and each CA change in the change's own
//!   transaction (`store/migrations/postgres/0020_cluster.sql`; secret-store changes: `0031`, KMIP object
//!   and grant changes: `0037`); each replica's feed task applies them to its
//!   caches, in commit order.
//! - **Caches only under a lease.** Every [`BEAT`] the task sends a heartbeat through the same feed. Its own
//!   heartbeat coming back proves that every change committed before it was sent has been applied, so the
//!   replica may use its caches until [`LEASE`] after the heartbeat left, and records that lease in
//!   `replica_leases`. A replica that loses the database or its feed stops serving cached answers within
//!   [`LEASE`] (fail closed), and forgets every cache when its feed reconnects (notifications sent meanwhile
//!   are lost).
//! - **A revocation returns once nobody can contradict it.** After the commit, [`Registry::on_revoked`]
//!   raises a fence to the database's time and waits until every other replica with a live lease has
//!   synced past it, or its lease ran out: at most [`LEASE`] plus a margin, usually one heartbeat. A replica
//!   whose lease is not live (it lost the database, or just started) may take one only from a heartbeat
//!   sent after the fence, and a lease is recorded before it is used. So after `revoke` returns on any
//!   replica, no replica answers `good` from a cache.
//!
//! - **RA and ACME account changes** are notified the same way (`0036_acme_changes.sql`), and their
//!   calls wait for the replicas as a revocation does ([`Registry::on_ra_changed`]).
//!
//! On SQLite one process owns the database: caches are always usable and nothing is sent.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use shedu_store::{Backend, Change};

use crate::Registry;

/// How long after a heartbeat left a replica may use its caches, if it came back.
pub const LEASE: Duration = Duration::from_millis(3_000);

/// How often a replica sends a heartbeat.
pub const BEAT: Duration = Duration::from_millis(250);

/// The longest a revocation waits for other replicas: a lease, and a margin for the lease's own write.
const MAX_WAIT: Duration = Duration::from_millis(3_500);

/// This replica's lease on its caches.
#[derive(Debug)]
pub(crate) struct Coherence {
    /// This replica's id in `replica_leases` and in heartbeats.
    replica: String,
    /// `false` on SQLite: one process, caches always usable.
    clustered: bool,
    base: Instant,
    /// Until when (ms since `base`) caches may be used; 0: not now.
    usable_until_ms: AtomicU64,
}

impl Coherence {
    pub(crate) fn new(backend: Backend) -> Coherence {
        Coherence {
            replica: crate::registry::new_id(),
            clustered: backend == Backend::Postgres,
            base: Instant::now(),
            usable_until_ms: AtomicU64::new(0),
        }
    }

    /// Whether answers cached in memory may be served now.
    pub(crate) fn caches_usable(&self) -> bool {
        !self.clustered
            || self.ms_since_base(Instant::now()) < self.usable_until_ms.load(Ordering::Acquire)
    }

    fn ms_since_base(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// A heartbeat sent at `sent` came back: caches are true as of then.
    fn extend(&self, sent: Instant) {
        let until = self.ms_since_base(sent + LEASE);
        self.usable_until_ms.fetch_max(until, Ordering::AcqRel);
    }

    fn suspend(&self) {
        self.usable_until_ms.store(0, Ordering::Release);
    }
}

/// Most entries a [`Remembered`] keeps; full, it starts afresh.
const MAX_REMEMBERED: usize = 10_000;

/// Rows read from the database and kept in memory by key while a generation counter of the registry stays
/// where it was when they were read: every change that could alter them moves the counter (here, or on
/// another replica through the change feed) before the change returns. A row read before a change and
/// offered after it is not kept. Used only while this replica's caches are usable (on PostgreSQL, under a
/// live lease). The one home of that rule: EST's RAs and client certificates, ACME's RAs and accounts and
/// the secret store's callers are each a `Remembered`.
pub(crate) struct Remembered<K, V> {
    entries: RwLock<(u64, HashMap<K, V>)>,
}

impl<K, V> Default for Remembered<K, V> {
    fn default() -> Self {
        Remembered {
            entries: RwLock::new((0, HashMap::new())),
        }
    }
}

impl<K, V> std::fmt::Debug for Remembered<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.entries.read().map(|e| e.1.len()).unwrap_or(0);
        f.debug_struct("Remembered").field("kept", &kept).finish()
    }
}

impl<K: Eq + std::hash::Hash, V: Clone> Remembered<K, V> {
    /// The row of `key`, from memory when kept under the current `generation`, else from `read` (kept if
    /// no change moved `generation` meanwhile). An error is not kept.
    pub(crate) async fn get_or_read<Q, F, Fut, E>(
        &self,
        coherence: &Coherence,
        generation: &AtomicU64,
        key: &Q,
        read: F,
    ) -> Result<V, E>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + std::hash::Hash + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.get_or_read_fresh(coherence, generation, key, |_| true, read)
            .await
    }

    /// [`get_or_read`](Self::get_or_read) where a kept row is served only while `fresh` says so (a row
    /// with its own expiry); a stale one is read again and replaced.
    pub(crate) async fn get_or_read_fresh<Q, F, Fut, E>(
        &self,
        coherence: &Coherence,
        generation: &AtomicU64,
        key: &Q,
        fresh: impl Fn(&V) -> bool,
        read: F,
    ) -> Result<V, E>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + std::hash::Hash + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let usable = coherence.caches_usable();
        let before = generation.load(Ordering::Acquire);
        if usable
            && let Ok(entries) = self.entries.read()
            && entries.0 == before
            && let Some(hit) = entries.1.get(key)
            && fresh(hit)
        {
            return Ok(hit.clone());
        }
        let value = read().await?;
        if usable && let Ok(mut entries) = self.entries.write() {
            let now = generation.load(Ordering::Acquire);
            if entries.0 != now || entries.1.len() >= MAX_REMEMBERED {
                *entries = (now, HashMap::new());
            }
            if before == now {
                entries.1.insert(key.to_owned(), value.clone());
            }
        }
        Ok(value)
    }
}

impl Registry {
    /// Called once a certificate's revocation is committed, before the revoking call returns: no OCSP answer
    /// computed from the old status may be served afterwards, and no client certificate is accepted on a
    /// status read before it, here or on another replica.
    pub(crate) async fn on_revoked(&self, ca_id: &str, serial: &shedu_pki::Serial) {
        self.forget_revoked(ca_id, serial);
        if self.coherence.clustered {
            self.await_replicas().await;
        }
    }

    /// After a committed change of CA `id`'s settings: forgets it here and returns once every other replica
    /// with a live lease has forgotten it too (as [`Registry::on_revoked`] waits), so no replica issues
    /// under the old settings after the change returns.
    pub(crate) async fn on_ca_changed(self: &Arc<Self>, id: &str) {
        self.forget_ca(id);
        if self.coherence.clustered {
            self.await_replicas().await;
        }
    }

    /// Waits until every other replica holding a lease has applied what this one committed so far.
    async fn await_replicas(&self) {
        let deadline = Instant::now() + MAX_WAIT;
        let me = &self.coherence.replica;
        let waited = async {
            let since = self.store.raise_fence().await?;
            loop {
                if self.store.replicas_behind(me, since).await? == 0 {
                    return Ok::<_, shedu_store::Error>(true);
                }
                if Instant::now() >= deadline {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        match waited.await {
            Ok(true) => {}
            // Every lease still counted ran out by now: no replica serves its caches any longer.
            Ok(false) => {
                tracing::warn!("a replica did not confirm a revocation; its lease ran out")
            }
            Err(e) => {
                // Unknown who is behind: wait until every lease that could be live has run out.
                tracing::warn!(error = %e, "cannot check other replicas after a revocation; waiting out their leases");
                tokio::time::sleep_until(deadline.into()).await;
            }
        }
    }

    /// Applies a change committed by any replica to this one's caches.
    fn apply(self: &Arc<Self>, change: &Change) {
        match change {
            Change::Certificate { ca_id, serial } => {
                if let Ok(serial) = serial.parse() {
                    self.forget_revoked(ca_id, &serial);
                } else {
                    self.forget_everything();
                }
            }
            Change::Ca { id } => self.forget_ca(id),
            Change::Secrets => self.forget_secret_callers(),
            Change::Kmip { uid } => self.kmip_objects.forget(uid),
            Change::Acme => self.forget_ras(),
            Change::Beat { .. } => {}
        }
    }

    /// Forgets what was cached of a certificate's status: its OCSP answers, and every client certificate
    /// remembered so far ([`Registry::revocation_generation`]).
    fn forget_revoked(&self, ca_id: &str, serial: &shedu_pki::Serial) {
        self.va.forget_certificate(ca_id, serial);
        self.revocation_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes every secret-store caller cached so far unusable (a token or policy changed).
    pub(crate) fn forget_secret_callers(&self) {
        self.secrets_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes every RA and ACME account cached so far unusable (ACME's RA settings and accounts, EST's RAs):
    /// an RA or an ACME account changed.
    pub(crate) fn forget_ras(&self) {
        self.ra_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Called once a change of an RA or an ACME account is committed, before the call returns: this
    /// replica forgets its cached ACME settings and accounts at once, and on PostgreSQL the call waits
    /// until every other replica with a live lease has applied the change (or its lease ran out), as for a
    /// revocation: an account deactivated, or an RA's ACME disabled, is refused everywhere once the change
    /// returned.
    pub(crate) async fn on_ra_changed(&self) {
        self.forget_ras();
        if self.coherence.clustered {
            self.await_replicas().await;
        }
    }

    /// Called once a secret-store token revocation (or another token or policy change that may refuse
    /// what was allowed) is committed, before the call returns: this replica forgets its cached callers at
    /// once, and on PostgreSQL the call waits until every other replica with a live lease has applied the
    /// change (or its lease ran out), as for a certificate's revocation.
    pub(crate) async fn on_secrets_changed(&self) {
        self.forget_secret_callers();
        if self.coherence.clustered {
            self.await_replicas().await;
        }
    }
}

impl Registry {
    /// Called once a change of KMIP objects `uids` (their rows or their grants) is committed, or failed,
    /// before the changing call returns: this replica forgets them at once, and on PostgreSQL the call
    /// waits until every other replica with a live lease has applied the change (or its lease ran out),
    /// as for a certificate's revocation. So after a Revoke, Destroy or grant revocation returns, no
    /// replica answers a read from what it cached before.
    pub(crate) async fn on_kmip_changed(&self, uids: &[&str]) {
        for uid in uids {
            self.kmip_objects.forget(uid);
        }
        if self.coherence.clustered {
            self.await_replicas().await;
        }
    }
}

/// Starts the feed task when the registry's database is PostgreSQL. It ends when the registry is dropped.
pub(crate) fn spawn(registry: Weak<Registry>) {
    tokio::spawn(async move {
        let mut attempt = 0u32;
        loop {
            let Some(reg) = registry.upgrade() else {
                return;
            };
            let name = format!("shedu-feed-{}", reg.coherence.replica);
            let feed = reg.store.change_feed(&name).await;
            drop(reg);
            match feed {
                Ok(None) => return,
                Ok(Some(feed)) => {
                    attempt = 0;
                    follow(&registry, feed).await;
                }
                Err(e) => {
                    attempt = attempt.saturating_add(1);
                    if attempt == 1 {
                        tracing::warn!(error = %e, "cluster change feed unavailable; caches are not used until it is back");
                    }
                }
            }
            let Some(reg) = registry.upgrade() else {
                return;
            };
            reg.coherence.suspend();
            drop(reg);
            tokio::time::sleep(BEAT).await;
        }
    });
}

/// Follows one feed connection until it is lost or the registry is gone.
async fn follow(registry: &Weak<Registry>, mut feed: shedu_store::ChangeFeed) {
    // Changes sent while no feed listened are lost: start from empty caches.
    match registry.upgrade() {
        Some(reg) => reg.forget_everything(),
        None => return,
    }
    // The feed is read by a task of its own, so that no notification is dropped half-read when a heartbeat
    // is due.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let next = feed.next().await;
            let end = !matches!(next, Ok(Some(_)));
            if tx.send(next).is_err() || end {
                return;
            }
        }
    });
    let mut beat = tokio::time::interval(BEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    let mut sent: VecDeque<(u64, Instant)> = VecDeque::new();
    loop {
        tokio::select! {
            _ = beat.tick() => {
                let Some(reg) = registry.upgrade() else { break };
                n += 1;
                let at = Instant::now();
                match reg.store.send_beat(&reg.coherence.replica, n).await {
                    Ok(_) => {
                        sent.push_back((n, at));
                        // Heartbeats that never came back are forgotten after a while.
                        while sent.len() > 64 {
                            sent.pop_front();
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "heartbeat not sent"),
                }
            }
            next = rx.recv() => {
                let Some(reg) = registry.upgrade() else { break };
                match next {
                    Some(Ok(Some(Change::Beat { replica, n: k, at_ms }))) if replica == reg.coherence.replica => {
                        while let Some(&(m, at)) = sent.front() {
                            if m > k {
                                break;
                            }
                            sent.pop_front();
                            if m == k {
                                // Recorded first: a revocation must see the lease before it is used.
                                let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
                                match reg.store.renew_lease(&reg.coherence.replica, at_ms, at_ms + lease_ms).await {
                                    Ok(true) => reg.coherence.extend(at),
                                    Ok(false) => tracing::debug!("lease refused: heartbeat older than a revocation"),
                                    Err(e) => tracing::debug!(error = %e, "lease not recorded"),
                                }
                            }
                        }
                    }
                    Some(Ok(Some(change))) => reg.apply(&change),
                    Some(Ok(None)) | None => {
                        tracing::warn!("cluster change feed lost; caches are not used until it is back");
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "cluster change feed failed; caches are not used until it is back");
                        break;
                    }
                }
            }
        }
    }
    reader.abort();
}

/// Values the replicas of one database must share, settled by the first replica that stores one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agreed {
    /// The internal TLS CA ([`TlsCaBundle`]), so clients trust every replica with one `ca.pem`.
    InternalTlsCa,
    /// The bootstrap admin token, sealed under [`ADMIN_TOKEN_CONTEXT`], so it works on every replica.
    AdminToken,
}

impl Agreed {
    pub(crate) const fn meta_key(self) -> &'static str {
        match self {
            Agreed::InternalTlsCa => "cluster_internal_tls_ca",
            Agreed::AdminToken => "cluster_admin_token",
        }
    }
}

/// Associated data of the admin token sealed in the database (master-key rotation re-seals it).
pub const ADMIN_TOKEN_CONTEXT: &[u8] = b"shedu-admin-token";

/// The keystore owner of the internal TLS CA's key (`server::tls` seals it so; rotation re-seals it).
pub const INTERNAL_TLS_CA_OWNER: &str = "tls-ca";
/// The internal TLS CA's key type.
pub const INTERNAL_TLS_CA_KEY_TYPE: shedu_pki::KeyType = shedu_pki::KeyType::EcP256;

/// The internal TLS CA as replicas share it: its certificate (PEM) and its key as the keystore sealed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsCaBundle {
    /// The CA certificate, PEM.
    pub pem: Vec<u8>,
    /// The key, sealed by the keystore to [`INTERNAL_TLS_CA_OWNER`].
    pub sealed_key: Vec<u8>,
}

impl TlsCaBundle {
    /// A 4-byte big-endian length, the PEM, the sealed key.
    pub fn encode(&self) -> Vec<u8> {
        let len = u32::try_from(self.pem.len()).unwrap_or(u32::MAX);
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(&self.pem);
        out.extend_from_slice(&self.sealed_key);
        out
    }

    /// `None` when `bytes` is not an encoded bundle.
    pub fn decode(bytes: &[u8]) -> Option<TlsCaBundle> {
        let (len, rest) = bytes.split_at_checked(4)?;
        let len = usize::try_from(u32::from_be_bytes(len.try_into().ok()?)).ok()?;
        let (pem, sealed_key) = rest.split_at_checked(len)?;
        Some(TlsCaBundle {
            pem: pem.to_vec(),
            sealed_key: sealed_key.to_vec(),
        })
    }
}

impl crate::Services {
    /// The value of `what` all replicas use: the one already stored, or `candidate` if it is the first.
    /// On SQLite (one process) `candidate` itself, nothing stored.
    pub async fn agree(&self, what: Agreed, candidate: &[u8]) -> Result<Vec<u8>, crate::Error> {
        let store = &self.registry.store;
        if store.backend() != Backend::Postgres {
            return Ok(candidate.to_vec());
        }
        if store
            .meta_insert_new(what.meta_key(), candidate)
            .await
            .map_err(crate::error::store_err("meta"))?
        {
            return Ok(candidate.to_vec());
        }
        self.agreed(what)
            .await?
            .ok_or_else(|| crate::Error::Internal(format!("{what:?} vanished")))
    }

    /// The value of `what` the replicas already agreed on; `None` before the first one stored it, and
    /// always on SQLite.
    pub async fn agreed(&self, what: Agreed) -> Result<Option<Vec<u8>>, crate::Error> {
        let store = &self.registry.store;
        if store.backend() != Backend::Postgres {
            return Ok(None);
        }
        store
            .meta_get(what.meta_key())
            .await
            .map_err(crate::error::store_err("meta"))
    }
}

/// The agreed internal TLS CA re-sealed from `old` to `new` (master-key rotation), if there is one.
pub(crate) async fn resealed_tls_ca(
    store: &shedu_store::Store,
    old: &shedu_keys::Keystore,
    new: &shedu_keys::Keystore,
) -> Result<Option<(&'static str, Vec<u8>)>, crate::Error> {
    let key = Agreed::InternalTlsCa.meta_key();
    let Some(bytes) = store
        .meta_get(key)
        .await
        .map_err(crate::error::store_err("meta"))?
    else {
        return Ok(None);
    };
    let mut bundle = TlsCaBundle::decode(&bytes)
        .ok_or_else(|| crate::Error::Internal("the agreed internal TLS CA is malformed".into()))?;
    let ca_key = old.open(
        INTERNAL_TLS_CA_OWNER,
        INTERNAL_TLS_CA_KEY_TYPE,
        &bundle.sealed_key,
    )?;
    bundle.sealed_key = new.seal(INTERNAL_TLS_CA_OWNER, &ca_key)?;
    Ok(Some((key, bundle.encode())))
}

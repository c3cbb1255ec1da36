//! The audit log: who changed what, when, from where and in which request, append-only and hash-chained.
//!
//! Every store method that makes a change somebody asked for takes an [`Audited`]: the acting principal (an
//! [`AuditContext`]) and the action's name, both chosen by the caller (the services crate owns the words).
//! It appends the audit row inside the change's own transaction, so the row commits or rolls back with the
//! change it describes. Background changes (the lifecycle sweep, responder rotation) take none, because
//! nobody asked for them. Requests that change nothing (refused, failed) are recorded on their own
//! ([`Store::append_audit`]).
//!
//! Each row carries `hash = SHA-256(prev_hash ‖ every other column)`, every field length-prefixed so that
//! no two different rows encode alike; the first row's `prev_hash` is 32 zero bytes. `seq` is not a database
//! sequence: the appender assigns head + 1 while holding the chain (SQLite: the single writer connection;
//! PostgreSQL: a transaction-scoped advisory lock taken before the head is read and held until commit). So
//! seq order is chain order is commit order, seqs have no gaps, and a missing seq is a removed row.
//! [`Store::verify_audit_chain`] walks the chain in seq order and names the first row that breaks it.
//! What a chain cannot show is the loss of its newest rows; compare the head with a copy kept elsewhere.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_lc_rs::digest;
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::{Backend, Error, Page, Store};

/// The PostgreSQL advisory lock ("SHAU") that makes appenders take turns. One-key locks never collide with
/// the sink locks (two-key) and differ from the sweep's key.
const CHAIN_LOCK: i64 = 0x5348_4155;
/// `prev_hash` of the first row.
const GENESIS: [u8; 32] = [0; 32];
/// Hashed first, so that a future change of the encoding cannot collide with this one.
const DOMAIN: &[u8] = b"shedu-audit-v1";
/// Rows per INSERT when appending (14 parameters each) and per SELECT when verifying.
const CHUNK: usize = 512;
const COLUMNS: &str = "seq, id, time, principal, principal_id, role, action, target, outcome, source, \
                       request_id, detail, prev_hash, hash";

/// Who is acting, from where, in which request. Cloning shares the "written" flag, so the gateway sees
/// whether a change made with a clone recorded itself.
#[derive(Clone, Debug)]
pub struct AuditContext {
    /// Display name of the caller (user name, API key name, `anonymous`).
    pub principal: String,
    /// Stable id of the caller (user id, API key id), empty when unknown.
    pub principal_id: String,
    /// The caller's role, empty when unknown.
    pub role: String,
    /// The client's address.
    pub source: String,
    /// The request id (`X-Request-Id`).
    pub request_id: String,
    written: Arc<AtomicBool>,
}

impl AuditContext {
    /// A context for one request.
    pub fn new(
        principal: impl Into<String>,
        principal_id: impl Into<String>,
        role: impl Into<String>,
        source: impl Into<String>,
        request_id: impl Into<String>,
    ) -> AuditContext {
        AuditContext {
            principal: principal.into(),
            principal_id: principal_id.into(),
            role: role.into(),
            source: source.into(),
            request_id: request_id.into(),
            written: Arc::default(),
        }
    }

    /// Whether a store write appended a row for this context. Set when the row is written, before its
    /// transaction commits: a request that then fails should still be recorded as failed on its own.
    pub fn written(&self) -> bool {
        self.written.load(Ordering::Acquire)
    }

    /// A record of this context's request, for [`Store::append_audit`].
    pub fn entry(
        &self,
        action: &str,
        target: &str,
        outcome: Outcome,
        detail: Option<String>,
        time: i64,
    ) -> AuditEntry {
        AuditEntry {
            time,
            principal: self.principal.clone(),
            principal_id: self.principal_id.clone(),
            role: self.role.clone(),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.as_str().to_string(),
            source: self.source.clone(),
            request_id: self.request_id.clone(),
            detail,
        }
    }
}

/// How a recorded request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked.
    Success,
    /// Authentication or authorization refused it.
    Denied,
    /// It failed (bad input, conflict, server error).
    Failure,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// What one audit row says, apart from its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unix seconds.
    pub time: i64,
    /// See [`AuditContext::principal`].
    pub principal: String,
    /// See [`AuditContext::principal_id`].
    pub principal_id: String,
    /// See [`AuditContext::role`].
    pub role: String,
    /// A dotted verb (`certificate.issue`), or `<METHOD> <route>` for requests that changed nothing.
    pub action: String,
    /// The id of what changed (CA id, `<ca>/<serial>`, user id), or the request path.
    pub target: String,
    /// `success`, `denied` or `failure` ([`Outcome`]).
    pub outcome: String,
    /// The client's address.
    pub source: String,
    /// The request id.
    pub request_id: String,
    /// Anything else worth keeping (the HTTP status of a request recorded on its own).
    pub detail: Option<String>,
}

/// A stored audit row.
#[derive(Clone, Debug)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Unique id.
    pub id: String,
    /// The content.
    pub entry: AuditEntry,
    /// The previous row's hash.
    pub prev_hash: Vec<u8>,
    /// SHA-256 over `prev_hash` and every other column.
    pub hash: Vec<u8>,
}

/// Filters for listing the audit log (combined with AND); pages go newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Exactly this principal name.
    pub principal: Option<String>,
    /// Exactly this action.
    pub action: Option<String>,
    /// Exactly this outcome.
    pub outcome: Option<String>,
    /// Exactly this request id.
    pub request_id: Option<String>,
    /// Only rows newer than this seq.
    pub after_seq: Option<i64>,
    /// Only rows older than this seq (the cursor of the next page).
    pub before_seq: Option<i64>,
    /// Page size (clamped to 1..=1000).
    pub limit: i64,
}

/// The result of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditVerdict {
    /// Every row links to the one before it and hashes to its stored hash.
    Intact {
        /// Rows checked.
        records: u64,
    },
    /// The first row that breaks the chain.
    Broken {
        /// Its seq.
        seq: i64,
        /// Its id.
        id: String,
        /// Why.
        reason: ChainBreak,
    },
}

/// Why a row breaks the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainBreak {
    /// Rows before it are missing: the chain expected `expected` here.
    Gap {
        /// The seq that should have come next.
        expected: i64,
    },
    /// Its `prev_hash` is not the previous row's hash (rows removed, reordered, or a neighbour rehashed).
    PrevHashMismatch,
    /// Its content no longer hashes to its stored hash (the row was edited).
    HashMismatch,
    /// Its columns cannot be read as written (the row was edited to other types).
    Unreadable,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreak::Gap { expected } => {
                write!(f, "gap in the chain: record {expected} is missing")
            }
            ChainBreak::PrevHashMismatch => {
                f.write_str("prev_hash mismatch: it does not follow the record before it")
            }
            ChainBreak::HashMismatch => {
                f.write_str("hash mismatch: its content was changed after it was written")
            }
            ChainBreak::Unreadable => f.write_str("unreadable: its columns were changed"),
        }
    }
}

/// The audit record a change writes with itself: who asked, and the action's name (a dotted
/// `<noun>.<verb>` such as `certificate.revoke`, chosen by the caller).
#[derive(Clone, Copy, Debug)]
pub struct Audited<'a> {
    /// The acting principal.
    pub actor: &'a AuditContext,
    /// The action.
    pub action: &'a str,
}

/// An audit row waiting for a transaction, with the flag of the context it came from.
#[derive(Debug)]
pub(crate) struct Pending {
    entry: AuditEntry,
    written: Arc<AtomicBool>,
}

/// The successful change of `target` at `now` that `audit` describes.
pub(crate) fn pending(audit: &Audited<'_>, target: &str, now: i64) -> Pending {
    Pending {
        entry: audit
            .actor
            .entry(audit.action, target, Outcome::Success, None, now),
        written: audit.actor.written.clone(),
    }
}

/// Appends the audit row of `audit` on `target` inside `tx`, the transaction of the change. Call it once per
/// change, after the change's own statements and right before commit: on PostgreSQL it takes the chain's
/// lock, held until the transaction ends, so the later it comes the less other writers wait.
///
/// - `target`: the id of what changed: a CA id, `<ca>/<serial>`, a user id.
/// - `now`: the time of the change, Unix seconds.
pub(crate) async fn record(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    audit: &Audited<'_>,
    target: &str,
    now: i64,
) -> Result<(), Error> {
    append(tx, backend, &[&pending(audit, target, now)]).await
}

/// Appends the audit record of `audit` on `target` (see [`record`]) and commits `tx`: the last step of every
/// audited change.
pub(crate) async fn commit(
    mut tx: Transaction<'_, Any>,
    backend: Backend,
    audit: &Audited<'_>,
    target: &str,
    now: i64,
) -> Result<(), Error> {
    record(&mut tx, backend, audit, target, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Chains `rows`, in order, after the current head inside `tx` and marks their contexts written.
pub(crate) async fn append(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rows: &[&Pending],
) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CHAIN_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    let head: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    let (mut seq, mut prev) = head.unwrap_or((0, GENESIS.to_vec()));
    for chunk in rows.chunks(CHUNK) {
        let mut sql = format!("INSERT INTO audit_log ({COLUMNS}) VALUES ");
        crate::writer::push_placeholders(&mut sql, chunk.len(), 14, backend);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for p in chunk {
            seq += 1;
            let id = hex::encode(rand::random::<[u8; 16]>());
            let hash = chain_hash(&prev, seq, &id, &p.entry);
            let e = &p.entry;
            q = q
                .bind(seq)
                .bind(id)
                .bind(e.time)
                .bind(e.principal.clone())
                .bind(e.principal_id.clone())
                .bind(e.role.clone())
                .bind(e.action.clone())
                .bind(e.target.clone())
                .bind(e.outcome.clone())
                .bind(e.source.clone())
                .bind(e.request_id.clone())
                .bind(e.detail.clone())
                .bind(prev)
                .bind(hash.clone());
            prev = hash;
        }
        q.execute(&mut **tx).await?;
    }
    for p in rows {
        p.written.store(true, Ordering::Release);
    }
    Ok(())
}

impl Store {
    /// Appends one row in its own transaction: for a request that was refused, failed or changed nothing,
    /// so no store write recorded it.
    pub async fn append_audit(&self, entry: AuditEntry) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let row = Pending {
            entry,
            written: Arc::default(),
        };
        append(&mut tx, self.backend, &[&row]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lists audit rows newest first.
    pub async fn audit_records(&self, f: &AuditFilter) -> Result<Page<AuditRecord>, Error> {
        let mut conds = Vec::new();
        let mut texts = Vec::new();
        for (column, value) in [
            ("principal", &f.principal),
            ("action", &f.action),
            ("outcome", &f.outcome),
            ("request_id", &f.request_id),
        ] {
            if let Some(v) = value {
                texts.push(v.clone());
                conds.push(format!("{column} = ${}", conds.len() + 1));
            }
        }
        let mut seqs = Vec::new();
        for (op, value) in [(">", f.after_seq), ("<", f.before_seq)] {
            if let Some(v) = value {
                seqs.push(v);
                conds.push(format!("seq {op} ${}", conds.len() + 1));
            }
        }
        let where_clause = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log {where_clause} ORDER BY seq DESC LIMIT ${}",
            conds.len() + 1
        );
        let limit = f.limit.clamp(1, 1000);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for v in texts {
            q = q.bind(v);
        }
        for v in seqs {
            q = q.bind(v);
        }
        let rows = q.bind(limit + 1).fetch_all(&self.read).await?;
        let mut items = rows
            .iter()
            .map(AuditRecord::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|r| r.seq)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Walks the whole chain in seq order, a chunk at a time (memory stays flat at any length), recomputing
    /// every hash. Returns the first row that breaks the chain, or how many rows were checked.
    pub async fn verify_audit_chain(&self) -> Result<AuditVerdict, Error> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let mut prev = GENESIS.to_vec();
        let mut last = 0;
        loop {
            let rows = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(last)
                .bind(CHUNK as i64)
                .fetch_all(&self.read)
                .await?;
            if rows.is_empty() {
                return Ok(AuditVerdict::Intact {
                    records: last as u64,
                });
            }
            for row in &rows {
                let r = match AuditRecord::from_row(row) {
                    Ok(r) => r,
                    Err(_) => {
                        return Ok(AuditVerdict::Broken {
                            seq: row.try_get("seq")?,
                            id: row.try_get("id").unwrap_or_default(),
                            reason: ChainBreak::Unreadable,
                        });
                    }
                };
                let broken = if r.seq != last + 1 {
                    Some(ChainBreak::Gap { expected: last + 1 })
                } else if r.prev_hash != prev {
                    Some(ChainBreak::PrevHashMismatch)
                } else if chain_hash(&r.prev_hash, r.seq, &r.id, &r.entry) != r.hash {
                    Some(ChainBreak::HashMismatch)
                } else {
                    None
                };
                if let Some(reason) = broken {
                    return Ok(AuditVerdict::Broken {
                        seq: r.seq,
                        id: r.id,
                        reason,
                    });
                }
                last = r.seq;
                prev = r.hash;
            }
        }
    }
}

impl AuditRecord {
    fn from_row(r: &AnyRow) -> Result<AuditRecord, Error> {
        Ok(AuditRecord {
            seq: r.try_get("seq")?,
            id: r.try_get("id")?,
            entry: AuditEntry {
                time: r.try_get("time")?,
                principal: r.try_get("principal")?,
                principal_id: r.try_get("principal_id")?,
                role: r.try_get("role")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                outcome: r.try_get("outcome")?,
                source: r.try_get("source")?,
                request_id: r.try_get("request_id")?,
                detail: r.try_get("detail")?,
            },
            prev_hash: r.try_get("prev_hash")?,
            hash: r.try_get("hash")?,
        })
    }
}

/// SHA-256 over the domain tag, `prev`, and every column of the row, each field length-prefixed (an
/// absent `detail` is a distinct tag byte, never the empty string).
fn chain_hash(prev: &[u8], seq: i64, id: &str, e: &AuditEntry) -> Vec<u8> {
    fn put(h: &mut digest::Context, bytes: &[u8]) {
        h.update(&(bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    let mut h = digest::Context::new(&digest::SHA256);
    put(&mut h, DOMAIN);
    put(&mut h, prev);
    put(&mut h, &seq.to_be_bytes());
    put(&mut h, id.as_bytes());
    put(&mut h, &e.time.to_be_bytes());
    for text in [
        &e.principal,
        &e.principal_id,
        &e.role,
        &e.action,
        &e.target,
        &e.outcome,
        &e.source,
        &e.request_id,
    ] {
        put(&mut h, text.as_bytes());
    }
    match &e.detail {
        None => h.update(&[0]),
        Some(d) => {
            h.update(&[1]);
            put(&mut h, d.as_bytes());
        }
    }
    h.finish().as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::scratch::{ScratchDb, TEST_WORDS, TestBackend};

    fn entry(principal: &str, role: &str, detail: Option<&str>) -> AuditEntry {
        AuditContext::new(principal, "id-1", role, "127.0.0.1", "req-1").entry(
            "certificate.issue",
            "ca/01",
            Outcome::Success,
            detail.map(str::to_string),
            1_700_000_000,
        )
    }

    #[test]
    fn the_encoding_keeps_field_boundaries() {
        let h = |e: &AuditEntry| chain_hash(&GENESIS, 1, "x", e);
        assert_ne!(h(&entry("ab", "c", None)), h(&entry("a", "bc", None)));
        assert_ne!(h(&entry("a", "b", None)), h(&entry("a", "b", Some(""))));
        assert_ne!(
            chain_hash(&GENESIS, 1, "x", &entry("a", "b", None)),
            chain_hash(&GENESIS, 2, "x", &entry("a", "b", None)),
            "the seq is hashed"
        );
        assert_eq!(h(&entry("a", "b", None)).len(), 32);
    }

    async fn exec(store: &Store, sql: &str) {
        sqlx::query(AssertSqlSafe(sql.to_string()))
            .execute(&store.write)
            .await
            .unwrap();
    }

    async fn broken(store: &Store) -> (i64, ChainBreak) {
        match store.verify_audit_chain().await.unwrap() {
            AuditVerdict::Broken { seq, reason, .. } => (seq, reason),
            intact => panic!("expected a broken chain, got {intact:?}"),
        }
    }

    /// `record` writes the actor's row and marks the actor written, and the verifier tells an edit, a
    /// removal and a renumbering apart, naming the row.
    async fn records_and_verifies(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        assert_eq!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerdict::Intact { records: 0 },
        );
        let ctx = AuditContext::new("alice", "u0", "admin", "10.0.0.1", "req-9");
        assert!(!ctx.written());
        let mut tx = store.write.begin().await.unwrap();
        let audit = Audited {
            actor: &ctx,
            action: "user.create",
        };
        record(&mut tx, store.backend, &audit, "u1", 1_700_000_000)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(ctx.written());
        for n in 0..3 {
            store
                .append_audit(ctx.entry("POST /x", "/x", Outcome::Denied, None, n))
                .await
                .unwrap();
        }
        assert_eq!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerdict::Intact { records: 4 }
        );
        let page = store
            .audit_records(&AuditFilter {
                request_id: Some("req-9".into()),
                limit: 3,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        let seqs: Vec<i64> = page.items.iter().map(|r| r.seq).collect();
        assert_eq!((seqs, page.next_cursor), (vec![4, 3, 2], Some(2)));
        assert_eq!(page.items[2].entry.outcome, "denied");
        let first = &store
            .audit_records(&AuditFilter {
                before_seq: Some(2),
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .items[0];
        assert_eq!(
            (
                first.entry.action.as_str(),
                first.entry.principal.as_str(),
                first.prev_hash.as_slice()
            ),
            ("user.create", "alice", GENESIS.as_slice())
        );

        exec(
            &store,
            "UPDATE audit_log SET outcome = 'success' WHERE seq = 3",
        )
        .await;
        assert_eq!(broken(&store).await, (3, ChainBreak::HashMismatch));
        exec(
            &store,
            "UPDATE audit_log SET outcome = 'denied' WHERE seq = 3",
        )
        .await;
        assert_eq!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerdict::Intact { records: 4 },
            "the hash covers content, nothing else"
        );
        exec(&store, "DELETE FROM audit_log WHERE seq = 2").await;
        assert_eq!(broken(&store).await, (3, ChainBreak::Gap { expected: 2 }));
        exec(&store, "UPDATE audit_log SET seq = 2 WHERE seq = 3").await;
        assert_eq!(broken(&store).await, (2, ChainBreak::PrevHashMismatch));
    }

    /// Concurrent appenders take turns: the chain stays whole and seqs stay dense.
    async fn concurrent_appends_chain(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let ctx = AuditContext::new("bob", "u1", "operator", "10.0.0.2", "req");
        let tasks: Vec<_> = (0..40)
            .map(|n| {
                let (store, e) = (
                    store.clone(),
                    ctx.entry("POST /y", "/y", Outcome::Failure, None, n),
                );
                tokio::spawn(async move { store.append_audit(e).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(
            store.verify_audit_chain().await.unwrap(),
            AuditVerdict::Intact { records: 40 }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_and_verifies_sqlite() {
        records_and_verifies(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_and_verifies_postgres() {
        records_and_verifies(TestBackend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_chain_sqlite() {
        concurrent_appends_chain(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_chain_postgres() {
        concurrent_appends_chain(TestBackend::Postgres).await;
    }
}

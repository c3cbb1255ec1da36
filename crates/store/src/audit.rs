//! The audit log: who changed what, when, from where and in which request, append-only and chained under
//! a secret key.
//!
//! Every store method that makes a change somebody asked for takes an [`Audited`]: the acting principal (an
//! [`AuditContext`]) and the action's name, both chosen by the caller (the services crate owns the words).
//! It appends the audit row inside the change's own transaction, so the row commits or rolls back with the
//! change it describes. Background changes (the lifecycle sweep, responder rotation) take none, because
//! nobody asked for them. Requests that change nothing (refused, failed) are recorded on their own
//! ([`Store::append_audit`]).
//!
//! Each row carries `hash = HMAC-SHA256(audit key, prev_hash ‖ every other column)`, every field
//! length-prefixed so that no two different rows encode alike; the first row's `prev_hash` is 32 zero bytes.
//! Whoever can write the database but does not hold the audit key cannot recompute a row, so an edit, a
//! removal or a whole rewrite shows. The key ([`ChainKey`]) is given by the caller ([`Store::set_audit_key`];
//! core keeps it sealed under the master key) together with `keyed_from`, the first seq it chains:
//! rows before it were written by versions that chained with plain SHA-256 and are checked as that legacy
//! segment. `keyed_from` travels sealed with the key, so nobody without the master key can move the switch
//! point to pass keyed rows off as legacy ones. A store without a key chains with SHA-256 (the legacy
//! encoding; only tests and storage tools run so).
//!
//! `seq` is not a database sequence: the appender assigns head + 1 while holding the chain (SQLite: the
//! single writer connection; PostgreSQL: a transaction-scoped advisory lock taken before the head is read
//! and held until commit). So seq order is chain order is commit order, seqs have no gaps, and a missing seq
//! is a removed row. [`Store::verify_audit_chain`] walks the chain in seq order and names the first row that
//! breaks it. What a chain cannot show is the loss of its newest rows: [`Checkpoint`]s (head seq and value,
//! authenticated with the audit key) kept outside the table show that.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use aws_lc_rs::{digest, hmac};
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::{Backend, Error, Page, Store};

/// The PostgreSQL advisory lock ("SHAU") that makes appenders take turns. One-key locks never collide with
/// the sink locks (two-key) and differ from the sweep's key.
pub(crate) const CHAIN_LOCK: i64 = 0x5348_4155;
/// `prev_hash` of the first row.
const GENESIS: [u8; 32] = [0; 32];
/// Hashed first, so that a future change of the encoding cannot collide with this one: the legacy
/// (SHA-256) chain, the keyed chain and checkpoints each have their own.
const DOMAIN: &[u8] = b"shedu-audit-v1";
const KEYED_DOMAIN: &[u8] = b"shedu-audit-v2-hmac";
const CHECKPOINT_DOMAIN: &[u8] = b"shedu-audit-checkpoint-v1";
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
    /// Every row links to the one before it and hashes to its stored hash, and the chain reaches the
    /// checkpoint it was given.
    Intact {
        /// Rows checked.
        records: u64,
        /// How many of them are legacy rows (SHA-256, written before the chain was keyed); all of them
        /// when the store has no audit key.
        legacy: u64,
    },
    /// The chain is whole but ends before a checkpoint: its newest rows were cut off.
    Truncated {
        /// The seq of the last row left (0: none).
        head: i64,
        /// The checkpoint's seq.
        checkpoint: i64,
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
    /// It should be chained under the audit key but its hash is a plain SHA-256: the chain from here on was
    /// recomputed by someone without the key.
    NotKeyed,
    /// It chains correctly but is not the row a checkpoint recorded at its seq: the chain was rewritten
    /// (or replaced) from here or before.
    CheckpointMismatch,
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
            ChainBreak::NotKeyed => f.write_str(
                "not keyed: its hash is a plain SHA-256, not a MAC under the audit key (the chain was \
                 recomputed without the key)",
            ),
            ChainBreak::CheckpointMismatch => f.write_str(
                "checkpoint mismatch: its value is not the one a checkpoint recorded (the chain was rewritten)",
            ),
        }
    }
}

/// The secret key that chains audit rows (HMAC-SHA256), and the first seq it chains. `Debug` never
/// shows the key.
pub struct ChainKey {
    key: hmac::Key,
    keyed_from: i64,
}

impl ChainKey {
    /// A key over `secret` (32 random bytes) that chains the rows from seq `keyed_from` on.
    pub fn new(secret: &[u8], keyed_from: i64) -> ChainKey {
        ChainKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            keyed_from,
        }
    }

    /// The first seq this key chains; rows before it are legacy (SHA-256).
    pub fn keyed_from(&self) -> i64 {
        self.keyed_from
    }

    /// The tag of a checkpoint of `seq`, `head` at `time`.
    fn tag(&self, seq: i64, head: &[u8], time: i64) -> Vec<u8> {
        let mut h = hmac::Context::with_key(&self.key);
        checkpoint_encoding(seq, head, time, |b| h.update(b));
        h.sign().as_ref().to_vec()
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainKey(<redacted>, keyed_from: {})", self.keyed_from)
    }
}

/// How rows are chained: the backend and, once set, the audit key. Clones share the key.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    pub(crate) backend: Backend,
    key: Arc<OnceLock<ChainKey>>,
}

impl Chain {
    pub(crate) fn new(backend: Backend) -> Chain {
        Chain {
            backend,
            key: Arc::default(),
        }
    }

    /// The chain value of a row: HMAC under the key from its `keyed_from` on, SHA-256 before it (or
    /// without a key).
    fn value(&self, prev: &[u8], seq: i64, id: &str, e: &AuditEntry) -> Vec<u8> {
        match self.key.get() {
            Some(k) if seq >= k.keyed_from => keyed_hash(&k.key, prev, seq, id, e),
            _ => chain_hash(prev, seq, id, e),
        }
    }
}

/// A signed statement of the chain's head, kept outside the table (the server's log, the event bus, a file
/// in the data folder) so that cutting the chain's tail shows: the chain must still reach `seq` with value
/// `head`. One line of text: `v1 seq=<n> head=<hex> time=<unix seconds> tag=<hex>`, where `tag` is
/// HMAC-SHA256 under the audit key over the other three (with their own domain tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The head's seq.
    pub seq: i64,
    /// The head's chain value.
    pub head: Vec<u8>,
    /// When the checkpoint was taken, Unix seconds.
    pub time: i64,
    /// HMAC-SHA256 under the audit key.
    pub tag: Vec<u8>,
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v1 seq={} head={} time={} tag={}",
            self.seq,
            hex::encode(&self.head),
            self.time,
            hex::encode(&self.tag)
        )
    }
}

impl FromStr for Checkpoint {
    type Err = &'static str;

    fn from_str(line: &str) -> Result<Checkpoint, &'static str> {
        const FORM: &str = "expected `v1 seq=<n> head=<hex> time=<n> tag=<hex>`";
        let mut parts = line.split_ascii_whitespace();
        if parts.next() != Some("v1") {
            return Err(FORM);
        }
        let mut field = |name: &str| {
            parts
                .next()
                .and_then(|p| p.strip_prefix(name))
                .and_then(|p| p.strip_prefix('='))
                .ok_or(FORM)
        };
        let seq = field("seq")?.parse().map_err(|_| FORM)?;
        let head = hex32(field("head")?).ok_or(FORM)?;
        let time = field("time")?.parse().map_err(|_| FORM)?;
        let tag = hex32(field("tag")?).ok_or(FORM)?;
        if parts.next().is_some() {
            return Err(FORM);
        }
        Ok(Checkpoint {
            seq,
            head,
            time,
            tag,
        })
    }
}

/// 32 bytes from 64 hex digits.
pub fn hex32(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok().filter(|b| b.len() == 32)
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
#[derive(Clone, Debug)]
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
    chain: &Chain,
    audit: &Audited<'_>,
    target: &str,
    now: i64,
) -> Result<(), Error> {
    append(tx, chain, &[&pending(audit, target, now)]).await
}

/// Appends the audit record of `audit` on `target` (see [`record`]) and commits `tx`: the last step of every
/// audited change.
pub(crate) async fn commit(
    mut tx: Transaction<'_, Any>,
    chain: &Chain,
    audit: &Audited<'_>,
    target: &str,
    now: i64,
) -> Result<(), Error> {
    record(&mut tx, chain, audit, target, now).await?;
    tx.commit().await?;
    Ok(())
}

tokio::task_local! {
    /// Set by the group-commit writer around one piece of work ([`deferring`]): the rows that work
    /// appends are kept here, and the writer appends those of the whole batch at once, right before its
    /// commit, so the chain's lock is held for that last step only.
    static DEFERRED: std::cell::RefCell<Vec<Pending>>;
}

/// Runs `work` with its audit rows deferred: [`append`] inside it only collects them. Returns the work's
/// result and the rows, for the caller to append (or drop, if the work failed).
pub(crate) async fn deferring<T>(work: impl std::future::Future<Output = T>) -> (T, Vec<Pending>) {
    DEFERRED
        .scope(std::cell::RefCell::new(Vec::new()), async {
            let out = work.await;
            (out, DEFERRED.with(|rows| rows.take()))
        })
        .await
}

/// Chains `rows`, in order, after the current head inside `tx` and marks their contexts written. One HMAC
/// per row, and no round trip beyond the chain's lock, the head read and the INSERT. Inside [`deferring`]
/// the rows are only collected.
pub(crate) async fn append(
    tx: &mut Transaction<'_, Any>,
    chain: &Chain,
    rows: &[&Pending],
) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let deferred = DEFERRED.try_with(|kept| {
        kept.borrow_mut().extend(rows.iter().map(|p| (*p).clone()));
    });
    if deferred.is_ok() {
        return Ok(());
    }
    let head: Option<(i64, Vec<u8>)> = match chain.backend {
        // The lock and the head in one round trip (migration 0040).
        Backend::Postgres => {
            sqlx::query_as(LOCK_HEAD_PG)
                .bind(CHAIN_LOCK)
                .bind("")
                .fetch_optional(&mut **tx)
                .await?
        }
        Backend::Sqlite => sqlx::query_as(HEAD).fetch_optional(&mut **tx).await?,
    };
    append_after(tx, chain, head, rows).await
}

/// The newest row's seq and chain value (no row when the log is empty).
const HEAD: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";

/// PostgreSQL: takes the chain's lock (`pg_advisory_xact_lock` of [`CHAIN_LOCK`], `$1`), then reads the head
/// with a snapshot taken once the lock is granted (migration 0040's function; a statement's own snapshot
/// predates its wait for the lock, and would miss a row another appender committed meanwhile). `$2` is
/// evaluated before the lock is taken. No row when the log is empty.
pub(crate) const LOCK_HEAD_PG: &str = "SELECT seq, hash FROM shedu_audit_lock_head($1, $2)";

/// [`append`] once the transaction holds the chain's lock (on PostgreSQL: taken with [`LOCK_HEAD_PG`]) and
/// has read `head` (the newest row's seq and chain value; `None` when the log is empty) after it. Never
/// deferred.
pub(crate) async fn append_after(
    tx: &mut Transaction<'_, Any>,
    chain: &Chain,
    head: Option<(i64, Vec<u8>)>,
    rows: &[&Pending],
) -> Result<(), Error> {
    let backend = chain.backend;
    let links = chained(chain, head, rows);
    if backend == Backend::Postgres {
        // One statement of one shape whatever the number of rows (see `writer::Recordset`).
        sqlx::query(AssertSqlSafe(insert_pg("$1")))
            .bind(recordset_pg(&links))
            .execute(&mut **tx)
            .await?;
    } else {
        for chunk in links.chunks(CHUNK) {
            let mut sql = format!("INSERT INTO audit_log ({COLUMNS}) VALUES ");
            crate::writer::push_placeholders(&mut sql, chunk.len(), 14, backend);
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for link in chunk {
                let e = link.entry;
                q = q
                    .bind(link.seq)
                    .bind(link.id.clone())
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
                    .bind(link.prev.clone())
                    .bind(link.hash.clone());
            }
            q.execute(&mut **tx).await?;
        }
    }
    for p in rows {
        p.written.store(true, Ordering::Release);
    }
    Ok(())
}

/// PostgreSQL: [`append_after`], then commits `tx`, in ONE round trip: the INSERT, COMMIT and a BEGIN sent as
/// one simple query (the rows inlined as a dollar-quoted JSON literal, [`dollar_quoted`]), so the chain's lock
/// is released as soon as the commit is durable rather than one more turn of the caller later. The empty
/// transaction the BEGIN opens is `tx`'s to commit (no WAL, no fsync), outside the lock. On an error nothing of
/// the transaction is committed (PostgreSQL skips the statements after a failing one) and dropping `tx` rolls it
/// back.
pub(crate) async fn append_and_commit_pg(
    mut tx: Transaction<'_, Any>,
    chain: &Chain,
    head: Option<(i64, Vec<u8>)>,
    rows: &[&Pending],
) -> Result<(), Error> {
    let json = recordset_pg(&chained(chain, head, rows));
    let sql = format!("{}; COMMIT; BEGIN", insert_pg(&dollar_quoted(&json)));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    for p in rows {
        p.written.store(true, Ordering::Release);
    }
    tx.commit().await?;
    Ok(())
}

/// PostgreSQL: the INSERT of the audit rows of the JSON recordset `source` ([`recordset_pg`]).
fn insert_pg(source: &str) -> String {
    format!(
        "INSERT INTO audit_log ({COLUMNS}) SELECT seq, id, time, principal, principal_id, role, action, \
         target, outcome, source, request_id, detail, decode(prev_hash, 'hex'), decode(hash, 'hex') \
         FROM json_to_recordset({source}::json) AS r(seq bigint, id text, time bigint, principal text, \
         principal_id text, role text, action text, target text, outcome text, source text, \
         request_id text, detail text, prev_hash text, hash text)"
    )
}

/// A row about to be appended: its entry, place and chain values.
struct Link<'a> {
    entry: &'a AuditEntry,
    seq: i64,
    id: String,
    prev: Vec<u8>,
    hash: Vec<u8>,
}

/// `rows` chained after `head` (the newest row's seq and chain value; `None`: the log is empty).
fn chained<'a>(chain: &Chain, head: Option<(i64, Vec<u8>)>, rows: &[&'a Pending]) -> Vec<Link<'a>> {
    let (mut seq, mut prev) = head.unwrap_or((0, GENESIS.to_vec()));
    rows.iter()
        .map(|p| {
            seq += 1;
            let id = crate::ordered_id();
            let hash = chain.value(&prev, seq, &id, &p.entry);
            Link {
                entry: &p.entry,
                seq,
                id,
                prev: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
        .collect()
}

/// PostgreSQL: `links` as the JSON recordset of [`insert_pg`].
fn recordset_pg(links: &[Link<'_>]) -> String {
    let mut set = crate::writer::Recordset::default();
    for link in links {
        let e = link.entry;
        set.push(serde_json::json!({
            "seq": link.seq, "id": link.id, "time": e.time, "principal": e.principal,
            "principal_id": e.principal_id, "role": e.role, "action": e.action, "target": e.target,
            "outcome": e.outcome, "source": e.source, "request_id": e.request_id, "detail": e.detail,
            "prev_hash": hex::encode(&link.prev), "hash": hex::encode(&link.hash),
        }));
    }
    set.finish()
}

/// `text` as a PostgreSQL dollar-quoted string constant, whose content is taken as is (no escapes): its tag
/// (`$s0$`, `$s1$`, …) is the first whose first occurrence in `text` + tag is the closing one, so nothing
/// inside can end it.
fn dollar_quoted(text: &str) -> String {
    (0u64..)
        .map(|n| format!("$s{n}$"))
        .map(|tag| format!("{tag}{text}{tag}"))
        .find(|quoted| {
            let tag_len = (quoted.len() - text.len()) / 2;
            quoted[tag_len..].find(&quoted[..tag_len]) == Some(text.len())
        })
        .unwrap_or_default()
}

impl Store {
    /// Chains every row from `key.keyed_from()` on under `key`, in this store and all its clones. Set it
    /// once, before the first append; `Error::Config` when a key is already set.
    pub fn set_audit_key(&self, key: ChainKey) -> Result<(), Error> {
        self.chain
            .key
            .set(key)
            .map_err(|_| Error::Config("the audit key is already set".into()))
    }

    /// Whether an audit key is set.
    pub fn has_audit_key(&self) -> bool {
        self.chain.key.get().is_some()
    }

    /// The newest row's seq and chain value; `None` when the log is empty.
    pub async fn audit_head(&self) -> Result<Option<(i64, Vec<u8>)>, Error> {
        Ok(sqlx::query_as(HEAD).fetch_optional(&self.read).await?)
    }

    /// A checkpoint of the current head at `time`; `None` when the log is empty or no key is set.
    pub async fn audit_checkpoint(&self, time: i64) -> Result<Option<Checkpoint>, Error> {
        let Some(key) = self.chain.key.get() else {
            return Ok(None);
        };
        Ok(self.audit_head().await?.map(|(seq, head)| Checkpoint {
            tag: key.tag(seq, &head, time),
            seq,
            head,
            time,
        }))
    }

    /// Whether `cp` was made with this store's audit key; `None` when no key is set.
    pub fn audit_checkpoint_authentic(&self, cp: &Checkpoint) -> Option<bool> {
        let key = self.chain.key.get()?;
        let mut msg = Vec::new();
        checkpoint_encoding(cp.seq, &cp.head, cp.time, |b| msg.extend_from_slice(b));
        Some(hmac::verify(&key.key, &msg, &cp.tag).is_ok())
    }

    /// Appends one row in its own transaction: for a request that was refused, failed or changed nothing,
    /// so no store write recorded it.
    pub async fn append_audit(&self, entry: AuditEntry) -> Result<(), Error> {
        let row = Pending {
            entry,
            written: Arc::default(),
        };
        // Group commit: records of reads made side by side share one commit (and one turn of the chain
        // lock), appended with the batch's other rows in one INSERT; each is durable before this returns.
        self.append_alone(row).await
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
    /// every hash (a MAC from the key's `keyed_from` on, SHA-256 before it). Returns the first row that
    /// breaks the chain, or how many rows were checked. `anchors` are checkpoints' `(seq, head)`: the
    /// chain must reach every such seq with that value, else it was truncated or rewritten.
    pub async fn verify_audit_chain(
        &self,
        anchors: &[(i64, &[u8])],
    ) -> Result<AuditVerdict, Error> {
        let mut anchors = anchors.to_vec();
        anchors.sort_unstable();
        let newest = anchors.last().map(|(seq, _)| *seq);
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let keyed_from = self.chain.key.get().map_or(i64::MAX, ChainKey::keyed_from);
        let mut prev = GENESIS.to_vec();
        let mut last = 0;
        loop {
            let rows = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(last)
                .bind(CHUNK as i64)
                .fetch_all(&self.read)
                .await?;
            if rows.is_empty() {
                if let Some(checkpoint) = newest.filter(|seq| *seq > last) {
                    return Ok(AuditVerdict::Truncated {
                        head: last,
                        checkpoint,
                    });
                }
                return Ok(AuditVerdict::Intact {
                    records: last as u64,
                    legacy: last.min(keyed_from - 1).max(0) as u64,
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
                } else if self.chain.value(&r.prev_hash, r.seq, &r.id, &r.entry) != r.hash {
                    let legacy = chain_hash(&r.prev_hash, r.seq, &r.id, &r.entry);
                    Some(if r.seq >= keyed_from && legacy == r.hash {
                        ChainBreak::NotKeyed
                    } else {
                        ChainBreak::HashMismatch
                    })
                } else if anchors_at(&anchors, r.seq).any(|head| head != r.hash) {
                    Some(ChainBreak::CheckpointMismatch)
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

#[cfg(feature = "testing")]
impl Store {
    /// What someone who can write the database does to cover an edit: recomputes `prev_hash` and `hash`
    /// of the rows in `seqs`, in order, with HMAC under `key`, or with plain SHA-256 (the legacy
    /// algorithm, all that is left without the key) when `None`. Rows outside `seqs` are left alone.
    pub async fn rechain_audit(
        &self,
        seqs: std::ops::RangeInclusive<i64>,
        key: Option<&[u8]>,
    ) -> Result<(), Error> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.write)
            .await?;
        let key = key.map(|k| hmac::Key::new(hmac::HMAC_SHA256, k));
        let mut prev = GENESIS.to_vec();
        for row in &rows {
            let r = AuditRecord::from_row(row)?;
            if !seqs.contains(&r.seq) {
                prev = r.hash;
                continue;
            }
            let hash = match &key {
                Some(k) => keyed_hash(k, &prev, r.seq, &r.id, &r.entry),
                None => chain_hash(&prev, r.seq, &r.id, &r.entry),
            };
            sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3")
                .bind(prev)
                .bind(hash.clone())
                .bind(r.seq)
                .execute(&self.write)
                .await?;
            prev = hash;
        }
        Ok(())
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

/// The heads `anchors` (sorted) record at `seq`.
fn anchors_at<'a>(anchors: &'a [(i64, &'a [u8])], seq: i64) -> impl Iterator<Item = &'a [u8]> {
    let start = anchors.partition_point(|(s, _)| *s < seq);
    anchors[start..]
        .iter()
        .take_while(move |(s, _)| *s == seq)
        .map(|(_, head)| *head)
}

/// The legacy chain value: SHA-256 over [`encoding`] with the legacy domain tag.
fn chain_hash(prev: &[u8], seq: i64, id: &str, e: &AuditEntry) -> Vec<u8> {
    let mut h = digest::Context::new(&digest::SHA256);
    encoding(DOMAIN, prev, seq, id, e, |b| h.update(b));
    h.finish().as_ref().to_vec()
}

/// The keyed chain value: HMAC-SHA256 under `key` over [`encoding`] with the keyed domain tag.
fn keyed_hash(key: &hmac::Key, prev: &[u8], seq: i64, id: &str, e: &AuditEntry) -> Vec<u8> {
    let mut h = hmac::Context::with_key(key);
    encoding(KEYED_DOMAIN, prev, seq, id, e, |b| h.update(b));
    h.sign().as_ref().to_vec()
}

/// Feeds `out` the domain tag, `prev`, and every column of the row, each field length-prefixed (an absent
/// `detail` is a distinct tag byte, never the empty string).
fn encoding(
    domain: &[u8],
    prev: &[u8],
    seq: i64,
    id: &str,
    e: &AuditEntry,
    mut out: impl FnMut(&[u8]),
) {
    let mut put = |bytes: &[u8]| {
        out(&(bytes.len() as u64).to_be_bytes());
        out(bytes);
    };
    put(domain);
    put(prev);
    put(&seq.to_be_bytes());
    put(id.as_bytes());
    put(&e.time.to_be_bytes());
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
        put(text.as_bytes());
    }
    match &e.detail {
        None => out(&[0]),
        Some(d) => {
            out(&[1]);
            out(&(d.len() as u64).to_be_bytes());
            out(d.as_bytes());
        }
    }
}

/// What a checkpoint's tag covers: its own domain tag, the seq, the head and the time, length-prefixed.
fn checkpoint_encoding(seq: i64, head: &[u8], time: i64, mut out: impl FnMut(&[u8])) {
    for field in [
        CHECKPOINT_DOMAIN,
        &seq.to_be_bytes(),
        head,
        &time.to_be_bytes(),
    ] {
        out(&(field.len() as u64).to_be_bytes());
        out(field);
    }
}

/// PostgreSQL: returns once at least `n` transactions of `store`'s database wait for an advisory lock (the
/// chain's, in the tests that hold it).
#[cfg(test)]
pub(crate) async fn until_lock_waiters(store: &Store, n: i64) {
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&store.read)
        .await
        .expect("pg_locks");
        if waiting >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
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
        match store.verify_audit_chain(&[]).await.unwrap() {
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
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact {
                records: 0,
                legacy: 0
            },
        );
        let ctx = AuditContext::new("alice", "u0", "admin", "10.0.0.1", "req-9");
        assert!(!ctx.written());
        let mut tx = store.write.begin().await.unwrap();
        let audit = Audited {
            actor: &ctx,
            action: "user.create",
        };
        record(&mut tx, &store.chain, &audit, "u1", 1_700_000_000)
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
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact {
                records: 4,
                legacy: 4
            }
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
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact {
                records: 4,
                legacy: 4
            },
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
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact {
                records: 40,
                legacy: 40
            }
        );
    }

    /// Rows after the switch point are MACs under the key: a rewrite with SHA-256 or under another key, a
    /// rewritten legacy segment and a cut tail are all found, and checkpoints are bound to the key.
    /// See: issue 12 item 8.
    async fn keyed_chain_resists_rewrites(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let ctx = AuditContext::new("carol", "u2", "admin", "10.0.0.3", "req-k");
        let add = |store: Store, n: i64| {
            let e = ctx.entry("POST /z", "/z", Outcome::Failure, None, n);
            async move { store.append_audit(e).await.unwrap() }
        };
        let secret = [7u8; 32];
        {
            let legacy = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
            add(legacy.clone(), 1).await;
            add(legacy.clone(), 2).await;
            legacy.close().await;
        }
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        store.set_audit_key(ChainKey::new(&secret, 3)).unwrap();
        assert!(store.set_audit_key(ChainKey::new(&secret, 3)).is_err());
        for n in 3..=5 {
            add(store.clone(), n).await;
        }
        assert_eq!(
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact {
                records: 5,
                legacy: 2
            }
        );
        let rows = store
            .audit_records(&AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .items;
        let third = rows.iter().find(|r| r.seq == 3).unwrap();
        assert_ne!(
            third.hash,
            chain_hash(&third.prev_hash, 3, &third.id, &third.entry),
            "keyed rows are not plain SHA-256"
        );

        let cp = store
            .audit_checkpoint(1_800_000_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cp.seq, 5);
        assert_eq!(cp.to_string().parse::<Checkpoint>(), Ok(cp.clone()));
        assert_eq!(store.audit_checkpoint_authentic(&cp), Some(true));
        let mut forged = cp.clone();
        forged.seq = 4;
        assert_eq!(store.audit_checkpoint_authentic(&forged), Some(false));
        let anchor = &[(cp.seq, cp.head.as_slice())];
        assert_eq!(
            store.verify_audit_chain(anchor).await.unwrap(),
            AuditVerdict::Intact {
                records: 5,
                legacy: 2
            }
        );

        // Another key (a rewrite by someone who made up their own) and no key at all both fail.
        let other = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        other.set_audit_key(ChainKey::new(&[8u8; 32], 3)).unwrap();
        assert_eq!(
            broken_with(&other, &[]).await,
            (3, ChainBreak::HashMismatch)
        );
        assert_eq!(other.audit_checkpoint_authentic(&cp), Some(false));

        // The tail cut off: the chain is whole, but ends before the checkpoint.
        exec(&store, "DELETE FROM audit_log WHERE seq = 5").await;
        assert_eq!(
            store.verify_audit_chain(anchor).await.unwrap(),
            AuditVerdict::Truncated {
                head: 4,
                checkpoint: 5
            }
        );
        // Then the keyed rows rewritten with plain SHA-256 (the pre-key algorithm).
        store.rechain_audit(3..=4, None).await.unwrap();
        assert_eq!(broken_with(&store, &[]).await, (3, ChainBreak::NotKeyed));
        // Or with the right key but a legacy row edited and the legacy segment recomputed.
        store.rechain_audit(3..=4, Some(&secret)).await.unwrap();
        assert!(matches!(
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact { records: 4, .. }
        ));
        exec(
            &store,
            "UPDATE audit_log SET principal = 'mallory' WHERE seq = 1",
        )
        .await;
        store.rechain_audit(1..=2, None).await.unwrap();
        assert_eq!(
            broken_with(&store, &[]).await,
            (3, ChainBreak::PrevHashMismatch)
        );
    }

    async fn broken_with(store: &Store, anchor: &[(i64, &[u8])]) -> (i64, ChainBreak) {
        match store.verify_audit_chain(anchor).await.unwrap() {
            AuditVerdict::Broken { seq, reason, .. } => (seq, reason),
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn checkpoint_lines_parse_strictly() {
        let line = format!(
            "v1 seq=3 head={} time=9 tag={}",
            "ab".repeat(32),
            "cd".repeat(32)
        );
        let cp: Checkpoint = line.parse().unwrap();
        assert_eq!((cp.seq, cp.time, cp.to_string()), (3, 9, line.clone()));
        for bad in [
            "",
            "v2 seq=3",
            &line.replace("seq=3", "seq=x"),
            &line.replace("head=ab", "head=a"),
            &format!("{line} extra"),
            &line.replace(" tag=", " mac="),
        ] {
            assert!(bad.parse::<Checkpoint>().is_err(), "{bad}");
        }
    }

    /// PostgreSQL: the head read with the chain's lock (one round trip, migration 0040) sees the row an appender
    /// committed while this one waited for the lock, as a statement of its own after the lock would. (A
    /// statement's own snapshot predates its wait: it would chain the next row to the head before that one.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_head_is_read_after_the_lock_is_granted_postgres() {
        let db = ScratchDb::new(TestBackend::Postgres).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let ctx = AuditContext::new("bob", "u1", "operator", "10.0.0.2", "req");
        let entry = |n: i64| ctx.entry("POST /y", "/y", Outcome::Success, None, n);
        store.append_audit(entry(1)).await.unwrap();
        // The blocker appends a row (taking the lock) and keeps the lock until it commits.
        let mut blocker = store.write.begin().await.unwrap();
        let second = Pending {
            entry: entry(2),
            written: Arc::default(),
        };
        append(&mut blocker, &store.chain, &[&second])
            .await
            .unwrap();
        let waiter = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.write.begin().await.unwrap();
                let head: Option<(i64, Vec<u8>)> = sqlx::query_as(LOCK_HEAD_PG)
                    .bind(CHAIN_LOCK)
                    .bind("")
                    .fetch_optional(&mut *tx)
                    .await
                    .unwrap();
                tx.rollback().await.unwrap();
                head
            })
        };
        until_lock_waiters(&store, 1).await;
        blocker.commit().await.unwrap();
        let (seq, hash) = waiter.await.unwrap().expect("a head");
        assert_eq!(
            seq, 2,
            "the head read missed the row committed during the wait"
        );
        assert_eq!(Some((seq, hash)), store.audit_head().await.unwrap());
    }

    /// Two servers on one PostgreSQL database (two stores), each writing through both of its writers (the
    /// certificate writer's batches and the group writer's audit rows) at once: every write succeeds and the
    /// chain holds every row, in one unbroken line.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_servers_chain_one_log_postgres() {
        let db = ScratchDb::new(TestBackend::Postgres).await;
        let stores = [
            Store::connect(&db.url, &TEST_WORDS).await.unwrap(),
            Store::connect(&db.url, &TEST_WORDS).await.unwrap(),
        ];
        let ctx = AuditContext::new("bob", "u1", "operator", "10.0.0.2", "req");
        let mut tasks = Vec::new();
        for (s, store) in stores.iter().enumerate() {
            for n in 0..30u8 {
                let token = 30 * s as u8 + n;
                let writer = store.clone();
                tasks.push(tokio::spawn(async move {
                    crate::connector::issue_test_token(&writer, token).await
                }));
                let (store, e) = (
                    store.clone(),
                    ctx.entry("POST /y", "/y", Outcome::Success, None, i64::from(n)),
                );
                tasks.push(tokio::spawn(async move { store.append_audit(e).await }));
            }
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(
            stores[1].verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact {
                records: 120,
                legacy: 120
            }
        );
    }

    /// PostgreSQL: a dollar-quoted constant reads back as exactly its text, whatever the text holds (tags,
    /// parts of tags at its end, quotes, backslashes), and audit rows appended with their commit in one round
    /// trip (the certificate writer's) keep such text exactly, chained.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_committed_with_their_append_keep_any_text_postgres() {
        let db = ScratchDb::new(TestBackend::Postgres).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let texts = [
            "",
            "$",
            "$s0$",
            "x$s0",
            "$s0$s1$x$s",
            "$$",
            "'",
            "\\'\\",
            "é\u{1F600}",
            "a $s0$ b $s1$ c",
        ];
        for text in texts {
            let back: String =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT {}", dollar_quoted(text))))
                    .fetch_one(&store.read)
                    .await
                    .unwrap();
            assert_eq!(back, text);
        }
        let principal = "mallory $s0$'); DROP TABLE audit_log; --\\ $s1";
        let ctx = AuditContext::new(principal, "u1", "operator", "10.0.0.2", "req");
        let audited = Audited {
            actor: &ctx,
            action: "connector.token_create",
        };
        store
            .insert_connector_token(
                &crate::connector::test_token(1, "pairing"),
                &crate::connector::test_token_event(1, 1_700_000_000),
                &audited,
            )
            .await
            .unwrap();
        assert!(ctx.written());
        let page = store.audit_records(&AuditFilter::default()).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].entry.principal, principal);
        assert!(matches!(
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact { records: 1, .. }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyed_chain_resists_rewrites_sqlite() {
        keyed_chain_resists_rewrites(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyed_chain_resists_rewrites_postgres() {
        keyed_chain_resists_rewrites(TestBackend::Postgres).await;
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

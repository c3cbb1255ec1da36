//! Group commit for short write transactions.
//!
//! With `synchronous=FULL` (SQLite) or `synchronous_commit=on` (PostgreSQL) every commit waits for an fsync
//! (0.2–4 ms on the machines this project is measured on). On SQLite there is one writer; on PostgreSQL
//! every audited transaction holds the audit chain's advisory lock from its append until its commit,
//! fsync included, so audited writers queue one behind the other there too. Here callers send their work
//! (a closure over a transaction) and wait; a batch takes everything queued (up to [`MAX_BATCH`]), opens
//! one transaction, runs each piece of work inside its own SAVEPOINT, appends the audit rows of every
//! piece that succeeded (the pieces' own appends are deferred to this point: `audit::deferring`), commits
//! once and answers every waiter. An audit row queued alone ([`Store::append_audit`]: a read's, a
//! refusal's) runs nothing and needs no savepoint, and a batch of one piece of work runs it without one:
//! a batch of reads' records is BEGIN, the chain's lock and head (one statement), one INSERT and COMMIT. One fsync and one short turn of the chain lock serve the whole batch.
//! SQLite runs one batch at a time; PostgreSQL runs up to [`slots`] at once, each on its own connection,
//! and a new batch forms from what queued while every slot was busy.
//!
//! - **Isolation as before.** Within a batch, work runs one piece after the other on one connection: each
//!   sees the committed database plus the work before it in its batch. On SQLite nothing runs beside it;
//!   on PostgreSQL other transactions (other batches, the certificate writer, sweeps) run beside it under
//!   READ COMMITTED, as each piece's own transaction did.
//! - **One failure fails one caller.** Work that returns an error is rolled back to its savepoint (which
//!   also clears PostgreSQL's aborted-transaction state) and its audit rows are dropped; its caller gets
//!   that error; its neighbours commit.
//! - **Committed before answered.** No caller hears `Ok` before the commit that holds its work; if the
//!   audit append or the commit fails, every caller of the batch gets the error (nothing of theirs was
//!   written).
//! - **A panic loses no writer.** Each batch runs in a task of its own: a panic fails that batch's callers
//!   (their answers are dropped: [`Error::Config`] "writer stopped"), and the next batch runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::audit::{self, Chain};
use crate::{Backend, Error, Store};

/// Most pieces of work committed together.
const MAX_BATCH: usize = 256;

/// A boxed, sendable future borrowing for `'a`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Work over a transaction: it reads and writes through `tx` and must not commit it.
type Work = Box<
    dyn for<'a, 'b> FnOnce(&'a mut Transaction<'b, Any>) -> BoxFuture<'a, Result<(), Error>> + Send,
>;

/// What a caller queues.
enum Piece {
    /// Work over the batch's transaction.
    Work(Work),
    /// An audit row alone (a read's, a refusal's): nothing runs for it before the batch's append, so
    /// nothing of it can fail on its own, and it needs no savepoint.
    Audit(Box<audit::Pending>),
}

struct Job {
    piece: Piece,
    done: oneshot::Sender<Result<(), Error>>,
}

/// A handle to the group-commit task.
#[derive(Clone, Debug)]
pub(crate) struct GroupWriter {
    tx: mpsc::Sender<Job>,
    /// Batches committed (or attempted) so far: [`Store::group_commits`].
    batches: Arc<AtomicU64>,
}

/// How many batches run at once on `backend`: SQLite has one writer connection; PostgreSQL runs several,
/// each on its own connection (each holds the audit chain's lock only for its final append and commit).
pub(crate) fn slots(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 6,
    }
}

fn stopped() -> Error {
    Error::Config("database writer stopped".into())
}

impl GroupWriter {
    /// The writer over `pool`, running up to `parallel` batches at once, each on its own connection.
    pub(crate) fn spawn(pool: AnyPool, chain: Chain, parallel: usize) -> GroupWriter {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let batches = Arc::new(AtomicU64::new(0));
        let parallel = parallel.max(1);
        tokio::spawn(run(pool, chain, rx, batches.clone(), parallel));
        GroupWriter { tx, batches }
    }
}

/// Takes a free slot, then everything queued: while every slot is busy, work piles up for the next batch.
async fn run(
    pool: AnyPool,
    chain: Chain,
    mut rx: mpsc::Receiver<Job>,
    batches: Arc<AtomicU64>,
    parallel: usize,
) {
    let slots = Arc::new(Semaphore::new(parallel));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let jobs = std::mem::take(&mut batch);
        batches.fetch_add(1, Ordering::Relaxed);
        let (pool, chain) = (pool.clone(), chain.clone());
        // A panic inside the work ends only this task (its slot is released as it unwinds); its callers'
        // answers drop with it.
        tokio::spawn(async move {
            commit_batch(pool, chain, jobs).await;
            drop(slot);
        });
    }
}

async fn commit_batch(pool: AnyPool, chain: Chain, jobs: Vec<Job>) {
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let e = Error::from(e);
            for job in jobs {
                let _ = job.done.send(Err(e.again()));
            }
            return;
        }
    };
    // A batch of one piece of work runs it on the transaction itself: its failure rolls back the batch,
    // which holds nothing else, so the savepoint (two statements, two round trips on PostgreSQL) would
    // protect nobody.
    let alone = jobs.len() == 1;
    let mut answers = Vec::with_capacity(jobs.len());
    let mut audit_rows = Vec::new();
    for job in jobs {
        let outcome = match job.piece {
            Piece::Audit(row) => {
                audit_rows.push(*row);
                Ok(())
            }
            Piece::Work(work) if alone => {
                let (result, rows) = audit::deferring(work(&mut tx)).await;
                if result.is_ok() {
                    audit_rows.extend(rows);
                }
                result
            }
            Piece::Work(work) => in_savepoint(&mut tx, work)
                .await
                .map(|rows| audit_rows.extend(rows)),
        };
        answers.push((job.done, outcome));
    }
    if alone && answers.iter().any(|(_, outcome)| outcome.is_err()) {
        let _ = tx.rollback().await;
        for (done, outcome) in answers {
            let _ = done.send(outcome);
        }
        return;
    }
    // The batch's audit rows, in the order of its work, right before the commit: on PostgreSQL the chain's
    // lock is held from here to the end of the commit only.
    let rows: Vec<&audit::Pending> = audit_rows.iter().collect();
    let ended = match audit::append(&mut tx, &chain, &rows).await {
        Ok(()) => tx.commit().await.map_err(Error::from),
        Err(e) => Err(e),
    };
    match ended {
        Ok(()) => {
            for (done, outcome) in answers {
                let _ = done.send(outcome);
            }
        }
        Err(e) => {
            for (done, outcome) in answers {
                let _ = done.send(outcome.and(Err(e.again())));
            }
        }
    }
}

/// Runs `work` inside a savepoint of `tx`: its audit rows when it succeeded, else its error (and nothing
/// of it stays in `tx`).
async fn in_savepoint(
    tx: &mut Transaction<'_, Any>,
    work: Work,
) -> Result<Vec<audit::Pending>, Error> {
    let mut savepoint = sqlx::Connection::begin(&mut **tx).await?;
    let (result, rows) = audit::deferring(work(&mut savepoint)).await;
    match result {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(rows)
        }
        Err(e) => {
            let _ = savepoint.rollback().await;
            Err(e)
        }
    }
}

impl Store {
    /// How many batches the group-commit writer has committed (or tried to) since the store opened.
    pub fn group_commits(&self) -> u64 {
        self.group.batches.load(Ordering::Relaxed)
    }

    /// Runs `work` in a write transaction and commits it, returning what the work returned once it is
    /// durable. The transaction is shared with other callers' work (group commit, see the module notes).
    /// The work must not commit, and an error from it rolls back everything it wrote.
    pub(crate) async fn write_tx<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'a, 'b> FnOnce(&'a mut Transaction<'b, Any>) -> BoxFuture<'a, Result<T, Error>>
            + Send
            + 'static,
    {
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let work: Work = Box::new(move |tx| {
            Box::pin(async move {
                let value = work(tx).await?;
                if let Ok(mut slot) = out.lock() {
                    *slot = Some(value);
                }
                Ok(())
            })
        });
        self.group_send(Piece::Work(work)).await?;
        let value = slot.lock().ok().and_then(|mut slot| slot.take());
        value.ok_or_else(stopped)
    }

    /// Appends `row` alone (no change comes with it) in the next batch; returns once it is durable.
    pub(crate) async fn append_alone(&self, row: audit::Pending) -> Result<(), Error> {
        self.group_send(Piece::Audit(Box::new(row))).await
    }

    async fn group_send(&self, piece: Piece) -> Result<(), Error> {
        let (done, answer) = oneshot::channel();
        self.group
            .tx
            .send(Job { piece, done })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crate::audit::{AuditContext, AuditVerdict, Audited};
    use crate::connector::ConnectorTokenRow;
    use crate::connector::insert_token as insert_token_row;
    use crate::connector::{
        issue_test_token, test_token as token, test_token_event as token_event,
    };
    use crate::scratch::{ScratchDb, TEST_WORDS, TestBackend};
    use crate::{Error, Store};

    async fn count(store: &Store, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&store.read)
            .await
            .unwrap()
    }

    /// Concurrent exchanges share commits (the certificate writer's batches, where the connector's writes
    /// went from the group writer): each caller gets its own answer, a refused one leaves nothing (neither its next token nor its audit row) while
    /// the ones committed with it stay, and the audit chain stays whole and dense.
    async fn each_caller_of_a_shared_commit_gets_its_own_outcome(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        // Tokens 0..40 exist; the even ones are exchanged, the odd ones are asked for with the wrong
        // purpose (refused: Unauthorized).
        for n in 0..40u8 {
            issue_test_token(&store, n).await.unwrap();
        }
        let tasks: Vec<_> = (0..40u8)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let ctx = AuditContext::new("app", "", "client", "127.0.0.1", "req");
                    let audited = Audited {
                        actor: &ctx,
                        action: "connector.token_exchange",
                    };
                    let purpose = if n % 2 == 0 { "pairing" } else { "csr" };
                    store
                        .exchange_connector_token(
                            &[n; 32],
                            purpose,
                            &token(100 + n, "csr"),
                            &audited,
                        )
                        .await
                })
            })
            .collect();
        for (n, t) in tasks.into_iter().enumerate() {
            let outcome = t.await.unwrap();
            if n % 2 == 0 {
                outcome.unwrap();
            } else {
                assert!(
                    matches!(outcome, Err(Error::Unauthorized)),
                    "{n}: {outcome:?}"
                );
            }
        }
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM connector_tokens WHERE purpose = 'csr'"
            )
            .await,
            20,
            "only the exchanged tokens' successors exist"
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM connector_tokens WHERE consumed_at IS NOT NULL"
            )
            .await,
            20
        );
        assert_eq!(
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact {
                records: 60,
                legacy: 60
            },
            "40 creations and 20 exchanges, nothing of the refused ones"
        );
    }

    /// Work queued while every batch slot is busy commits together in the next batch, in one transaction,
    /// on both backends. (PostgreSQL used to run each piece in a transaction of its own, each holding the
    /// audit chain's lock through its own fsync.)
    async fn work_queued_behind_a_batch_shares_the_next_commit(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let before = store.group_commits();
        let (slots, slow) = occupy_every_slot(&store).await;
        let postgres = backend == TestBackend::Postgres;
        let tasks: Vec<_> = (0..20u8)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .write_tx(move |tx| {
                            Box::pin(async move {
                                insert_token_row(tx, &token(n, "pairing")).await?;
                                if !postgres {
                                    return Ok(0);
                                }
                                let xid: i64 = sqlx::query_scalar("SELECT txid_current()")
                                    .fetch_one(&mut **tx)
                                    .await?;
                                Ok(xid)
                            })
                        })
                        .await
                })
            })
            .collect();
        for s in slow {
            s.await.unwrap().unwrap();
        }
        let mut xids = Vec::new();
        for t in tasks {
            xids.push(t.await.unwrap().unwrap());
        }
        assert_eq!(
            store.group_commits() - before,
            slots as u64 + 1,
            "a batch per slow piece, then one batch for the 20 queued behind them"
        );
        xids.dedup();
        assert_eq!(xids.len(), 1, "one transaction id for the 20: {xids:?}");
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM connector_tokens").await,
            20
        );
    }

    /// Fills every batch slot with a slow piece of work, each its own batch (sent once the previous
    /// started); returns the number of slots and the pieces to await.
    async fn occupy_every_slot(
        store: &Store,
    ) -> (
        usize,
        Vec<tokio::task::JoinHandle<Result<(), crate::Error>>>,
    ) {
        let slots = super::slots(store.backend);
        let mut slow = Vec::new();
        for _ in 0..slots {
            let (started, running) = tokio::sync::oneshot::channel();
            let store = store.clone();
            slow.push(tokio::spawn(async move {
                store
                    .write_tx(move |_tx| {
                        Box::pin(async move {
                            let _ = started.send(());
                            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                            Ok(())
                        })
                    })
                    .await
            }));
            running.await.unwrap();
        }
        (slots, slow)
    }

    /// Audit records appended side by side (the records of KMIP reads and refusals) share a commit: 20
    /// queued behind busy slots commit in one batch, each durable before its caller hears back, and the
    /// chain stays whole. (Each used to be a transaction of its own, and a KMIP Get paid one.)
    async fn audit_records_appended_side_by_side_share_a_commit(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let before = store.group_commits();
        let (slots, slow) = occupy_every_slot(&store).await;
        let appends: Vec<_> = (0..20)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let ctx = AuditContext::new("alice", "", "kmip", "127.0.0.1", format!("r{n}"));
                    store
                        .append_audit(ctx.entry(
                            "kmip.get",
                            "kmip/k",
                            crate::audit::Outcome::Success,
                            None,
                            1_700_000_000,
                        ))
                        .await
                })
            })
            .collect();
        for s in slow {
            s.await.unwrap().unwrap();
        }
        for a in appends {
            a.await.unwrap().unwrap();
        }
        assert_eq!(
            store.group_commits() - before,
            slots as u64 + 1,
            "a batch per slow piece, then one batch for the 20 records"
        );
        assert_eq!(count(&store, "SELECT COUNT(*) FROM audit_log").await, 20);
        assert!(matches!(
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact { records: 20, .. }
        ));
    }

    /// A batch of one piece of work runs it without a savepoint: when it fails, even after a statement
    /// failed (PostgreSQL's aborted transaction), nothing of it commits, neither its rows nor its audit
    /// row, its caller gets its error, and the next batch commits as usual.
    async fn a_lone_piece_that_fails_leaves_nothing(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let ctx = AuditContext::new("op", "u1", "operator", "127.0.0.1", "req");
        let write = |first: u8, second: u8| {
            let (store, ctx) = (store.clone(), ctx.clone());
            async move {
                let chain = store.chain.clone();
                store
                    .write_tx(move |tx| {
                        Box::pin(async move {
                            insert_token_row(tx, &token(first, "pairing")).await?;
                            insert_token_row(tx, &token(second, "pairing")).await?;
                            let audited = Audited {
                                actor: &ctx,
                                action: "connector.token_create",
                            };
                            crate::audit::record(tx, &chain, &audited, "t", 1_700_000_000).await
                        })
                    })
                    .await
            }
        };
        write(1, 2).await.unwrap();
        let failed = write(3, 1).await;
        assert!(
            matches!(failed, Err(Error::Conflict { .. })),
            "token 1 exists: {failed:?}"
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM connector_tokens").await,
            2,
            "token 3 rolled back with its failed neighbour"
        );
        write(4, 5).await.unwrap();
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM connector_tokens").await,
            4
        );
        assert!(matches!(
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact { records: 2, .. }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lone_piece_that_fails_leaves_nothing_sqlite() {
        a_lone_piece_that_fails_leaves_nothing(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lone_piece_that_fails_leaves_nothing_postgres() {
        a_lone_piece_that_fails_leaves_nothing(TestBackend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn audit_records_appended_side_by_side_share_a_commit_sqlite() {
        audit_records_appended_side_by_side_share_a_commit(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn audit_records_appended_side_by_side_share_a_commit_postgres() {
        audit_records_appended_side_by_side_share_a_commit(TestBackend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_queued_behind_a_batch_shares_the_next_commit_sqlite() {
        work_queued_behind_a_batch_shares_the_next_commit(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_queued_behind_a_batch_shares_the_next_commit_postgres() {
        work_queued_behind_a_batch_shares_the_next_commit(TestBackend::Postgres).await;
    }

    /// Tokens that expired more than a day ago are purged by the next batch that writes a token, and by
    /// one writer at most once a minute (a statement per batch saved under load).
    async fn expired_tokens_are_purged_at_most_once_a_minute(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let ctx = AuditContext::new("op", "u1", "operator", "127.0.0.1", "req");
        let audited = Audited {
            actor: &ctx,
            action: "connector.token_create",
        };
        let t0 = 1_700_000_000;
        let stale = |n: u8| ConnectorTokenRow {
            created_at: t0 - 3 * 86_400,
            expires_at: t0 - 2 * 86_400,
            ..token(n, "pairing")
        };
        let plant = |row: ConnectorTokenRow| {
            let store = store.clone();
            async move {
                let mut tx = store.write.begin().await.unwrap();
                insert_token_row(&mut tx, &row).await.unwrap();
                tx.commit().await.unwrap();
            }
        };
        let issue = |n: u8, at: i64| {
            let store = store.clone();
            async move {
                let row = ConnectorTokenRow {
                    created_at: at,
                    expires_at: at + 600,
                    ..token(n, "pairing")
                };
                store
                    .insert_connector_token(&row, &token_event(n, at), &audited)
                    .await
                    .unwrap();
            }
        };
        let stale_left = || {
            let store = store.clone();
            async move {
                count(
                    &store,
                    &format!(
                        "SELECT COUNT(*) FROM connector_tokens WHERE expires_at = {}",
                        t0 - 2 * 86_400
                    ),
                )
                .await
            }
        };
        plant(stale(1)).await;
        issue(10, t0).await;
        assert_eq!(stale_left().await, 0, "the first token batch purges");
        plant(stale(2)).await;
        issue(11, t0 + 30).await;
        assert_eq!(stale_left().await, 1, "30 s later: not yet");
        issue(12, t0 + 61).await;
        assert_eq!(stale_left().await, 0, "a minute later: purged");
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM connector_tokens").await,
            3,
            "the live tokens stay"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_tokens_are_purged_at_most_once_a_minute_sqlite() {
        expired_tokens_are_purged_at_most_once_a_minute(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_tokens_are_purged_at_most_once_a_minute_postgres() {
        expired_tokens_are_purged_at_most_once_a_minute(TestBackend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_caller_of_a_shared_commit_gets_its_own_outcome_sqlite() {
        each_caller_of_a_shared_commit_gets_its_own_outcome(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_caller_of_a_shared_commit_gets_its_own_outcome_postgres() {
        each_caller_of_a_shared_commit_gets_its_own_outcome(TestBackend::Postgres).await;
    }
}

//! Group commit for short write transactions.
//!
//! With `synchronous=FULL` (SQLite) or `synchronous_commit=on` (PostgreSQL) every commit waits for an fsync
//! (about 4 ms on the machines this project is measured on). On SQLite there is one writer; on PostgreSQL
//! every audited transaction holds the audit chain's advisory lock from its append until its commit,
//! fsync included, so audited writers queue one behind the other there too. Either way a write transaction
//! per request caps a server near 250 requests/s however fast the rest is. Here one task owns those
//! transactions: callers send their work (a closure over a transaction) and wait; the task takes everything
//! queued (up to [`MAX_BATCH`]), opens one transaction, runs each piece of work inside its own SAVEPOINT,
//! commits once and answers every waiter. One fsync and one turn of the chain lock serve the whole batch.
//!
//! - **Isolation as before.** Work runs one after the other on one connection: each sees the committed
//!   database plus the work before it in its batch. On SQLite nothing runs beside it; on PostgreSQL other
//!   transactions (the certificate writer, sweeps) run beside it under READ COMMITTED, as they did.
//! - **One failure fails one caller.** Work that returns an error is rolled back to its savepoint (which
//!   also clears PostgreSQL's aborted-transaction state), and its caller gets that error; its neighbours
//!   commit.
//! - **Committed before answered.** No caller hears `Ok` before the commit that holds its work; if that
//!   commit fails, every caller of the batch gets the error (nothing of theirs was written).
//! - **A panic loses no writer.** Each batch runs in a task of its own: a panic fails that batch's callers
//!   (their answers are dropped: [`Error::Config`] "writer stopped"), and the next batch runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Store};

/// Most pieces of work committed together.
const MAX_BATCH: usize = 256;

/// A boxed, sendable future borrowing for `'a`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Work over a transaction: it reads and writes through `tx` and must not commit it.
type Work = Box<
    dyn for<'a, 'b> FnOnce(&'a mut Transaction<'b, Any>) -> BoxFuture<'a, Result<(), Error>> + Send,
>;

struct Job {
    work: Work,
    done: oneshot::Sender<Result<(), Error>>,
}

/// A handle to the group-commit task.
#[derive(Clone, Debug)]
pub(crate) struct GroupWriter {
    tx: mpsc::Sender<Job>,
    /// Batches committed (or attempted) so far: [`Store::group_commits`].
    batches: Arc<AtomicU64>,
}

fn stopped() -> Error {
    Error::Config("database writer stopped".into())
}

impl GroupWriter {
    pub(crate) fn spawn(pool: AnyPool) -> GroupWriter {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let batches = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(pool, rx, batches.clone()));
        GroupWriter { tx, batches }
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Job>, batches: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        batches.fetch_add(1, Ordering::Relaxed);
        // A panic inside the work ends only this task; its callers' answers drop with it.
        let _ = tokio::spawn(commit_batch(pool.clone(), jobs)).await;
    }
}

async fn commit_batch(pool: AnyPool, jobs: Vec<Job>) {
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
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let outcome = match sqlx::Connection::begin(&mut *tx).await {
            Ok(mut savepoint) => match (job.work)(&mut savepoint).await {
                Ok(()) => savepoint.commit().await.map_err(Error::from),
                Err(e) => {
                    let _ = savepoint.rollback().await;
                    Err(e)
                }
            },
            Err(e) => Err(e.into()),
        };
        answers.push((job.done, outcome));
    }
    match tx.commit().await {
        Ok(()) => {
            for (done, outcome) in answers {
                let _ = done.send(outcome);
            }
        }
        Err(e) => {
            let e = Error::from(e);
            for (done, outcome) in answers {
                let _ = done.send(outcome.and(Err(e.again())));
            }
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
        let group = &self.group;
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
        let (done, answer) = oneshot::channel();
        group
            .tx
            .send(Job { work, done })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())??;
        let value = slot.lock().ok().and_then(|mut slot| slot.take());
        value.ok_or_else(stopped)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crate::audit::{AuditContext, AuditVerdict, Audited};
    use crate::connector::ConnectorTokenRow;
    use crate::connector::insert_token as insert_token_row;
    use crate::scratch::{ScratchDb, TEST_WORDS, TestBackend};
    use crate::{Error, NewEvent, Store};

    fn token(n: u8, purpose: &str) -> ConnectorTokenRow {
        ConnectorTokenRow {
            token_sha256: vec![n; 32],
            purpose: purpose.into(),
            kind: "applications".into(),
            name: format!("app-{n}"),
            group: None,
            tenant: None,
            created_at: 1_700_000_000,
            expires_at: 1_700_000_600,
            consumed_at: None,
        }
    }

    async fn count(store: &Store, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&store.read)
            .await
            .unwrap()
    }

    /// Concurrent exchanges share commits on SQLite (their own transactions on PostgreSQL): each caller
    /// gets its own answer, a refused one leaves nothing (neither its next token nor its audit row) while
    /// the ones committed with it stay, and the audit chain stays whole and dense.
    async fn each_caller_of_a_shared_commit_gets_its_own_outcome(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let ctx = AuditContext::new("op", "u1", "operator", "127.0.0.1", "req");
        let audited = Audited {
            actor: &ctx,
            action: "connector.token_create",
        };
        let event = |n: u8| NewEvent {
            id: format!("ev-{n}"),
            source: "test".into(),
            ty: "connector.token_created".into(),
            subject: format!("app-{n}"),
            time: 1_700_000_000,
            data: "{}".into(),
        };
        // Tokens 0..40 exist; the even ones are exchanged, the odd ones are asked for with the wrong
        // purpose (refused: Unauthorized).
        for n in 0..40u8 {
            store
                .insert_connector_token(&token(n, "pairing"), &event(n), &audited)
                .await
                .unwrap();
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

    /// Work queued while a batch runs commits together in the next batch, in one transaction, on both
    /// backends. (PostgreSQL used to run each piece in a transaction of its own, each holding the audit
    /// chain's lock through its own fsync.)
    async fn work_queued_behind_a_batch_shares_the_next_commit(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let before = store.group_commits();
        let (started, running) = tokio::sync::oneshot::channel();
        let slow = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write_tx(move |_tx| {
                        Box::pin(async move {
                            let _ = started.send(());
                            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                            Ok(())
                        })
                    })
                    .await
            })
        };
        running.await.unwrap();
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
        slow.await.unwrap().unwrap();
        let mut xids = Vec::new();
        for t in tasks {
            xids.push(t.await.unwrap().unwrap());
        }
        assert_eq!(
            store.group_commits() - before,
            2,
            "the slow piece's batch, then one batch for the 20 queued behind it"
        );
        xids.dedup();
        assert_eq!(xids.len(), 1, "one transaction id for the 20: {xids:?}");
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM connector_tokens").await,
            20
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_queued_behind_a_batch_shares_the_next_commit_sqlite() {
        work_queued_behind_a_batch_shares_the_next_commit(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_queued_behind_a_batch_shares_the_next_commit_postgres() {
        work_queued_behind_a_batch_shares_the_next_commit(TestBackend::Postgres).await;
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

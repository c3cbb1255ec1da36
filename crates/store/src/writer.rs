//! Group commit for certificate inserts, and for the connector's pairing writes and new KMIP objects beside
//! them.
//!
//! One task owns certificate writes. Each caller sends its change (a certificate with its event, a
//! connector step: a token spent, a token made, a certificate with the connector's record, or new KMIP
//! objects with their events) and waits; the
//! task takes everything queued (up to [`MAX_BATCH`]) as soon as a batch slot is free ([`slots`]: one
//! on SQLite, a few on PostgreSQL, each batch in a task and on a connection of its own), spends the
//! batch's tokens with one `UPDATE … RETURNING` (one per second of request time), writes the rest with one multi-row INSERT per table in one transaction, commits
//! once and answers every waiter. Under load one fsync serves hundreds of changes; alone, a request pays one
//! commit as before. "Committed before returned" holds: no waiter is answered before the commit. A change
//! whose token the batch could not spend (spent, expired, or taken by an earlier change of the same batch)
//! gets [`Error::Unauthorized`] and writes nothing. If a batch fails (say one serial collides), each of its
//! items is retried alone, so one bad row does not fail its neighbours and every caller gets its own precise
//! result (a token spent in a rolled-back batch is unspent again).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::{Any, AnyPool, AssertSqlSafe, Transaction};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::connector::ConnectorRows;
use crate::{Backend, CertRow, Error, KmipObjectRow, NewEvent};

/// Most changes committed together. 14 bind parameters per row keeps a full batch well below
/// SQLite's 32,766-parameter limit (KMIP objects are inserted in chunks of [`KMIP_CHUNK`]).
pub(crate) const MAX_BATCH: usize = 512;

/// What one change writes: any of a certificate, events and the connector's rows, with its audit row.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteRows {
    pub(crate) cert: Option<CertRow>,
    pub(crate) events: Vec<NewEvent>,
    pub(crate) connector: ConnectorRows,
    /// New KMIP objects (one, or a key pair).
    pub(crate) kmip: Vec<KmipObjectRow>,
    /// An ACME order finalized by this change's certificate: `(order id, serial)`, moved from
    /// `processing` to `valid` in the certificate's transaction.
    pub(crate) acme_order: Option<(String, String)>,
}

/// How many batches run at once on `backend`: SQLite has one writer connection; on PostgreSQL each batch
/// runs on its own connection and holds the audit chain's lock only for its final append and commit, so a
/// few batches side by side hide each other's round trips while every batch stays large. (KMIP Creates at
/// c=16 on a loaded machine: one at a time 697/s, three 990/s, against 523/s through the group writer's
/// six small batches of savepoints; `BENCHMARKS.md` §KMIP.)
pub(crate) fn slots(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 3,
    }
}

/// KMIP objects per INSERT statement (8 parameters each).
const KMIP_CHUNK: usize = 1024;

struct Job {
    change: WriteRows,
    /// The audit row of the change, made by the caller (this task serves no request).
    audit: crate::audit::Pending,
    done: oneshot::Sender<Result<(), Error>>,
}

/// A handle to the writer task.
#[derive(Clone, Debug)]
pub(crate) struct CertWriter {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.change.cert {
            Some(cert) => write!(f, "Job({}/{})", cert.ca_id, cert.serial),
            None if !self.change.kmip.is_empty() => write!(f, "Job(kmip)"),
            None => write!(f, "Job(connector)"),
        }
    }
}

impl CertWriter {
    /// The writer over `pool`, running up to `parallel` batches at once, each on its own connection.
    pub(crate) fn spawn(pool: AnyPool, chain: crate::audit::Chain, parallel: usize) -> CertWriter {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        tokio::spawn(run(pool, chain, rx, parallel.max(1)));
        CertWriter { tx }
    }

    pub(crate) async fn insert(
        &self,
        cert: CertRow,
        event: NewEvent,
        audit: &crate::Audited<'_>,
    ) -> Result<(), Error> {
        let target = format!("{}/{}", cert.ca_id, cert.serial);
        let audit = crate::audit::pending(audit, &target, cert.created_at);
        let change = WriteRows {
            cert: Some(cert),
            events: vec![event],
            ..WriteRows::default()
        };
        self.write(change, audit).await
    }

    /// Writes `change` with its audit row in the next batch; returns once it is committed.
    pub(crate) async fn write(
        &self,
        change: WriteRows,
        audit: crate::audit::Pending,
    ) -> Result<(), Error> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job {
                change,
                audit,
                done,
            })
            .await
            .map_err(|_| Error::Config("certificate writer stopped".into()))?;
        wait.await
            .map_err(|_| Error::Config("certificate writer stopped".into()))?
    }
}

/// Takes a free slot, then everything queued: while every slot is busy, changes pile up for the next batch.
async fn run(
    pool: AnyPool,
    chain: crate::audit::Chain,
    mut rx: mpsc::Receiver<Job>,
    parallel: usize,
) {
    let slots = Arc::new(Semaphore::new(parallel));
    // When a batch last purged expired connector tokens (`connector::insert_batch`).
    let purged_at = Arc::new(AtomicI64::new(i64::MIN));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let jobs = std::mem::take(&mut batch);
        let (pool, chain, purged_at) = (pool.clone(), chain.clone(), purged_at.clone());
        // A panic ends only this batch's task (its slot is released as it unwinds); its callers' answers
        // drop with it.
        tokio::spawn(async move {
            commit(&pool, jobs, &chain, &purged_at).await;
            drop(slot);
        });
    }
}

/// Writes a batch and answers its callers; if it rolled back, each change is retried alone, so one bad row
/// does not fail its neighbours.
async fn commit(
    pool: &AnyPool,
    jobs: Vec<Job>,
    chain: &crate::audit::Chain,
    purged_at: &AtomicI64,
) {
    match write(pool, &jobs, chain, purged_at).await {
        Ok(outcomes) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.done.send(outcome);
            }
        }
        Err(e) if jobs.len() == 1 => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.done.send(Err(e));
            }
        }
        Err(_) => {
            for job in jobs {
                let result = write(pool, std::slice::from_ref(&job), chain, purged_at).await;
                let _ = job
                    .done
                    .send(result.and_then(|mut o| o.pop().unwrap_or(Ok(()))));
            }
        }
    }
}

/// Writes the batch in one transaction: `Err` when it rolled back, else each job's own outcome (`Ok`, or
/// [`Error::Unauthorized`] for a change whose token was not spent: nothing of it was written).
async fn write(
    pool: &AnyPool,
    jobs: &[Job],
    chain: &crate::audit::Chain,
    purged_at: &AtomicI64,
) -> Result<Vec<Result<(), Error>>, Error> {
    let backend = chain.backend;
    let mut tx = pool.begin().await?;
    let spends: Vec<_> = jobs
        .iter()
        .map(|j| j.change.connector.spend.as_ref())
        .collect();
    let outcomes = crate::connector::spend_tokens(&mut tx, &spends).await?;
    let live: Vec<&Job> = jobs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_ok())
        .map(|(j, _)| j)
        .collect();
    let certs: Vec<&CertRow> = live.iter().filter_map(|j| j.change.cert.as_ref()).collect();
    if !certs.is_empty() {
        insert_rows(&mut tx, &certs, backend).await?;
    }
    let objects: Vec<&KmipObjectRow> = live.iter().flat_map(|j| &j.change.kmip).collect();
    for chunk in objects.chunks(KMIP_CHUNK) {
        crate::kmip::insert_objects(&mut tx, chunk, backend).await?;
    }
    let events: Vec<&NewEvent> = live.iter().flat_map(|j| &j.change.events).collect();
    if !events.is_empty() {
        insert_events(&mut tx, &events, backend).await?;
    }
    let connector: Vec<&ConnectorRows> = live.iter().map(|j| &j.change.connector).collect();
    // Two batches side by side may both purge: a DELETE of the same expired rows, harmless.
    let mut purged = purged_at.load(Ordering::Relaxed);
    crate::connector::insert_batch(&mut tx, &connector, backend, &mut purged).await?;
    purged_at.fetch_max(purged, Ordering::Relaxed);
    for (order_id, serial) in live.iter().filter_map(|j| j.change.acme_order.as_ref()) {
        crate::acme::order_issued(&mut tx, order_id, serial).await?;
    }
    let audits: Vec<_> = live.iter().map(|j| &j.audit).collect();
    crate::audit::append(&mut tx, chain, &audits).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// One multi-row INSERT of up to [`MAX_BATCH`] events (the outbox), inside a caller's transaction.
pub(crate) async fn insert_events(
    tx: &mut Transaction<'_, Any>,
    events: &[&NewEvent],
    backend: Backend,
) -> Result<(), Error> {
    let mut sql =
        String::from("INSERT INTO events (id, source, type, subject, time, data) VALUES ");
    push_placeholders(&mut sql, events.len(), 6, backend);
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for e in events {
        q = q
            .bind(e.id.clone())
            .bind(e.source.clone())
            .bind(e.ty.clone())
            .bind(e.subject.clone())
            .bind(e.time)
            .bind(e.data.clone());
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// One multi-row INSERT of up to [`MAX_BATCH`] certificates.
pub(crate) async fn insert_rows(
    tx: &mut Transaction<'_, Any>,
    certs: &[&CertRow],
    backend: Backend,
) -> Result<(), Error> {
    let mut sql = String::from(
        "INSERT INTO certificates (ca_id, serial, fingerprint, subject, sans, key_type, not_before, not_after, \
         der, status, revoked_at, revocation_reason, created_at) VALUES ",
    );
    push_placeholders(&mut sql, certs.len(), 13, backend);
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for c in certs {
        q = q
            .bind(c.ca_id.clone())
            .bind(c.serial.clone())
            .bind(c.fingerprint.clone())
            .bind(c.subject.clone())
            .bind(c.sans.clone())
            .bind(c.key_type.clone())
            .bind(c.not_before)
            .bind(c.not_after)
            .bind(c.der.clone())
            .bind(c.status.clone())
            .bind(c.revoked_at)
            .bind(c.revocation_reason.clone())
            .bind(c.created_at);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Appends `($1, $2, …), (…)` for `rows` rows of `cols` parameters.
pub(crate) fn push_placeholders(sql: &mut String, rows: usize, cols: usize, backend: Backend) {
    use std::fmt::Write;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            let sep = if c == 0 { "" } else { ", " };
            // SQLite gets anonymous `?`: sqlx-sqlite resolves each named `$N` with a linear lookup, which made
            // binding a 512-row batch quadratic (78% of bulk-insert CPU in the benchmark's profile).
            let _ = match backend {
                Backend::Sqlite => write!(sql, "{sep}?"),
                Backend::Postgres => write!(sql, "{sep}${}", r * cols + c + 1),
            };
        }
        sql.push(')');
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_rows_then_columns() {
        let mut s = String::new();
        super::push_placeholders(&mut s, 2, 2, crate::Backend::Postgres);
        assert_eq!(s, "($1, $2), ($3, $4)");
    }
}

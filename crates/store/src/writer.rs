//! Group commit for certificate inserts, and for the connector's pairing writes and new KMIP objects beside
//! them.
//!
//! One task owns certificate writes. Each caller sends its change (a certificate with its event, a
//! connector step: a token spent, a token made, a certificate with the connector's record, or new KMIP
//! objects with their events) and waits; the
//! task takes everything queued (up to [`MAX_BATCH`]), spends the batch's tokens with one `UPDATE …
//! RETURNING` (one per second of request time), writes the rest with one multi-row INSERT per table in one transaction, commits
//! once and answers every waiter. Under load one fsync serves hundreds of changes; alone, a request pays one
//! commit as before. "Committed before returned" holds: no waiter is answered before the commit. A change
//! whose token the batch could not spend (spent, expired, or taken by an earlier change of the same batch)
//! gets [`Error::Unauthorized`] and writes nothing. If a batch fails (say one serial collides), each of its
//! items is retried alone, so one bad row does not fail its neighbours and every caller gets its own precise
//! result (a token spent in a rolled-back batch is unspent again).

use sqlx::{Any, AnyPool, AssertSqlSafe, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::connector::ConnectorRows;
use crate::devices::enrollment::{
    DEVICE_EXISTS, EnrollmentRecord, enroll_new_devices, register_new_devices,
};
use crate::{Backend, CertRow, Error, EventWords, KmipObjectRow, NewEvent};

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
    /// A first enrolment that registers its device (its certificate and event are the record's): written
    /// here only if this batch creates the device, else refused with [`DEVICE_EXISTS`].
    pub(crate) enrollment: Option<EnrollmentRecord>,
}

/// What a committed change learns from its batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Committed {
    /// An enrolment's device status after it.
    pub(crate) device_status: Option<String>,
}

/// KMIP objects per INSERT statement (8 parameters each).
const KMIP_CHUNK: usize = 1024;

struct Job {
    change: WriteRows,
    /// The audit row of the change, made by the caller (this task serves no request).
    audit: crate::audit::Pending,
    done: oneshot::Sender<Result<Committed, Error>>,
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
            None if self.change.enrollment.is_some() => write!(f, "Job(enrollment)"),
            None => write!(f, "Job(connector)"),
        }
    }
}

impl CertWriter {
    pub(crate) fn spawn(
        pool: AnyPool,
        chain: crate::audit::Chain,
        words: &'static EventWords,
    ) -> CertWriter {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        tokio::spawn(run(pool, chain, words, rx));
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
        self.commit(change, audit).await.map(drop)
    }

    /// [`CertWriter::write`], returning what the batch learnt about the change.
    pub(crate) async fn commit(
        &self,
        change: WriteRows,
        audit: crate::audit::Pending,
    ) -> Result<Committed, Error> {
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

async fn run(
    pool: AnyPool,
    chain: crate::audit::Chain,
    words: &'static EventWords,
    mut rx: mpsc::Receiver<Job>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // When this writer last purged expired connector tokens (`connector::insert_batch`).
    let mut purged_at = i64::MIN;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        match write(&pool, &jobs, &chain, words, &mut purged_at).await {
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
                    let result = write(
                        &pool,
                        std::slice::from_ref(&job),
                        &chain,
                        words,
                        &mut purged_at,
                    )
                    .await;
                    let _ = job
                        .done
                        .send(result.and_then(|mut o| o.pop().unwrap_or(Ok(Committed::default()))));
                }
            }
        }
    }
}

/// Writes the batch in one transaction: `Err` when it rolled back, else each job's own outcome (`Ok`,
/// [`Error::Unauthorized`] for a change whose token was not spent, or a `Conflict` ([`DEVICE_EXISTS`]) for
/// an enrolment whose device the batch did not create: nothing of those was written).
async fn write(
    pool: &AnyPool,
    jobs: &[Job],
    chain: &crate::audit::Chain,
    words: &EventWords,
    purged_at: &mut i64,
) -> Result<Vec<Result<Committed, Error>>, Error> {
    let backend = chain.backend;
    let mut tx = pool.begin().await?;
    let spends: Vec<_> = jobs
        .iter()
        .map(|j| j.change.connector.spend.as_ref())
        .collect();
    let mut outcomes: Vec<Result<Committed, Error>> =
        crate::connector::spend_tokens(&mut tx, &spends)
            .await?
            .into_iter()
            .map(|o| o.map(|()| Committed::default()))
            .collect();
    let enrolling: Vec<(usize, &EnrollmentRecord)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| Some((i, j.change.enrollment.as_ref()?)))
        .filter(|(i, _)| outcomes[*i].is_ok())
        .collect();
    if !enrolling.is_empty() {
        let records: Vec<&EnrollmentRecord> = enrolling.iter().map(|(_, r)| *r).collect();
        let created = register_new_devices(&mut tx, backend, &records).await?;
        for ((i, _), created) in enrolling.iter().zip(created) {
            if !created {
                outcomes[*i] = Err(Error::Conflict {
                    constraint: Some(DEVICE_EXISTS.into()),
                });
            }
        }
    }
    let live: Vec<usize> = (0..jobs.len()).filter(|i| outcomes[*i].is_ok()).collect();
    let certs: Vec<&CertRow> = live
        .iter()
        .filter_map(|i| {
            let change = &jobs[*i].change;
            change
                .cert
                .as_ref()
                .or(change.enrollment.as_ref().map(|r| &r.cert))
        })
        .collect();
    if !certs.is_empty() {
        insert_rows(&mut tx, &certs, backend).await?;
    }
    let objects: Vec<&KmipObjectRow> = live.iter().flat_map(|i| &jobs[*i].change.kmip).collect();
    for chunk in objects.chunks(KMIP_CHUNK) {
        crate::kmip::insert_objects(&mut tx, chunk, backend).await?;
    }
    let enrolled: Vec<(usize, &EnrollmentRecord)> = live
        .iter()
        .filter_map(|i| Some((*i, jobs[*i].change.enrollment.as_ref()?)))
        .collect();
    let records: Vec<&EnrollmentRecord> = enrolled.iter().map(|(_, r)| *r).collect();
    let mut enrolment_events = Vec::with_capacity(enrolled.len());
    if !records.is_empty() {
        let done = enroll_new_devices(&mut tx, backend, words, &records).await?;
        for ((i, _), (events, status)) in enrolled.iter().zip(done) {
            outcomes[*i] = Ok(Committed {
                device_status: Some(status),
            });
            enrolment_events.push(events);
        }
    }
    let mut enrolment_events = enrolment_events.iter();
    let events: Vec<&NewEvent> = live
        .iter()
        .flat_map(|i| match &jobs[*i].change.enrollment {
            Some(_) => enrolment_events.next().map_or(&[][..], Vec::as_slice),
            None => jobs[*i].change.events.as_slice(),
        })
        .collect();
    if !events.is_empty() {
        insert_events(&mut tx, &events, backend).await?;
    }
    let connector: Vec<&ConnectorRows> = live.iter().map(|i| &jobs[*i].change.connector).collect();
    crate::connector::insert_batch(&mut tx, &connector, backend, purged_at).await?;
    for (order_id, serial) in live
        .iter()
        .filter_map(|i| jobs[*i].change.acme_order.as_ref())
    {
        crate::acme::order_issued(&mut tx, order_id, serial).await?;
    }
    let audits: Vec<_> = live.iter().map(|i| &jobs[*i].audit).collect();
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
            let _ = write!(sql, "{sep}{}", placeholder(backend, r * cols + c + 1));
        }
        sql.push(')');
    }
}

/// The `n`th bind parameter (from 1) of a statement whose parameters appear in binding order.
/// SQLite gets anonymous `?`: sqlx-sqlite resolves each named `$N` with a linear lookup, which made binding a
/// 512-row batch quadratic (78% of bulk-insert CPU in the benchmark's profile).
pub(crate) fn placeholder(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_string(),
        Backend::Postgres => format!("${n}"),
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

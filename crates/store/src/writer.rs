//! Group commit for certificate inserts, and for the connector's pairing writes and new KMIP objects beside
//! them.
//!
//! One task owns certificate writes. Each caller sends its change (a certificate with its event, a
//! connector step: a token spent, a token made, a certificate with the connector's record, or new KMIP
//! objects with their events) and waits; the
//! task takes everything queued (up to [`MAX_BATCH`]) as soon as a batch slot is free ([`slots`]: one on
//! SQLite, a few on PostgreSQL, each batch in a task and on a connection of its own), spends the batch's
//! tokens with one `UPDATE … RETURNING` (on SQLite one per second of request time), writes the rest in one transaction, commits once
//! and answers every waiter. On SQLite the rest is one multi-row INSERT per table; on PostgreSQL, where
//! each statement is a round trip, it is ONE statement that spends the tokens, inserts into every table (a
//! change's rows only if its token was spent), then takes the audit chain's lock and reads its head (its rows
//! bound as JSON recordsets: one statement text for every batch, prepared once per connection), then the
//! audit rows: BEGIN, statement, audit, COMMIT; only the last two hold the chain's lock. First enrolments of new devices add one
//! statement before it, of one text too (their devices, certificates, slots and history, each device
//! written with its final status; their log entries and events ride the batch's statement), and a batch
//! that enrols spends its tokens before, in a statement of their own.
//! Under load one fsync serves hundreds of changes; alone, a request pays one commit as before. "Committed
//! before returned" holds: no waiter is answered before the commit. A change whose token the batch could not
//! spend (spent, expired, or taken by an earlier change of the same batch) gets [`Error::Unauthorized`] and
//! writes nothing. If a batch fails (say one serial collides), each of its items is retried alone, so one bad
//! row does not fail its neighbours and every caller gets its own precise result (a token spent in a
//! rolled-back batch is unspent again).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::{Any, AnyPool, AssertSqlSafe, Transaction};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::connector::ConnectorRows;
use crate::devices::enrollment::{
    DEVICE_EXISTS, EnrollmentRecord, FirstEnrolment, enroll_new_devices, enroll_new_devices_pg,
    register_new_devices,
};
use crate::devices::status::LogRow;
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

/// How many batches run at once on `backend`: SQLite has one writer connection; on PostgreSQL each batch
/// runs on its own connection and holds the audit chain's lock only for its final append and commit, so a
/// few batches side by side hide each other's round trips while every batch stays large. (KMIP Creates at
/// c=16 on a loaded machine: one at a time 697/s, three 990/s, against 523/s through the group writer's
/// six small batches of savepoints.)
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
    /// The writer over `pool`, running up to `parallel` batches at once, each on its own connection.
    pub(crate) fn spawn(
        pool: AnyPool,
        chain: crate::audit::Chain,
        words: &'static EventWords,
        parallel: usize,
    ) -> CertWriter {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        tokio::spawn(run(pool, chain, words, rx, parallel.max(1)));
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

/// Takes a free slot, then everything queued: while every slot is busy, changes pile up for the next batch.
async fn run(
    pool: AnyPool,
    chain: crate::audit::Chain,
    words: &'static EventWords,
    mut rx: mpsc::Receiver<Job>,
    parallel: usize,
) {
    let slots = Arc::new(Semaphore::new(parallel));
    // When a batch last purged expired connector tokens (`connector::purge_due`).
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
            commit(&pool, jobs, &chain, words, &purged_at).await;
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
    words: &EventWords,
    purged_at: &AtomicI64,
) {
    match write(pool, &jobs, chain, words, purged_at).await {
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
                let result = write(pool, std::slice::from_ref(&job), chain, words, purged_at).await;
                let _ = job
                    .done
                    .send(result.and_then(|mut o| o.pop().unwrap_or(Ok(Committed::default()))));
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
    purged_at: &AtomicI64,
) -> Result<Vec<Result<Committed, Error>>, Error> {
    let backend = chain.backend;
    let mut tx = pool.begin().await?;
    let spends: Vec<_> = jobs
        .iter()
        .map(|j| j.change.connector.spend.as_ref())
        .collect();
    // On PostgreSQL the tokens are spent inside the batch's one statement (`insert_and_lock`), unless the
    // batch enrols devices (their rows are written before it): until then a change that spends one is live
    // on condition.
    let spend_in_statement =
        backend == Backend::Postgres && jobs.iter().all(|j| j.change.enrollment.is_none());
    let spent = match spend_in_statement {
        true => crate::connector::first_spends(&spends),
        false => crate::connector::spend_tokens(&mut tx, &spends, backend).await?,
    };
    let mut outcomes: Vec<Result<Committed, Error>> = spent
        .into_iter()
        .map(|o| o.map(|()| Committed::default()))
        .collect();
    let enrolling: Vec<(usize, &EnrollmentRecord)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| Some((i, j.change.enrollment.as_ref()?)))
        .filter(|(i, _)| outcomes[*i].is_ok())
        .collect();
    // Each enrolment's rows once its device is created: its events, log entries and new status.
    let mut firsts: Vec<Option<FirstEnrolment>> = jobs.iter().map(|_| None).collect();
    if !enrolling.is_empty() {
        let records: Vec<&EnrollmentRecord> = enrolling.iter().map(|(_, r)| *r).collect();
        // SQLite: the devices now, the rest after the batch's certificates. PostgreSQL: the devices, their
        // certificates, slots and history in one statement, the log entries and events in the batch's one.
        let created: Vec<bool> = match backend {
            Backend::Sqlite => register_new_devices(&mut tx, backend, &records).await?,
            Backend::Postgres => {
                let done = enroll_new_devices_pg(&mut tx, words, &records).await?;
                let created = done.iter().map(Option::is_some).collect();
                for ((i, _), first) in enrolling.iter().zip(done) {
                    firsts[*i] = first;
                }
                created
            }
        };
        for ((i, _), created) in enrolling.iter().zip(created) {
            if !created {
                outcomes[*i] = Err(Error::Conflict {
                    constraint: Some(DEVICE_EXISTS.into()),
                });
            }
        }
    }
    let live: Vec<usize> = (0..jobs.len()).filter(|i| outcomes[*i].is_ok()).collect();
    let certs: Vec<(usize, &CertRow)> = live
        .iter()
        .filter_map(|i| {
            let change = &jobs[*i].change;
            // On PostgreSQL an enrolment's certificate is written with its device.
            let enrolled = change
                .enrollment
                .as_ref()
                .filter(|_| backend == Backend::Sqlite);
            Some((*i, change.cert.as_ref().or(enrolled.map(|r| &r.cert))?))
        })
        .collect();
    let objects: Vec<&KmipObjectRow> = live.iter().flat_map(|i| &jobs[*i].change.kmip).collect();
    for chunk in objects.chunks(KMIP_CHUNK) {
        crate::kmip::insert_objects(&mut tx, chunk, backend).await?;
    }
    if backend == Backend::Sqlite {
        // An enrolment's slot and history rows name its certificate (a foreign key): certificates first.
        if !certs.is_empty() {
            let rows: Vec<&CertRow> = certs.iter().map(|(_, c)| *c).collect();
            insert_rows(&mut tx, &rows, backend).await?;
        }
        let enrolled: Vec<(usize, &EnrollmentRecord)> = live
            .iter()
            .filter_map(|i| Some((*i, jobs[*i].change.enrollment.as_ref()?)))
            .collect();
        if !enrolled.is_empty() {
            let records: Vec<&EnrollmentRecord> = enrolled.iter().map(|(_, r)| *r).collect();
            let done = enroll_new_devices(&mut tx, backend, words, &records).await?;
            for ((i, _), first) in enrolled.iter().zip(done) {
                firsts[*i] = Some(first);
            }
        }
    }
    for i in &live {
        if let Some(first) = &firsts[*i] {
            outcomes[*i] = Ok(Committed {
                device_status: Some(first.status.clone()),
            });
        }
    }
    for (order_id, serial) in live
        .iter()
        .filter_map(|i| jobs[*i].change.acme_order.as_ref())
    {
        crate::acme::order_issued(&mut tx, order_id, serial).await?;
    }
    let events: Vec<(usize, &NewEvent)> = live
        .iter()
        .flat_map(|i| {
            let events = match &firsts[*i] {
                Some(first) => first.events.as_slice(),
                None => jobs[*i].change.events.as_slice(),
            };
            events.iter().map(|e| (*i, e))
        })
        .collect();
    let connector: Vec<&ConnectorRows> = live.iter().map(|i| &jobs[*i].change.connector).collect();
    // Two batches side by side may both purge: a DELETE of the same expired rows, harmless.
    let mut purged = purged_at.load(Ordering::Relaxed);
    crate::connector::purge_due(&mut tx, &connector, &mut purged).await?;
    purged_at.fetch_max(purged, Ordering::Relaxed);
    match backend {
        Backend::Sqlite => {
            if !events.is_empty() {
                let events: Vec<&NewEvent> = events.iter().map(|(_, e)| *e).collect();
                insert_events(&mut tx, &events, backend).await?;
            }
            crate::connector::insert_batch(&mut tx, &connector, backend).await?;
            let audits: Vec<_> = live.iter().map(|i| &jobs[*i].audit).collect();
            crate::audit::append(&mut tx, chain, &audits).await?;
        }
        Backend::Postgres if !live.is_empty() => {
            // The change each row belongs to, when its token is spent by the statement.
            let job = |i: usize| (spend_in_statement && spends[i].is_some()).then_some(i);
            let rows = StatementRows {
                certs: certs.iter().map(|(i, c)| (job(*i), *c)).collect(),
                events: events.iter().map(|(i, e)| (job(*i), *e)).collect(),
                connector: live
                    .iter()
                    .zip(&connector)
                    .map(|(i, c)| (job(*i), *c))
                    .collect(),
                spends: live
                    .iter()
                    .filter_map(|i| Some((job(*i)?, spends[*i]?)))
                    .collect(),
                // The log entries of the batch's enrolments (SQLite wrote them with their devices).
                log: live
                    .iter()
                    .filter_map(|i| firsts[*i].as_ref())
                    .flat_map(|first| &first.log)
                    .collect(),
            };
            let (spent, head) = insert_and_lock(&mut tx, &rows).await?;
            for (i, _) in &rows.spends {
                if !spent.contains(i) {
                    outcomes[*i] = Err(Error::Unauthorized);
                }
            }
            let audits: Vec<_> = live
                .iter()
                .filter(|i| outcomes[**i].is_ok())
                .map(|i| &jobs[*i].audit)
                .collect();
            if !audits.is_empty() {
                crate::audit::append_and_commit_pg(tx, chain, head, &audits).await?;
                return Ok(outcomes);
            }
        }
        Backend::Postgres => {}
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// What the batch's one PostgreSQL statement writes, each row with the change (`job`) whose token the statement
/// spends before the row may be written (`None`: written unconditionally).
struct StatementRows<'a> {
    certs: Vec<(Option<usize>, &'a CertRow)>,
    events: Vec<(Option<usize>, &'a NewEvent)>,
    connector: Vec<(Option<usize>, &'a ConnectorRows)>,
    /// The token each such change spends.
    spends: Vec<(usize, &'a crate::connector::Spend)>,
    /// The log entries of the batch's first enrolments (no token: written unconditionally).
    log: Vec<&'a LogRow>,
}

/// PostgreSQL: the batch's token spends, certificates, events, connector rows and enrolment log entries in
/// ONE statement (a data-modifying CTE per table, each reading its rows from one JSON parameter; a row of a
/// change whose token was not spent is left out), which then takes the audit chain's lock and reads its head
/// (`audit::LOCK_HEAD_PG`), as `audit::append` would: one round trip where there were up to seven, and one
/// statement text for every batch, which each connection prepares once. Returns the changes whose token it
/// spent and the chain's head (`None`: the log is empty).
async fn insert_and_lock(
    tx: &mut Transaction<'_, Any>,
    rows: &StatementRows<'_>,
) -> Result<(HashSet<usize>, Option<(i64, Vec<u8>)>), Error> {
    let mut cert_rows = Recordset::default();
    for (job, c) in &rows.certs {
        let mut record = cert_record(c);
        record["job"] = serde_json::json!(job);
        cert_rows.push(record);
    }
    let mut event_rows = Recordset::default();
    for (job, e) in &rows.events {
        event_rows.push(serde_json::json!({
            "job": job, "id": e.id, "source": e.source, "type": e.ty, "subject": e.subject,
            "time": e.time, "data": e.data,
        }));
    }
    let (tokens, records) = crate::connector::recordsets(&rows.connector);
    let live = crate::connector::LIVE_PG;
    let sql = format!(
        "WITH spent AS ({}), \
         c AS ({} RETURNING 1), \
         e AS (INSERT INTO events (id, source, type, subject, time, data) \
         SELECT id, source, type, subject, time, data FROM json_to_recordset($2::json) AS r(job bigint, \
         id text, source text, type text, subject text, time bigint, data text) WHERE {live} RETURNING 1), \
         t AS ({} RETURNING 1), k AS ({} RETURNING 1), l AS ({} RETURNING 1), \
         s AS MATERIALIZED (SELECT COALESCE((SELECT string_agg(job::text, ',') FROM spent), '') AS jobs, \
         (SELECT count(*) FROM c) + (SELECT count(*) FROM e) + (SELECT count(*) FROM t) \
         + (SELECT count(*) FROM k) + (SELECT count(*) FROM l) AS written) \
         SELECT s.jobs, h.seq, h.hash FROM s \
         LEFT JOIN LATERAL shedu_audit_lock_head($5, s.jobs || ' ' || s.written) AS h ON true",
        crate::connector::spend_tokens_pg_sql(7),
        insert_certs_pg(&format!(
            "json_to_recordset($1::json) AS r(job bigint, {CERT_RECORD_PG}) WHERE {live}"
        )),
        crate::connector::insert_tokens_pg(),
        crate::connector::insert_records_pg(),
        crate::devices::status::INSERT_LOG_PG,
    );
    // The tokens first, the chain's lock second, as a batch that spends its tokens apart
    // (`connector::spend_tokens`) takes them: no two batches wait for each other. The rows are written before
    // the lock too (the lock's call takes what `s` counted as an argument; left to themselves, data-modifying
    // CTEs that the main query does not read run after it, under the lock), and the chain's head is read once
    // the lock is granted (`audit::LOCK_HEAD_PG`): of the batch, only its audit rows and its commit hold it.
    let (spent, seq, hash): (String, Option<i64>, Option<Vec<u8>>) =
        sqlx::query_as(AssertSqlSafe(sql))
            .bind(cert_rows.finish())
            .bind(event_rows.finish())
            .bind(tokens.finish())
            .bind(records.finish())
            .bind(crate::audit::CHAIN_LOCK)
            .bind(crate::devices::status::log_recordset(&rows.log).finish())
            .bind(crate::connector::spend_recordset(&rows.spends).finish())
            .fetch_one(&mut **tx)
            .await?;
    let spent = spent
        .split(',')
        .filter(|j| !j.is_empty())
        .map(|j| {
            j.parse()
                .map_err(|_| Error::Config(format!("spent job {j:?}")))
        })
        .collect::<Result<_, Error>>()?;
    Ok((spent, seq.zip(hash)))
}

/// PostgreSQL: the columns of a certificate's record in a JSON recordset ([`cert_record`]).
pub(crate) const CERT_RECORD_PG: &str = "ca_id text, serial text, fingerprint text, subject text, sans text, \
    key_type text, not_before bigint, not_after bigint, der text, status text, revoked_at bigint, \
    revocation_reason text, created_at bigint";

/// A certificate as a record of a JSON recordset whose columns are [`CERT_RECORD_PG`] (the DER as hex).
pub(crate) fn cert_record(c: &CertRow) -> serde_json::Value {
    serde_json::json!({
        "ca_id": c.ca_id, "serial": c.serial, "fingerprint": c.fingerprint, "subject": c.subject,
        "sans": c.sans, "key_type": c.key_type, "not_before": c.not_before, "not_after": c.not_after,
        "der": hex::encode(&c.der), "status": c.status, "revoked_at": c.revoked_at,
        "revocation_reason": c.revocation_reason, "created_at": c.created_at,
    })
}

/// PostgreSQL: inserts the certificates of `source`, a `FROM` item whose rows have the columns of
/// [`CERT_RECORD_PG`].
pub(crate) fn insert_certs_pg(source: &str) -> String {
    format!(
        "INSERT INTO certificates (ca_id, serial, fingerprint, subject, sans, key_type, not_before, \
         not_after, der, status, revoked_at, revocation_reason, created_at) \
         SELECT ca_id, serial, fingerprint, subject, sans, key_type, not_before, not_after, decode(der, 'hex'), \
         status, revoked_at, revocation_reason, created_at FROM {source}"
    )
}

/// The rows of one table as one JSON array, bound as ONE parameter and read back by PostgreSQL's
/// `json_to_recordset` (bytes as hex, `decode(…, 'hex')`): a statement of one shape whatever the batch
/// holds. A multi-row `VALUES` list has a shape per row count: batches of 1 to 512 rows over the statement
/// cache's 100 entries a connection meant re-preparing (a round trip, plus one to close the statement it
/// evicts) and PostgreSQL parsing and planning each new shape.
#[derive(Debug, Default)]
pub(crate) struct Recordset(Vec<serde_json::Value>);

impl Recordset {
    /// Adds a row: an object whose keys are the recordset's column names.
    pub(crate) fn push(&mut self, row: serde_json::Value) {
        self.0.push(row);
    }

    /// The JSON text to bind.
    pub(crate) fn finish(self) -> String {
        serde_json::Value::Array(self.0).to_string()
    }
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
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashSet;

    use crate::Store;
    use crate::connector::issue_test_token;
    use crate::scratch::{ScratchDb, TEST_WORDS, TestBackend};

    /// Issues token `n` through the certificate writer, in a task of its own.
    fn issue(store: &Store, n: u8) -> tokio::task::JoinHandle<Result<(), crate::Error>> {
        let store = store.clone();
        tokio::spawn(async move { issue_test_token(&store, n).await })
    }

    /// See: issue 14. On PostgreSQL the certificate writer's batches of any size are the same statement
    /// texts, so a connection prepares each once: after batches of 1, 5 and 17 changes every prepared
    /// statement that inserts tokens or events has one text. (Multi-row VALUES lists had a text per row
    /// count: over the statement cache's 100 entries a connection, a batch re-prepared its statements, a
    /// round trip each and another to close the one it evicted.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_of_any_size_share_their_prepared_statements_postgres() {
        let db = ScratchDb::new(TestBackend::Postgres).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let texts = prepared_after_batches(&store, issue).await;
        for table in ["connector_tokens", "events"] {
            assert_eq!(inserts(&texts, table), 1, "{table}: {texts:#?}");
        }
        // The audit rows go with the commit, in one simple query (`audit::append_and_commit_pg`): never prepared.
        assert_eq!(inserts(&texts, "audit_log"), 0, "{texts:#?}");
    }

    /// See: issue 13. On PostgreSQL first enrolments of new devices are one statement of one text for the
    /// devices, their certificates, slots and history (each device inserted with the status its slot gives
    /// it, never updated), and ride the batch's one statement for their log entries and events: after
    /// batches of 1, 5 and 17 enrolments, each of those tables has one prepared INSERT, and no statement
    /// updates a device. (Multi-row VALUES lists and a status UPDATE per second of request time were up to
    /// eight round trips a batch, and a text per row count.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn enrolment_batches_of_any_size_share_their_prepared_statements_postgres() {
        let db = ScratchDb::new(TestBackend::Postgres).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        test_ca(&store, "ca1").await;
        let texts = prepared_after_batches(&store, enrol).await;
        for table in [
            "devices",
            "device_slots",
            "device_certificates",
            "device_log",
        ] {
            assert_eq!(inserts(&texts, table), 1, "{table}: {texts:#?}");
        }
        assert!(
            !texts.iter().any(|t| t.contains("UPDATE devices")),
            "{texts:#?}"
        );
        // Each device as one enrolment writes it: its status from its slot, and its three log entries.
        let devices: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT d.id, d.status, (SELECT COUNT(*) FROM device_log l WHERE l.device_id = d.id) \
             FROM devices d",
        )
        .fetch_all(&store.write)
        .await
        .unwrap();
        assert_eq!(devices.len(), 32);
        for (id, status, log) in devices {
            assert_eq!((status.as_str(), log), ("fully_provisioned", 3), "{id}");
        }
    }

    /// How many distinct prepared statements in `texts` insert into `table`.
    fn inserts(texts: &HashSet<String>, table: &str) -> usize {
        texts
            .iter()
            .filter(|t| t.contains(&format!("INSERT INTO {table} ")))
            .count()
    }

    /// First enrolment `n` of a new device (`dev-{n}` into `ca1`'s slot), in a task of its own.
    fn enrol(store: &Store, n: u8) -> tokio::task::JoinHandle<Result<(), crate::Error>> {
        let store = store.clone();
        let serial = format!("{n:02x}");
        let now = 1_900_000_000;
        let r = crate::EnrollmentRecord {
            cert: crate::CertRow {
                seq: 0,
                ca_id: "ca1".into(),
                serial: serial.clone(),
                fingerprint: format!("{n:064x}"),
                subject: format!("CN={serial}"),
                sans: String::new(),
                key_type: "ec-p256".into(),
                not_before: now,
                not_after: now + 86_400 * 365,
                der: vec![0x30, 0x00],
                status: "active".into(),
                revoked_at: None,
                revocation_reason: None,
                created_at: now,
            },
            cert_event: test_event(
                "certificate.issued",
                &format!("cas/ca1/certificates/{serial}"),
            ),
            device_id: format!("dev-{n}"),
            ra_id: "ra1".into(),
            slot: "ca1".into(),
            register: true,
            reenroll: false,
            revoke_previous: false,
            consume_secret_sha256: None,
            now,
        };
        tokio::spawn(async move {
            let outcome = store
                .record_enrollment(r, &crate::scratch::test_audit("device.enroll"))
                .await?;
            assert!(outcome.device_created);
            Ok(())
        })
    }

    fn test_event(ty: &str, subject: &str) -> crate::NewEvent {
        crate::NewEvent {
            id: crate::ordered_id(),
            source: "/test".into(),
            ty: ty.into(),
            subject: subject.into(),
            time: 1_900_000_000,
            data: "{}".into(),
        }
    }

    /// A CA row `id`, for certificates and slots to name.
    async fn test_ca(store: &Store, id: &str) {
        let row = crate::scratch::test_ca_row(id, 2_000_000_000, 30);
        let event = test_event("ca.created", &format!("cas/{id}"));
        store
            .insert_ca(&row, &event, &crate::scratch::test_audit("ca.create"))
            .await
            .unwrap();
    }

    /// Runs 32 changes (made by `change`, numbered from 0) through the certificate writer in batches of 1, 5 and 17
    /// behind one change per batch slot, then returns the texts of the statements every connection of the
    /// writer's pool has prepared.
    async fn prepared_after_batches(
        store: &Store,
        change: fn(&Store, u8) -> tokio::task::JoinHandle<Result<(), crate::Error>>,
    ) -> HashSet<String> {
        let queued = |store: &Store| store.certs.tx.max_capacity() - store.certs.tx.capacity();
        let mut n = 0u8;
        for size in [1u8, 5, 17] {
            // The chain's lock held here stops each of the writer's batch slots inside a batch of one change;
            // `size` changes queue behind them and make the next batch.
            let mut blocker = store.write.begin().await.unwrap();
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(crate::audit::CHAIN_LOCK)
                .execute(&mut *blocker)
                .await
                .unwrap();
            let mut tasks = Vec::new();
            for slot in 1..=super::slots(crate::Backend::Postgres) {
                tasks.push(change(store, n));
                n += 1;
                crate::audit::until_lock_waiters(store, slot as i64).await;
            }
            for _ in 0..size {
                tasks.push(change(store, n));
                n += 1;
            }
            while queued(store) < usize::from(size) {
                tokio::task::yield_now().await;
            }
            blocker.commit().await.unwrap();
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        }
        crate::connector::prepared_statements(store).await
    }

    #[test]
    fn placeholders_number_rows_then_columns() {
        let mut s = String::new();
        super::push_placeholders(&mut s, 2, 2, crate::Backend::Postgres);
        assert_eq!(s, "($1, $2), ($3, $4)");
    }
}

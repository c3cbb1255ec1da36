//! The connector's storage: one-time tokens (only their SHA-256 hashes) and the client identity of every
//! certificate the connector issued.
//!
//! Every pairing write rides the certificate writer's batches ([`crate::writer`]), beside API issuance: a
//! token is redeemed by an `UPDATE … WHERE consumed_at IS NULL AND expires_at > now … RETURNING` inside
//! the transaction of the success it buys (the next token, or the certificate): if that transaction rolls
//! back, the token is still unspent, and of N concurrent redemptions exactly one changes the row (SQLite
//! has one writer; PostgreSQL re-checks the condition after the first holder of the row lock commits, so
//! replicas with writers of their own still spend a token once; inside one batch the first change that
//! names a token gets it).

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::audit::Audited;
use crate::writer::{Recordset, WriteRows, push_placeholders};
use crate::{Backend, CertRow, Error, NewEvent, Store};

/// How long a spent or expired token row is kept after its expiry (for investigations), in seconds.
const TOKEN_KEEP_SECS: i64 = 86_400;

/// The least time between two purges of expired tokens by one writer.
pub(crate) const PURGE_EVERY_SECS: i64 = 60;

/// One one-time token, as stored: never the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorTokenRow {
    /// SHA-256 of the token.
    pub token_sha256: Vec<u8>,
    /// What the token buys (`pairing`: the CSR information; `csr`: a certificate).
    pub purpose: String,
    /// `applications` or `runtimes`.
    pub kind: String,
    /// The application name or runtime id.
    pub name: String,
    /// The client's group, when given.
    pub group: Option<String>,
    /// The client's tenant, when given.
    pub tenant: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the token is refused from then on.
    pub expires_at: i64,
    /// When it was redeemed; `None` while unspent.
    pub consumed_at: Option<i64>,
}

/// The connector's record of a certificate it issued: whose identity it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorCertRow {
    /// SHA-256 fingerprint of the certificate (lowercase hex).
    pub fingerprint: String,
    /// Issuer.
    pub ca_id: String,
    /// Serial (lowercase hex).
    pub serial: String,
    /// `applications` or `runtimes`.
    pub kind: String,
    /// The application name or runtime id.
    pub name: String,
    /// The client's group.
    pub group: Option<String>,
    /// The client's tenant.
    pub tenant: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Everything one connector issuance writes in ONE transaction: the token it consumes (a first pairing;
/// none for a renewal), the certificate with its `certificate.issued` event, the connector's event and its
/// record of the certificate, and the audit record.
#[derive(Clone, Debug)]
pub struct ConnectorIssuance {
    /// The certificate.
    pub cert: CertRow,
    /// Its `certificate.issued` event.
    pub cert_event: NewEvent,
    /// The connector's event (`connector.certificate_issued` or `…_renewed`).
    pub connector_event: NewEvent,
    /// The client identity the certificate carries (its `fingerprint`, `ca_id` and `serial` are the cert's).
    pub record: ConnectorCertRow,
    /// `(SHA-256, purpose)` of the token to consume; it must be unspent and unexpired, else
    /// [`Error::Unauthorized`] and nothing is written.
    pub consume: Option<(Vec<u8>, String)>,
    /// Unix seconds.
    pub now: i64,
}

/// A token a change spends: `(SHA-256, purpose, now)`.
pub(crate) type Spend = (Vec<u8>, String, i64);

/// The connector's rows of one change in the certificate writer's batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnectorRows {
    /// `(SHA-256, purpose, now)` of the token the change spends; without it nothing is written.
    pub(crate) spend: Option<Spend>,
    /// A new token.
    pub(crate) token: Option<ConnectorTokenRow>,
    /// The connector's record of the change's certificate.
    pub(crate) record: Option<ConnectorCertRow>,
}

impl Store {
    /// Stores a new token with its event and audit record, in one transaction; token rows that expired more
    /// than a day ago are purged in the same transaction.
    pub async fn insert_connector_token(
        &self,
        token: &ConnectorTokenRow,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let target = format!("connector/{}/{}", token.kind, token.name);
        let pending = crate::audit::pending(audit, &target, token.created_at);
        let change = WriteRows {
            events: vec![event.clone()],
            connector: ConnectorRows {
                token: Some(token.clone()),
                ..ConnectorRows::default()
            },
            ..WriteRows::default()
        };
        self.certs.write(change, pending).await
    }

    /// A token by its hash, spent or not.
    pub async fn connector_token(
        &self,
        token_sha256: &[u8],
    ) -> Result<Option<ConnectorTokenRow>, Error> {
        let row = sqlx::query(
            "SELECT token_sha256, purpose, kind, name, group_name, tenant, created_at, expires_at, consumed_at \
             FROM connector_tokens WHERE token_sha256 = $1",
        )
        .bind(token_sha256.to_vec())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Redeems the token `(token_sha256, purpose)` for `next`, in one transaction with the audit record:
    /// [`Error::Unauthorized`] (nothing written) when the token is spent, expired or of another purpose.
    pub async fn exchange_connector_token(
        &self,
        token_sha256: &[u8],
        purpose: &str,
        next: &ConnectorTokenRow,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let now = next.created_at;
        let target = format!("connector/{}/{}", next.kind, next.name);
        let pending = crate::audit::pending(audit, &target, now);
        let change = WriteRows {
            connector: ConnectorRows {
                spend: Some((token_sha256.to_vec(), purpose.to_string(), now)),
                token: Some(next.clone()),
                record: None,
            },
            ..WriteRows::default()
        };
        self.certs.write(change, pending).await
    }

    /// Writes one connector issuance in one transaction; see [`ConnectorIssuance`]. Errors leave nothing
    /// behind: [`Error::Unauthorized`] (the token is spent, expired or of another purpose), `Conflict` (a
    /// serial or fingerprint collision).
    pub async fn record_connector_issuance(
        &self,
        r: &ConnectorIssuance,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let r = r.clone();
        let target = format!("{}/{}", r.cert.ca_id, r.cert.serial);
        let pending = crate::audit::pending(audit, &target, r.now);
        let change = WriteRows {
            cert: Some(r.cert),
            events: vec![r.cert_event, r.connector_event],
            connector: ConnectorRows {
                spend: r.consume.map(|(hash, purpose)| (hash, purpose, r.now)),
                token: None,
                record: Some(r.record),
            },
            ..WriteRows::default()
        };
        self.certs.write(change, pending).await
    }

    /// The connector's record of the certificate with this SHA-256 fingerprint (lowercase hex), if the
    /// connector issued it.
    pub async fn connector_certificate(
        &self,
        fingerprint: &str,
    ) -> Result<Option<ConnectorCertRow>, Error> {
        let sql = "SELECT fingerprint, ca_id, serial, kind, name, group_name, tenant, created_at \
                   FROM connector_certificates WHERE fingerprint = $1"
            .to_string();
        self.read_optional(sql, fingerprint, cert_from_row).await
    }
}

/// Purges the token rows that expired more than [`TOKEN_KEEP_SECS`] ago when the batch writes tokens,
/// unless this writer did so less than [`PURGE_EVERY_SECS`] before (`purged_at`, the writer's own memory: a
/// statement per batch saved, and a rolled-back purge only waits for the next).
pub(crate) async fn purge_due(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[&ConnectorRows],
    purged_at: &mut i64,
) -> Result<(), Error> {
    let oldest = rows
        .iter()
        .filter_map(|r| r.token.as_ref())
        .map(|t| t.created_at)
        .min();
    if let Some(oldest) = oldest
        && oldest.saturating_sub(*purged_at) >= PURGE_EVERY_SECS
    {
        sqlx::query("DELETE FROM connector_tokens WHERE expires_at < $1")
            .bind(oldest - TOKEN_KEEP_SECS)
            .execute(&mut **tx)
            .await?;
        *purged_at = oldest;
    }
    Ok(())
}

/// Writes the connector rows of a batch's changes on SQLite: new tokens with one multi-row INSERT, the
/// certificate records with another (PostgreSQL writes them inside the writer's one statement, from
/// [`recordsets`]).
pub(crate) async fn insert_batch(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[&ConnectorRows],
    backend: Backend,
) -> Result<(), Error> {
    let tokens: Vec<&ConnectorTokenRow> = rows.iter().filter_map(|r| r.token.as_ref()).collect();
    if !tokens.is_empty() {
        let mut sql = String::from(
            "INSERT INTO connector_tokens (token_sha256, purpose, kind, name, group_name, tenant, created_at, \
             expires_at) VALUES ",
        );
        push_placeholders(&mut sql, tokens.len(), 8, backend);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for t in tokens {
            q = q
                .bind(t.token_sha256.clone())
                .bind(t.purpose.clone())
                .bind(t.kind.clone())
                .bind(t.name.clone())
                .bind(t.group.clone())
                .bind(t.tenant.clone())
                .bind(t.created_at)
                .bind(t.expires_at);
        }
        q.execute(&mut **tx).await?;
    }
    let records: Vec<&ConnectorCertRow> = rows.iter().filter_map(|r| r.record.as_ref()).collect();
    if !records.is_empty() {
        let mut sql = String::from(
            "INSERT INTO connector_certificates (fingerprint, ca_id, serial, kind, name, group_name, tenant, \
             created_at) VALUES ",
        );
        push_placeholders(&mut sql, records.len(), 8, backend);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for c in records {
            q = q
                .bind(c.fingerprint.clone())
                .bind(c.ca_id.clone())
                .bind(c.serial.clone())
                .bind(c.kind.clone())
                .bind(c.name.clone())
                .bind(c.group.clone())
                .bind(c.tenant.clone())
                .bind(c.created_at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// PostgreSQL: spends the tokens of the JSON recordset `$param` (see [`spend_recordset`]), returning the change
/// (`job`) each spent token was for; the CTE `spent` of the writer's one statement. A concurrent redemption
/// through another replica holds the row's lock until it commits; PostgreSQL then re-checks the conditions
/// against the row it committed (`consumed_at` is set: not spent here), and the statement's other CTEs see
/// only the rows this one returned.
///
/// The hashes are also named as an array (`token_sha256 = ANY (…)`): joined with the recordset alone (which
/// PostgreSQL guesses at 100 rows), the plan each connection caches when the table is small, or holds mostly
/// spent tokens, read every token row of the table for every batch (a sequential scan: 11.5M rows read in a
/// 7 s pairing benchmark); the array makes the primary key's index the plan at any table size.
pub(crate) fn spend_tokens_pg_sql(param: usize) -> String {
    format!(
        "UPDATE connector_tokens AS t SET consumed_at = s.spent_at \
         FROM json_to_recordset(${param}::json) AS s(job bigint, token_sha256 text, purpose text, \
         spent_at bigint) WHERE t.token_sha256 = decode(s.token_sha256, 'hex') AND t.purpose = s.purpose \
         AND t.consumed_at IS NULL AND t.expires_at > s.spent_at \
         AND t.token_sha256 = ANY (ARRAY(SELECT decode(e->>'token_sha256', 'hex') \
         FROM json_array_elements(${param}::json) AS e)) RETURNING s.job"
    )
}

/// PostgreSQL: the condition on a recordset row `r` of the writer's one statement: written unless it belongs to
/// a change (`job`) whose token the CTE `spent` ([`spend_tokens_pg_sql`]) did not spend.
pub(crate) const LIVE_PG: &str = "(r.job IS NULL OR r.job IN (SELECT job FROM spent))";

/// PostgreSQL: inserts the new tokens of the JSON recordset `$3` (see [`recordsets`]).
pub(crate) fn insert_tokens_pg() -> String {
    format!(
        "INSERT INTO connector_tokens (token_sha256, purpose, kind, name, group_name, tenant, created_at, \
         expires_at) SELECT decode(token_sha256, 'hex'), purpose, kind, name, group_name, tenant, created_at, \
         expires_at FROM json_to_recordset($3::json) AS r(job bigint, token_sha256 text, purpose text, \
         kind text, name text, group_name text, tenant text, created_at bigint, expires_at bigint) \
         WHERE {LIVE_PG}"
    )
}

/// PostgreSQL: inserts the certificate records of the JSON recordset `$4` (see [`recordsets`]).
pub(crate) fn insert_records_pg() -> String {
    format!(
        "INSERT INTO connector_certificates (fingerprint, ca_id, serial, kind, name, group_name, tenant, \
         created_at) SELECT fingerprint, ca_id, serial, kind, name, group_name, tenant, created_at \
         FROM json_to_recordset($4::json) AS r(job bigint, fingerprint text, ca_id text, serial text, \
         kind text, name text, group_name text, tenant text, created_at bigint) WHERE {LIVE_PG}"
    )
}

/// The new tokens and the certificate records of a batch's changes, as the recordsets of
/// [`insert_tokens_pg`] and [`insert_records_pg`]; each change comes with the `job` its rows wait for (see
/// [`LIVE_PG`]).
pub(crate) fn recordsets(rows: &[(Option<usize>, &ConnectorRows)]) -> (Recordset, Recordset) {
    let mut tokens = Recordset::default();
    let mut records = Recordset::default();
    for (job, r) in rows {
        if let Some(t) = &r.token {
            tokens.push(serde_json::json!({
                "job": job, "token_sha256": hex::encode(&t.token_sha256), "purpose": t.purpose,
                "kind": t.kind, "name": t.name, "group_name": t.group, "tenant": t.tenant,
                "created_at": t.created_at, "expires_at": t.expires_at,
            }));
        }
        if let Some(c) = &r.record {
            records.push(serde_json::json!({
                "job": job, "fingerprint": c.fingerprint, "ca_id": c.ca_id, "serial": c.serial,
                "kind": c.kind, "name": c.name, "group_name": c.group, "tenant": c.tenant,
                "created_at": c.created_at,
            }));
        }
    }
    (tokens, records)
}

/// The recordset of [`spend_tokens_pg_sql`]: the token each change (`job`) spends.
pub(crate) fn spend_recordset(spends: &[(usize, &Spend)]) -> Recordset {
    let mut set = Recordset::default();
    for (job, (hash, purpose, now)) in spends {
        set.push(serde_json::json!({
            "job": job, "token_sha256": hex::encode(hash), "purpose": purpose, "spent_at": now,
        }));
    }
    set
}

/// The changes that may try to spend their token: every change but one naming a token an earlier change of the
/// batch names (that one gets [`Error::Unauthorized`]: a token named twice goes to the first change that names
/// it).
pub(crate) fn first_spends(spends: &[Option<&Spend>]) -> Vec<Result<(), Error>> {
    let mut named: HashSet<(&[u8], &str)> = HashSet::new();
    spends
        .iter()
        .map(|spend| match spend {
            Some((hash, purpose, _)) if !named.insert((hash.as_slice(), purpose.as_str())) => {
                Err(Error::Unauthorized)
            }
            _ => Ok(()),
        })
        .collect()
}

/// Test token `n` (its hash is `n` repeated) for `purpose`, unspent, made at 1,700,000,000 for ten minutes.
#[cfg(test)]
pub(crate) fn test_token(n: u8, purpose: &str) -> ConnectorTokenRow {
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

/// The event test token `n` is issued with, at `time`.
#[cfg(test)]
pub(crate) fn test_token_event(n: u8, time: i64) -> NewEvent {
    NewEvent {
        id: format!("ev-{n}"),
        source: "test".into(),
        ty: "connector.token_created".into(),
        subject: format!("app-{n}"),
        time,
        data: "{}".into(),
    }
}

/// Issues [`test_token`] `n` for pairing, with its event, as an operator would (through the certificate
/// writer).
#[cfg(test)]
pub(crate) async fn issue_test_token(store: &Store, n: u8) -> Result<(), Error> {
    let ctx = crate::audit::AuditContext::new("op", "u1", "operator", "127.0.0.1", "req");
    let audited = Audited {
        actor: &ctx,
        action: "connector.token_create",
    };
    store
        .insert_connector_token(
            &test_token(n, "pairing"),
            &test_token_event(n, 1_700_000_000),
            &audited,
        )
        .await
}

/// PostgreSQL: the texts of the statements prepared on every connection of `store`'s write pool.
#[cfg(test)]
pub(crate) async fn prepared_statements(store: &Store) -> HashSet<String> {
    // Every connection back in the pool first, so that the loop below takes each of them (and does not
    // open a new one while the writer's is still on its way back).
    while store.write.num_idle() < store.write.size() as usize {
        tokio::task::yield_now().await;
    }
    let mut conns = Vec::new();
    for _ in 0..store.write.size() {
        conns.push(store.write.acquire().await.expect("a write connection"));
    }
    let mut texts = HashSet::new();
    for conn in &mut conns {
        let prepared: Vec<String> =
            sqlx::query_scalar("SELECT statement FROM pg_prepared_statements")
                .fetch_all(&mut **conn)
                .await
                .expect("prepared statements");
        texts.extend(prepared);
    }
    texts
}

#[cfg(test)]
pub(crate) async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    t: &ConnectorTokenRow,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO connector_tokens (token_sha256, purpose, kind, name, group_name, tenant, created_at, expires_at, consumed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
    )
    .bind(t.token_sha256.clone())
    .bind(&t.purpose)
    .bind(&t.kind)
    .bind(&t.name)
    .bind(t.group.clone())
    .bind(t.tenant.clone())
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Spends the tokens a batch's changes name (`None`: the change spends none): each change's outcome,
/// [`Error::Unauthorized`] unless this batch spent its token for it (a token named twice goes to the first
/// change that names it). On PostgreSQL one `UPDATE … FROM json_to_recordset(…) RETURNING` of one shape
/// whatever the batch holds (each token matched with its own purpose and time); on SQLite one
/// `UPDATE … RETURNING` per time (whatever their purposes).
pub(crate) async fn spend_tokens(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    spends: &[Option<&Spend>],
    backend: Backend,
) -> Result<Vec<Result<(), Error>>, Error> {
    if backend == Backend::Postgres {
        return spend_tokens_pg(tx, spends).await;
    }
    let mut outcomes: Vec<Result<(), Error>> = spends.iter().map(|_| Ok(())).collect();
    let mut times: Vec<i64> = spends.iter().flatten().map(|(_, _, now)| *now).collect();
    times.sort_unstable();
    times.dedup();
    for now in times {
        let mut pairs: Vec<(&Vec<u8>, &str)> = spends
            .iter()
            .flatten()
            .filter(|(_, _, n)| *n == now)
            .map(|(hash, purpose, _)| (hash, purpose.as_str()))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        // The hashes alone first: SQLite looks a row-value list up by no index. Equality on a SHA-256 of
        // a 256-bit random token: timing reveals nothing usable.
        let hashes: Vec<String> = (0..pairs.len())
            .map(|i| format!("${}", 2 * i + 2))
            .collect();
        let both: Vec<String> = (0..pairs.len())
            .map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3))
            .collect();
        let sql = format!(
            "UPDATE connector_tokens SET consumed_at = $1 \
             WHERE consumed_at IS NULL AND expires_at > $1 AND token_sha256 IN ({}) \
             AND (token_sha256, purpose) IN ({}) RETURNING token_sha256, purpose",
            hashes.join(", "),
            both.join(", ")
        );
        let mut q = sqlx::query_as::<_, (Vec<u8>, String)>(AssertSqlSafe(sql)).bind(now);
        for (hash, purpose) in &pairs {
            q = q.bind((*hash).clone()).bind(purpose.to_string());
        }
        let mut spent: HashSet<(Vec<u8>, String)> =
            q.fetch_all(&mut **tx).await?.into_iter().collect();
        for (spend, outcome) in spends.iter().zip(outcomes.iter_mut()) {
            if let Some((hash, purpose, n)) = spend
                && *n == now
                && !spent.remove(&(hash.clone(), purpose.clone()))
            {
                *outcome = Err(Error::Unauthorized);
            }
        }
    }
    Ok(outcomes)
}

/// [`spend_tokens`] on PostgreSQL, apart from the writer's one statement (a batch that enrols devices writes
/// its certificates before that statement): [`spend_tokens_pg_sql`] alone.
async fn spend_tokens_pg(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    spends: &[Option<&Spend>],
) -> Result<Vec<Result<(), Error>>, Error> {
    let mut outcomes = first_spends(spends);
    let trying: Vec<(usize, &Spend)> = spends
        .iter()
        .enumerate()
        .filter(|(i, _)| outcomes[*i].is_ok())
        .filter_map(|(i, spend)| Some((i, (*spend)?)))
        .collect();
    if trying.is_empty() {
        return Ok(outcomes);
    }
    let sql = format!(
        "WITH spent AS ({}) SELECT job FROM spent",
        spend_tokens_pg_sql(1)
    );
    let spent: HashSet<i64> = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
        .bind(spend_recordset(&trying).finish())
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    for (i, _) in trying {
        if !spent.contains(&(i as i64)) {
            outcomes[i] = Err(Error::Unauthorized);
        }
    }
    Ok(outcomes)
}

fn token_from_row(r: &AnyRow) -> Result<ConnectorTokenRow, Error> {
    Ok(ConnectorTokenRow {
        token_sha256: r.try_get(0)?,
        purpose: r.try_get(1)?,
        kind: r.try_get(2)?,
        name: r.try_get(3)?,
        group: r.try_get(4)?,
        tenant: r.try_get(5)?,
        created_at: r.try_get(6)?,
        expires_at: r.try_get(7)?,
        consumed_at: r.try_get(8)?,
    })
}

fn cert_from_row(r: &AnyRow) -> Result<ConnectorCertRow, Error> {
    Ok(ConnectorCertRow {
        fingerprint: r.try_get(0)?,
        ca_id: r.try_get(1)?,
        serial: r.try_get(2)?,
        kind: r.try_get(3)?,
        name: r.try_get(4)?,
        group: r.try_get(5)?,
        tenant: r.try_get(6)?,
        created_at: r.try_get(7)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::{issue_test_token, prepared_statements, test_token};
    use crate::audit::{AuditContext, AuditVerdict, Audited};
    use crate::scratch::{ScratchDb, TEST_WORDS, TestBackend};
    use crate::{Error, Store};

    /// See: issue 14. On PostgreSQL a batch spends its tokens inside its one statement, with its rows (a
    /// pairing step was BEGIN, spend, insert, head, audit, COMMIT; the spend is no round trip of its own): no
    /// statement but that one touches the tokens, and a refused redemption still writes nothing (neither its
    /// next token nor its audit record) while the token stays spent once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_are_spent_inside_the_batch_statement_postgres() {
        let db = ScratchDb::new(TestBackend::Postgres).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        issue_test_token(&store, 1).await.unwrap();
        let ctx = AuditContext::new("app", "", "client", "127.0.0.1", "req");
        let audited = Audited {
            actor: &ctx,
            action: "connector.token_exchange",
        };
        store
            .exchange_connector_token(&[1; 32], "pairing", &test_token(2, "csr"), &audited)
            .await
            .unwrap();
        let again = store
            .exchange_connector_token(&[1; 32], "pairing", &test_token(3, "csr"), &audited)
            .await;
        assert!(matches!(again, Err(Error::Unauthorized)), "{again:?}");
        assert!(store.connector_token(&[3; 32]).await.unwrap().is_none());
        assert!(matches!(
            store.verify_audit_chain(&[]).await.unwrap(),
            AuditVerdict::Intact { records: 2, .. }
        ));
        let texts = prepared_statements(&store).await;
        let touching: Vec<&String> = texts
            .iter()
            .filter(|t| t.contains("UPDATE connector_tokens"))
            .collect();
        assert_eq!(
            touching.len(),
            1,
            "statements spending tokens: {touching:#?}"
        );
        assert!(
            touching[0].contains("INSERT INTO events "),
            "the spend rides the batch's statement: {touching:#?}"
        );
    }

    /// See: issue 14. The spend finds its tokens through the primary key whatever the table holds: the plan
    /// each connection caches (generic, as PostgreSQL keeps it after five executions) reads no token row it
    /// does not spend. Before, a table of a few thousand mostly spent tokens was read whole for every batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_are_spent_through_the_index_postgres() {
        let db = ScratchDb::new(TestBackend::Postgres).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let mut conn = store.write.acquire().await.unwrap();
        let run = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql));
        let sql = format!(
            "PREPARE spend(json) AS WITH spent AS ({}) SELECT job FROM spent",
            super::spend_tokens_pg_sql(1)
        );
        run(sql).execute(&mut *conn).await.unwrap();
        run("SET plan_cache_mode = force_generic_plan".into())
            .execute(&mut *conn)
            .await
            .unwrap();
        let plan = async |conn: &mut sqlx::pool::PoolConnection<sqlx::Any>| -> String {
            let explain = "EXPLAIN EXECUTE spend('[{\"job\": 0, \"token_sha256\": \"00\", \
                           \"purpose\": \"csr\", \"spent_at\": 1}]')";
            let rows: Vec<String> = sqlx::query_scalar(explain)
                .fetch_all(&mut **conn)
                .await
                .unwrap();
            rows.join("\n")
        };
        let fresh = plan(&mut conn).await;
        // 3,000 tokens, all but 100 of them spent, as after a run of pairings.
        run("INSERT INTO connector_tokens (token_sha256, purpose, kind, name, created_at, expires_at, \
             consumed_at) SELECT decode(lpad(to_hex(i), 64, '0'), 'hex'), 'csr', 'applications', 'app' || i, \
             0, 4000000000, CASE WHEN i > 100 THEN 1 END FROM generate_series(1, 3000) AS i"
            .into())
        .execute(&mut *conn)
        .await
        .unwrap();
        let grown = plan(&mut conn).await;
        run("ANALYZE connector_tokens".into())
            .execute(&mut *conn)
            .await
            .unwrap();
        let analyzed = plan(&mut conn).await;
        for (when, plan) in [("fresh", fresh), ("grown", grown), ("analyzed", analyzed)] {
            assert!(
                !plan.contains("Seq Scan on connector_tokens"),
                "{when}: the spend reads the whole table:\n{plan}"
            );
            assert!(
                plan.contains("connector_tokens_pkey"),
                "{when}: the spend does not use the primary key:\n{plan}"
            );
        }
        run("DEALLOCATE spend".into())
            .execute(&mut *conn)
            .await
            .unwrap();
        run("RESET plan_cache_mode".into())
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

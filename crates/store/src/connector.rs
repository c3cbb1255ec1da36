//! The connector's storage: one-time tokens (only their SHA-256 hashes) and the client identity of every
//! certificate the connector issued.
//!
//! A token is redeemed by an `UPDATE … WHERE consumed_at IS NULL AND expires_at > now` inside the
//! transaction of the success it buys (the next token, or the certificate): if that transaction rolls
//! back, the token is still unspent, and of N concurrent redemptions exactly one changes the row (SQLite
//! has one writer; PostgreSQL re-checks the condition after the first holder of the row lock commits).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::Audited;
use crate::writer::{insert_events, insert_rows};
use crate::{CertRow, Error, NewEvent, Store, events};

/// How long a spent or expired token row is kept after its expiry (for investigations), in seconds.
const TOKEN_KEEP_SECS: i64 = 86_400;

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

impl Store {
    /// Stores a new token with its event and audit record, in one transaction; token rows that expired more
    /// than a day ago are purged in the same transaction.
    pub async fn insert_connector_token(
        &self,
        token: &ConnectorTokenRow,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let (token, event) = (token.clone(), event.clone());
        let target = format!("connector/{}/{}", token.kind, token.name);
        let pending = crate::audit::pending(audit, &target, token.created_at);
        let chain = self.chain.clone();
        self.write_tx(move |tx| {
            Box::pin(async move {
                sqlx::query("DELETE FROM connector_tokens WHERE expires_at < $1")
                    .bind(token.created_at - TOKEN_KEEP_SECS)
                    .execute(&mut **tx)
                    .await?;
                insert_token(tx, &token).await?;
                events::append(tx, &event).await?;
                crate::audit::append(tx, &chain, &[&pending]).await
            })
        })
        .await
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
        let (hash, purpose, next) = (token_sha256.to_vec(), purpose.to_string(), next.clone());
        let target = format!("connector/{}/{}", next.kind, next.name);
        let pending = crate::audit::pending(audit, &target, now);
        let chain = self.chain.clone();
        self.write_tx(move |tx| {
            Box::pin(async move {
                consume(tx, &hash, &purpose, now).await?;
                insert_token(tx, &next).await?;
                crate::audit::append(tx, &chain, &[&pending]).await
            })
        })
        .await
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
        let (chain, backend) = (self.chain.clone(), self.backend);
        self.write_tx(move |tx| {
            Box::pin(async move {
                if let Some((hash, purpose)) = &r.consume {
                    consume(tx, hash, purpose, r.now).await?;
                }
                insert_rows(tx, &[&r.cert], backend).await?;
                insert_events(tx, &[&r.cert_event, &r.connector_event], backend).await?;
                let c = &r.record;
                sqlx::query(
                    "INSERT INTO connector_certificates (fingerprint, ca_id, serial, kind, name, group_name, tenant, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&c.fingerprint)
                .bind(&c.ca_id)
                .bind(&c.serial)
                .bind(&c.kind)
                .bind(&c.name)
                .bind(c.group.clone())
                .bind(c.tenant.clone())
                .bind(c.created_at)
                .execute(&mut **tx)
                .await?;
                crate::audit::append(tx, &chain, &[&pending]).await
            })
        })
        .await
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

/// Marks the token spent; [`Error::Unauthorized`] unless exactly this call spent it.
async fn consume(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    token_sha256: &[u8],
    purpose: &str,
    now: i64,
) -> Result<(), Error> {
    // Equality on a SHA-256 of a 256-bit random token: timing reveals nothing usable.
    let spent = sqlx::query(
        "UPDATE connector_tokens SET consumed_at = $1 \
         WHERE token_sha256 = $2 AND purpose = $3 AND consumed_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(token_sha256.to_vec())
    .bind(purpose)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if spent == 1 {
        Ok(())
    } else {
        Err(Error::Unauthorized)
    }
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

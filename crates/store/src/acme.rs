//! ACME state: nonces, accounts, external account binding keys, orders and authorizations. The rules
//! (state machines, what a request may do) are `shedu_core::Acme`'s; this module stores rows and makes
//! the multi-row moves atomic (an authorization's outcome and its order's status, an EAB key's use and
//! the account it binds).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Audited, CertRow, Error, NewEvent, Store};

/// `Conflict` reason: an account with this key already exists in the RA.
pub const ACME_ACCOUNT_KEY_EXISTS: &str = "acme_accounts_key_unique";
/// `Conflict` reason: the certificate an order replaces is already replaced by another order.
pub const ACME_ALREADY_REPLACED: &str = "acme_orders_replaces";
/// `Conflict` reason: the EAB key is unknown, of another RA, or already used.
pub const ACME_EAB_UNUSABLE: &str = "acme_eab_unusable";

/// An account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeAccountRow {
    /// Id (the last segment of its URL).
    pub id: String,
    /// The RA.
    pub ra_id: String,
    /// RFC 7638 thumbprint of its key.
    pub thumbprint: String,
    /// Its key, canonical JWK JSON.
    pub jwk: String,
    /// `valid`, `deactivated` or `revoked`.
    pub status: String,
    /// Contacts, JSON array.
    pub contact: String,
    /// The EAB key id it was bound with.
    pub eab_kid: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// The client address of the request that created it (the per-address limit on new accounts).
    pub created_from: Option<String>,
}

/// An EAB key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeEabRow {
    /// Key id.
    pub kid: String,
    /// The RA.
    pub ra_id: String,
    /// The HMAC key, sealed.
    pub hmac_sealed: Vec<u8>,
    /// Creation time.
    pub created_at: i64,
    /// The account it bound, once used.
    pub account_id: Option<String>,
}

/// An order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeOrderRow {
    /// Id.
    pub id: String,
    /// The account.
    pub account_id: String,
    /// `pending`, `ready`, `processing`, `valid` or `invalid`.
    pub status: String,
    /// Identifiers, JSON array of `{type, value}`.
    pub identifiers: String,
    /// The profile name.
    pub profile: Option<String>,
    /// The CA that issues it.
    pub ca_id: String,
    /// The replaced certificate's ARI identifier.
    pub replaces: Option<String>,
    /// Expiry.
    pub expires_at: i64,
    /// The problem that made it invalid, JSON.
    pub error: Option<String>,
    /// The issued certificate's serial (hex), once valid.
    pub cert_serial: Option<String>,
    /// Creation time.
    pub created_at: i64,
}

/// An authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeAuthzRow {
    /// Id.
    pub id: String,
    /// Its order.
    pub order_id: String,
    /// `dns` or `ip`.
    pub identifier_type: String,
    /// The name (without `*.`) or address.
    pub identifier_value: String,
    /// Whether the order asked for a wildcard.
    pub wildcard: bool,
    /// `pending`, `valid`, `invalid`, `deactivated`, `expired`, `revoked`.
    pub status: String,
    /// Expiry.
    pub expires_at: i64,
    /// The challenges' token.
    pub token: String,
    /// The challenge type the client answered, once it did.
    pub challenge: Option<String>,
    /// When it was validated.
    pub validated_at: Option<i64>,
    /// The validation problem, JSON.
    pub error: Option<String>,
}

/// How many counted things happened in a rate limit's window, and when the oldest of them did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateWindow {
    /// How many.
    pub count: i64,
    /// The oldest one's time (Unix seconds), when there is one.
    pub oldest: Option<i64>,
}

fn rate_window(r: &AnyRow) -> Result<RateWindow, Error> {
    Ok(RateWindow {
        count: r.try_get(0)?,
        oldest: r.try_get(1)?,
    })
}

/// What an ACME rate limit counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcmeCounted {
    /// The orders an account created.
    OrdersOfAccount {
        /// The account.
        account_id: String,
    },
    /// The orders of an RA's accounts that name an identifier (a wildcard counts as its base name).
    OrdersNaming {
        /// The RA.
        ra_id: String,
        /// `dns` or `ip`.
        identifier_type: String,
        /// The name (without `*.`) or address.
        identifier_value: String,
    },
    /// The accounts an RA created for requests from one client address.
    AccountsFrom {
        /// The RA.
        ra_id: String,
        /// The client address.
        source: String,
    },
    /// An account's failed validations of an identifier.
    FailedValidations {
        /// The account.
        account_id: String,
        /// `dns` or `ip`.
        identifier_type: String,
        /// The name (without `*.`) or address.
        identifier_value: String,
    },
}

impl AcmeCounted {
    /// The lock row's key: one per counted set.
    fn key(&self) -> String {
        match self {
            AcmeCounted::OrdersOfAccount { account_id } => format!("orders/account/{account_id}"),
            AcmeCounted::OrdersNaming {
                ra_id,
                identifier_type,
                identifier_value,
            } => format!("orders/identifier/{ra_id}/{identifier_type}/{identifier_value}"),
            AcmeCounted::AccountsFrom { ra_id, source } => {
                format!("accounts/source/{ra_id}/{source}")
            }
            AcmeCounted::FailedValidations {
                account_id,
                identifier_type,
                identifier_value,
            } => format!("failures/{account_id}/{identifier_type}/{identifier_value}"),
        }
    }

    /// How many happened after `since`, and the oldest of them, seen from inside `tx`.
    async fn count(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        since: i64,
    ) -> Result<RateWindow, Error> {
        let q = match self {
            AcmeCounted::OrdersOfAccount { account_id } => sqlx::query(
                "SELECT COUNT(*), MIN(created_at) FROM acme_orders WHERE account_id = $1 AND created_at > $2",
            )
            .bind(account_id)
            .bind(since),
            AcmeCounted::OrdersNaming {
                ra_id,
                identifier_type,
                identifier_value,
            } => sqlx::query(
                "SELECT COUNT(DISTINCT o.id), MIN(o.created_at) FROM acme_authzs a \
                 JOIN acme_orders o ON o.id = a.order_id JOIN acme_accounts c ON c.id = o.account_id \
                 WHERE a.identifier_type = $1 AND a.identifier_value = $2 AND o.created_at > $3 AND c.ra_id = $4",
            )
            .bind(identifier_type)
            .bind(identifier_value)
            .bind(since)
            .bind(ra_id),
            AcmeCounted::AccountsFrom { ra_id, source } => sqlx::query(
                "SELECT COUNT(*), MIN(created_at) FROM acme_accounts \
                 WHERE ra_id = $1 AND created_from = $2 AND created_at > $3",
            )
            .bind(ra_id)
            .bind(source)
            .bind(since),
            AcmeCounted::FailedValidations {
                account_id,
                identifier_type,
                identifier_value,
            } => sqlx::query(
                "SELECT COUNT(*), MIN(a.validated_at) FROM acme_authzs a JOIN acme_orders o ON o.id = a.order_id \
                 WHERE a.identifier_type = $1 AND a.identifier_value = $2 AND a.status = 'invalid' \
                 AND a.validated_at > $3 AND o.account_id = $4",
            )
            .bind(identifier_type)
            .bind(identifier_value)
            .bind(since)
            .bind(account_id),
        };
        rate_window(&q.fetch_one(&mut **tx).await?)
    }
}

/// A rate limit a write must stay under: fewer than `max` of `counted` after `since`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeRateCheck {
    /// What is counted.
    pub counted: AcmeCounted,
    /// The window's start (Unix seconds, exclusive).
    pub since: i64,
    /// The write is refused when this many are in the window already.
    pub max: i64,
}

/// A write refused by a rate limit: which of the checks, and what its window held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateRefusal {
    /// The index of the check in the list given.
    pub check: usize,
    /// The counted window.
    pub window: RateWindow,
}

/// How long a rate limit's lock row is kept after its last use, seconds.
pub(crate) const RATE_LOCK_KEEP_SECS: i64 = 3600;

/// Takes the lock row of every check's key (sorted, so that two writers never wait on each other in a
/// circle), then counts each window inside `tx`: the first check at its maximum refuses. Under the locks no
/// other writer of the same keys can count or insert until `tx` ends, so exactly `max` writes pass.
async fn rate_checks(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    checks: &[AcmeRateCheck],
    now: i64,
) -> Result<Option<RateRefusal>, Error> {
    let mut keys: Vec<String> = checks.iter().map(|c| c.counted.key()).collect();
    keys.sort();
    keys.dedup();
    for key in &keys {
        sqlx::query(
            "INSERT INTO acme_rate_locks (key, touched_at) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET touched_at = excluded.touched_at",
        )
        .bind(key)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    for (i, c) in checks.iter().enumerate() {
        let window = c.counted.count(tx, c.since).await?;
        if window.count >= c.max {
            return Ok(Some(RateRefusal { check: i, window }));
        }
    }
    Ok(None)
}

const ACCOUNT_COLUMNS: &str =
    "id, ra_id, thumbprint, jwk, status, contact, eab_kid, created_at, created_from";
const ORDER_COLUMNS: &str = "id, account_id, status, identifiers, profile, ca_id, replaces, expires_at, error, cert_serial, created_at";
const AUTHZ_COLUMNS: &str = "id, order_id, identifier_type, identifier_value, wildcard, status, expires_at, token, challenge, validated_at, error";

/// [`AUTHZ_COLUMNS`] of the table aliased `alias` in a join.
fn authz_columns_of(alias: &str) -> String {
    AUTHZ_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn account(r: &AnyRow) -> Result<AcmeAccountRow, Error> {
    Ok(AcmeAccountRow {
        id: r.try_get("id")?,
        ra_id: r.try_get("ra_id")?,
        thumbprint: r.try_get("thumbprint")?,
        jwk: r.try_get("jwk")?,
        status: r.try_get("status")?,
        contact: r.try_get("contact")?,
        eab_kid: r.try_get("eab_kid")?,
        created_at: r.try_get("created_at")?,
        created_from: r.try_get("created_from")?,
    })
}

fn eab(r: &AnyRow) -> Result<AcmeEabRow, Error> {
    Ok(AcmeEabRow {
        kid: r.try_get("kid")?,
        ra_id: r.try_get("ra_id")?,
        hmac_sealed: r.try_get("hmac_sealed")?,
        created_at: r.try_get("created_at")?,
        account_id: r.try_get("account_id")?,
    })
}

fn order(r: &AnyRow) -> Result<AcmeOrderRow, Error> {
    Ok(AcmeOrderRow {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        status: r.try_get("status")?,
        identifiers: r.try_get("identifiers")?,
        profile: r.try_get("profile")?,
        ca_id: r.try_get("ca_id")?,
        replaces: r.try_get("replaces")?,
        expires_at: r.try_get("expires_at")?,
        error: r.try_get("error")?,
        cert_serial: r.try_get("cert_serial")?,
        created_at: r.try_get("created_at")?,
    })
}

fn authz(r: &AnyRow) -> Result<AcmeAuthzRow, Error> {
    Ok(AcmeAuthzRow {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        identifier_type: r.try_get("identifier_type")?,
        identifier_value: r.try_get("identifier_value")?,
        wildcard: r.try_get::<i64, _>("wildcard")? != 0,
        status: r.try_get("status")?,
        expires_at: r.try_get("expires_at")?,
        token: r.try_get("token")?,
        challenge: r.try_get("challenge")?,
        validated_at: r.try_get("validated_at")?,
        error: r.try_get("error")?,
    })
}

/// Moves an order that is being finalized to `valid` with its certificate's serial, inside the
/// certificate's own transaction (the certificate writer's batch).
pub(crate) async fn order_issued(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    order_id: &str,
    serial_hex: &str,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE acme_orders SET status = 'valid', cert_serial = $1 WHERE id = $2 AND status = 'processing'",
    )
    .bind(serial_hex)
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Inserts the certificate of ACME order `order_id` with its event and audit record, and moves the
    /// order from `processing` to `valid` with the certificate's serial in the same transaction (the
    /// certificate writer's group commit): both are committed before this returns.
    pub async fn insert_acme_certificate(
        &self,
        cert: CertRow,
        event: NewEvent,
        audit: &Audited<'_>,
        order_id: &str,
    ) -> Result<(), Error> {
        let target = format!("{}/{}", cert.ca_id, cert.serial);
        let audit = crate::audit::pending(audit, &target, cert.created_at);
        let change = crate::writer::WriteRows {
            acme_order: Some((order_id.to_string(), cert.serial.clone())),
            cert: Some(cert),
            events: vec![event],
            ..Default::default()
        };
        self.certs.write(change, audit).await
    }

    /// Spends a nonce that is valid until `expires_at`: true the first time, on any replica (the row of a
    /// used nonce is kept until it expires; the nonce itself is authenticated by core). Now and then (when
    /// `purge` is set) what expired by then is deleted in the same transaction ([`Store::acme_purge`]).
    /// The spend goes through the group commit (`Store::write_tx`): concurrent requests' nonces share one
    /// commit, and each is durable before this returns.
    pub async fn acme_nonce_take(
        &self,
        nonce: &str,
        expires_at: i64,
        purge: Option<i64>,
    ) -> Result<bool, Error> {
        let nonce = nonce.to_string();
        self.write_tx(move |tx| {
            Box::pin(async move {
                if let Some(now) = purge {
                    purge_expired(tx, now).await?;
                }
                let done = sqlx::query(
                    "INSERT INTO acme_nonces (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
                )
                .bind(&nonce)
                .bind(expires_at)
                .execute(&mut **tx)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Deletes the used nonces that expired by `now` and the rate limits' lock rows untouched for
    /// [`RATE_LOCK_KEEP_SECS`] (for a server that keeps its nonce spends elsewhere: on SQLite, in memory).
    pub async fn acme_purge(&self, now: i64) -> Result<(), Error> {
        self.write_tx(move |tx| Box::pin(purge_expired(tx, now)))
            .await
    }

    /// Creates an account with its audit record, unless one of `limits` refuses it (counted under the
    /// limits' locks, see [`AcmeRateCheck`]); when `eab_kid` is set, the EAB key is consumed in the
    /// same transaction (`Conflict(ACME_EAB_UNUSABLE)` when it is used or not the RA's; with `reusable`
    /// it may bind several accounts).
    pub async fn acme_account_insert(
        &self,
        row: &AcmeAccountRow,
        reusable_eab: bool,
        limits: &[AcmeRateCheck],
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<Option<RateRefusal>, Error> {
        let mut tx = self.write.begin().await?;
        if let Some(refused) = rate_checks(&mut tx, limits, row.created_at).await? {
            return Ok(Some(refused));
        }
        let sql = format!(
            "INSERT INTO acme_accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&row.id)
            .bind(&row.ra_id)
            .bind(&row.thumbprint)
            .bind(&row.jwk)
            .bind(&row.status)
            .bind(&row.contact)
            .bind(row.eab_kid.clone())
            .bind(row.created_at)
            .bind(row.created_from.clone())
            .execute(&mut *tx)
            .await?;
        if let Some(kid) = &row.eab_kid {
            let sql = if reusable_eab {
                "UPDATE acme_eab_keys SET account_id = $1 WHERE kid = $2 AND ra_id = $3"
            } else {
                "UPDATE acme_eab_keys SET account_id = $1 WHERE kid = $2 AND ra_id = $3 AND account_id IS NULL"
            };
            let done = sqlx::query(sql)
                .bind(&row.id)
                .bind(kid)
                .bind(&row.ra_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Err(Error::Conflict {
                    constraint: Some(ACME_EAB_UNUSABLE.to_string()),
                });
            }
        }
        crate::events::append(&mut tx, event).await?;
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &format!("acme/accounts/{}", row.id),
            row.created_at,
        )
        .await?;
        Ok(None)
    }

    /// An account by id.
    pub async fn acme_account(&self, id: &str) -> Result<AcmeAccountRow, Error> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM acme_accounts WHERE id = $1");
        self.read_optional(sql, id, account)
            .await?
            .ok_or(Error::NotFound)
    }

    /// An account by RA and key thumbprint.
    pub async fn acme_account_by_key(
        &self,
        ra_id: &str,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccountRow>, Error> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM acme_accounts WHERE ra_id = $1 AND thumbprint = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ra_id)
            .bind(thumbprint)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(account).transpose()
    }

    /// Changes an account's status, contacts or key (key change: `Conflict(ACME_ACCOUNT_KEY_EXISTS)` when
    /// another account of the RA has the new key), with its event and audit record.
    pub async fn acme_account_update(
        &self,
        row: &AcmeAccountRow,
        now: i64,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE acme_accounts SET status = $1, contact = $2, jwk = $3, thumbprint = $4 WHERE id = $5",
        )
        .bind(&row.status)
        .bind(&row.contact)
        .bind(&row.jwk)
        .bind(&row.thumbprint)
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
        crate::error::found(done.rows_affected())?;
        crate::events::append(&mut tx, event).await?;
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &format!("acme/accounts/{}", row.id),
            now,
        )
        .await
    }

    /// Stores an EAB key with its audit record.
    pub async fn acme_eab_insert(
        &self,
        row: &AcmeEabRow,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query("INSERT INTO acme_eab_keys (kid, ra_id, hmac_sealed, created_at, account_id) VALUES ($1, $2, $3, $4, NULL)")
            .bind(&row.kid)
            .bind(&row.ra_id)
            .bind(row.hmac_sealed.clone())
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &format!("ras/{}/acme/eab/{}", row.ra_id, row.kid),
            row.created_at,
        )
        .await
    }

    /// An EAB key.
    pub async fn acme_eab(&self, kid: &str) -> Result<AcmeEabRow, Error> {
        self.read_optional(
            "SELECT kid, ra_id, hmac_sealed, created_at, account_id FROM acme_eab_keys WHERE kid = $1".into(),
            kid,
            eab,
        )
        .await?
        .ok_or(Error::NotFound)
    }

    /// An RA's EAB keys, oldest first.
    pub async fn acme_eab_list(&self, ra_id: &str) -> Result<Vec<AcmeEabRow>, Error> {
        let rows = sqlx::query("SELECT kid, ra_id, hmac_sealed, created_at, account_id FROM acme_eab_keys WHERE ra_id = $1 ORDER BY created_at, kid")
            .bind(ra_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(eab).collect()
    }

    /// Deletes an EAB key of an RA, with its audit record.
    pub async fn acme_eab_delete(
        &self,
        ra_id: &str,
        kid: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query("DELETE FROM acme_eab_keys WHERE kid = $1 AND ra_id = $2")
            .bind(kid)
            .bind(ra_id)
            .execute(&mut *tx)
            .await?;
        crate::error::found(done.rows_affected())?;
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &format!("ras/{ra_id}/acme/eab/{kid}"),
            now,
        )
        .await
    }

    /// Creates an order and its authorizations (some may be reused ones, already valid) in one transaction
    /// with its audit record, unless one of `limits` refuses it (counted under the limits' locks, see
    /// [`AcmeRateCheck`]; `Conflict(ACME_ALREADY_REPLACED)` when another order already replaces the same
    /// certificate).
    pub async fn acme_order_insert(
        &self,
        o: &AcmeOrderRow,
        authzs: &[AcmeAuthzRow],
        limits: &[AcmeRateCheck],
        audit: &Audited<'_>,
    ) -> Result<Option<RateRefusal>, Error> {
        let mut tx = self.write.begin().await?;
        if let Some(refused) = rate_checks(&mut tx, limits, o.created_at).await? {
            return Ok(Some(refused));
        }
        let sql = format!(
            "INSERT INTO acme_orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&o.id)
            .bind(&o.account_id)
            .bind(&o.status)
            .bind(&o.identifiers)
            .bind(o.profile.clone())
            .bind(&o.ca_id)
            .bind(o.replaces.clone())
            .bind(o.expires_at)
            .bind(o.error.clone())
            .bind(o.cert_serial.clone())
            .bind(o.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict { .. } => Error::Conflict {
                    constraint: Some(ACME_ALREADY_REPLACED.to_string()),
                },
                other => other,
            })?;
        for a in authzs {
            let sql = format!(
                "INSERT INTO acme_authzs ({AUTHZ_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&a.id)
                .bind(&a.order_id)
                .bind(&a.identifier_type)
                .bind(&a.identifier_value)
                .bind(i64::from(a.wildcard))
                .bind(&a.status)
                .bind(a.expires_at)
                .bind(&a.token)
                .bind(a.challenge.clone())
                .bind(a.validated_at)
                .bind(a.error.clone())
                .execute(&mut *tx)
                .await?;
        }
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &format!("acme/orders/{}", o.id),
            o.created_at,
        )
        .await?;
        Ok(None)
    }

    /// The newest authorization of an account for an identifier (`wildcard` as asked) that is valid
    /// until after `until`: what a new order of the account may reuse.
    pub async fn acme_authz_reusable(
        &self,
        account_id: &str,
        identifier_type: &str,
        identifier_value: &str,
        wildcard: bool,
        until: i64,
    ) -> Result<Option<AcmeAuthzRow>, Error> {
        let columns = authz_columns_of("a");
        let sql = format!(
            "SELECT {columns} FROM acme_authzs a JOIN acme_orders o ON o.id = a.order_id \
             WHERE a.identifier_type = $1 AND a.identifier_value = $2 AND a.wildcard = $3 \
             AND a.status = 'valid' AND a.expires_at > $4 AND o.account_id = $5 \
             ORDER BY a.expires_at DESC LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(identifier_type)
            .bind(identifier_value)
            .bind(i64::from(wildcard))
            .bind(until)
            .bind(account_id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(authz).transpose()
    }

    /// Deactivates an account's authorizations for `a`'s identifier (pending or valid: the one asked and
    /// every reused copy, so that no later order reuses it, RFC 8555 §7.5.2), and makes the account's
    /// pending or ready orders that named it `invalid` with `order_error`, with the audit record. False
    /// when there was nothing to deactivate.
    pub async fn acme_authz_deactivate(
        &self,
        a: &AcmeAuthzRow,
        account_id: &str,
        order_error: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<bool, Error> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE acme_authzs SET status = 'deactivated' WHERE status IN ('pending', 'valid') \
             AND identifier_type = $1 AND identifier_value = $2 AND wildcard = $3 \
             AND order_id IN (SELECT id FROM acme_orders WHERE account_id = $4)",
        )
        .bind(&a.identifier_type)
        .bind(&a.identifier_value)
        .bind(i64::from(a.wildcard))
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE acme_orders SET status = 'invalid', error = $1 WHERE account_id = $2 \
             AND status IN ('pending', 'ready') AND id IN (SELECT order_id FROM acme_authzs \
             WHERE status = 'deactivated' AND identifier_type = $3 AND identifier_value = $4 AND wildcard = $5)",
        )
        .bind(order_error)
        .bind(account_id)
        .bind(&a.identifier_type)
        .bind(&a.identifier_value)
        .bind(i64::from(a.wildcard))
        .execute(&mut *tx)
        .await?;
        crate::audit::commit(tx, &self.chain, audit, &format!("acme/authz/{}", a.id), now).await?;
        Ok(true)
    }

    /// An order and its authorizations' ids (in creation order), in one read.
    pub async fn acme_order_with_authzs(
        &self,
        id: &str,
    ) -> Result<(AcmeOrderRow, Vec<String>), Error> {
        let columns = ORDER_COLUMNS
            .split(", ")
            .map(|c| format!("o.{c} AS {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, a.id AS authz_id FROM acme_orders o \
             LEFT JOIN acme_authzs a ON a.order_id = o.id WHERE o.id = $1 ORDER BY a.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.read)
            .await?;
        let first = rows.first().ok_or(Error::NotFound)?;
        let authz_ids = rows
            .iter()
            .map(|r| r.try_get::<Option<String>, _>("authz_id"))
            .filter_map(|id| id.transpose())
            .collect::<Result<_, _>>()?;
        Ok((order(first)?, authz_ids))
    }

    /// An order.
    pub async fn acme_order(&self, id: &str) -> Result<AcmeOrderRow, Error> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM acme_orders WHERE id = $1");
        self.read_optional(sql, id, order)
            .await?
            .ok_or(Error::NotFound)
    }

    /// The order that issued a certificate, if an ACME order did.
    pub async fn acme_order_by_certificate(
        &self,
        ca_id: &str,
        serial_hex: &str,
    ) -> Result<Option<AcmeOrderRow>, Error> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM acme_orders WHERE ca_id = $1 AND cert_serial = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ca_id)
            .bind(serial_hex)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(order).transpose()
    }

    /// An account's order ids, newest first (at most `limit`).
    pub async fn acme_order_ids(&self, account_id: &str, limit: i64) -> Result<Vec<String>, Error> {
        let rows = sqlx::query("SELECT id FROM acme_orders WHERE account_id = $1 ORDER BY created_at DESC, id LIMIT $2")
            .bind(account_id)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// Moves an order from `from` to `status` (with its serial or error); false when it was not in `from`
    /// (another request moved it first).
    pub async fn acme_order_move(
        &self,
        id: &str,
        from: &str,
        status: &str,
        cert_serial: Option<&str>,
        error: Option<&str>,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE acme_orders SET status = $1, cert_serial = COALESCE($2, cert_serial), error = COALESCE($3, error) WHERE id = $4 AND status = $5",
        )
        .bind(status)
        .bind(cert_serial)
        .bind(error)
        .bind(id)
        .bind(from)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// An authorization and the account of its order (who may see it), in one read.
    pub async fn acme_authz(&self, id: &str) -> Result<(AcmeAuthzRow, String), Error> {
        let sql = format!(
            "SELECT {}, o.account_id FROM acme_authzs a JOIN acme_orders o ON o.id = a.order_id \
             WHERE a.id = $1",
            authz_columns_of("a")
        );
        self.read_optional(sql, id, |r| Ok((authz(r)?, r.try_get("account_id")?)))
            .await?
            .ok_or(Error::NotFound)
    }

    /// Records a pending authorization's outcome (`valid` or `invalid`) and moves its order in the same
    /// transaction, with the audit record: to `invalid` when the authorization failed (with
    /// `invalid_event`), to `ready` when every authorization of the order is valid. False when the
    /// authorization was no longer pending.
    pub async fn acme_authz_finish(
        &self,
        a: &AcmeAuthzRow,
        order_error: Option<&str>,
        invalid_event: Option<&NewEvent>,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<bool, Error> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE acme_authzs SET status = $1, challenge = $2, validated_at = $3, error = $4 WHERE id = $5 AND status = 'pending'",
        )
        .bind(&a.status)
        .bind(a.challenge.clone())
        .bind(a.validated_at)
        .bind(a.error.clone())
        .bind(&a.id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if a.status == "valid" {
            let open: i64 = sqlx::query(
                "SELECT COUNT(*) FROM acme_authzs WHERE order_id = $1 AND status <> 'valid'",
            )
            .bind(&a.order_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            if open == 0 {
                sqlx::query(
                    "UPDATE acme_orders SET status = 'ready' WHERE id = $1 AND status = 'pending'",
                )
                .bind(&a.order_id)
                .execute(&mut *tx)
                .await?;
            }
        } else {
            let moved = sqlx::query("UPDATE acme_orders SET status = 'invalid', error = $1 WHERE id = $2 AND status = 'pending'")
                .bind(order_error)
                .bind(&a.order_id)
                .execute(&mut *tx)
                .await?;
            if let (1, Some(event)) = (moved.rows_affected(), invalid_event) {
                crate::events::append(&mut tx, event).await?;
            }
        }
        crate::audit::commit(tx, &self.chain, audit, &format!("acme/authz/{}", a.id), now).await?;
        Ok(true)
    }
}

/// The used nonces that expired by `now` and the idle rate-limit lock rows, inside a caller's transaction.
async fn purge_expired(tx: &mut sqlx::Transaction<'_, sqlx::Any>, now: i64) -> Result<(), Error> {
    sqlx::query("DELETE FROM acme_nonces WHERE expires_at < $1")
        .bind(now)
        .execute(&mut **tx)
        .await?;
    // A lock row only serializes the limited writes of one key while they run: deleting an idle one is
    // safe (PostgreSQL's DELETE waits for a holder and re-checks `touched_at`; the next writer's upsert
    // makes it anew), and without this every key ever counted would stay forever.
    sqlx::query("DELETE FROM acme_rate_locks WHERE touched_at < $1")
        .bind(now - RATE_LOCK_KEEP_SECS)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::scratch::{ScratchDb, TEST_WORDS, TestBackend};

    async fn lock_keys(store: &Store) -> Vec<String> {
        sqlx::query_scalar("SELECT key FROM acme_rate_locks ORDER BY key")
            .fetch_all(&store.read)
            .await
            .unwrap()
    }

    /// See: issue 15 (the rate limits' lock rows were never purged). The nonce sweep deletes the lock rows
    /// idle for longer than RATE_LOCK_KEEP_SECS and keeps the others; a nonce is spent once; `acme_purge`
    /// sweeps the same without a spend.
    async fn idle_rate_lock_rows_are_purged(backend: TestBackend) {
        let db = ScratchDb::new(backend).await;
        let store = Store::connect(&db.url, &TEST_WORDS).await.unwrap();
        let check = |account: &str| AcmeRateCheck {
            counted: AcmeCounted::OrdersOfAccount {
                account_id: account.into(),
            },
            since: 0,
            max: 10,
        };
        let t0 = 1_700_000_000;
        for (account, at) in [("idle", t0), ("recent", t0 + RATE_LOCK_KEEP_SECS)] {
            let mut tx = store.write.begin().await.unwrap();
            assert_eq!(
                rate_checks(&mut tx, &[check(account)], at).await.unwrap(),
                None
            );
            tx.commit().await.unwrap();
        }
        let both = vec!["orders/account/idle", "orders/account/recent"];
        assert!(store.acme_nonce_take("n1", t0 + 9_000, None).await.unwrap());
        assert_eq!(lock_keys(&store).await, both, "no sweep, no purge");
        let sweep_at = t0 + RATE_LOCK_KEEP_SECS + 1;
        assert!(
            store
                .acme_nonce_take("n2", t0 + 9_000, Some(sweep_at))
                .await
                .unwrap()
        );
        assert!(
            !store.acme_nonce_take("n1", t0 + 9_000, None).await.unwrap(),
            "a nonce is spent once"
        );
        assert_eq!(lock_keys(&store).await, vec!["orders/account/recent"]);
        // A purged key's next limited write makes its lock row anew.
        let mut tx = store.write.begin().await.unwrap();
        assert_eq!(
            rate_checks(&mut tx, &[check("idle")], sweep_at)
                .await
                .unwrap(),
            None
        );
        tx.commit().await.unwrap();
        assert_eq!(lock_keys(&store).await, both);
        // The purge alone (a server whose spends are not rows): expired nonces and idle lock rows go.
        store.acme_purge(t0 + 9_001).await.unwrap();
        assert!(lock_keys(&store).await.is_empty());
        let nonces: i64 = sqlx::query_scalar("SELECT count(*) FROM acme_nonces")
            .fetch_one(&store.read)
            .await
            .unwrap();
        assert_eq!(nonces, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_rate_lock_rows_are_purged_sqlite() {
        idle_rate_lock_rows_are_purged(TestBackend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_rate_lock_rows_are_purged_postgres() {
        idle_rate_lock_rows_are_purged(TestBackend::Postgres).await;
    }
}

//! Cloud connectors and their sync state. The store keeps what core hands it: a connector's settings as
//! JSON text, its credentials already sealed, and one `cloud_sync` row per (connector, CA) and (connector,
//! certificate) saying what the cloud should show, where the connector stands and the cloud's own ids.
//!
//! Queuing is idempotent: the row's key is (connector, kind, CA, serial), so an event offered twice queues
//! nothing new, and a revocation only changes what is desired (and makes the row due again).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::Audited;
use crate::{Error, NewEvent, Store};

/// One connector as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudConnectorRow {
    /// Opaque id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The provider (`aws_iot`).
    pub provider: String,
    /// The provider's region.
    pub region: String,
    /// An endpoint other than the provider's public one.
    pub endpoint_url: Option<String>,
    /// The settings, JSON (core's encoding).
    pub settings: String,
    /// The credentials, sealed under the master key.
    pub credentials: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// When the connector was deleted with the request to take back what it registered (it stays until
    /// that is done); `None` for a live connector.
    pub deregister_at: Option<i64>,
}

/// One sync item: a CA or a certificate as one connector should make it appear in its cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudSyncRow {
    /// The connector.
    pub connector_id: String,
    /// `ca` or `certificate`.
    pub kind: String,
    /// The CA (the issuer, for a certificate).
    pub ca_id: String,
    /// The certificate's serial (lowercase hex); empty for a CA.
    pub serial: String,
    /// What the cloud should show (`active`, `revoked`, `inactive`).
    pub desired: String,
    /// `pending`, `synced` or `failed`.
    pub state: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Attempts since the last success.
    pub attempts: i64,
    /// When the item is due (Unix seconds).
    pub retry_at: i64,
    /// The cloud's id of the certificate.
    pub cloud_id: Option<String>,
    /// The cloud's ARN (or equivalent) of the certificate.
    pub cloud_arn: Option<String>,
    /// The thing (device) the certificate is attached to in the cloud.
    pub thing_name: Option<String>,
    /// Provider-specific progress (JSON), e.g. the fingerprint of a CA's verification certificate.
    pub detail: Option<String>,
    /// Unix seconds.
    pub updated_at: i64,
}

/// An item to queue (or, for an existing one, the state to desire again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudSyncKey {
    /// The connector.
    pub connector_id: String,
    /// `ca` or `certificate`.
    pub kind: String,
    /// The CA.
    pub ca_id: String,
    /// The serial; empty for a CA.
    pub serial: String,
}

const CONNECTOR_COLUMNS: &str = "id, name, provider, region, endpoint_url, settings, credentials, \
     created_at, updated_at, deregister_at";
const SYNC_COLUMNS: &str = "connector_id, kind, ca_id, serial, desired, state, error, attempts, \
     retry_at, cloud_id, cloud_arn, thing_name, detail, updated_at";

impl Store {
    /// Inserts a connector and queues its CAs (`desired = active`, due now, each with its certificates to
    /// catch up with from the first), with the event and the audit record, in one transaction. `Conflict`
    /// on a duplicate name.
    pub async fn insert_cloud_connector(
        &self,
        row: &CloudConnectorRow,
        ca_ids: &[String],
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO cloud_connectors (id, name, provider, region, endpoint_url, settings, credentials, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.provider)
        .bind(&row.region)
        .bind(row.endpoint_url.clone())
        .bind(&row.settings)
        .bind(row.credentials.clone())
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&mut *tx)
        .await?;
        queue_cas(&mut tx, &row.id, ca_ids, ca_ids, row.updated_at).await?;
        crate::events::append(&mut tx, event).await?;
        crate::audit::commit(tx, &self.chain, audit, &target(&row.id), row.updated_at).await
    }

    /// Replaces a connector's settings (and credentials, when `credentials` is given) and queues CAs it
    /// did not have yet; the CAs in `rebound` (bound by this change) catch up with their certificates from
    /// the first again. With the event and the audit record. `NotFound` when there is no such connector,
    /// or when it is being deregistered.
    pub async fn update_cloud_connector(
        &self,
        row: &CloudConnectorRow,
        credentials: Option<&[u8]>,
        ca_ids: &[String],
        rebound: &[String],
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let changed = sqlx::query(
            "UPDATE cloud_connectors SET name = $1, region = $2, endpoint_url = $3, settings = $4, \
             credentials = COALESCE($5, credentials), updated_at = $6 WHERE id = $7 AND deregister_at IS NULL",
        )
        .bind(&row.name)
        .bind(&row.region)
        .bind(row.endpoint_url.clone())
        .bind(&row.settings)
        .bind(credentials.map(<[u8]>::to_vec))
        .bind(row.updated_at)
        .bind(&row.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        crate::error::found(changed)?;
        queue_cas(&mut tx, &row.id, ca_ids, rebound, row.updated_at).await?;
        // New credentials or settings: whatever failed is worth trying again now.
        sqlx::query(
            "UPDATE cloud_sync SET retry_at = $1, attempts = 0 WHERE connector_id = $2 AND state = 'failed'",
        )
        .bind(row.updated_at)
        .bind(&row.id)
        .execute(&mut *tx)
        .await?;
        crate::events::append(&mut tx, event).await?;
        crate::audit::commit(tx, &self.chain, audit, &target(&row.id), row.updated_at).await
    }

    /// Deletes a connector and its sync state (nothing changes in the cloud), with the event and, when an
    /// operator asked for it now, the audit record (the end of a deregistration asked earlier has none of
    /// its own: the request was audited).
    pub async fn delete_cloud_connector(
        &self,
        id: &str,
        now: i64,
        event: &NewEvent,
        audit: Option<&Audited<'_>>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM cloud_sync WHERE connector_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM cloud_connectors WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        crate::error::found(gone)?;
        crate::events::append(&mut tx, event).await?;
        match audit {
            Some(audit) => crate::audit::commit(tx, &self.chain, audit, &target(id), now).await,
            None => Ok(tx.commit().await?),
        }
    }

    /// Starts taking back what a connector registered: the connector takes no new work, stops catching up,
    /// and every item of it becomes due with `desired = deregistered`; with the audit record. `NotFound`
    /// when there is no such connector.
    pub async fn begin_cloud_deregistration(
        &self,
        id: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let changed = sqlx::query(
            "UPDATE cloud_connectors SET deregister_at = COALESCE(deregister_at, $1), updated_at = $1 \
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        crate::error::found(changed)?;
        sqlx::query(
            "UPDATE cloud_sync SET desired = 'deregistered', state = 'pending', error = NULL, attempts = 0, \
             retry_at = $1, backfill_after = NULL, updated_at = $1 WHERE connector_id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        crate::audit::commit(tx, &self.chain, audit, &target(id), now).await
    }

    /// Connectors being deregistered that have no item left: their deregistration is done.
    pub async fn deregistered_cloud_connectors(&self) -> Result<Vec<String>, Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT c.id FROM cloud_connectors c WHERE c.deregister_at IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM cloud_sync s WHERE s.connector_id = c.id) ORDER BY c.id",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// How many certificate items of `ca_id` a connector still has.
    pub async fn cloud_certificate_items(
        &self,
        connector_id: &str,
        ca_id: &str,
    ) -> Result<i64, Error> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM cloud_sync WHERE connector_id = $1 AND ca_id = $2 AND kind = 'certificate'",
        )
        .bind(connector_id)
        .bind(ca_id)
        .fetch_one(&self.read)
        .await?;
        Ok(n)
    }

    /// The other connectors (not being deregistered) that hold an item of `kind` with this cloud id, as
    /// (region, endpoint): where the same registration may be in use by someone else.
    pub async fn cloud_id_holders(
        &self,
        connector_id: &str,
        kind: &str,
        cloud_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, Error> {
        Ok(sqlx::query_as(
            "SELECT c.region, c.endpoint_url FROM cloud_sync s JOIN cloud_connectors c ON c.id = s.connector_id \
             WHERE s.connector_id <> $1 AND s.kind = $2 AND s.cloud_id = $3 AND c.deregister_at IS NULL",
        )
        .bind(connector_id)
        .bind(kind)
        .bind(cloud_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// The CA items that still have certificates to catch up with and whose CA is registered, at most
    /// `limit`.
    pub async fn cloud_backfills(&self, limit: i64) -> Result<Vec<CloudSyncKey>, Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT connector_id, ca_id FROM cloud_sync WHERE backfill_after IS NOT NULL AND kind = 'ca' \
             AND state = 'synced' AND desired = 'active' ORDER BY connector_id, ca_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(connector_id, ca_id)| CloudSyncKey {
                connector_id,
                kind: "ca".into(),
                ca_id,
                serial: String::new(),
            })
            .collect())
    }

    /// Catches a connector's CA up with one page of its certificates: looks at the next `page` certificates
    /// of the CA after the item's position, queues those still usable at `now` (active or about to expire,
    /// not expired; a revoked or expired certificate has nothing to gain from a registration) as `active`
    /// items, unless an item exists already, and moves the position, all in one transaction. Returns how
    /// many items were queued and whether more pages remain (the position is cleared after the last one).
    pub async fn backfill_cloud_sync(
        &self,
        key: &CloudSyncKey,
        page: i64,
        now: i64,
    ) -> Result<(u64, bool), Error> {
        let mut tx = self.write.begin().await?;
        let after: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT backfill_after FROM cloud_sync WHERE connector_id = $1 AND kind = 'ca' AND ca_id = $2 \
             AND serial = ''",
        )
        .bind(&key.connector_id)
        .bind(&key.ca_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((Some(after),)) = after else {
            return Ok((0, false));
        };
        let (last, seen): (Option<i64>, i64) = sqlx::query_as(
            "SELECT MAX(seq), COUNT(*) FROM (SELECT seq FROM certificates WHERE ca_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3) page",
        )
        .bind(&key.ca_id)
        .bind(after)
        .bind(page)
        .fetch_one(&mut *tx)
        .await?;
        let mut queued = 0;
        if let Some(last) = last {
            queued = sqlx::query(
                "INSERT INTO cloud_sync (connector_id, kind, ca_id, serial, desired, state, attempts, retry_at, \
                 updated_at) SELECT $1, 'certificate', ca_id, serial, 'active', 'pending', 0, $2, $2 \
                 FROM certificates WHERE ca_id = $3 AND seq > $4 AND seq <= $5 \
                 AND status IN ('active', 'about_to_expire') AND not_after > $2 \
                 ON CONFLICT (connector_id, kind, ca_id, serial) DO NOTHING",
            )
            .bind(&key.connector_id)
            .bind(now)
            .bind(&key.ca_id)
            .bind(after)
            .bind(last)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let more = seen >= page;
        sqlx::query(
            "UPDATE cloud_sync SET backfill_after = $1 WHERE connector_id = $2 AND kind = 'ca' AND ca_id = $3 \
             AND serial = ''",
        )
        .bind(if more { last } else { None })
        .bind(&key.connector_id)
        .bind(&key.ca_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((queued, more))
    }

    /// Makes every CA of a live connector catch up with its certificates from the first again (an
    /// operator's request), with the audit record. `NotFound` when there is no such live connector.
    pub async fn restart_cloud_backfill(
        &self,
        id: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let live: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM cloud_connectors WHERE id = $1 AND deregister_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        live.ok_or(Error::NotFound)?;
        sqlx::query(
            "UPDATE cloud_sync SET backfill_after = 0 WHERE connector_id = $1 AND kind = 'ca'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        crate::audit::commit(tx, &self.chain, audit, &target(id), now).await
    }

    /// Every connector's sealed credentials (`id` is the connector), for master-key rotation.
    pub async fn sealed_cloud_credentials(&self) -> Result<Vec<crate::SealedSecretRow>, Error> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT id, credentials FROM cloud_connectors ORDER BY id")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, sealed)| crate::SealedSecretRow { id, sealed })
            .collect())
    }

    /// One connector.
    pub async fn cloud_connector(&self, id: &str) -> Result<CloudConnectorRow, Error> {
        self.read_optional(
            format!("SELECT {CONNECTOR_COLUMNS} FROM cloud_connectors WHERE id = $1"),
            id,
            connector_from_row,
        )
        .await?
        .ok_or(Error::NotFound)
    }

    /// Every connector, by name.
    pub async fn cloud_connectors(&self) -> Result<Vec<CloudConnectorRow>, Error> {
        self.read_all(
            format!("SELECT {CONNECTOR_COLUMNS} FROM cloud_connectors ORDER BY name"),
            connector_from_row,
        )
        .await
    }

    /// Queues items due at `now`: a new item desires `desired`; an existing one keeps its cloud ids and
    /// is made due again only when `desired` differs from what it desires (a revocation after issuance),
    /// so an event offered twice changes nothing. Returns how many rows changed.
    pub async fn queue_cloud_sync(
        &self,
        items: &[(CloudSyncKey, &str)],
        now: i64,
    ) -> Result<u64, Error> {
        if items.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write.begin().await?;
        let mut changed = 0;
        for (k, desired) in items {
            changed += sqlx::query(
                "INSERT INTO cloud_sync (connector_id, kind, ca_id, serial, desired, state, attempts, retry_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) \
                 ON CONFLICT (connector_id, kind, ca_id, serial) DO UPDATE SET desired = excluded.desired, \
                 state = 'pending', error = NULL, attempts = 0, retry_at = excluded.retry_at, \
                 updated_at = excluded.updated_at WHERE cloud_sync.desired <> excluded.desired \
                 AND cloud_sync.desired <> 'deregistered'",
            )
            .bind(&k.connector_id)
            .bind(&k.kind)
            .bind(&k.ca_id)
            .bind(&k.serial)
            .bind(*desired)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Items not synced whose time has come, CAs first, oldest first, at most `limit`.
    pub async fn due_cloud_sync(&self, now: i64, limit: i64) -> Result<Vec<CloudSyncRow>, Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SYNC_COLUMNS} FROM cloud_sync WHERE state <> 'synced' AND retry_at <= $1 \
             ORDER BY kind, retry_at, updated_at LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(sync_from_row).collect()
    }

    /// One item, if queued.
    pub async fn cloud_sync_item(&self, key: &CloudSyncKey) -> Result<Option<CloudSyncRow>, Error> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SYNC_COLUMNS} FROM cloud_sync WHERE connector_id = $1 AND kind = $2 AND ca_id = $3 \
             AND serial = $4"
        )))
        .bind(&key.connector_id)
        .bind(&key.kind)
        .bind(&key.ca_id)
        .bind(&key.serial)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(sync_from_row).transpose()
    }

    /// The progress details of CA `ca_id`'s items, across connectors.
    pub async fn cloud_ca_details(&self, ca_id: &str) -> Result<Vec<String>, Error> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT detail FROM cloud_sync WHERE kind = 'ca' AND ca_id = $1 AND detail IS NOT NULL",
        )
        .bind(ca_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// A connector's items (CAs first, then certificates by CA and serial), `kind` and `state` filtering
    /// when given.
    pub async fn cloud_sync_items(
        &self,
        connector_id: &str,
        kind: Option<&str>,
        state: Option<&str>,
    ) -> Result<Vec<CloudSyncRow>, Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SYNC_COLUMNS} FROM cloud_sync WHERE connector_id = $1 \
             AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR state = $3) ORDER BY kind, ca_id, serial"
        )))
        .bind(connector_id)
        .bind(kind)
        .bind(state)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(sync_from_row).collect()
    }

    /// Records an attempt's outcome on an item (its state, error, due time, cloud ids and progress), unless
    /// what it desires changed since it was read (`desired` is the value read): then the item stays due
    /// and the next pass works on the new wish. `event` (a failure to report) is written with it, only if
    /// the row was. Returns whether the row was written.
    pub async fn record_cloud_sync(
        &self,
        row: &CloudSyncRow,
        desired: &str,
        event: Option<&NewEvent>,
    ) -> Result<bool, Error> {
        let mut tx = self.write.begin().await?;
        let changed = sqlx::query(
            "UPDATE cloud_sync SET state = $1, error = $2, attempts = $3, retry_at = $4, cloud_id = $5, \
             cloud_arn = $6, thing_name = $7, detail = $8, updated_at = $9 \
             WHERE connector_id = $10 AND kind = $11 AND ca_id = $12 AND serial = $13 AND desired = $14",
        )
        .bind(&row.state)
        .bind(row.error.clone())
        .bind(row.attempts)
        .bind(row.retry_at)
        .bind(row.cloud_id.clone())
        .bind(row.cloud_arn.clone())
        .bind(row.thing_name.clone())
        .bind(row.detail.clone())
        .bind(row.updated_at)
        .bind(&row.connector_id)
        .bind(&row.kind)
        .bind(&row.ca_id)
        .bind(&row.serial)
        .bind(desired)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1
            && let Some(event) = event
        {
            crate::events::append(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(changed == 1)
    }

    /// Makes the pending certificate items of a connector's CA due at `now` (its registration just
    /// succeeded: they need not wait for their next scheduled look).
    pub async fn wake_cloud_certificates(
        &self,
        connector_id: &str,
        ca_id: &str,
        now: i64,
    ) -> Result<u64, Error> {
        Ok(sqlx::query(
            "UPDATE cloud_sync SET retry_at = $1 WHERE connector_id = $2 AND ca_id = $3 \
             AND kind = 'certificate' AND state = 'pending' AND retry_at > $1",
        )
        .bind(now)
        .bind(connector_id)
        .bind(ca_id)
        .execute(&self.write)
        .await?
        .rows_affected())
    }

    /// Forgets an item (a certificate the connector made itself, such as a CA's verification certificate).
    pub async fn forget_cloud_sync(&self, key: &CloudSyncKey) -> Result<(), Error> {
        sqlx::query(
            "DELETE FROM cloud_sync WHERE connector_id = $1 AND kind = $2 AND ca_id = $3 AND serial = $4",
        )
        .bind(&key.connector_id)
        .bind(&key.kind)
        .bind(&key.ca_id)
        .bind(&key.serial)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}

/// The audit target of a connector.
fn target(id: &str) -> String {
    format!("cloud-connectors/{id}")
}

/// Queues the CA items a connector does not have yet, each to catch up with its certificates from the
/// first; an existing item of a CA in `rebound` catches up from the first again.
async fn queue_cas(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    connector_id: &str,
    ca_ids: &[String],
    rebound: &[String],
    now: i64,
) -> Result<(), Error> {
    for ca_id in ca_ids {
        sqlx::query(
            "INSERT INTO cloud_sync (connector_id, kind, ca_id, serial, desired, state, attempts, retry_at, \
             updated_at, backfill_after) VALUES ($1, 'ca', $2, '', 'active', 'pending', 0, $3, $3, 0) \
             ON CONFLICT (connector_id, kind, ca_id, serial) DO NOTHING",
        )
        .bind(connector_id)
        .bind(ca_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    for ca_id in rebound {
        sqlx::query(
            "UPDATE cloud_sync SET backfill_after = 0 WHERE connector_id = $1 AND kind = 'ca' AND ca_id = $2",
        )
        .bind(connector_id)
        .bind(ca_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn connector_from_row(r: &AnyRow) -> Result<CloudConnectorRow, Error> {
    Ok(CloudConnectorRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        provider: r.try_get(2)?,
        region: r.try_get(3)?,
        endpoint_url: r.try_get(4)?,
        settings: r.try_get(5)?,
        credentials: r.try_get(6)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
        deregister_at: r.try_get(9)?,
    })
}

fn sync_from_row(r: &AnyRow) -> Result<CloudSyncRow, Error> {
    Ok(CloudSyncRow {
        connector_id: r.try_get(0)?,
        kind: r.try_get(1)?,
        ca_id: r.try_get(2)?,
        serial: r.try_get(3)?,
        desired: r.try_get(4)?,
        state: r.try_get(5)?,
        error: r.try_get(6)?,
        attempts: r.try_get(7)?,
        retry_at: r.try_get(8)?,
        cloud_id: r.try_get(9)?,
        cloud_arn: r.try_get(10)?,
        thing_name: r.try_get(11)?,
        detail: r.try_get(12)?,
        updated_at: r.try_get(13)?,
    })
}

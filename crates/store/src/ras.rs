//! Registration authorities (RAs). Each change writes its event (and, inside a request, its audit record)
//! in the same transaction.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::Audited;
use crate::{Error, NewEvent, Store};

/// A registration authority.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct RaRow {
    pub id: String,
    pub name: String,
    /// The enrolment settings, JSON (the core crate owns their shape).
    pub settings: String,
    /// The RA's own certificate, when it has one.
    pub certificate_der: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
}

const RA_COLUMNS: &str = "id, name, settings, certificate_der, created_at, updated_at";

fn ra(r: &AnyRow) -> Result<RaRow, Error> {
    Ok(RaRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        settings: r.try_get("settings")?,
        certificate_der: r.try_get("certificate_der")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// `Conflict` reason: the RA still has devices that are not decommissioned.
pub const RA_HAS_DEVICES: &str = "ra_has_devices";

/// What a write does to the `ras` table.
#[derive(Clone, Copy, Debug)]
pub enum RaWrite<'a> {
    /// Insert an RA; a taken name is a `Conflict`.
    Insert(&'a RaRow),
    /// Replace an RA's name, settings and certificate; `NotFound` when it does not exist.
    Update(&'a RaRow),
    /// Delete an RA; `NotFound` when it does not exist, `Conflict` ([`RA_HAS_DEVICES`]) while a device of
    /// it is not decommissioned (it could never enrol or renew again). Decommissioned devices keep their
    /// history.
    Delete(&'a str),
}

impl Store {
    /// Writes an RA with its event and audit record, in one transaction.
    pub async fn write_ra(
        &self,
        write: RaWrite<'_>,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let (target, affected) = match write {
            RaWrite::Insert(r) => {
                let sql = format!("INSERT INTO ras ({RA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)");
                let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&r.id)
                    .bind(&r.name)
                    .bind(&r.settings)
                    .bind(r.certificate_der.clone())
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .execute(&mut *tx)
                    .await?;
                (r.id.as_str(), done.rows_affected())
            }
            RaWrite::Update(r) => {
                let done = sqlx::query(
                    "UPDATE ras SET name = $1, settings = $2, certificate_der = $3, updated_at = $4 WHERE id = $5",
                )
                .bind(&r.name)
                .bind(&r.settings)
                .bind(r.certificate_der.clone())
                .bind(r.updated_at)
                .bind(&r.id)
                .execute(&mut *tx)
                .await?;
                (r.id.as_str(), done.rows_affected())
            }
            RaWrite::Delete(id) => {
                let live: i64 = sqlx::query(
                    "SELECT COUNT(*) FROM devices WHERE ra_id = $1 AND status <> 'decommissioned'",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
                if live > 0 {
                    return Err(Error::Conflict {
                        constraint: Some(RA_HAS_DEVICES.to_string()),
                    });
                }
                let done = sqlx::query("DELETE FROM ras WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                (id, done.rows_affected())
            }
        };
        crate::error::found(affected)?;
        crate::events::append(&mut tx, event).await?;
        crate::audit::commit(tx, &self.chain, audit, target, event.time).await
    }

    /// One RA.
    pub async fn get_ra(&self, id: &str) -> Result<RaRow, Error> {
        let sql = format!("SELECT {RA_COLUMNS} FROM ras WHERE id = $1");
        self.read_optional(sql, id, ra)
            .await?
            .ok_or(Error::NotFound)
    }

    /// The RA with this id, else the one with this name (one read: ACME and EST URLs may name either).
    pub async fn get_ra_by_id_or_name(&self, id_or_name: &str) -> Result<RaRow, Error> {
        let sql = format!(
            "SELECT {RA_COLUMNS} FROM ras WHERE id = $1 OR name = $1 \
             ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1"
        );
        self.read_optional(sql, id_or_name, ra)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Every RA, oldest first (RAs are few: one per factory line or product).
    pub async fn list_ras(&self) -> Result<Vec<RaRow>, Error> {
        let sql = format!("SELECT {RA_COLUMNS} FROM ras ORDER BY created_at, id");
        self.read_all(sql, ra).await
    }
}

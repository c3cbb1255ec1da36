//! Certificate authorities.

use crate::model::CA_COLUMNS;
use crate::{CaRow, Error, Store};

impl Store {
    /// Inserts a CA (with default VA settings) and its creation event in one transaction.
    #[cfg(any(test, feature = "testing"))]
    pub async fn insert_ca(
        &self,
        ca: &CaRow,
        event: &crate::NewEvent,
        audit: &crate::Audited<'_>,
    ) -> Result<(), Error> {
        self.insert_ca_with_settings(ca, &crate::CaVaSettings::default(), event, audit)
            .await
    }

    /// One CA by id.
    pub async fn get_ca(&self, id: &str) -> Result<CaRow, Error> {
        let sql = format!("SELECT {CA_COLUMNS} FROM cas WHERE id = $1");
        self.read_optional(sql, id, CaRow::from_row)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Every CA, oldest first. CAs are few (tens), so no pagination.
    pub async fn list_cas(&self) -> Result<Vec<CaRow>, Error> {
        let sql = format!("SELECT {CA_COLUMNS} FROM cas ORDER BY created_at, id");
        self.read_all(sql, CaRow::from_row).await
    }
}

/// The INSERT of one CA row, inside a caller's transaction.
pub(crate) async fn insert_ca_row(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ca: &CaRow,
) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO cas ({CA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20, $21, $22)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&ca.id)
        .bind(&ca.name)
        .bind(&ca.kind)
        .bind(&ca.parent_id)
        .bind(&ca.key_type)
        .bind(&ca.engine)
        .bind(&ca.key_sealed)
        .bind(&ca.certificate_der)
        .bind(&ca.subject)
        .bind(&ca.serial)
        .bind(&ca.fingerprint)
        .bind(ca.not_before)
        .bind(ca.not_after)
        .bind(&ca.status)
        .bind(ca.default_validity_days)
        .bind(&ca.key_usages)
        .bind(&ca.ext_key_usages)
        .bind(ca.path_len)
        .bind(&ca.allowed_key_types)
        .bind(ca.expiry_warning_days)
        .bind(ca.created_at)
        .bind(&ca.name_policy)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

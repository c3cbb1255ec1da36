//! Saved device groups: named filters over the registry, nestable. A group's effective filter is its own
//! ANDed with its ancestors', which the service combines from [`Store::device_group_chain`].

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::{conflict, split_tags};
use crate::audit::Audited;
use crate::{Error, NewEvent, Store, events};

/// `Conflict` reason: a group with child groups cannot be deleted.
pub const GROUP_HAS_CHILDREN: &str = "device_group_has_children";

/// A device group as stored: its own filter only.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub ra_id: Option<String>,
    pub status: Option<String>,
    /// Every one must match.
    pub tags: Vec<String>,
    /// A JSON object of key to scalar; every pair must be equal.
    pub metadata: String,
    pub created_at: i64,
}

const GROUP_COLUMNS: &str = "id, name, parent_id, ra_id, status, tags, metadata, created_at";

impl GroupRow {
    fn from_row(r: &AnyRow) -> Result<GroupRow, Error> {
        Ok(GroupRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            parent_id: r.try_get("parent_id")?,
            ra_id: r.try_get("ra_id")?,
            status: r.try_get("status")?,
            tags: split_tags(&r.try_get::<String, _>("tags")?),
            metadata: r.try_get("metadata")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// Ancestors followed at most; the service refuses deeper nesting, so this only bounds a corrupt chain.
const MAX_DEPTH: i64 = 64;

impl Store {
    /// Inserts a group with its event. A taken name is a `Conflict`; a missing parent is `NotFound`.
    pub async fn insert_device_group(
        &self,
        g: &GroupRow,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        if let Some(parent) = &g.parent_id {
            sqlx::query("SELECT id FROM device_groups WHERE id = $1")
                .bind(parent)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(Error::NotFound)?;
        }
        let sql = format!(
            "INSERT INTO device_groups ({GROUP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(&g.id)
            .bind(&g.name)
            .bind(&g.parent_id)
            .bind(&g.ra_id)
            .bind(&g.status)
            .bind(g.tags.join(","))
            .bind(&g.metadata)
            .bind(g.created_at)
            .execute(&mut *tx)
            .await?;
        events::append(&mut tx, event).await?;
        crate::audit::commit(tx, &self.chain, audit, &g.id, g.created_at).await
    }

    /// A group followed by its ancestors, nearest first. `NotFound` when the group is missing.
    pub async fn device_group_chain(&self, id: &str) -> Result<Vec<GroupRow>, Error> {
        let columns = super::prefixed("g", GROUP_COLUMNS);
        let sql = format!(
            "WITH RECURSIVE chain (id, depth) AS ( \
               SELECT id, 0 FROM device_groups WHERE id = $1 \
               UNION ALL \
               SELECT g.parent_id, c.depth + 1 FROM device_groups g JOIN chain c ON g.id = c.id \
               WHERE g.parent_id IS NOT NULL AND c.depth < $2) \
             SELECT {columns} FROM device_groups g JOIN chain c ON g.id = c.id ORDER BY c.depth"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(MAX_DEPTH)
            .fetch_all(&self.read)
            .await?;
        if rows.is_empty() {
            return Err(Error::NotFound);
        }
        rows.iter().map(GroupRow::from_row).collect()
    }

    /// Every group, by name.
    pub async fn list_device_groups(&self) -> Result<Vec<GroupRow>, Error> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM device_groups ORDER BY name, id");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(GroupRow::from_row).collect()
    }

    /// Deletes a group with its event; the devices stay. `NotFound`, or `Conflict`
    /// ([`GROUP_HAS_CHILDREN`]) while child groups refer to it.
    pub async fn delete_device_group(
        &self,
        id: &str,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let children: i64 = sqlx::query("SELECT COUNT(*) FROM device_groups WHERE parent_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if children > 0 {
            return Err(conflict(GROUP_HAS_CHILDREN));
        }
        let deleted = sqlx::query("DELETE FROM device_groups WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        crate::error::found(deleted)?;
        events::append(&mut tx, event).await?;
        crate::audit::commit(tx, &self.chain, audit, id, event.time).await
    }
}

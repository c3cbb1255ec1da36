//! KMIP managed objects and their grants. The store keeps what core hands it: the attributes as text
//! (JSON TTLV, no key material), the object's key material already sealed, the owner, and per-object,
//! per-user, per-operation grants. Every change commits with its events and its audit record.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::Audited;
use crate::{Error, NewEvent, Store, events};

/// One managed object as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmipObjectRow {
    /// The Unique Identifier.
    pub uid: String,
    /// The principal that created or registered it.
    pub owner: String,
    /// The KMIP Object Type enumeration.
    pub object_type: i64,
    /// The KMIP State enumeration.
    pub state: i64,
    /// The attributes, JSON TTLV.
    pub attributes: String,
    /// The object's TTLV sealed under the master key; `None` once destroyed.
    pub sealed: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// One grant: `user_id` may perform `operation` on `uid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmipGrantRow {
    /// The object.
    pub uid: String,
    /// The grantee.
    pub user_id: String,
    /// The operation's name (`get`, `encrypt`, …).
    pub operation: String,
}

const COLUMNS: &str = "uid, owner, object_type, state, attributes, sealed, created_at, updated_at";

impl Store {
    /// Inserts new objects (one, or a key pair) with their events and the audit record, in one
    /// transaction. `Conflict` on a duplicate uid. The certificate writer's batches carry them: under load
    /// one multi-row INSERT per table and one commit serve every Create queued (`writer.rs`), where the
    /// group writer paid a savepoint, a release and an INSERT per table for each (on PostgreSQL, a round
    /// trip each).
    pub async fn insert_kmip_objects(
        &self,
        rows: &[&KmipObjectRow],
        events: &[&NewEvent],
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let uids: Vec<&str> = rows.iter().map(|r| r.uid.as_str()).collect();
        let now = rows.first().map_or(0, |r| r.created_at);
        let pending = crate::audit::pending(audit, &format!("kmip/{}", uids.join(",")), now);
        let change = crate::writer::WriteRows {
            kmip: rows.iter().map(|r| (*r).clone()).collect(),
            events: events.iter().map(|e| (*e).clone()).collect(),
            ..Default::default()
        };
        self.certs.write(change, pending).await
    }

    /// Replaces the state, attributes and sealed material of existing objects (the row's `uid`), with
    /// their events and the audit record, in one transaction. `expected_state` guards each row against a
    /// concurrent change: `Conflict` and nothing written when a row's stored state moved meanwhile.
    pub async fn update_kmip_objects(
        &self,
        rows: &[(&KmipObjectRow, i64)],
        events: &[&NewEvent],
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        self.write_kmip_objects(&[], rows, events, audit).await
    }

    /// Inserts `new` objects and updates `changed` ones (as [`Store::update_kmip_objects`] does) with
    /// the events and the audit record, in one transaction: a re-key's new key and the old key it
    /// replaces commit together or not at all.
    pub async fn write_kmip_objects(
        &self,
        new: &[&KmipObjectRow],
        changed: &[(&KmipObjectRow, i64)],
        events: &[&NewEvent],
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let uids: Vec<&str> = new
            .iter()
            .map(|r| r.uid.as_str())
            .chain(changed.iter().map(|(r, _)| r.uid.as_str()))
            .collect();
        let now = new
            .first()
            .map(|r| r.created_at)
            .or_else(|| changed.first().map(|(r, _)| r.updated_at))
            .unwrap_or(0);
        let pending = crate::audit::pending(audit, &format!("kmip/{}", uids.join(",")), now);
        let new: Vec<KmipObjectRow> = new.iter().map(|r| (*r).clone()).collect();
        let changed: Vec<(KmipObjectRow, i64)> =
            changed.iter().map(|(r, s)| ((*r).clone(), *s)).collect();
        let events: Vec<NewEvent> = events.iter().map(|e| (*e).clone()).collect();
        let chain = self.chain.clone();
        // Group commit: a change shares its commit (and fsync) with the writes queued beside it.
        self.write_tx(move |tx| {
            Box::pin(async move {
                for r in &new {
                    insert_object(tx, r).await?;
                }
                for (r, expected_state) in &changed {
                    let count = sqlx::query(
                        "UPDATE kmip_objects SET state = $1, attributes = $2, sealed = $3, updated_at = $4 \
                         WHERE uid = $5 AND state = $6",
                    )
                    .bind(r.state)
                    .bind(&r.attributes)
                    .bind(r.sealed.clone())
                    .bind(r.updated_at)
                    .bind(&r.uid)
                    .bind(*expected_state)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                    if count != 1 {
                        return Err(Error::Conflict {
                            constraint: Some("kmip_objects_state".into()),
                        });
                    }
                }
                for e in &events {
                    events::append(tx, e).await?;
                }
                crate::audit::append(tx, &chain, &[&pending]).await
            })
        })
        .await
    }

    /// The sealed material of every object not destroyed (`id` is the uid), for master-key rotation.
    pub async fn sealed_kmip_objects(&self) -> Result<Vec<crate::SealedSecretRow>, Error> {
        let rows = sqlx::query(
            "SELECT uid, sealed FROM kmip_objects WHERE sealed IS NOT NULL ORDER BY uid",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::SealedSecretRow {
                    id: r.try_get(0)?,
                    sealed: r.try_get(1)?,
                })
            })
            .collect()
    }

    /// One object.
    pub async fn kmip_object(&self, uid: &str) -> Result<Option<KmipObjectRow>, Error> {
        self.read_optional(
            format!("SELECT {COLUMNS} FROM kmip_objects WHERE uid = $1"),
            uid,
            object_from_row,
        )
        .await
    }

    /// Every object `user` owns or holds a grant on, without their sealed material, newest first (the
    /// order Locate answers in, as PyKMIP's server does).
    pub async fn kmip_objects_visible(&self, user: &str) -> Result<Vec<KmipObjectRow>, Error> {
        let rows = sqlx::query(
            "SELECT uid, owner, object_type, state, attributes, NULL, created_at, updated_at FROM kmip_objects \
             WHERE owner = $1 OR uid IN (SELECT uid FROM kmip_access WHERE user_id = $1) \
             ORDER BY created_at DESC, uid DESC",
        )
        .bind(user)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(object_from_row).collect()
    }

    /// The objects `user` owns, without their sealed material.
    pub async fn kmip_objects_owned(&self, user: &str) -> Result<Vec<KmipObjectRow>, Error> {
        let rows = sqlx::query(
            "SELECT uid, owner, object_type, state, attributes, NULL, created_at, updated_at FROM kmip_objects \
             WHERE owner = $1 ORDER BY created_at, uid",
        )
        .bind(user)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(object_from_row).collect()
    }

    /// The grants on `uid` (every user), or those of `user` on it.
    pub async fn kmip_grants(
        &self,
        uid: &str,
        user: Option<&str>,
    ) -> Result<Vec<KmipGrantRow>, Error> {
        let rows = sqlx::query(
            "SELECT uid, user_id, operation FROM kmip_access WHERE uid = $1 AND ($2 IS NULL OR user_id = $2) \
             ORDER BY user_id, operation",
        )
        .bind(uid)
        .bind(user.map(str::to_owned))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Every grant `user` holds, on any object.
    pub async fn kmip_grants_of(&self, user: &str) -> Result<Vec<KmipGrantRow>, Error> {
        let rows = sqlx::query(
            "SELECT uid, user_id, operation FROM kmip_access WHERE user_id = $1 ORDER BY uid, operation",
        )
        .bind(user)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Adds (`grant`) or removes grants, with the audit record, in one transaction. Granting twice is a
    /// no-op.
    pub async fn set_kmip_grants(
        &self,
        grants: &[KmipGrantRow],
        grant: bool,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        for g in grants {
            let sql = if grant {
                "INSERT INTO kmip_access (uid, user_id, operation) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM kmip_access WHERE uid = $1 AND user_id = $2 AND operation = $3"
            };
            sqlx::query(sql)
                .bind(&g.uid)
                .bind(&g.user_id)
                .bind(&g.operation)
                .execute(&mut *tx)
                .await?;
        }
        let target = grants
            .first()
            .map_or(String::new(), |g| format!("kmip/{}", g.uid));
        crate::audit::commit(tx, &self.chain, audit, &target, now).await
    }
}

/// One multi-row INSERT of new objects, inside a caller's transaction (the certificate writer's batch).
pub(crate) async fn insert_objects(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    rows: &[&KmipObjectRow],
    backend: crate::Backend,
) -> Result<(), Error> {
    let mut sql = String::from(
        "INSERT INTO kmip_objects (uid, owner, object_type, state, attributes, sealed, created_at, updated_at) \
         VALUES ",
    );
    crate::writer::push_placeholders(&mut sql, rows.len(), 8, backend);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in rows {
        q = q
            .bind(r.uid.clone())
            .bind(r.owner.clone())
            .bind(r.object_type)
            .bind(r.state)
            .bind(r.attributes.clone())
            .bind(r.sealed.clone())
            .bind(r.created_at)
            .bind(r.updated_at);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

async fn insert_object(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    r: &KmipObjectRow,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO kmip_objects (uid, owner, object_type, state, attributes, sealed, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.uid)
    .bind(&r.owner)
    .bind(r.object_type)
    .bind(r.state)
    .bind(&r.attributes)
    .bind(r.sealed.clone())
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn object_from_row(r: &AnyRow) -> Result<KmipObjectRow, Error> {
    Ok(KmipObjectRow {
        uid: r.try_get(0)?,
        owner: r.try_get(1)?,
        object_type: r.try_get(2)?,
        state: r.try_get(3)?,
        attributes: r.try_get(4)?,
        sealed: r.try_get(5)?,
        created_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
    })
}

fn grant_from_row(r: &AnyRow) -> Result<KmipGrantRow, Error> {
    Ok(KmipGrantRow {
        uid: r.try_get(0)?,
        user_id: r.try_get(1)?,
        operation: r.try_get(2)?,
    })
}

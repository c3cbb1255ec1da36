//! The events outbox: appended inside the transaction of the change, read in order.

use sqlx::{Any, Transaction};

use crate::{Error, EventRow, NewEvent, Store};

pub(crate) async fn append(tx: &mut Transaction<'_, Any>, e: &NewEvent) -> Result<(), Error> {
    sqlx::query("INSERT INTO events (id, source, type, subject, time, data) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&e.id)
        .bind(&e.source)
        .bind(&e.ty)
        .bind(&e.subject)
        .bind(e.time)
        .bind(&e.data)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Events after outbox position `after_seq`, oldest first, optionally of one type and with a subject
    /// containing some text.
    pub async fn list_events(
        &self,
        after_seq: i64,
        ty: Option<&str>,
        subject_contains: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EventRow>, Error> {
        self.select_events(after_seq, ty, subject_contains, limit, "ASC")
            .await
    }

    /// The newest `limit` events after `after_seq` (with the same filters), still oldest first: a
    /// backward walk of the outbox's primary key from its end, whatever the outbox's size.
    pub async fn list_newest_events(
        &self,
        after_seq: i64,
        ty: Option<&str>,
        subject_contains: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EventRow>, Error> {
        let mut rows = self
            .select_events(after_seq, ty, subject_contains, limit, "DESC")
            .await?;
        rows.reverse();
        Ok(rows)
    }

    async fn select_events(
        &self,
        after_seq: i64,
        ty: Option<&str>,
        subject_contains: Option<&str>,
        limit: i64,
        order: &'static str,
    ) -> Result<Vec<EventRow>, Error> {
        let sql = format!(
            "SELECT seq, id, source, type, subject, time, data FROM events \
             WHERE seq > $1 AND ($2 = '' OR type = $2) AND ($3 = '' OR subject LIKE $4) \
             ORDER BY seq {order} LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after_seq)
            .bind(ty.unwrap_or_default().to_string())
            .bind(subject_contains.unwrap_or_default().to_string())
            .bind(format!("%{}%", subject_contains.unwrap_or_default()))
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(EventRow::from_row).collect()
    }
}

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

/// Which events of the outbox to read, oldest first.
#[derive(Clone, Debug, Default)]
pub struct EventFilter<'a> {
    /// Only after this outbox position.
    pub after_seq: i64,
    /// Only of this type.
    pub ty: Option<&'a str>,
    /// Only with a subject containing this text.
    pub subject_contains: Option<&'a str>,
    /// At most this many.
    pub limit: i64,
    /// The last `limit` of them (a backward walk of the primary key from the outbox's end, whatever its
    /// size) rather than the first.
    pub newest: bool,
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
        self.events(&EventFilter {
            after_seq,
            ty,
            subject_contains,
            limit,
            newest: false,
        })
        .await
    }

    /// The events `f` selects, oldest first.
    pub async fn events(&self, f: &EventFilter<'_>) -> Result<Vec<EventRow>, Error> {
        let order = if f.newest { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT seq, id, source, type, subject, time, data FROM events \
             WHERE seq > $1 AND ($2 = '' OR type = $2) AND ($3 = '' OR subject LIKE $4) \
             ORDER BY seq {order} LIMIT $5"
        );
        let subject = f.subject_contains.unwrap_or_default();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(f.after_seq)
            .bind(f.ty.unwrap_or_default().to_string())
            .bind(subject.to_string())
            .bind(format!("%{subject}%"))
            .bind(f.limit)
            .fetch_all(&self.read)
            .await?;
        let mut rows = rows
            .iter()
            .map(EventRow::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if f.newest {
            rows.reverse();
        }
        Ok(rows)
    }
}

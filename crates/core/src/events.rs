//! CloudEvents 1.0 events, built with the change they describe and stored in its transaction.

use shedu_store::NewEvent;

/// The CloudEvents `source` of every event this platform emits.
pub const EVENT_SOURCE: &str = "/shedu";

/// Builds an event with a fresh id.
pub(crate) fn event(ty: &str, subject: String, time: i64, data: serde_json::Value) -> NewEvent {
    NewEvent {
        id: uuid::Uuid::new_v4().simple().to_string(),
        source: EVENT_SOURCE.to_string(),
        ty: ty.to_string(),
        subject,
        time,
        data: data.to_string(),
    }
}

impl crate::CaService {
    /// Outbox events after position `after_seq`, oldest first, optionally of one type and subject text.
    pub async fn events(
        &self,
        after_seq: i64,
        ty: Option<&str>,
        subject_contains: Option<&str>,
        limit: i64,
    ) -> Result<Vec<shedu_store::EventRow>, crate::Error> {
        self.store
            .list_events(after_seq, ty, subject_contains, limit)
            .await
            .map_err(crate::error::store_err("events"))
    }
}

//! The CloudEvents 1.0 JSON form of an outbox row: what every sink sends and every consumer receives.
//!
//! The outbox stores the attributes as columns (time in Unix seconds, data as JSON text); this is the one place
//! that turns them into the structured-mode JSON of the CloudEvents spec.

use serde::{Deserialize, Serialize};
use shedu_store::EventRow;

/// The CloudEvents `datacontenttype` of every shedu event.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The media type of a structured-mode CloudEvent (AMQP content type, webhook body).
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// A CloudEvents 1.0 event in structured JSON mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `"1.0"`.
    pub specversion: String,
    /// Unique and stable across redeliveries: consumers de-duplicate on it.
    pub id: String,
    /// `/shedu`.
    pub source: String,
    /// e.g. `certificate.issued`.
    #[serde(rename = "type")]
    pub ty: String,
    /// e.g. `cas/<ca>/certificates/<serial>`.
    pub subject: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// The event payload.
    pub data: serde_json::Value,
    /// The outbox position (not part of the JSON; SSE can use it as the event id for `Last-Event-ID`).
    #[serde(skip)]
    pub seq: i64,
}

impl CloudEvent {
    /// Builds the CloudEvent of an outbox row. Data that is not valid JSON is carried as a JSON string.
    pub fn from_row(row: &EventRow) -> CloudEvent {
        let e = &row.event;
        let data = serde_json::from_str(&e.data)
            .unwrap_or_else(|_| serde_json::Value::String(e.data.clone()));
        CloudEvent {
            specversion: "1.0".to_string(),
            id: e.id.clone(),
            source: e.source.clone(),
            ty: e.ty.clone(),
            subject: e.subject.clone(),
            time: rfc3339(e.time),
            datacontenttype: DATA_CONTENT_TYPE.to_string(),
            data,
            seq: row.seq,
        }
    }

    /// The structured-mode JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Unix seconds as RFC 3339 in UTC (`1970-01-01T00:00:00Z` for out-of-range values).
pub(crate) fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shedu_store::NewEvent;

    #[test]
    fn json_has_the_cloudevents_attributes() {
        let row = EventRow {
            seq: 7,
            event: NewEvent {
                id: "abc".into(),
                source: "/shedu".into(),
                ty: "certificate.issued".into(),
                subject: "cas/x/certificates/01".into(),
                time: 1_700_000_000,
                data: r#"{"serial":"01"}"#.into(),
            },
        };
        let ce = CloudEvent::from_row(&row);
        let v: serde_json::Value = serde_json::from_slice(&ce.to_json()).unwrap_or_default();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "certificate.issued");
        assert_eq!(v["time"], "2023-11-14T22:13:20Z");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["data"]["serial"], "01");
        assert!(v.get("seq").is_none());
    }
}

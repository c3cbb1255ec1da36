//! `GET /api/v1/status`: the platform at a glance (version, database, event sinks and their lag, counts
//! by status), for `shedu status` and monitoring.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::time_fmt::rfc3339;
use crate::AppState;
use crate::problem::{ApiJson, Problem};

/// The platform's status.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusDto {
    /// The server's version.
    pub version: &'static str,
    /// The database.
    pub database: DatabaseDto,
    /// The event outbox and the sinks that deliver it.
    pub events: EventsStatusDto,
    /// CAs per status.
    pub cas: BTreeMap<String, i64>,
    /// Certificates per status (`active`, `about_to_expire`, `expired`, `revoked`).
    pub certificates: BTreeMap<String, i64>,
    /// Unexpired certificates expiring within 7, 30 and 90 days (keys: the days).
    pub expiring: BTreeMap<String, i64>,
    /// Certificates per issuing CA (by id), per status.
    pub certificates_by_ca: BTreeMap<String, BTreeMap<String, i64>>,
    /// Devices per status.
    pub devices: BTreeMap<String, i64>,
}

/// The database behind the server.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DatabaseDto {
    /// `sqlite` or `postgresql`.
    pub kind: &'static str,
    /// How long the status reads took, in milliseconds.
    pub read_ms: f64,
}

/// The outbox head and each sink's position.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventsStatusDto {
    /// The newest outbox position.
    pub head: i64,
    /// Each sink, by name.
    pub sinks: Vec<SinkDto>,
}

/// One event sink.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SinkDto {
    /// The sink's name.
    pub name: String,
    /// The last outbox position it acknowledged.
    pub position: i64,
    /// Events not yet acknowledged (`head - position`).
    pub lag: i64,
    /// When its position last moved (RFC 3339).
    pub updated_at: String,
}

/// The platform at a glance.
#[utoipa::path(get, path = "/api/v1/status", tag = "status", responses((status = 200, body = StatusDto)))]
pub(crate) async fn show(State(state): State<AppState>) -> Result<ApiJson<StatusDto>, Problem> {
    let status = state.services.status().await?;
    let o = status.overview;
    let expiring = status
        .expiring
        .iter()
        .map(|(days, n)| (days.to_string(), *n))
        .collect();
    let counts = |rows: Vec<(String, i64)>| rows.into_iter().collect::<BTreeMap<_, _>>();
    Ok(ApiJson(StatusDto {
        version: env!("CARGO_PKG_VERSION"),
        database: DatabaseDto {
            kind: status.database,
            read_ms: status.read_time.as_secs_f64() * 1000.0,
        },
        events: EventsStatusDto {
            head: o.event_head,
            sinks: o
                .sinks
                .into_iter()
                .map(|s| SinkDto {
                    lag: (o.event_head - s.last_seq).max(0),
                    name: s.sink,
                    position: s.last_seq,
                    updated_at: rfc3339(s.updated_at),
                })
                .collect(),
        },
        cas: counts(o.cas),
        certificates: counts(o.certificates),
        expiring,
        certificates_by_ca: o.certificates_by_ca.into_iter().fold(
            BTreeMap::new(),
            |mut by_ca: BTreeMap<String, BTreeMap<String, i64>>, (ca, status, n)| {
                by_ca.entry(ca).or_default().insert(status, n);
                by_ca
            },
        ),
        devices: counts(o.devices),
    }))
}

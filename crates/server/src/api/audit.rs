//! The audit log as a list, newest first, with each record's place in the hash chain so a reader can follow
//! it (`shedu audit verify` checks the whole chain).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use shedu_core::{AuditFilter, AuditRecord};
use utoipa::{IntoParams, ToSchema};

use super::time_fmt::rfc3339;
use crate::AppState;
use crate::problem::{ApiJson, ApiQuery, Problem};

/// Audit listing filters; they combine with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Only this principal (user name, API key name, `anonymous`).
    pub principal: Option<String>,
    /// Only this action (`certificate.issue`, `POST /api/v1/cas`).
    pub action: Option<String>,
    /// Only this outcome: `success`, `denied` or `failure`.
    pub outcome: Option<String>,
    /// Only records of this request (`X-Request-Id`).
    pub request_id: Option<String>,
    /// Only records newer than this `seq`.
    pub after: Option<i64>,
    /// Only records older than this `seq` (the `next_cursor` of the previous page).
    pub before: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditRecordDto {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    pub id: String,
    pub time: String,
    /// User name, API key name, the attempted user name of a login, or `anonymous`.
    pub principal: String,
    pub principal_id: String,
    pub role: String,
    /// A dotted verb (`certificate.revoke`), or `<METHOD> <route>` for a request that changed nothing.
    pub action: String,
    /// What changed (CA id, `<ca>/<serial>`, user id), or the request path.
    pub target: String,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// The client's address.
    pub source: String,
    pub request_id: String,
    pub detail: Option<String>,
    /// The previous record's `hash` (hex; zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and every other field (hex).
    pub hash: String,
}

/// A page of audit records, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    pub items: Vec<AuditRecordDto>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// The audit log, newest first, filtered (admins and auditors).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<ApiJson<AuditPage>, Problem> {
    let filter = AuditFilter {
        principal: q.principal,
        action: q.action,
        outcome: q.outcome,
        request_id: q.request_id,
        after_seq: q.after,
        before_seq: q.before,
        limit: q.limit.unwrap_or(100),
    };
    let page = state.services.audit.records(&filter).await?;
    Ok(ApiJson(AuditPage {
        items: page.items.into_iter().map(record_dto).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn record_dto(r: AuditRecord) -> AuditRecordDto {
    let e = r.entry;
    AuditRecordDto {
        seq: r.seq,
        id: r.id,
        time: rfc3339(e.time),
        principal: e.principal,
        principal_id: e.principal_id,
        role: e.role,
        action: e.action,
        target: e.target,
        outcome: e.outcome,
        source: e.source,
        request_id: e.request_id,
        detail: e.detail,
        prev_hash: hex::encode(r.prev_hash),
        hash: hex::encode(r.hash),
    }
}

/// The audit chain's check.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChainCheckDto {
    /// Whether every record links to the one before it and hashes to its stored hash.
    pub intact: bool,
    /// Records checked (when intact).
    pub records: Option<u64>,
    /// The first record that breaks the chain, if any.
    pub broken_seq: Option<i64>,
    /// What was found, in words.
    pub detail: String,
}

/// Checks the audit log's whole hash chain in the database (admins and auditors). The checkpoint file is
/// checked by `shedu audit verify`, next to the database.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = ChainCheckDto), (status = 403, body = Problem)))]
pub(crate) async fn verify(
    State(state): State<AppState>,
) -> Result<ApiJson<ChainCheckDto>, Problem> {
    use shedu_core::AuditVerdict;
    let dto = match state.services.audit.verify().await? {
        AuditVerdict::Intact { records, .. } => ChainCheckDto {
            intact: true,
            records: Some(records),
            broken_seq: None,
            detail: format!("the chain is intact: {records} records checked"),
        },
        AuditVerdict::Truncated { head, checkpoint } => ChainCheckDto {
            intact: false,
            records: None,
            broken_seq: Some(head),
            detail: format!("the chain ends at {head}, before checkpoint {checkpoint}"),
        },
        AuditVerdict::Broken { seq, id, reason } => ChainCheckDto {
            intact: false,
            records: None,
            broken_seq: Some(seq),
            detail: format!("record {seq} ({id}) breaks the chain: {reason}"),
        },
    };
    Ok(ApiJson(dto))
}

//! Timestamps on the wire: RFC 3339 out; RFC 3339 or Unix seconds in.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::problem::Problem;

/// Unix seconds → RFC 3339 (UTC).
pub(crate) fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// RFC 3339 or Unix seconds → Unix seconds.
pub(crate) fn parse(field: &str, value: &str) -> Result<i64, Problem> {
    if let Ok(n) = value.parse::<i64>() {
        return Ok(n);
    }
    OffsetDateTime::parse(value, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid-query",
                format!("{field} must be RFC 3339 or Unix seconds, got {value:?}"),
            )
        })
}

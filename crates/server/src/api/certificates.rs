//! Certificates: issue from a CSR, show, revoke, list, look up by fingerprint.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use shedu_core::{CertificateQuery, IssueInput};
use shedu_pki::{RevocationReason, Serial};

use super::dto::{
    CertificateDto, CertificateListQuery, CertificatePage, IssueRequest, IssuedDto, RevokeRequest,
};
use super::time_fmt;
use crate::AppState;
use crate::audit::Actor;
use crate::problem::{ApiJson, ApiQuery, Problem};

/// Issue a certificate from a PKCS#10 CSR under the CA's profile. It is committed before the response.
#[utoipa::path(post, path = "/api/v1/cas/{id}/certificates", tag = "certificates", request_body = IssueRequest,
    params(("id" = String, Path, description = "Issuing CA id")),
    responses((status = 201, body = IssuedDto), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
pub(crate) async fn issue(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<IssueRequest>,
) -> Result<(StatusCode, ApiJson<IssuedDto>), Problem> {
    let csr = csr_bytes(&req.csr_pem)?;
    let issued = state
        .services
        .issuance
        .issue(
            &actor,
            &id,
            IssueInput {
                csr,
                validity_days: req.validity_days,
                sans: req.sans,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(IssuedDto {
            certificate: issued.certificate.into(),
            chain_pem: issued.chain_pem,
        }),
    ))
}

/// PEM as is; anything else is taken as base64 DER (whitespace ignored).
fn csr_bytes(text: &str) -> Result<Vec<u8>, Problem> {
    if text.trim_start().starts_with("-----BEGIN") {
        return Ok(text.as_bytes().to_vec());
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-input",
                "csr_pem is neither PEM nor base64 DER",
            )
        })
}

/// One certificate by issuer and serial.
#[utoipa::path(get, path = "/api/v1/cas/{id}/certificates/{serial}", tag = "certificates",
    params(("id" = String, Path, description = "Issuing CA id"), ("serial" = String, Path, description = "Serial, hex")),
    responses((status = 200, body = CertificateDto), (status = 404, body = Problem)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path((id, serial)): Path<(String, String)>,
) -> Result<ApiJson<CertificateDto>, Problem> {
    let serial: Serial = serial.parse().map_err(shedu_core::Error::from)?;
    Ok(ApiJson(
        state
            .services
            .issuance
            .certificate(&id, &serial)
            .await?
            .into(),
    ))
}

/// Revoke a certificate with an RFC 5280 reason.
#[utoipa::path(post, path = "/api/v1/cas/{id}/certificates/{serial}/revoke", tag = "certificates",
    request_body = RevokeRequest,
    params(("id" = String, Path, description = "Issuing CA id"), ("serial" = String, Path, description = "Serial, hex")),
    responses((status = 200, body = CertificateDto), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Actor(actor): Actor,
    Path((id, serial)): Path<(String, String)>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<ApiJson<CertificateDto>, Problem> {
    let reason: RevocationReason = req
        .reason
        .as_deref()
        .unwrap_or("unspecified")
        .parse()
        .map_err(shedu_core::Error::from)?;
    let serial: Serial = serial.parse().map_err(shedu_core::Error::from)?;
    let invalidity = req
        .invalidity_date
        .as_deref()
        .map(|v| time_fmt::parse("invalidity_date", v))
        .transpose()?;
    Ok(ApiJson(
        state
            .services
            .issuance
            .revoke(&actor, &id, &serial, reason, invalidity)
            .await?
            .into(),
    ))
}

/// List certificates, newest first, with filters and a cursor that is stable under inserts.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates", params(CertificateListQuery),
    responses((status = 200, body = CertificatePage), (status = 400, body = Problem)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CertificateListQuery>,
) -> Result<ApiJson<CertificatePage>, Problem> {
    let bad = |field: &str| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-query",
            format!("invalid {field}"),
        )
    };
    let query = CertificateQuery {
        ca_id: q.ca_id,
        status: q.status.as_deref().map(str::parse).transpose()?,
        common_name_prefix: q.subject,
        expires_before: q
            .expires_before
            .as_deref()
            .map(|v| time_fmt::parse("expires_before", v))
            .transpose()?,
        expires_after: q
            .expires_after
            .as_deref()
            .map(|v| time_fmt::parse("expires_after", v))
            .transpose()?,
        cursor: q
            .cursor
            .as_deref()
            .map(|c| c.parse::<i64>().map_err(|_| bad("cursor")))
            .transpose()?,
        limit: q.limit,
    };
    let page = state.services.issuance.certificates(query).await?;
    Ok(ApiJson(CertificatePage {
        items: page.items.into_iter().map(CertificateDto::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One certificate by its SHA-256 fingerprint.
#[utoipa::path(get, path = "/api/v1/certificates/{fingerprint}", tag = "certificates",
    params(("fingerprint" = String, Path, description = "SHA-256 of the DER, hex")),
    responses((status = 200, body = CertificateDto), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn by_fingerprint(
    State(state): State<AppState>,
    Path(fingerprint): Path<String>,
) -> Result<ApiJson<CertificateDto>, Problem> {
    Ok(ApiJson(
        state
            .services
            .issuance
            .certificate_by_fingerprint(&fingerprint)
            .await?
            .into(),
    ))
}

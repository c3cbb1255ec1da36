//! The REST API under `/api/v1`, and its OpenAPI document generated from the handlers.

mod cas;
mod certificates;
mod dto;
mod time_fmt;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router, middleware};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Largest JSON body the API accepts; a CSR or a CA import fits easily.
const MAX_BODY: usize = 256 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "shedu API", description = "Certificate lifecycle platform for industrial IoT."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The authenticated API routes and their OpenAPI description.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(cas::create, cas::list))
        .routes(routes!(cas::import))
        .routes(routes!(cas::show))
        .routes(routes!(certificates::issue))
        .routes(routes!(certificates::show))
        .routes(routes!(certificates::revoke))
        .routes(routes!(certificates::list))
        .routes(routes!(certificates::by_fingerprint))
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// `/api/…`: every route needs a principal except the OpenAPI document.
pub fn router(state: AppState) -> Router<AppState> {
    let (api, doc) = routes().split_for_parts();
    let authed = api
        .layer(middleware::from_fn_with_state(
            state,
            crate::auth::require_principal,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY));
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || async move { Json(doc.clone()) }),
        )
        .merge(authed)
}

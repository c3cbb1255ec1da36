//! The REST API under `/api/v1`, and its OpenAPI document generated from the handlers.

mod audit;
mod auth;
mod bodies;
mod cas;
mod certificates;
mod cloud;
mod devices;
mod dto;
mod events;
mod groups;
mod kmip_access;
mod ras;
mod rotation;
mod status;
mod time_fmt;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router, middleware};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub use bodies::{JsonBody, json_bodies};

/// Largest JSON body the API accepts; a CSR or a CA import fits easily.
pub(crate) const MAX_BODY: usize = 256 * 1024;

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

/// The authenticated API routes and their OpenAPI description. Each needs an entry in
/// [`crate::permissions::ROUTES`].
fn protected() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(cas::create, cas::list))
        .routes(routes!(cas::import))
        .routes(routes!(cas::show, cas::update))
        .routes(routes!(certificates::issue))
        .routes(routes!(certificates::show))
        .routes(routes!(certificates::revoke))
        .routes(routes!(certificates::list))
        .routes(routes!(certificates::by_fingerprint))
        .routes(routes!(auth::whoami))
        .routes(routes!(auth::create_user, auth::list_users))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::delete_user))
        .routes(routes!(auth::disable_user))
        .routes(routes!(auth::enable_user))
        .routes(routes!(auth::set_user_role))
        .routes(routes!(auth::create_api_key, auth::list_api_keys))
        .routes(routes!(auth::revoke_api_key))
        .routes(routes!(events::list))
        .routes(routes!(events::stream))
        .routes(routes!(
            events::create_subscription,
            events::list_subscriptions
        ))
        .routes(routes!(
            events::show_subscription,
            events::delete_subscription
        ))
        .routes(routes!(events::list_deliveries))
        .routes(routes!(events::retry_delivery))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
        .routes(routes!(devices::list, devices::register))
        .routes(routes!(devices::show, devices::update))
        .routes(routes!(devices::decommission))
        .routes(routes!(devices::enrollment_secret))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::show, groups::delete))
        .routes(routes!(ras::create, ras::list))
        .routes(routes!(ras::show, ras::replace, ras::delete))
        .routes(routes!(ras::eab_create, ras::eab_list))
        .routes(routes!(ras::eab_delete))
        .routes(routes!(status::show))
        .routes(routes!(kmip_access::grant))
        .routes(routes!(kmip_access::revoke))
        .routes(routes!(kmip_access::list))
        .routes(routes!(kmip_access::owned))
        .routes(routes!(kmip_access::obtained))
        .routes(routes!(crate::kmip::http::operation))
        .routes(routes!(crate::kmip::http::message))
        .routes(routes!(cloud::create, cloud::list))
        .routes(routes!(cloud::show, cloud::replace, cloud::delete))
        .routes(routes!(cloud::sync_state))
        .routes(routes!(cloud::backfill))
        .routes(routes!(rotation::list_assets, rotation::create_asset))
        .routes(routes!(
            rotation::show_asset,
            rotation::replace_asset,
            rotation::patch_asset,
            rotation::delete_asset
        ))
        .routes(routes!(rotation::scan_asset))
        .routes(routes!(rotation::rotate_asset))
        .routes(routes!(rotation::list_executors, rotation::create_executor))
        .routes(routes!(rotation::show_executor, rotation::delete_executor))
        .routes(routes!(rotation::list_routes, rotation::create_route))
        .routes(routes!(rotation::delete_route))
        .routes(routes!(rotation::list_runs))
        .routes(routes!(rotation::show_run))
}

/// Routes that authenticate the caller themselves (listed in [`crate::permissions::PUBLIC`]).
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = protected().split_for_parts().1;
    doc.merge(public().split_for_parts().1);
    doc
}

/// `/api/…`: the protected routes behind the gateway middleware, the public ones beside them.
pub fn router(state: AppState) -> Router<AppState> {
    let (api, mut doc) = protected().split_for_parts();
    let (open, open_doc) = public().split_for_parts();
    doc.merge(open_doc);
    let authed = api
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_principal,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY));
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || async move { Json(doc.clone()) }),
        )
        .merge(open.layer(DefaultBodyLimit::max(MAX_BODY)))
        .merge(authed)
        .layer(middleware::from_fn_with_state(state, crate::audit::layer))
}

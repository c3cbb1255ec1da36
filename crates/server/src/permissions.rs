//! Authorization in one place: every API route declares the permission it needs here, and each role is a
//! set of permissions. The gateway refuses any route missing from the table (500, logged), and a test
//! walks the router's own route list, so a new route cannot ship without a declared permission.

use axum::http::Method;
use shedu_core::Role;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Any authenticated principal (whoami, own password).
    Authenticated,
    /// Read CAs.
    CasRead,
    /// Create or import CAs.
    CasWrite,
    /// Read certificates.
    CertificatesRead,
    /// Issue and revoke certificates.
    CertificatesWrite,
    /// Manage users.
    UsersAdmin,
    /// Manage API keys.
    ApiKeysAdmin,
    /// Read events, subscriptions and deliveries, and the platform status (counts, sink lag).
    EventsRead,
    /// Create, delete and retry subscriptions.
    SubscriptionsWrite,
    /// Read the audit log.
    AuditRead,
    /// Read devices, their slots and log, and device groups with their counts.
    DevicesRead,
    /// Register, edit and decommission devices, set enrolment secrets, manage device groups.
    DevicesWrite,
    /// Read registration authorities.
    RasRead,
    /// Create, change and delete registration authorities.
    RasWrite,
    /// Issue connector pairing tokens and revoke connector certificates by fingerprint.
    ConnectorWrite,
    /// Manage the grants on one's own KMIP objects and list one's KMIP objects (what each object
    /// allows is decided per object by its owner's grants).
    KmipAccess,
    /// Run KMIP operations over the HTTPS listener (`/kmip/2_1`, `/kmip`) as the KMIP user of one's own
    /// name (what each object allows is decided per object by its owner's grants).
    Kmip,
    /// Read cloud connectors and their sync state.
    CloudRead,
    /// Create, change and delete cloud connectors (they hold cloud credentials: administrators only).
    CloudWrite,
    /// Read rotation assets, executors (never their secrets), routes and runs (Ottr's DEVELOPER).
    RotationRead,
    /// Add, change, delete, scan and rotate assets (Ottr's PRIVILEGED).
    AssetsWrite,
    /// Create and delete executors and routes: they decide what runs where (Ottr's ADMIN).
    RotationAdmin,
}

/// `(method, route template, permission)` of every authenticated API route.
pub const ROUTES: &[(&str, &str, Permission)] = &[
    ("GET", "/api/v1/cas", Permission::CasRead),
    ("POST", "/api/v1/cas", Permission::CasWrite),
    ("POST", "/api/v1/cas/import", Permission::CasWrite),
    ("GET", "/api/v1/cas/{id}", Permission::CasRead),
    ("PATCH", "/api/v1/cas/{id}", Permission::CasWrite),
    (
        "POST",
        "/api/v1/cas/{id}/certificates",
        Permission::CertificatesWrite,
    ),
    (
        "GET",
        "/api/v1/cas/{id}/certificates/{serial}",
        Permission::CertificatesRead,
    ),
    (
        "POST",
        "/api/v1/cas/{id}/certificates/{serial}/revoke",
        Permission::CertificatesWrite,
    ),
    ("GET", "/api/v1/certificates", Permission::CertificatesRead),
    (
        "GET",
        "/api/v1/certificates/{fingerprint}",
        Permission::CertificatesRead,
    ),
    ("GET", "/api/v1/users", Permission::UsersAdmin),
    ("POST", "/api/v1/users", Permission::UsersAdmin),
    ("DELETE", "/api/v1/users/{id}", Permission::UsersAdmin),
    ("POST", "/api/v1/users/{id}/disable", Permission::UsersAdmin),
    ("POST", "/api/v1/users/{id}/enable", Permission::UsersAdmin),
    ("PUT", "/api/v1/users/{id}/role", Permission::UsersAdmin),
    (
        "POST",
        "/api/v1/users/me/password",
        Permission::Authenticated,
    ),
    ("GET", "/api/v1/auth/whoami", Permission::Authenticated),
    ("GET", "/api/v1/api-keys", Permission::ApiKeysAdmin),
    ("POST", "/api/v1/api-keys", Permission::ApiKeysAdmin),
    ("DELETE", "/api/v1/api-keys/{id}", Permission::ApiKeysAdmin),
    ("GET", "/api/v1/events", Permission::EventsRead),
    ("GET", "/api/v1/events/stream", Permission::EventsRead),
    ("GET", "/api/v1/subscriptions", Permission::EventsRead),
    (
        "POST",
        "/api/v1/subscriptions",
        Permission::SubscriptionsWrite,
    ),
    ("GET", "/api/v1/subscriptions/{id}", Permission::EventsRead),
    (
        "DELETE",
        "/api/v1/subscriptions/{id}",
        Permission::SubscriptionsWrite,
    ),
    ("GET", "/api/v1/deliveries", Permission::EventsRead),
    (
        "POST",
        "/api/v1/subscriptions/{id}/deliveries/{event_id}/retry",
        Permission::SubscriptionsWrite,
    ),
    ("GET", "/api/v1/audit", Permission::AuditRead),
    ("GET", "/api/v1/audit/verify", Permission::AuditRead),
    ("GET", "/api/v1/status", Permission::EventsRead),
    ("GET", "/api/v1/devices", Permission::DevicesRead),
    ("POST", "/api/v1/devices", Permission::DevicesWrite),
    ("GET", "/api/v1/devices/{id}", Permission::DevicesRead),
    ("PATCH", "/api/v1/devices/{id}", Permission::DevicesWrite),
    (
        "POST",
        "/api/v1/devices/{id}/decommission",
        Permission::DevicesWrite,
    ),
    (
        "POST",
        "/api/v1/devices/{id}/enrollment-secret",
        Permission::DevicesWrite,
    ),
    ("GET", "/api/v1/device-groups", Permission::DevicesRead),
    ("POST", "/api/v1/device-groups", Permission::DevicesWrite),
    ("GET", "/api/v1/device-groups/{id}", Permission::DevicesRead),
    (
        "DELETE",
        "/api/v1/device-groups/{id}",
        Permission::DevicesWrite,
    ),
    ("GET", "/api/v1/ras", Permission::RasRead),
    ("POST", "/api/v1/ras", Permission::RasWrite),
    ("GET", "/api/v1/ras/{id}", Permission::RasRead),
    ("PUT", "/api/v1/ras/{id}", Permission::RasWrite),
    ("DELETE", "/api/v1/ras/{id}", Permission::RasWrite),
    ("POST", "/api/v1/ras/{id}/acme/eab", Permission::RasWrite),
    ("GET", "/api/v1/ras/{id}/acme/eab", Permission::RasRead),
    (
        "DELETE",
        "/api/v1/ras/{id}/acme/eab/{kid}",
        Permission::RasWrite,
    ),
    ("POST", "/api/v1/kms/access/grant", Permission::KmipAccess),
    ("POST", "/api/v1/kms/access/revoke", Permission::KmipAccess),
    (
        "GET",
        "/api/v1/kms/access/list/{id}",
        Permission::KmipAccess,
    ),
    ("GET", "/api/v1/kms/access/owned", Permission::KmipAccess),
    ("GET", "/api/v1/kms/access/obtained", Permission::KmipAccess),
    ("POST", "/kmip/2_1", Permission::Kmip),
    ("POST", "/kmip", Permission::Kmip),
    ("GET", "/api/v1/cloud-connectors", Permission::CloudRead),
    ("POST", "/api/v1/cloud-connectors", Permission::CloudWrite),
    (
        "GET",
        "/api/v1/cloud-connectors/{id}",
        Permission::CloudRead,
    ),
    (
        "PUT",
        "/api/v1/cloud-connectors/{id}",
        Permission::CloudWrite,
    ),
    (
        "DELETE",
        "/api/v1/cloud-connectors/{id}",
        Permission::CloudWrite,
    ),
    (
        "GET",
        "/api/v1/cloud-connectors/{id}/state",
        Permission::CloudRead,
    ),
    (
        "POST",
        "/api/v1/cloud-connectors/{id}/backfill",
        Permission::CloudWrite,
    ),
    ("GET", "/api/v1/assets", Permission::RotationRead),
    ("POST", "/api/v1/assets", Permission::AssetsWrite),
    (
        "GET",
        "/api/v1/assets/{system_name}",
        Permission::RotationRead,
    ),
    (
        "PUT",
        "/api/v1/assets/{system_name}",
        Permission::AssetsWrite,
    ),
    (
        "PATCH",
        "/api/v1/assets/{system_name}",
        Permission::AssetsWrite,
    ),
    (
        "DELETE",
        "/api/v1/assets/{system_name}",
        Permission::AssetsWrite,
    ),
    (
        "POST",
        "/api/v1/assets/{system_name}/scan",
        Permission::AssetsWrite,
    ),
    (
        "POST",
        "/api/v1/assets/{system_name}/rotate",
        Permission::AssetsWrite,
    ),
    (
        "GET",
        "/api/v1/rotation-executors",
        Permission::RotationRead,
    ),
    (
        "POST",
        "/api/v1/rotation-executors",
        Permission::RotationAdmin,
    ),
    (
        "GET",
        "/api/v1/rotation-executors/{id}",
        Permission::RotationRead,
    ),
    (
        "DELETE",
        "/api/v1/rotation-executors/{id}",
        Permission::RotationAdmin,
    ),
    ("GET", "/api/v1/rotation-routes", Permission::RotationRead),
    ("POST", "/api/v1/rotation-routes", Permission::RotationAdmin),
    (
        "DELETE",
        "/api/v1/rotation-routes/{id}",
        Permission::RotationAdmin,
    ),
    ("GET", "/api/v1/rotation-runs", Permission::RotationRead),
    (
        "GET",
        "/api/v1/rotation-runs/{id}",
        Permission::RotationRead,
    ),
];

/// Routes anyone may call: the login itself, token refresh, and the API description.
pub const PUBLIC: &[(&str, &str)] = &[
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/api/openapi.json"),
];

/// The connector's routes (`crate::connector`, declared under its default base `/connector`, whatever
/// base it is mounted under), with the permission a bearer token needs. `None`: the route authenticates
/// the client itself, with a one-time token or the client certificate the connector issued. The
/// revocation route takes either the client certificate or an operator's bearer token. These routes
/// answer in Kyma's error form, not with problem documents; a test checks the table against the router.
pub const CONNECTOR_ROUTES: &[(&str, &str, Option<Permission>)] = &[
    (
        "POST",
        "/connector/v1/{kind}/tokens",
        Some(Permission::ConnectorWrite),
    ),
    ("GET", "/connector/v1/{kind}/signingRequests/info", None),
    ("POST", "/connector/v1/{kind}/certificates", None),
    ("GET", "/connector/v1/{kind}/management/info", None),
    ("POST", "/connector/v1/{kind}/certificates/renewals", None),
    (
        "POST",
        "/connector/v1/{kind}/certificates/revocations",
        Some(Permission::ConnectorWrite),
    ),
    ("GET", "/connector/v1/api.yaml", None),
    ("GET", "/connector/v1/health", None),
];

/// The permission a route declared, if any.
pub fn required(method: &Method, path: &str) -> Option<Permission> {
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == path)
        .map(|(_, _, perm)| *perm)
        .or_else(|| {
            CONNECTOR_ROUTES
                .iter()
                .find(|(m, p, _)| *m == method.as_str() && *p == path)
                .and_then(|(_, _, perm)| *perm)
        })
}

/// The methods the permission table declares for `path` (a route template), in table order.
pub fn methods(path: &str) -> Vec<&'static str> {
    let mut found: Vec<&'static str> = ROUTES
        .iter()
        .filter(|(_, p, _)| *p == path)
        .map(|(m, _, _)| *m)
        .chain(
            CONNECTOR_ROUTES
                .iter()
                .filter(|(_, p, perm)| *p == path && perm.is_some())
                .map(|(m, _, _)| *m),
        )
        .collect();
    found.dedup();
    found
}

/// Whether `role` holds `permission`.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Admin => true,
        Role::Operator => matches!(
            permission,
            Authenticated
                | CasRead
                | CasWrite
                | CertificatesRead
                | CertificatesWrite
                | EventsRead
                | SubscriptionsWrite
                | DevicesRead
                | DevicesWrite
                | RasRead
                | RasWrite
                | ConnectorWrite
                | KmipAccess
                | Kmip
                | CloudRead
                | RotationRead
                | AssetsWrite
        ),
        Role::Auditor => matches!(
            permission,
            Authenticated
                | CasRead
                | CertificatesRead
                | EventsRead
                | AuditRead
                | DevicesRead
                | RasRead
                | CloudRead
                | RotationRead
        ),
        Role::Device => matches!(permission, Authenticated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The route list comes from the router itself (via its OpenAPI description), so a route added
    /// without a permission fails here.
    #[test]
    fn every_route_declares_a_permission_or_is_public() {
        let doc = crate::api::openapi();
        let mut seen = 0;
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ] {
                if op.is_none() {
                    continue;
                }
                seen += 1;
                let declared = ROUTES.iter().any(|(m, p, _)| *m == method && p == path);
                let public = PUBLIC.iter().any(|(m, p)| *m == method && p == path);
                assert!(
                    declared ^ public,
                    "{method} {path} must be either in ROUTES or in PUBLIC, once"
                );
            }
        }
        assert_eq!(
            seen,
            ROUTES.len() + PUBLIC.len() - 1,
            "every table entry is a real route (openapi.json aside)"
        );
    }
}

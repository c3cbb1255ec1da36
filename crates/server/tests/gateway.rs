//! The gateway: every route's role matrix (taken from the router's own route table), local users with
//! login and refresh, API keys, rate-limited logins, and the bootstrap token's retirement.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use shedu_server::permissions::{self, ROUTES};
use shedu_testkit::{Backend, Options, TestServer, backend_test};

async fn call(server: &TestServer, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let url = format!("{}{path}", server.base_url);
    let req = match method {
        "GET" => server.client.get(url),
        "POST" => server.client.post(url).json(&json!({})),
        "PUT" => server.client.put(url).json(&json!({})),
        "PATCH" => server.client.patch(url).json(&json!({})),
        "DELETE" => server.client.delete(url),
        other => panic!("method {other}"),
    };
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    if res
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    {
        return (status, Value::Null); // a live stream: the status is the answer
    }
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn login(server: &TestServer, user: &str, password: &str) -> (u16, Value) {
    server
        .post(
            "/api/v1/auth/login",
            json!({"username": user, "password": password}),
        )
        .await
}

backend_test!(every_route_enforces_its_role_matrix, |backend| {
    let server = TestServer::start(backend).await;
    let mut tokens = Vec::new();
    for role in shedu_server::Role::ALL {
        let name = format!("u-{}", role.as_str());
        let (s, u) = server.post("/api/v1/users", json!({"username": name, "password": "correct horse battery", "role": role.as_str()})).await;
        assert_eq!(s, 201, "{u}");
        let (s, session) = login(&server, &name, "correct horse battery").await;
        assert_eq!(s, 200, "{session}");
        tokens.push((role, session["token"].as_str().unwrap().to_string()));
    }
    // The table itself is checked against the router by `permissions`' unit test.
    assert!(ROUTES.len() >= 24);
    for (method, template, permission) in ROUTES {
        let path = template
            .replace("{id}", "nope")
            .replace("{serial}", "01")
            .replace("{fingerprint}", &"0".repeat(64))
            .replace("{event_id}", "nope");
        let (s, _) = call(&server, method, &path, None).await;
        assert_eq!(s, 401, "anonymous {method} {path}");
        let (s, _) = call(&server, method, &path, Some("not-a-token-at-all")).await;
        assert_eq!(s, 401, "bad token {method} {path}");
        for (role, token) in &tokens {
            let (s, body) = call(&server, method, &path, Some(token)).await;
            if permissions::allows(*role, *permission) {
                assert!(
                    s != 401 && s != 403,
                    "{} {method} {path} should pass the gateway, got {s}: {body}",
                    role.as_str()
                );
            } else {
                assert_eq!(s, 403, "{} {method} {path}: {body}", role.as_str());
                assert_eq!(body["type"], "urn:shedu:problem:forbidden");
            }
        }
    }
});

backend_test!(users_log_in_refresh_and_change_passwords, |backend| {
    let server = TestServer::start(backend).await;
    let (s, p) = server
        .post(
            "/api/v1/users",
            json!({"username": "ops", "password": "short", "role": "operator"}),
        )
        .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (400, Some("urn:shedu:problem:weak-password"))
    );
    let (s, _) = server
        .post(
            "/api/v1/users",
            json!({"username": "ops", "password": "a long enough secret", "role": "operator"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, p) = server
        .post(
            "/api/v1/users",
            json!({"username": "ops", "password": "a long enough secret", "role": "operator"}),
        )
        .await;
    assert_eq!(s, 409, "{p}");
    let (s, list) = server.get("/api/v1/users").await;
    assert_eq!(s, 200);
    assert!(
        !list.to_string().contains("argon2"),
        "no password hashes in responses"
    );

    // Wrong password and unknown user look the same.
    let (s1, p1) = login(&server, "ops", "the wrong password!").await;
    let (s2, p2) = login(&server, "nobody", "the wrong password!").await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(p1["detail"], p2["detail"]);

    let (s, session) = login(&server, "ops", "a long enough secret").await;
    assert_eq!(s, 200, "{session}");
    let token = session["token"].as_str().unwrap();
    let (s, me) = call(&server, "GET", "/api/v1/auth/whoami", Some(token)).await;
    assert_eq!(
        (
            s,
            me["name"].as_str(),
            me["role"].as_str(),
            me["kind"].as_str()
        ),
        (200, Some("ops"), Some("operator"), Some("user"))
    );

    // Tokens expire; the refresh token makes a new session.
    server.clock.advance(16 * 60);
    let (s, _) = call(&server, "GET", "/api/v1/auth/whoami", Some(token)).await;
    assert_eq!(s, 401, "expired");
    let (s, p) = server
        .post("/api/v1/auth/refresh", json!({"refresh_token": token}))
        .await;
    assert_eq!(s, 401, "an access token is not a refresh token: {p}");
    let (s, renewed) = server
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    assert_eq!(s, 200, "{renewed}");
    let token = renewed["token"].as_str().unwrap().to_string();

    // Password change: the old one stops working.
    let res = server
        .client
        .post(format!("{}/api/v1/users/me/password", server.base_url))
        .bearer_auth(&token)
        .json(&json!({"current_password": "a long enough secret", "new_password": "an even longer secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(login(&server, "ops", "a long enough secret").await.0, 401);
    assert_eq!(login(&server, "ops", "an even longer secret").await.0, 200);
});

backend_test!(failed_logins_are_rate_limited, |backend| {
    let server = TestServer::start(backend).await;
    server
        .post(
            "/api/v1/users",
            json!({"username": "target", "password": "a long enough secret", "role": "auditor"}),
        )
        .await;
    for _ in 0..5 {
        assert_eq!(login(&server, "target", "guess guess guess").await.0, 401);
    }
    let (s, p) = login(&server, "target", "a long enough secret").await;
    assert_eq!(
        (s, p["type"].as_str()),
        (429, Some("urn:shedu:problem:rate-limited")),
        "even the right password waits"
    );
    server.clock.advance(301);
    assert_eq!(
        login(&server, "target", "a long enough secret").await.0,
        200
    );
});

// See: issue 12 (`expires_in_days` 0 or 4294967295 made a dead or an eternal key).
backend_test!(api_key_lifetimes_are_bounded, |backend| {
    let server = TestServer::start(backend).await;
    for days in [0u64, 3651, 4_294_967_295] {
        let (s, p) = server
            .post(
                "/api/v1/api-keys",
                json!({"name": "ci", "role": "operator", "expires_in_days": days}),
            )
            .await;
        assert_eq!(s, 400, "{days}: {p}");
        assert_eq!(p["type"], "urn:shedu:problem:invalid-expiry", "{p}");
    }
    let (_, list) = server.get("/api/v1/api-keys").await;
    assert_eq!(list["items"], json!([]), "nothing stored");
    for days in [1u64, 3650] {
        let (s, key) = server
            .post(
                "/api/v1/api-keys",
                json!({"name": format!("ci-{days}"), "role": "operator", "expires_in_days": days}),
            )
            .await;
        assert_eq!(s, 201, "{days}: {key}");
    }
});

backend_test!(api_keys_are_shown_once_and_can_be_revoked, |backend| {
    let server = TestServer::start(backend).await;
    let (s, key) = server
        .post(
            "/api/v1/api-keys",
            json!({"name": "ci", "role": "operator", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(s, 201, "{key}");
    let secret = key["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("shk_"));
    let (_, list) = server.get("/api/v1/api-keys").await;
    assert!(
        !list.to_string().contains(&secret[20..]),
        "the secret is never listed: {list}"
    );
    let (s, me) = call(&server, "GET", "/api/v1/auth/whoami", Some(&secret)).await;
    assert_eq!(
        (s, me["kind"].as_str(), me["role"].as_str()),
        (200, Some("api_key"), Some("operator"))
    );
    let (s, _) = call(&server, "GET", "/api/v1/cas", Some(&secret)).await;
    assert_eq!(s, 200);
    let (s, _) = call(&server, "GET", "/api/v1/users", Some(&secret)).await;
    assert_eq!(s, 403, "operators do not manage users");
    let last = if secret.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &secret[..secret.len() - 1]);
    assert_eq!(
        call(&server, "GET", "/api/v1/cas", Some(&tampered)).await.0,
        401
    );
    let (s, _) = call(
        &server,
        "DELETE",
        &format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap()),
        Some(&server.token),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        call(&server, "GET", "/api/v1/cas", Some(&secret)).await.0,
        401,
        "revoked"
    );
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_token_retires_once_an_admin_exists_when_configured() {
    let server = TestServer::start_with(
        Backend::Sqlite,
        Options {
            bootstrap_until_admin: true,
            ..Default::default()
        },
    )
    .await;
    let (s, _) = server.get("/api/v1/cas").await;
    assert_eq!(s, 200, "works while there is no admin user");
    let (s, _) = server
        .post(
            "/api/v1/users",
            json!({"username": "root", "password": "a long enough secret", "role": "admin"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, p) = server.get("/api/v1/cas").await;
    assert_eq!(s, 401, "{p}");
    let (_, session) = login(&server, "root", "a long enough secret").await;
    let (s, _) = call(&server, "GET", "/api/v1/cas", session["token"].as_str()).await;
    assert_eq!(s, 200);
}

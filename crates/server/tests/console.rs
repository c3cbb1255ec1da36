//! The web console's server side: the embedded pages and their security headers, and the cookie session
//! (sign-in with a user or the bootstrap token, refresh, sign-out) with its same-origin rule for requests
//! that change something. The pages themselves are driven in a real browser by crates/cli/tests/console.rs.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use shedu_testkit::{TestServer, backend_test};

/// The `Set-Cookie` header for `name`, if any.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// The value a `Set-Cookie` header sets.
fn value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

/// A console request: `cookies` as the browser would send them; `same_origin` adds what the console's
/// own pages send (the `X-Requested-With` header and this server's `Origin`).
async fn console(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    cookies: &str,
    same_origin: bool,
    body: Option<Value>,
) -> (u16, HeaderMap, Value) {
    let mut req = server
        .client
        .request(method, format!("{}{path}", server.base_url));
    if !cookies.is_empty() {
        req = req.header("cookie", cookies);
    }
    if same_origin {
        req = req
            .header("x-requested-with", "shedu-console")
            .header("origin", &server.base_url)
            .header("sec-fetch-site", "same-origin");
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

/// A GET with the session `cookie` only (what any page, of any site, could make the browser send).
async fn read(server: &TestServer, path: &str, cookie: &str) -> (u16, Value) {
    let (s, _, body) = console(server, reqwest::Method::GET, path, cookie, false, None).await;
    (s, body)
}

/// `POST /ui/session/refresh` from the console with the refresh token `refresh`.
async fn refresh_with(server: &TestServer, refresh: &str) -> (u16, HeaderMap) {
    let cookie = format!("__Secure-shedu-refresh={refresh}");
    let (s, h, _) = console(
        server,
        reqwest::Method::POST,
        "/ui/session/refresh",
        &cookie,
        true,
        None,
    )
    .await;
    (s, h)
}

/// `POST /ui/session` from the console.
async fn sign_in(server: &TestServer, body: Value) -> (u16, HeaderMap, Value) {
    console(
        server,
        reqwest::Method::POST,
        "/ui/session",
        "",
        true,
        Some(body),
    )
    .await
}

backend_test!(console_pages_carry_a_strict_policy, |backend| {
    let server = TestServer::start(backend).await;
    let plain = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&server.ca_file).unwrap()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = plain.get(&server.base_url).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(res.headers()["location"], "/ui/");

    let res = server
        .client
        .get(format!("{}/ui/", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text().await.unwrap();
    // Nothing inline: every script has a source of its own and no element carries a style.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(html.contains(r#"<script type="module" src="/ui/assets/app.js"></script>"#));
    assert!(!html.contains("style=") && !html.contains("<style") && !html.contains("onload="));

    for (asset, media_type) in [
        ("app.js", "text/javascript"),
        ("pages.js", "text/javascript"),
        ("api.js", "text/javascript"),
        ("style.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let res = server
            .client
            .get(format!("{}/ui/assets/{asset}", server.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{asset}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(media_type),
            "{asset}"
        );
        assert!(res.headers().contains_key("content-security-policy"));
        let text = res.text().await.unwrap();
        assert!(
            !text.contains("innerHTML") && !text.contains("eval("),
            "{asset}"
        );
    }
    let (s, _) = server.get("/ui/assets/../../Cargo.toml").await;
    assert_eq!(s, 404);
    let (s, p) = server.get("/ui/assets/nope.js").await;
    assert_eq!(
        (s, p["type"].as_str()),
        (404, Some("urn:shedu:problem:not-found"))
    );
});

backend_test!(console_cookie_session_is_same_origin_only, |backend| {
    use reqwest::Method;
    let server = TestServer::start(backend).await;
    let (s, u) = server
        .post(
            "/api/v1/users",
            json!({"username": "olga", "password": "a long enough secret", "role": "operator"}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    let creds = json!({"username": "olga", "password": "a long enough secret"});

    // Signing in is itself a same-origin request (no login CSRF).
    let (s, _, p) = console(
        &server,
        Method::POST,
        "/ui/session",
        "",
        false,
        Some(creds.clone()),
    )
    .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (403, Some("urn:shedu:problem:csrf"))
    );
    let (s, _, p) = sign_in(
        &server,
        json!({"username": "olga", "password": "wrong password!!"}),
    )
    .await;
    assert_eq!(s, 401, "{p}");

    let (s, h, me) = sign_in(&server, creds).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("olga"), Some("operator"))
    );
    let session = set_cookie(&h, "__Host-shedu-session").expect("session cookie");
    let refresh = set_cookie(&h, "__Secure-shedu-refresh").expect("refresh cookie");
    for (cookie, path) in [(&session, "/"), (&refresh, "/ui/session")] {
        for flag in [
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            &format!("Path={path}"),
        ] {
            assert!(
                cookie.split("; ").any(|f| f == flag),
                "{flag} missing: {cookie}"
            );
        }
        assert!(!cookie.contains("Domain"), "{cookie}");
    }
    let cookie = format!("__Host-shedu-session={}", value(&session));

    // Reads with the cookie alone; writes only with the console's header and this origin.
    let (s, who) = read(&server, "/api/v1/auth/whoami", &cookie).await;
    assert_eq!((s, who["name"].as_str()), (200, Some("olga")));
    let ca = json!({"name": "c1", "key_type": "ec-p256", "subject": {"common_name": "C1"}});
    let (s, _, p) = console(
        &server,
        Method::POST,
        "/api/v1/cas",
        &cookie,
        false,
        Some(ca.clone()),
    )
    .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (403, Some("urn:shedu:problem:csrf"))
    );
    let forged = server
        .client
        .post(format!("{}/api/v1/cas", server.base_url))
        .header("cookie", &cookie)
        .header("x-requested-with", "shedu-console")
        .header("origin", "https://evil.example")
        .json(&ca)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let (_, cas) = server.get("/api/v1/cas").await;
    assert_eq!(
        cas["items"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
    let (s, _, created) = console(
        &server,
        Method::POST,
        "/api/v1/cas",
        &cookie,
        true,
        Some(ca),
    )
    .await;
    assert_eq!(s, 201, "{created}");

    // The role still decides: an operator's cookie cannot read the audit log.
    let (s, p) = read(&server, "/api/v1/audit", &cookie).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (403, Some("urn:shedu:problem:forbidden"))
    );

    // Refresh rotates both cookies; the used refresh token ends the login when presented again.
    let (s, h) = refresh_with(&server, &value(&refresh)).await;
    assert_eq!(s, 200);
    let next_session = value(&set_cookie(&h, "__Host-shedu-session").unwrap());
    let next_refresh = value(&set_cookie(&h, "__Secure-shedu-refresh").unwrap());
    assert_ne!(next_refresh, value(&refresh));
    let cookie = format!("__Host-shedu-session={next_session}");
    let (s, _) = read(&server, "/api/v1/cas", &cookie).await;
    assert_eq!(s, 200);

    // Signing out ends the login: the cookies are cleared and the old session cookie is refused.
    let both = format!("{cookie}; __Secure-shedu-refresh={next_refresh}");
    let (s, _, _) = console(&server, Method::DELETE, "/ui/session", &both, false, None).await;
    assert_eq!(s, 403, "signing out is same-origin too");
    let (s, h, _) = console(&server, Method::DELETE, "/ui/session", &both, true, None).await;
    assert_eq!(s, 204);
    for name in ["__Host-shedu-session", "__Secure-shedu-refresh"] {
        let cleared = set_cookie(&h, name).unwrap();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }
    let (s, _) = read(&server, "/api/v1/cas", &cookie).await;
    assert_eq!(s, 401);
    let (s, _) = refresh_with(&server, &next_refresh).await;
    assert_eq!(s, 401);
});

backend_test!(console_bootstrap_token_sign_in, |backend| {
    let server = TestServer::start(backend).await;
    let (s, h, me) = sign_in(&server, json!({"token": server.token})).await;
    assert_eq!((s, me["role"].as_str()), (200, Some("admin")), "{me}");
    let session = set_cookie(&h, "__Host-shedu-session").unwrap();
    assert!(session.contains("HttpOnly") && session.contains("Secure"));
    let cookie = format!("__Host-shedu-session={}", value(&session));
    let (s, _) = read(&server, "/api/v1/audit", &cookie).await;
    assert_eq!(s, 200);

    // Only the bootstrap token signs in this way: not an API key, not a guess.
    let (_, key) = server
        .post(
            "/api/v1/api-keys",
            json!({"name": "k", "role": "admin", "expires_in_days": 1}),
        )
        .await;
    for token in [key["key"].as_str().unwrap(), "not the token at all"] {
        let (s, _, p) = sign_in(&server, json!({"token": token})).await;
        assert_eq!(s, 401, "{p}");
    }
    let (s, _, p) = sign_in(&server, json!({"token": server.token, "username": "x"})).await;
    assert_eq!(s, 400, "{p}");
});

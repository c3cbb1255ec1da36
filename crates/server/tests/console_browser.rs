//! The web console in a real browser: Playwright (Python, pinned, in a cached virtualenv) drives Debian's
//! Chromium through `tests/console/browser.py` against a test server. The script signs in, creates a root
//! and an intermediate CA, issues from a pasted CSR made with openssl, finds the certificate by filter,
//! revokes it, renews an expired access cookie, creates an RA, watches the live events while a device
//! enrols over EST (curl), checks that an auditor is offered no write action and gets 403 when forcing
//! one, and at last decommissions the device as an admin. With `SCREENSHOTS=<dir>` (scripts/screenshots)
//! it also saves the main pages there.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::json;
use shedu_core::{OidcIssuer, OidcSignIn};
use shedu_testkit::{Options, TestServer, backend_test, openssl_csr, python_venv};
use tokio::io::AsyncBufReadExt;

/// The Playwright release the console's browser tests (and scripts/screenshots) use.
pub const PLAYWRIGHT: &str = "playwright==1.65.3";
const PASSWORD: &str = "a long enough secret";
/// The OpenID Connect provider the sign-in test signs in at (tests/console/idp.py), and the authlib it
/// runs on, pinned.
const OIDC_PROVIDER: [&str; 2] = ["oidc-provider-mock==0.3.4", "Authlib==1.9.10"];

fn chromium() -> String {
    let chromium = std::env::var("SHEDU_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the console's browser tests need Debian's Chromium (apt-get install chromium; scripts/test does)"
    );
    chromium
}

/// Runs one of the Playwright scripts in tests/console with `args`; its stdout when it succeeded.
async fn playwright(script: &str, args: &[&str]) -> String {
    let venv = python_venv("console", &[PLAYWRIGHT]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/console")
        .join(script);
    let out = tokio::process::Command::new(venv.join("bin/python"))
        .arg(script)
        .args(args)
        .env("SHEDU_CHROMIUM", chromium())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the browser script failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

backend_test!(console_flows_in_chromium, |backend| {
    // Webhooks to loopback (the script's receiver), given up after two quick attempts so that a dead
    // letter appears within the test.
    let server = TestServer::start_with(
        backend,
        Options {
            delivery: Some(shedu_events::DeliveryOptions {
                max_attempts: 2,
                retry_initial: std::time::Duration::from_millis(200),
                poll_interval: std::time::Duration::from_millis(200),
                ..Default::default()
            }),
            ..Options::loopback_webhooks()
        },
    )
    .await;
    for (name, role) in [("alice", "admin"), ("audrey", "auditor")] {
        let (s, u) = server
            .post(
                "/api/v1/users",
                json!({"username": name, "password": PASSWORD, "role": role}),
            )
            .await;
        assert_eq!(s, 201, "{u}");
    }
    let dir = tempfile::tempdir().unwrap();
    openssl_csr(
        dir.path(),
        "device",
        "ec-p256",
        "/CN=browser-device.example",
        Some("DNS:browser-device.example"),
    );
    let csr_file = dir.path().join("device.csr");
    let ca_file = server.ca_file.to_string_lossy().to_string();
    let stdout = playwright(
        "browser.py",
        &[
            &server.base_url,
            "alice",
            "audrey",
            PASSWORD,
            &csr_file.to_string_lossy(),
            &ca_file,
            &server.token,
        ],
    )
    .await;

    // What the browser did is what the server holds.
    let serial = serde_json::from_str::<serde_json::Value>(stdout.lines().last().unwrap()).unwrap()
        ["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, page) = server
        .get("/api/v1/certificates?subject=browser-device.example")
        .await;
    assert_eq!(s, 200);
    let certs = page["items"].as_array().unwrap();
    assert_eq!(certs.len(), 1, "{page}");
    assert_eq!(certs[0]["serial"], serial.as_str());
    assert_eq!(certs[0]["status"], "revoked");
    assert_eq!(certs[0]["revocation_reason"], "key_compromise");
    let (_, ras) = server.get("/api/v1/ras").await;
    assert!(
        ras["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "browser-line-1"),
        "{ras}"
    );
    let (_, cas) = server.get("/api/v1/cas").await;
    let names: Vec<&str> = cas["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"forced"),
        "the auditor's forced write was refused: {names:?}"
    );
    // The dashboard's per-CA counts: the intermediate issued the certificate the browser revoked and the
    // one the device enrolled for, revoked when the browser decommissioned the device.
    let issuing = cas["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "browser-issuing")
        .unwrap();
    let (_, status) = server.get("/api/v1/status").await;
    let by_ca = &status["certificates_by_ca"];
    assert_eq!(
        by_ca[issuing["id"].as_str().unwrap()],
        json!({"revoked": 2}),
        "{status}"
    );
    assert_eq!(status["devices"], json!({"decommissioned": 1}), "{status}");
    let sum = |counts: &serde_json::Value| -> i64 {
        counts
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_i64().unwrap())
            .sum()
    };
    let per_ca: i64 = by_ca.as_object().unwrap().values().map(sum).sum();
    assert_eq!(sum(&status["certificates"]), per_ca, "{status}");

    // The expiry timeline counts unexpired certificates by window: one due in 20 days shows in the
    // 30- and 90-day windows only; the revoked one never.
    let csr = openssl_csr(dir.path(), "soon", "ec-p256", "/CN=soon.example", None);
    let (s, soon) = server
        .post(
            &format!(
                "/api/v1/cas/{}/certificates",
                issuing["id"].as_str().unwrap()
            ),
            json!({"csr_pem": csr, "validity_days": 20}),
        )
        .await;
    assert_eq!(s, 201, "{soon}");
    let (_, status) = server.get("/api/v1/status").await;
    assert_eq!(
        status["expiring"],
        json!({"7": 0, "30": 1, "90": 1}),
        "{status}"
    );
    if let Ok(shots) = std::env::var("SCREENSHOTS") {
        assert!(Path::new(&shots).join("dashboard.png").exists());
    }
});

// Console sign-in through an OpenID Connect provider: the authorization code flow with PKCE against a real
// provider (PyPI's oidc-provider-mock, authlib's authorization server) whose login page the browser fills
// in. The script checks the PKCE challenge against the verifier in the pending-sign-in cookie, the roles
// the provider's users get (an operator writes, an auditor is offered no write and is refused one), a
// denied sign-in, a user without a shedu role, and a forged callback.
backend_test!(console_signs_in_through_oidc, |backend| {
    let venv = python_venv("oidc-provider", &OIDC_PROVIDER);
    let mut idp = tokio::process::Command::new(venv.join("bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/idp.py"))
        .stdout(std::process::Stdio::piped())
        // Its request log; the browser script's output says what went wrong.
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut first = String::new();
    tokio::io::BufReader::new(idp.stdout.take().unwrap())
        .read_line(&mut first)
        .await
        .unwrap();
    let issuer = first.trim().to_string();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer:?}");
    let mut provider = OidcIssuer::new(
        issuer.clone(),
        "shedu-console",
        format!("{issuer}/jwks"),
        "roles",
    );
    provider.sign_in = Some(OidcSignIn {
        client_id: "shedu-console".into(),
        client_secret: Some("console-secret".into()),
        label: "Sign in with the test IdP".into(),
    });
    let server = TestServer::start_with(
        backend,
        Options {
            oidc: vec![provider],
            ..Default::default()
        },
    )
    .await;
    let res = server
        .client
        .get(format!("{}/ui/oidc", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        json!({"providers": [{"id": 0, "label": "Sign in with the test IdP"}]})
    );

    playwright("oidc.py", &[&server.base_url, &issuer]).await;

    // What the browser did is what the server holds: the CA olivia created, and no forced one.
    let (_, cas) = server.get("/api/v1/cas").await;
    let names: Vec<&str> = cas["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["oidc-root"], "{cas}");
    let (s, audit) = server.get("/api/v1/audit?action=ca.create").await;
    assert_eq!(s, 200, "{audit}");
    let by_olivia = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "success")
        .any(|r| r["principal"].as_str().unwrap_or("").contains("olivia"));
    assert!(
        by_olivia,
        "the CA was created as the provider's user: {audit}"
    );

    // Every sign-in through the provider is in the audit log as auth.login, with the user and the
    // provider, refused ones too; never the code or a token.
    let (s, logins) = server.get("/api/v1/audit?action=auth.login").await;
    assert_eq!(s, 200, "{logins}");
    let logins = logins["items"].as_array().unwrap();
    let seen = |principal: &str, outcome: &str, why: &str| {
        logins.iter().any(|r| {
            r["principal"] == principal
                && r["outcome"] == outcome
                && r["target"] == issuer.as_str()
                && r["detail"].as_str().unwrap_or("").contains(why)
        })
    };
    for (principal, role) in [("olivia", "operator"), ("ada", "auditor")] {
        let record = logins
            .iter()
            .find(|r| r["principal"] == principal && r["outcome"] == "success")
            .unwrap_or_else(|| panic!("{principal}'s sign-in: {logins:?}"));
        assert_eq!(record["role"], role, "{record}");
        assert_eq!(record["target"], issuer.as_str(), "{record}");
        assert_eq!(
            record["principal_id"],
            format!("oidc:{issuer}#{principal}"),
            "{record}"
        );
    }
    assert!(seen("anonymous", "denied", "denied"), "{logins:?}");
    assert!(seen("nobody", "failure", "not accepted"), "{logins:?}");
    assert!(seen("anonymous", "failure", "(state)"), "{logins:?}");
    let text = serde_json::to_string(logins).unwrap();
    assert!(!text.contains("forged"), "the code is never recorded");
    assert!(!text.contains("eyJ"), "no token is recorded: {text}");
    drop(idp);
});

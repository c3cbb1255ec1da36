//! OIDC bearer JWTs through the real HTTPS API. The identity provider is simulated here: RSA-2048 and P-256
//! keys from aws-lc-rs, a JWKS served on loopback by a small axum app that counts its fetches, and tokens
//! assembled and signed by hand (not with the jsonwebtoken crate the server verifies with, so a bug there
//! cannot hide in both ends). The role test runs on both backends; the token matrix and the key rotation
//! run on SQLite only, since the OIDC path never touches the database.

// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use shedu_core::{Clock, OidcIssuer};
use shedu_testkit::{Backend, Options, TestServer, backend_test};

const AUDIENCE: &str = "shedu-api";
const ROLES_CLAIM: &str = "realm_access.roles";

/// A simulated identity provider: its signing keys, the JWKS it publishes, and how often that was fetched.
struct Provider {
    base: String,
    issuer: String,
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl Provider {
    async fn start() -> Provider {
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let ec = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let jwks = Arc::new(Mutex::new(
            json!({"keys": [rsa_jwk(&rsa, "rsa-1"), ec_jwk(&ec, "ec-1")]}),
        ));
        let fetches = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/certs",
            axum::routing::get({
                let (jwks, fetches) = (jwks.clone(), fetches.clone());
                move || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(jwks.lock().unwrap().clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Provider {
            issuer: format!("{base}/realms/test"),
            base,
            rsa,
            ec,
            jwks,
            fetches,
        }
    }

    /// The issuer configuration for shedu; `realm` distinguishes several issuers sharing this JWKS.
    fn config(&self, realm: &str) -> OidcIssuer {
        OidcIssuer::new(
            format!("{}/realms/{realm}", self.base),
            AUDIENCE,
            format!("{}/certs", self.base),
            ROLES_CLAIM,
        )
    }

    /// Claims valid for five minutes from `now`, naming `roles` in Keycloak's place.
    fn claims(&self, now: i64, roles: Value) -> Value {
        json!({
            "iss": self.issuer, "aud": AUDIENCE, "sub": "u-123", "preferred_username": "alice",
            "iat": now, "exp": now + 300, "realm_access": {"roles": roles},
        })
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS: `header.claims.signature`, with `sign` over the first two parts.
fn jwt(header: Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn rs256(key: &RsaKeyPair, kid: &str, claims: &Value) -> String {
    jwt(
        json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        claims,
        |m| {
            let mut sig = vec![0; key.public_modulus_len()];
            key.sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                m,
                &mut sig,
            )
            .unwrap();
            sig
        },
    )
}

/// ES256 with the fixed-width `r || s` signature JWS uses (RFC 7518 §3.4).
fn es256(key: &EcdsaKeyPair, kid: &str, claims: &Value) -> String {
    jwt(
        json!({"alg": "ES256", "typ": "JWT", "kid": kid}),
        claims,
        |m| key.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec(),
    )
}

fn hs256(secret: &[u8], kid: &str, claims: &Value) -> String {
    jwt(
        json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        claims,
        |m| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), m)
                .as_ref()
                .to_vec()
        },
    )
}

fn rsa_jwk(key: &RsaKeyPair, kid: &str) -> Value {
    let public = key.public_key();
    json!({
        "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero()),
    })
}

fn ec_jwk(key: &EcdsaKeyPair, kid: &str) -> Value {
    // SEC 1 uncompressed point: 0x04 || x || y.
    let point = key.public_key().as_ref();
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
}

/// The RSA public key as the PEM an attacker would download and use as an HMAC secret.
fn rsa_public_pem(key: &RsaKeyPair) -> String {
    let der = key.public_key().as_der().unwrap();
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

async fn server_for(backend: Backend, issuers: Vec<OidcIssuer>) -> TestServer {
    TestServer::start_with(
        backend,
        Options {
            oidc: issuers,
            ..Default::default()
        },
    )
    .await
}

async fn get(server: &TestServer, path: &str, token: &str) -> (u16, Value) {
    let res = server
        .client
        .get(format!("{}{path}", server.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn create_ca(server: &TestServer, token: &str, name: &str) -> (u16, Value) {
    let res = server
        .client
        .post(format!("{}/api/v1/cas", server.base_url))
        .bearer_auth(token)
        .json(&json!({"name": name, "key_type": "ec-p256", "subject": {"common_name": name}}))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Asserts that `token` gets the gateway's one 401 problem document.
async fn assert_refused(server: &TestServer, token: &str, case: &str) {
    let res = server
        .client
        .get(format!("{}/api/v1/auth/whoami", server.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401, "{case}");
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{case}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["type"].as_str(), body["status"].as_u64()),
        (Some("urn:shedu:problem:invalid-token"), Some(401)),
        "{case}: {body}"
    );
}

async fn assert_accepted(server: &TestServer, token: &str, case: &str) -> Value {
    let (status, me) = get(server, "/api/v1/auth/whoami", token).await;
    assert_eq!(status, 200, "{case}: {me}");
    me
}

backend_test!(oidc_tokens_carry_the_providers_role, |backend| {
    let idp = Provider::start().await;
    let server = server_for(backend, vec![idp.config("test")]).await;
    let now = server.clock.now();

    // Several roles: the strongest wins. The name comes from preferred_username.
    let admin = rs256(
        &idp.rsa,
        "rsa-1",
        &idp.claims(now, json!(["offline_access", "auditor", "admin"])),
    );
    let me = assert_accepted(&server, &admin, "admin").await;
    assert_eq!(
        me,
        json!({"id": format!("oidc:{}#u-123", idp.issuer), "name": "alice", "role": "admin", "kind": "oidc"})
    );
    let (s, users) = get(&server, "/api/v1/users", &admin).await;
    assert_eq!(s, 200, "admins manage users: {users}");
    assert_eq!(
        users["items"],
        json!([]),
        "an OIDC principal is never stored"
    );

    // ES256; the role claim is a plain string; without preferred_username the name is `sub`.
    let mut claims = idp.claims(now, json!("operator"));
    claims.as_object_mut().unwrap().remove("preferred_username");
    let operator = es256(&idp.ec, "ec-1", &claims);
    let me = assert_accepted(&server, &operator, "operator").await;
    assert_eq!(
        (me["role"].as_str(), me["name"].as_str()),
        (Some("operator"), Some("u-123"))
    );
    let (s, ca) = create_ca(&server, &operator, "oidc-made").await;
    assert_eq!(s, 201, "operators create CAs: {ca}");
    let (s, body) = get(&server, "/api/v1/users", &operator).await;
    assert_eq!(
        (s, body["type"].as_str()),
        (403, Some("urn:shedu:problem:forbidden"))
    );

    let auditor = rs256(&idp.rsa, "rsa-1", &idp.claims(now, json!(["auditor"])));
    let (s, cas) = get(&server, "/api/v1/cas", &auditor).await;
    assert_eq!(s, 200, "{cas}");
    assert!(cas.to_string().contains("oidc-made"), "{cas}");
    let (s, body) = create_ca(&server, &auditor, "not-allowed").await;
    assert_eq!(
        (s, body["type"].as_str()),
        (403, Some("urn:shedu:problem:forbidden")),
        "auditors do not write: {body}"
    );

    // A valid signature is not enough: the token must name a shedu role.
    let mut no_claim = idp.claims(now, json!([]));
    no_claim.as_object_mut().unwrap().remove("realm_access");
    assert_refused(
        &server,
        &rs256(&idp.rsa, "rsa-1", &no_claim),
        "no roles claim",
    )
    .await;
    let other_roles = idp.claims(now, json!(["device", "uma_authorization", "Admin"]));
    assert_refused(
        &server,
        &rs256(&idp.rsa, "rsa-1", &other_roles),
        "no shedu role",
    )
    .await;

    // The other credentials keep working next to OIDC: bootstrap token, session token, API key.
    let (s, _) = server.get("/api/v1/cas").await;
    assert_eq!(s, 200, "bootstrap token");
    let (s, u) = server
        .post(
            "/api/v1/users",
            json!({"username": "bob", "password": "correct horse battery", "role": "auditor"}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    let (s, session) = server
        .post(
            "/api/v1/auth/login",
            json!({"username": "bob", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(s, 200, "{session}");
    let me = assert_accepted(&server, session["token"].as_str().unwrap(), "session").await;
    assert_eq!(me["kind"], "user");
    let (s, key) = server
        .post(
            "/api/v1/api-keys",
            json!({"name": "ci", "role": "operator"}),
        )
        .await;
    assert_eq!(s, 201, "{key}");
    let me = assert_accepted(&server, key["key"].as_str().unwrap(), "API key").await;
    assert_eq!(me["kind"], "api_key");
});

backend_test!(
    forged_expired_and_misaddressed_tokens_are_refused,
    |backend| {
        let idp = Provider::start().await;
        let hmac_secret = b"a shared secret that must never verify anything";
        idp.publish(vec![
            rsa_jwk(&idp.rsa, "rsa-1"),
            ec_jwk(&idp.ec, "ec-1"),
            // A symmetric key in the JWKS must be ignored, or anyone who reads the JWKS could sign.
            json!({"kty": "oct", "kid": "oct-1", "alg": "HS256", "k": b64(hmac_secret)}),
        ]);
        let mut es_only = idp.config("es-only");
        es_only.algorithms = vec!["ES256".into()];
        let server = server_for(backend, vec![idp.config("test"), es_only]).await;
        let now = server.clock.now();
        let good = idp.claims(now, json!(["operator"]));
        let with = |changes: Value| {
            let mut c = good.clone();
            for (k, v) in changes.as_object().unwrap() {
                match v {
                    Value::Null => c.as_object_mut().unwrap().remove(k),
                    v => c.as_object_mut().unwrap().insert(k.clone(), v.clone()),
                };
            }
            c
        };
        let rs = |claims: &Value| rs256(&idp.rsa, "rsa-1", claims);

        assert_accepted(&server, &rs(&good), "control").await;
        assert_accepted(&server, &es256(&idp.ec, "ec-1", &good), "control, ES256").await;

        // Time: exp is required; exp and nbf are checked with 60 s of leeway.
        assert_refused(&server, &rs(&with(json!({"exp": now - 120}))), "expired").await;
        assert_accepted(
            &server,
            &rs(&with(json!({"exp": now - 30}))),
            "expired within the leeway",
        )
        .await;
        assert_refused(&server, &rs(&with(json!({"exp": null}))), "no exp").await;
        assert_refused(
            &server,
            &rs(&with(json!({"nbf": now + 600}))),
            "nbf in the future",
        )
        .await;
        assert_accepted(
            &server,
            &rs(&with(json!({"nbf": now + 30}))),
            "nbf within the leeway",
        )
        .await;

        // Audience and issuer.
        assert_refused(
            &server,
            &rs(&with(json!({"aud": "someone-else"}))),
            "wrong audience",
        )
        .await;
        assert_refused(
            &server,
            &rs(&with(json!({"aud": ["someone-else"]}))),
            "wrong audience list",
        )
        .await;
        assert_refused(&server, &rs(&with(json!({"aud": null}))), "no audience").await;
        assert_accepted(
            &server,
            &rs(&with(json!({"aud": ["account", AUDIENCE]}))),
            "audience in a list",
        )
        .await;
        let evil = format!("{}/realms/evil", idp.base);
        assert_refused(
            &server,
            &rs(&with(json!({"iss": evil}))),
            "unconfigured issuer",
        )
        .await;
        let slash = format!("{}/", idp.issuer);
        assert_refused(
            &server,
            &rs(&with(json!({"iss": slash}))),
            "issuer not exactly equal",
        )
        .await;
        assert_refused(&server, &rs(&with(json!({"sub": null}))), "no subject").await;

        // Algorithms: none, HS256 with the RSA public key as the secret (key confusion), HS256 with the
        // JWKS's own symmetric key, and an issuer whose allow-list has ES256 only.
        let none = |kid: Option<&str>| {
            let header = match kid {
                Some(kid) => json!({"alg": "none", "typ": "JWT", "kid": kid}),
                None => json!({"alg": "none", "typ": "JWT"}),
            };
            jwt(header, &good, |_| Vec::new())
        };
        assert_refused(&server, &none(None), "alg none").await;
        assert_refused(&server, &none(Some("rsa-1")), "alg none with a kid").await;
        let signed = rs(&good);
        let unsigned_with_signature = signed.replacen(
            signed.split('.').next().unwrap(),
            &b64(json!({"alg": "none", "kid": "rsa-1"})
                .to_string()
                .as_bytes()),
            1,
        );
        assert_refused(
            &server,
            &unsigned_with_signature,
            "alg none carrying a real signature",
        )
        .await;
        let pem = rsa_public_pem(&idp.rsa);
        assert_refused(
            &server,
            &hs256(pem.as_bytes(), "rsa-1", &good),
            "HS256 keyed with the RSA public PEM",
        )
        .await;
        let der = idp.rsa.public_key().as_der().unwrap();
        assert_refused(
            &server,
            &hs256(der.as_ref(), "rsa-1", &good),
            "HS256 keyed with the RSA public DER",
        )
        .await;
        assert_refused(
            &server,
            &hs256(hmac_secret, "oct-1", &good),
            "HS256 with a JWKS oct key",
        )
        .await;
        let es_claims = with(json!({"iss": format!("{}/realms/es-only", idp.base)}));
        assert_accepted(
            &server,
            &es256(&idp.ec, "ec-1", &es_claims),
            "ES256 for the ES256-only issuer",
        )
        .await;
        assert_refused(&server, &rs(&es_claims), "RS256 for the ES256-only issuer").await;

        // Keys: unknown kid, no kid, a kid whose key is of another type, a key the provider never published.
        assert_refused(&server, &rs256(&idp.rsa, "nope", &good), "unknown kid").await;
        let no_kid = jwt(json!({"alg": "RS256", "typ": "JWT"}), &good, |m| {
            let mut sig = vec![0; idp.rsa.public_modulus_len()];
            idp.rsa
                .sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    m,
                    &mut sig,
                )
                .unwrap();
            sig
        });
        assert_refused(&server, &no_kid, "no kid").await;
        assert_refused(
            &server,
            &es256(&idp.ec, "rsa-1", &good),
            "ES256 under an RSA kid",
        )
        .await;
        assert_refused(
            &server,
            &rs256(&idp.rsa, "ec-1", &good),
            "RS256 under an EC kid",
        )
        .await;
        let stranger = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        assert_refused(
            &server,
            &rs256(&stranger, "rsa-1", &good),
            "signed by an unpublished key",
        )
        .await;

        // Tampering: an auditor's token with an admin payload, and a flipped signature bit.
        let auditor = rs(&with(json!({"realm_access": {"roles": ["auditor"]}})));
        let parts: Vec<&str> = auditor.split('.').collect();
        let admin_payload = b64(with(json!({"realm_access": {"roles": ["admin"]}}))
            .to_string()
            .as_bytes());
        let promoted = format!("{}.{admin_payload}.{}", parts[0], parts[2]);
        assert_refused(&server, &promoted, "payload swapped under the signature").await;
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[10] ^= 0x01;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
        assert_refused(&server, &flipped, "one signature bit flipped").await;
        assert_accepted(&server, &auditor, "the untampered original").await;
    }
);

backend_test!(
    rotated_keys_are_fetched_on_an_unknown_kid_at_most_every_ten_seconds,
    |backend| {
        let idp = Provider::start().await;
        let rotated = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let server = server_for(backend, vec![idp.config("test")]).await;
        let token = |key: &RsaKeyPair, kid: &str| {
            rs256(key, kid, &idp.claims(server.clock.now(), json!("auditor")))
        };
        assert_eq!(
            idp.fetches(),
            0,
            "the JWKS is fetched on first use, not at start"
        );
        assert_accepted(&server, &token(&idp.rsa, "rsa-1"), "first use").await;
        assert_eq!(idp.fetches(), 1);

        // The provider rotates a key in. Within 10 s of the last fetch, an unknown kid costs no fetch...
        idp.publish(vec![rsa_jwk(&idp.rsa, "rsa-1"), rsa_jwk(&rotated, "rsa-2")]);
        assert_refused(
            &server,
            &token(&rotated, "rsa-2"),
            "rotated key, inside the rate limit",
        )
        .await;
        for i in 0..20 {
            assert_refused(&server, &token(&idp.rsa, &format!("random-{i}")), "flood").await;
        }
        assert_eq!(
            idp.fetches(),
            1,
            "a flood of unknown kids does not reach the provider"
        );

        // ...after it, one refetch picks the new key up, and the flood that follows costs nothing more.
        server.clock.advance(11);
        assert_accepted(
            &server,
            &token(&rotated, "rsa-2"),
            "rotated key after the refetch",
        )
        .await;
        assert_eq!(idp.fetches(), 2);
        assert_accepted(
            &server,
            &token(&idp.rsa, "rsa-1"),
            "the old key still published",
        )
        .await;
        for i in 0..20 {
            assert_refused(
                &server,
                &token(&idp.rsa, &format!("again-{i}")),
                "second flood",
            )
            .await;
        }
        assert_eq!(idp.fetches(), 2);

        // The provider retires the old key; cached keys are refreshed after an hour, so it stops working.
        idp.publish(vec![rsa_jwk(&rotated, "rsa-2")]);
        server.clock.advance(3600);
        assert_refused(&server, &token(&idp.rsa, "rsa-1"), "retired key").await;
        assert_eq!(idp.fetches(), 3);
        assert_accepted(&server, &token(&rotated, "rsa-2"), "current key").await;
        assert_eq!(idp.fetches(), 3);
    }
);

//! OIDC: bearer tokens come from anyone, the JWKS from the identity provider. Every decoder of the
//! request path ([`shedu_core::check_token_offline`]: the unverified `iss`, the header, the JWKS, the
//! signature, the claims) must never panic. The first byte picks the mode:
//! - even: the rest is a JWKS, a NUL, then a token, both as sent;
//! - odd: the rest is a JOSE header, a NUL, then the claims (JSON), signed here with a fixed Ed25519 key
//!   the JWKS publishes as `k1`, so the claims are read after the signature verifies.
#![no_main]

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use shedu_core::OidcIssuer;

/// RFC 8032 §7.1 test 1; its public key is `x` in [`JWKS`] (RFC 8037 §A.2).
const SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (first, second) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let issuer = OidcIssuer::new(
        "https://idp.example",
        "shedu",
        "https://idp.example/jwks",
        "roles",
    );
    let (jwks, token) = if mode % 2 == 0 {
        let Ok(token) = std::str::from_utf8(second) else {
            return;
        };
        (first, token.to_string())
    } else {
        let key = Ed25519KeyPair::from_seed_unchecked(&SEED).expect("a fixed valid seed");
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(first),
            URL_SAFE_NO_PAD.encode(second)
        );
        let signature = key.sign(signed.as_bytes());
        (
            JWKS.as_bytes(),
            format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)),
        )
    };
    if let Ok(Some(principal)) = shedu_core::check_token_offline(issuer, jwks, &token, 1_000_000) {
        assert!(principal.id.starts_with("oidc:https://idp.example#"));
    }
});

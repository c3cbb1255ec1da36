//! Every ACME request body is a JWS from anyone on the network: parsing it, its key, its payload as each
//! request object, and verifying it against its own key must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = shedu_acme::parse_cert_id(text);
    }
    let Ok(jws) = shedu_acme::Jws::parse(data) else {
        return;
    };
    if let shedu_acme::KeyRef::Jwk(key) = &jws.protected.key {
        let _ = jws.verify(key);
        let _ = key.thumbprint();
    }
    let _ = jws.verify_hmac(b"fuzz");
    let _ = jws.payload_json::<shedu_acme::types::NewAccount>();
    let _ = jws.payload_json::<shedu_acme::types::NewOrder>();
    let _ = jws.payload_json::<shedu_acme::types::Finalize>();
    let _ = jws.payload_json::<shedu_acme::types::Revocation>();
    if let Ok(kc) = jws.payload_json::<shedu_acme::types::KeyChange>() {
        let _ = shedu_acme::Jwk::from_value(&kc.old_key);
    }
    if let Ok(v) = jws.payload_json::<serde_json::Value>() {
        let _ = shedu_acme::Jws::from_value(&v);
    }
});

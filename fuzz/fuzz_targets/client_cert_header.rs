//! The `X-Client-Cert` header (a percent-escaped PEM chain from a TLS-terminating proxy): decoding it and
//! reading the leaf must never panic. Only trusted proxies' headers are read, but a proxy forwards what
//! its client sent.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(chain) = shedu_pki::escaped_pem_to_der_certs(data) {
        assert!(!chain.is_empty());
        for der in &chain {
            let _ = shedu_pki::CertInfo::from_der(der);
        }
    }
});

//! EST `simpleenroll`/`simplereenroll`/`serverkeygen` bodies come from devices: decoding the base64 and
//! the CSR in it must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(der) = shedu_pki::est::decode_body(data) {
        assert!(!der.is_empty());
        let _ = shedu_pki::Csr::parse(&der);
    }
});

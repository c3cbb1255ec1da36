//! OCSP requests come from anyone on the network: parsing must never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(req) = shedu_pki::ocsp::OcspRequest::from_der(data) {
        // A parsed request must be internally consistent.
        assert!(!req.entries.is_empty());
        for e in &req.entries {
            assert!(!e.raw.is_empty());
        }
    }
});

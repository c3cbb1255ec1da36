//! `GET /ocsp/{base64}` comes from anyone on the network: decoding the path and the request in it must
//! never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(der) = shedu_pki::ocsp::decode_get(path) {
        let _ = shedu_pki::ocsp::OcspRequest::from_der(&der);
    }
});

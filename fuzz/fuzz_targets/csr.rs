//! CSRs come from devices and API callers: decoding and verifying must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shedu_pki::Csr::parse(data);
});

//! The EST approval webhook's reply comes from a service outside shedu: only `{"allow": true}` approves,
//! and nothing panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if shedu_core::approval_allows(data) {
        // Whatever else the reply holds, it is JSON that says allow: true.
        let text = std::str::from_utf8(data).expect("an approving reply is JSON, so UTF-8");
        assert!(text.contains("allow") || text.contains('\\'));
    }
});

//! The EST `Authorization` header (HTTP Basic or bearer) comes from devices: it must never panic, and
//! a device id never carries the separator.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let (user, secret) = shedu_pki::est::credentials(value);
    if let Some(user) = user {
        assert!(!user.contains(':'));
        assert!(secret.is_some());
    }
});

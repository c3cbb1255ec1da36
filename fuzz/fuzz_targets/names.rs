//! Names come from CSRs, the API's `sans` field and EST enrolments: validating them, applying a profile's
//! subject policy and rendering the result must never panic, and what passes must encode.
#![no_main]

use shedu_pki::{AttrRule, AttrType, NamePolicy, RequestedAttr, Subject};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = shedu_pki::check_dns_name(text);
    let _ = shedu_pki::check_email(text);
    let _ = shedu_pki::check_uri(text);
    // Each line is one attribute value, its type chosen by its first byte; the subject is every type.
    let requested: Vec<RequestedAttr> = text
        .lines()
        .map(|line| {
            let ty =
                AttrType::ALL[usize::from(line.bytes().next().unwrap_or(0)) % AttrType::ALL.len()];
            RequestedAttr {
                oid: ty.oid().to_vec(),
                value: Some(line.to_string()),
            }
        })
        .collect();
    let policy = NamePolicy {
        subject: AttrType::ALL.map(|t| (t, AttrRule::Allow)).to_vec(),
        ..NamePolicy::default()
    };
    if let Ok(subject) = policy.subject_for(&requested) {
        subject.to_dn().expect("a checked subject encodes");
        subject.display().expect("a checked subject renders");
    }
    for ty in AttrType::ALL {
        if ty.check(text).is_ok() {
            let subject = Subject::new(vec![(ty, text.to_string())]).expect("checked");
            subject.to_dn().expect("a checked value encodes");
            subject.display().expect("a checked value renders");
        }
    }
});

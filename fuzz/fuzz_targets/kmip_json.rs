//! A bare KMIP operation in JSON TTLV, as `POST /kmip/2_1` reads it from the network: reading it must never
//! panic, what reads must round-trip through both encodings, and its answer form must build.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((op, payload)) = shedu_kmip::operation_from_json(data) {
        let bytes = shedu_kmip::encode(&payload).expect("a decoded payload encodes");
        assert_eq!(shedu_kmip::decode(&bytes).as_ref(), Ok(&payload));
        let json = shedu_kmip::to_json(&payload);
        assert_eq!(shedu_kmip::from_json(&json).as_ref(), Ok(&payload));
        let answer = shedu_kmip::operation_response_json(op, &payload);
        assert!(
            answer["tag"]
                .as_str()
                .is_some_and(|t| t.ends_with("Response"))
        );
        for child in payload.items() {
            let _ = shedu_kmip::read_attributes(child);
        }
    }
});

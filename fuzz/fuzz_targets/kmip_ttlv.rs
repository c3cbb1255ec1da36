//! Every KMIP message on the binary listener and the JSON endpoint comes from the network: decoding it
//! (binary TTLV, JSON TTLV), reading it as a request, its attributes, and re-encoding what was read must
//! never panic, and what decodes must round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(header) = <[u8; shedu_kmip::HEADER_LEN]>::try_from(data.get(..8).unwrap_or(&[])) {
        let _ = shedu_kmip::message_len(&header);
    }
    for item in [shedu_kmip::decode(data), shedu_kmip::from_json_slice(data)]
        .into_iter()
        .flatten()
    {
        let bytes = shedu_kmip::encode(&item).expect("a decoded item encodes");
        assert_eq!(shedu_kmip::decode(&bytes).as_ref(), Ok(&item));
        let json = shedu_kmip::to_json(&item);
        assert_eq!(shedu_kmip::from_json(&json).as_ref(), Ok(&item));
        let _ = shedu_kmip::RequestMessage::version_hint(&item);
        if let Ok(request) = shedu_kmip::RequestMessage::from_ttlv(&item) {
            let _ = shedu_kmip::encode(&request.to_ttlv());
            for batch in &request.batch_items {
                for child in batch.payload.items() {
                    let _ = shedu_kmip::read_attributes(child);
                }
            }
        }
        let _ = shedu_kmip::ResponseMessage::from_ttlv(&item);
        let _ = shedu_kmip::read_attributes(&item);
    }
});

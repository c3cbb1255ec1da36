use super::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '|')
        .collect();
    hex::decode(s).unwrap()
}

/// The examples of KMIP 1.4 §9.1.2 ("Examples"), tag 0x420020.
fn spec_examples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "420020 | 02 | 00000004 | 00000008 00000000",
            Value::Integer(8),
        ),
        (
            "420020 | 03 | 00000008 | 01B69B4BA5749200",
            Value::LongInteger(123_456_789_000_000_000),
        ),
        (
            "420020 | 04 | 00000010 | 0000000003FD35EB 6BC2DF4618080000",
            Value::BigInteger(unhex("0000000003FD35EB6BC2DF4618080000")),
        ),
        (
            "420020 | 05 | 00000004 | 000000FF 00000000",
            Value::Enumeration(255),
        ),
        (
            "420020 | 06 | 00000008 | 0000000000000001",
            Value::Boolean(true),
        ),
        (
            "420020 | 07 | 0000000B | 48656C6C6F20576F726C640000000000",
            Value::TextString("Hello World".into()),
        ),
        (
            "420020 | 08 | 00000003 | 0102030000000000",
            Value::ByteString(vec![1, 2, 3]),
        ),
        (
            "420020 | 09 | 00000008 | 0000000047DA67F8",
            Value::DateTime(0x47DA_67F8),
        ),
        (
            "420020 | 0A | 00000004 | 000D2F0000000000",
            Value::Interval(864_000),
        ),
        (
            "420020 | 01 | 00000020 | 420004 | 05 | 00000004 | 000000FE00000000 | 420005 | 02 | 00000004 | 000000FF00000000",
            Value::Structure(vec![
                Ttlv::enumeration(0x42_0004, 254),
                Ttlv::integer(0x42_0005, 255),
            ]),
        ),
    ]
}

#[test]
fn spec_examples_encode_and_decode_exactly() {
    for (wire, value) in spec_examples() {
        let bytes = unhex(wire);
        let item = Ttlv::new(0x42_0020, value);
        assert_eq!(encode(&item).unwrap(), bytes, "{wire}");
        assert_eq!(decode(&bytes).unwrap(), item, "{wire}");
    }
}

/// The Create request of the KMIP use cases (AES-128, Encrypt|Decrypt), KMIP 1.2, as PyKMIP 0.11.0
/// encodes it.
const CREATE_REQUEST: &str = "42007801000001204200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000020000000042000d0200000004000000010000000042000f01000000d842005c0500000004000000010000000042007901000000c04200570500000004000000020000000042009101000000a8420008010000003042000a070000001743727970746f6772617068696320416c676f726974686d0042000b05000000040000000300000000420008010000003042000a070000001443727970746f67726170686963204c656e6774680000000042000b02000000040000008000000000420008010000003042000a070000001843727970746f67726170686963205573616765204d61736b42000b02000000040000000c00000000";

#[test]
fn create_request_reads_as_a_typed_message_and_re_encodes_byte_for_byte() {
    let bytes = unhex(CREATE_REQUEST);
    let header: [u8; 8] = bytes[..8].try_into().unwrap();
    assert_eq!(message_len(&header).unwrap(), bytes.len());
    let item = decode(&bytes).unwrap();
    let message = RequestMessage::from_ttlv(&item).unwrap();
    assert_eq!(
        message.protocol_version,
        ProtocolVersion { major: 1, minor: 2 }
    );
    assert_eq!(message.batch_items.len(), 1);
    let batch = &message.batch_items[0];
    assert_eq!(batch.operation, operation::CREATE);
    assert_eq!(
        batch
            .payload
            .child(tag::OBJECT_TYPE)
            .unwrap()
            .as_enum("")
            .unwrap(),
        object_type::SYMMETRIC_KEY
    );
    let attributes =
        read_attributes(batch.payload.child(tag::TEMPLATE_ATTRIBUTE).unwrap()).unwrap();
    let names: Vec<_> = attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Cryptographic Algorithm",
            "Cryptographic Length",
            "Cryptographic Usage Mask"
        ]
    );
    assert_eq!(
        attributes[1].value,
        Ttlv::integer(tag::CRYPTOGRAPHIC_LENGTH, 128)
    );
    assert_eq!(encode(&message.to_ttlv()).unwrap(), bytes);
    // The JSON form round-trips too, with the specification's names.
    let json = to_json(&item);
    assert_eq!(json["tag"], "RequestMessage");
    assert_eq!(json["value"][1]["value"][0]["value"], "Create");
    assert_eq!(from_json(&json).unwrap(), item);
    // KMIP 2 form of the same attributes: tagged items.
    let v2 = ProtocolVersion { major: 2, minor: 1 };
    assert_eq!(
        write_attribute(&attributes[0], v2),
        Ttlv::enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, cryptographic_algorithm::AES)
    );
    let v12 = ProtocolVersion { major: 1, minor: 2 };
    let again: Vec<_> = attributes.iter().map(|a| write_attribute(a, v12)).collect();
    assert_eq!(
        again,
        batch
            .payload
            .child(tag::TEMPLATE_ATTRIBUTE)
            .unwrap()
            .items()
    );
}

#[test]
fn malformed_input_is_an_error_never_a_panic() {
    let good = unhex(CREATE_REQUEST);
    // Every truncation.
    for n in 0..good.len() {
        assert!(decode(&good[..n]).is_err(), "truncated at {n}");
    }
    // Trailing bytes.
    let mut long = good.clone();
    long.extend_from_slice(&[0; 8]);
    assert_eq!(decode(&long), Err(Error::Trailing { count: 8 }));
    // An unknown type, a bad fixed length, non-zero padding, a non-canonical boolean, bad UTF-8.
    assert!(matches!(
        decode(&unhex("420020 0C 00000000")),
        Err(Error::UnknownType { code: 0x0c, .. })
    ));
    assert!(matches!(
        decode(&unhex("420020 02 00000008 0000000800000000")),
        Err(Error::BadLength { .. })
    ));
    assert!(matches!(
        decode(&unhex("420020 02 00000004 0000000800000001")),
        Err(Error::NonCanonical { .. })
    ));
    assert!(matches!(
        decode(&unhex("420020 06 00000008 0000000000000002")),
        Err(Error::NonCanonical { .. })
    ));
    assert!(matches!(
        decode(&unhex("420020 07 00000001 FF00000000000000")),
        Err(Error::BadUtf8 { .. })
    ));
    // A huge declared length fails as truncated without allocating it.
    assert!(matches!(
        decode(&unhex("420020 08 FFFFFFF8")),
        Err(Error::Truncated { .. })
    ));
    // Deep nesting is refused.
    let mut deep = Ttlv::integer(0x42_0020, 1);
    for _ in 0..=MAX_DEPTH {
        deep = Ttlv::structure(0x42_0020, vec![deep]);
    }
    assert_eq!(decode(&encode(&deep).unwrap()), Err(Error::TooDeep));
    assert_eq!(from_json(&to_json(&deep)), Err(Error::TooDeep));
    // A message that is not a request, or whose batch count lies.
    let item = decode(&good).unwrap();
    let mut lying = item.clone();
    if let Value::Structure(items) = &mut lying.value {
        items.push(items[1].clone());
    }
    assert_eq!(
        RequestMessage::from_ttlv(&lying),
        Err(Error::Invalid {
            what: "Batch Count"
        })
    );
    assert_eq!(
        RequestMessage::version_hint(&lying),
        Some(ProtocolVersion { major: 1, minor: 2 })
    );
}

#[test]
fn json_form_reads_what_cosmian_and_oasis_write() {
    let text = r#"{"tag":"RequestPayload","value":[
        {"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"},
        {"tag":"Attributes","value":[
            {"tag":"CryptographicAlgorithm","type":"Enumeration","value":"AES"},
            {"tag":"CryptographicLength","type":"Integer","value":256},
            {"tag":"CryptographicUsageMask","type":"Integer","value":"0x0000000C"},
            {"tag":"ActivationDate","type":"DateTime","value":"2008-03-14T11:56:40Z"},
            {"tag":"0x540001","type":"ByteString","value":"0102ff"},
            {"tag":"KeyFormatType","type":"Enumeration","value":"0x00000001"}
        ]}]}"#;
    let item = from_json_slice(text.as_bytes()).unwrap();
    assert_eq!(item.tag, tag::REQUEST_PAYLOAD);
    let attrs = item.child(tag::ATTRIBUTES).unwrap();
    assert_eq!(
        attrs.items()[0],
        Ttlv::enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, 3)
    );
    assert_eq!(
        attrs.items()[2],
        Ttlv::integer(tag::CRYPTOGRAPHIC_USAGE_MASK, 12)
    );
    assert_eq!(attrs.items()[3].value, Value::DateTime(0x47DA_67F8));
    assert_eq!(attrs.items()[4], Ttlv::bytes(0x54_0001, vec![1, 2, 0xff]));
    assert_eq!(
        attrs.items()[5].value,
        Value::Enumeration(key_format_type::RAW)
    );
    // Round trip through both encodings; the JSON text written directly is the JSON value's.
    assert_eq!(from_json(&to_json(&item)).unwrap(), item);
    assert_eq!(to_json_string(&item), to_json(&item).to_string());
    assert_eq!(decode(&encode(&item).unwrap()).unwrap(), item);
    for bad in [
        "[]",
        r#"{"tag":"NoSuchTag","value":[]}"#,
        r#"{"tag":"CryptographicLength","type":"Integer","value":"x"}"#,
        r#"{"tag":"CryptographicLength","type":"Integer","value":4294967296}"#,
        r#"{"tag":"ObjectType","type":"Enumeration","value":"NoSuchType"}"#,
        r#"{"tag":"ObjectType","type":"Nope","value":1}"#,
        r#"{"tag":"0x1000000","value":[]}"#,
    ] {
        assert!(from_json_slice(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn names_are_the_specifications() {
    assert_eq!(tag_name(tag::REQUEST_MESSAGE), Some("RequestMessage"));
    assert_eq!(
        tag_value("UniqueBatchItemID"),
        Some(tag::UNIQUE_BATCH_ITEM_ID)
    );
    assert_eq!(
        enum_name(tag::RESULT_REASON, result_reason::ITEM_NOT_FOUND),
        Some("ItemNotFound")
    );
    assert_eq!(enum_name(tag::STATE, state::PRE_ACTIVE), Some("PreActive"));
    assert_eq!(
        enum_value(tag::OPERATION, "DiscoverVersions"),
        Some(operation::DISCOVER_VERSIONS)
    );
    assert_eq!(
        attribute_tag("Cryptographic Usage Mask"),
        Some(tag::CRYPTOGRAPHIC_USAGE_MASK)
    );
    assert_eq!(attribute_tag("x-custom"), None);
}

/// What the `kmip_ttlv` fuzz target checks, run here over its seeds and 200,000 deterministic mutations
/// of them (bit flips, byte overwrites with boundary values, truncations, insertions), so a plain
/// `cargo test` exercises the decoders' never-panic and round-trip properties too.
#[test]
fn seed_mutations_never_panic_and_what_decodes_round_trips() {
    let (mut decoded, mut requests) = (0usize, 0usize);
    mutate_seeds("kmip_ttlv", 9, 200_000, |input| {
        let header: Option<[u8; HEADER_LEN]> = input.get(..8).and_then(|h| h.try_into().ok());
        if let Some(h) = header {
            let _ = message_len(&h);
        }
        for item in [decode(input), from_json_slice(input)]
            .into_iter()
            .flatten()
        {
            decoded += 1;
            assert_eq!(decode(&encode(&item).unwrap()).as_ref(), Ok(&item));
            assert_eq!(from_json(&to_json(&item)).as_ref(), Ok(&item));
            assert_eq!(to_json_string(&item), to_json(&item).to_string());
            if let Ok(request) = RequestMessage::from_ttlv(&item) {
                requests += 1;
                let _ = encode(&request.to_ttlv());
                for batch in &request.batch_items {
                    for child in batch.payload.items() {
                        let _ = read_attributes(child);
                    }
                }
            }
            let _ = ResponseMessage::from_ttlv(&item);
        }
    });
    assert!(
        decoded > 1000 && requests > 100,
        "mutations kept some valid: {decoded} {requests}"
    );
}

/// The `kmip_json` fuzz target's checks over deterministic mutations of its seeds.
#[test]
fn bare_operation_mutations_never_panic_and_what_reads_round_trips() {
    let mut read = 0usize;
    mutate_seeds("kmip_json", 3, 50_000, |input| {
        if let Ok((op, payload)) = operation_from_json(input) {
            read += 1;
            assert_eq!(decode(&encode(&payload).unwrap()).as_ref(), Ok(&payload));
            assert_eq!(from_json(&to_json(&payload)).as_ref(), Ok(&payload));
            let answer = operation_response_json(op, &payload);
            assert!(answer["tag"].as_str().unwrap().ends_with("Response"));
        }
    });
    assert!(read > 1000, "mutations kept some valid: {read}");
}

/// Runs `check` over `rounds` deterministic mutations (bit flips, truncations, insertions, copies) of
/// the seeds of fuzz target `target` (at least `min` of them).
fn mutate_seeds(target: &str, min: usize, rounds: usize, mut check: impl FnMut(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= min,
        "the fuzz seeds are in {}",
        dir.display()
    );
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..rounds {
        let mut input = seeds[round % seeds.len()].clone();
        for _ in 0..=(next() % 4) {
            if input.is_empty() {
                break;
            }
            let at = (next() as usize) % input.len();
            match next() % 5 {
                0 => input[at] ^= 1 << (next() % 8),
                1 => input[at] = [0x00, 0x01, 0x7f, 0x80, 0xff][(next() % 5) as usize],
                2 => input.truncate(at),
                3 => input.insert(at, next() as u8),
                _ => input[at] = input[(next() as usize) % input.len()],
            }
        }
        check(&input);
    }
}

#[test]
fn a_bare_operation_reads_as_cosmian_sends_it_and_answers_in_its_form() {
    // The Create request Cosmian's `ckms --json sym keys create --tag myKey` prints.
    let text = r#"{"tag":"Create","type":"Structure","value":[
        {"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"},
        {"tag":"Attributes","type":"Structure","value":[
            {"tag":"CryptographicAlgorithm","type":"Enumeration","value":"AES"},
            {"tag":"CryptographicLength","type":"Integer","value":256},
            {"tag":"CryptographicUsageMask","type":"Integer","value":2108},
            {"tag":"KeyFormatType","type":"Enumeration","value":"TransparentSymmetricKey"},
            {"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"},
            {"tag":"VendorAttributes","type":"Structure","value":[
                {"tag":"VendorAttributes","type":"Structure","value":[
                    {"tag":"VendorIdentification","type":"TextString","value":"cosmian"},
                    {"tag":"AttributeName","type":"TextString","value":"tag"},
                    {"tag":"AttributeValue","type":"ByteString","value":"5B226D794B6579225D"}]}]}]}]}"#;
    let (op, payload) = operation_from_json(text.as_bytes()).unwrap();
    assert_eq!(op, operation::CREATE);
    assert_eq!(payload.tag, tag::REQUEST_PAYLOAD);
    assert_eq!(
        payload.child(tag::OBJECT_TYPE),
        Some(&Ttlv::enumeration(tag::OBJECT_TYPE, 2))
    );
    let attributes = payload.child(tag::ATTRIBUTES).unwrap();
    assert_eq!(attributes.items().len(), 6);
    assert_eq!(
        attributes.items()[2],
        Ttlv::integer(tag::CRYPTOGRAPHIC_USAGE_MASK, 2108)
    );
    // The answer: `<Operation>Response` holding the payload's items.
    let answer = Ttlv::structure(
        tag::RESPONSE_PAYLOAD,
        vec![
            Ttlv::enumeration(tag::OBJECT_TYPE, 2),
            Ttlv::text(tag::UNIQUE_IDENTIFIER, "925f2175"),
        ],
    );
    assert_eq!(
        operation_response_json(op, &answer),
        serde_json::json!({"tag": "CreateResponse", "type": "Structure", "value": [
            {"tag": "ObjectType", "type": "Enumeration", "value": "SymmetricKey"},
            {"tag": "UniqueIdentifier", "type": "TextString", "value": "925f2175"}]})
    );
    for bad in [
        "",
        "[]",
        r#"{"tag":"Create"}"#,
        r#"{"tag":"NoSuchOperation","value":[]}"#,
        r#"{"tag":"Create","type":"Integer","value":[]}"#,
        r#"{"tag":"Create","value":{}}"#,
        r#"{"tag":"Create","value":[{"tag":"NoSuchTag","value":[]}]}"#,
        r#"{"tag":7,"value":[]}"#,
    ] {
        assert!(operation_from_json(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn usage_masks_read_from_bit_names() {
    use crate::{cryptographic_usage_mask as bit, usage_mask_value};
    assert_eq!(
        usage_mask_value("Encrypt Decrypt"),
        Some(bit::ENCRYPT | bit::DECRYPT)
    );
    assert_eq!(usage_mask_value("Sign|Verify"), Some(3));
    assert_eq!(
        crate::enum_value_loose(tag::HASHING_ALGORITHM, "SHA_256"),
        Some(crate::hashing_algorithm::SHA_256)
    );
    assert_eq!(
        crate::enum_value_loose(tag::KEY_FORMAT_TYPE, "X_509"),
        Some(5)
    );
    assert_eq!(
        crate::enum_value_loose(tag::KEY_FORMAT_TYPE, "X_5_10"),
        None
    );
    assert_eq!(usage_mask_value("CRLSign"), Some(0x2000));
    for bad in ["", " ", "Encrypt Nope", "encrypt"] {
        assert_eq!(usage_mask_value(bad), None, "{bad:?}");
    }
}

/// The JSON text written directly is exactly the text of the JSON value, for every item type, names and
/// hex tags, unnamed enumeration values and text that needs escaping (stored attributes are this text).
#[test]
fn json_text_is_the_json_values_text() {
    let item = Ttlv::structure(
        tag::ATTRIBUTES,
        vec![
            Ttlv::integer(tag::CRYPTOGRAPHIC_LENGTH, -7),
            Ttlv::new(0x54_0002, Value::LongInteger(i64::MIN)),
            Ttlv::new(0x54_0003, Value::BigInteger(vec![0, 0xab, 0xff])),
            Ttlv::enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, cryptographic_algorithm::AES),
            Ttlv::enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, 0xdead),
            Ttlv::new(0x54_0004, Value::Boolean(true)),
            Ttlv::new(0x54_0005, Value::Boolean(false)),
            Ttlv::text(
                tag::NAME_VALUE,
                "quote \" backslash \\ tab \t nul \u{0} é 🔑",
            ),
            Ttlv::bytes(0x54_0006, vec![1, 2, 0xfe]),
            Ttlv::new(tag::ACTIVATION_DATE, Value::DateTime(0x47DA_67F8)),
            Ttlv::new(tag::ACTIVATION_DATE, Value::DateTime(i64::MAX)),
            Ttlv::new(0x54_0007, Value::DateTimeExtended(42)),
            Ttlv::new(0x54_0008, Value::Interval(u32::MAX)),
            Ttlv::structure(tag::TEMPLATE_ATTRIBUTE, vec![]),
        ],
    );
    assert_eq!(to_json_string(&item), to_json(&item).to_string());
    assert_eq!(
        from_json_slice(to_json_string(&item).as_bytes()).unwrap(),
        item
    );
}

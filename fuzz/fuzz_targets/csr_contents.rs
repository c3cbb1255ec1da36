//! What a CSR says once its signature verifies: the subject and the requested extensions (SANs) are read
//! only after the self-signature check, which random bytes never pass. So the target signs what the
//! fuzzer writes: the input is a 2-byte big-endian length, that many bytes of subject (a DER Name), and
//! the rest as the content of the `[0]` attributes; the key is a fixed Ed25519 key, so every input
//! reaches the decoding of the contents.
#![no_main]

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use shedu_pki::der::tlv;

/// RFC 8032 §7.1, test 1.
const SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
/// AlgorithmIdentifier { id-Ed25519 } (RFC 8410).
const ED25519: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (subject, attributes) = rest.split_at(len);
    let key = Ed25519KeyPair::from_seed_unchecked(&SEED).expect("a fixed valid seed");
    let spki = tlv(
        0x30,
        &[
            &ED25519[..],
            &tlv(0x03, &[&[0u8][..], key.public_key().as_ref()].concat()),
        ]
        .concat(),
    );
    // CertificationRequestInfo ::= SEQUENCE { version 0, subject, subjectPKInfo, [0] attributes }
    let info = tlv(
        0x30,
        &[
            &[0x02, 0x01, 0x00][..],
            subject,
            &spki,
            &tlv(0xa0, attributes),
        ]
        .concat(),
    );
    let signature = key.sign(&info);
    let csr = tlv(
        0x30,
        &[
            &info[..],
            &ED25519,
            &tlv(0x03, &[&[0u8][..], signature.as_ref()].concat()),
        ]
        .concat(),
    );
    if let Ok(csr) = shedu_pki::Csr::parse(&csr) {
        assert_eq!(csr.key_type(), shedu_pki::KeyType::Ed25519);
        assert_eq!(csr.sans().len(), csr.sans_display().len());
    }
});

//! `POST /api/v1/cas/import`: the certificate PEM and the private-key PEM come from the API caller. Both
//! decoders must never panic. The input is the certificate text, a NUL, then the key text; the key is
//! read as the certificate's key type, or one picked by the key text's length when the certificate does
//! not parse.
#![no_main]

use shedu_keys::{Signer, SoftwareKey};
use shedu_pki::{CertInfo, KeyType};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (cert, key) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let info = shedu_pki::pem_to_der_certs(cert)
        .ok()
        .and_then(|ders| ders.into_iter().next())
        .and_then(|der| CertInfo::from_der(&der).ok());
    let Ok(key) = std::str::from_utf8(key) else {
        return;
    };
    let key_type = info
        .as_ref()
        .map_or(KeyType::ALL[key.len() % KeyType::ALL.len()], |i| i.key_type);
    if let Ok(key) = SoftwareKey::from_pem(key, key_type) {
        assert_eq!(key.key_type(), key_type);
        if let Some(info) = info {
            let _ = key.public_key() == info.public_key_bits.as_slice();
        }
    }
});

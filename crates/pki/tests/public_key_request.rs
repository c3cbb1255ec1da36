//! `Csr::for_public_key`: a request made from a bare SubjectPublicKeyInfo (KMIP Certify of a stored public
//! key) issues a certificate for exactly that key, with one common name; what is not an SPKI is refused.
// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shedu_pki::rcgen::{self, DistinguishedName, DnType, PublicKeyData};
use shedu_pki::{
    CertInfo, Csr, IssueRequest, KeyType, Profile, RevocationUrls, Serial, Validity, ca_issuer,
    issue_leaf, issue_root_ca,
};

const NOW: i64 = 1_700_000_000;

#[test]
fn a_bare_public_key_is_issued_with_one_common_name() {
    let key = rcgen::KeyPair::generate().unwrap();
    let spki = key.subject_public_key_info();
    let csr = Csr::for_public_key(&spki, "plc-7").unwrap();
    assert_eq!(csr.key_type(), KeyType::EcP256);
    assert!(csr.sans().is_empty());

    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Root");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_validity = Validity::root(NOW, 3650).unwrap();
    let ca_der = issue_root_ca(dn, ca_validity, &Serial::random(), None, &ca_key).unwrap();
    let issuer = ca_issuer(&ca_der, ca_key).unwrap();
    let der = issue_leaf(
        &IssueRequest {
            csr: &csr,
            sans: None,
            validity: Validity::within_issuer(NOW, None, 365, ca_validity.not_after).unwrap(),
            serial: &Serial::random(),
            profile: &Profile::default(),
            revocation_urls: &RevocationUrls::default(),
        },
        &issuer,
    )
    .unwrap();
    let info = CertInfo::from_der(&der).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("plc-7"));
    // The certificate's key is the given one (the SPKI's BIT STRING contents).
    assert_eq!(info.public_key_bits, key.der_bytes());
}

#[test]
fn what_is_not_a_public_key_is_refused() {
    assert!(Csr::for_public_key(b"not a key", "plc-7").is_err());
    // A PKCS#8 private key is not a SubjectPublicKeyInfo either.
    let key = rcgen::KeyPair::generate().unwrap();
    assert!(Csr::for_public_key(&key.serialize_der(), "plc-7").is_err());
}

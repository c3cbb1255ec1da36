//! `issue_leaf` refuses the names issue 12 found issued as given, through the crate's public API only (so
//! the same test runs against the code before and after the fix). See: issue 12.
// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shedu_pki::rcgen::{self, DistinguishedName, DnType};
use shedu_pki::{
    CertInfo, Csr, Error, IssueRequest, Profile, RevocationUrls, Serial, Validity, ca_issuer,
    issue_leaf, issue_root_ca,
};

const NOW: i64 = 1_700_000_000;

/// A verified CSR for `attrs` and DNS `sans`, made with rcgen (openssl refuses to build some of these).
fn csr(attrs: &[(DnType, &str)], sans: &[&str]) -> Csr {
    let mut params =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = DistinguishedName::new();
    for (ty, value) in attrs {
        params.distinguished_name.push(ty.clone(), *value);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let der = params.serialize_request(&key).unwrap();
    Csr::from_der(der.der()).unwrap()
}

/// Issues `csr` (with `sans` from the request when given) under the default profile.
fn issue(csr: &Csr, sans: Option<&[String]>) -> Result<CertInfo, Error> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Names Root");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_validity = Validity::root(NOW, 3650).unwrap();
    let ca_der = issue_root_ca(dn, ca_validity, &Serial::random(), None, &ca_key).unwrap();
    let issuer = ca_issuer(&ca_der, ca_key).unwrap();
    let der = issue_leaf(
        &IssueRequest {
            csr,
            sans,
            validity: Validity::within_issuer(NOW, None, 365, ca_validity.not_after).unwrap(),
            serial: &Serial::random(),
            profile: &Profile::default(),
            revocation_urls: &RevocationUrls::default(),
        },
        &issuer,
    )?;
    Ok(CertInfo::from_der(&der).unwrap())
}

fn refused(result: Result<CertInfo, Error>) -> Error {
    match result {
        Ok(cert) => panic!(
            "issued as given: subject {:?}, SANs {:?}",
            cert.subject, cert.sans
        ),
        Err(e @ Error::Signing { .. }) => panic!("refused for the wrong reason: {e}"),
        Err(e) => e,
    }
}

#[test]
fn bad_sans_from_the_request_are_refused() {
    let plain = csr(&[(DnType::CommonName, "plc-7")], &[]);
    let many: Vec<String> = (0..10_000).map(|i| format!("dns:d{i}.example")).collect();
    for sans in [
        vec!["dns:a b".to_string()],
        vec!["dns:x\0y".into()],
        vec!["dns:*".into()],
        vec!["dns:".into()],
        vec!["dns:f*o.example.com".into()],
        vec!["dns:xn--a.example".into()],
        vec!["email:not an email".into()],
        vec!["uri:javascript:alert(1)".into()],
        many,
    ] {
        let e = refused(issue(&plain, Some(&sans)));
        assert!(
            !e.to_string().chars().any(char::is_control),
            "the message escapes control characters: {e:?}"
        );
    }
}

#[test]
fn bad_names_in_the_csr_are_refused() {
    let long = "c".repeat(10 * 1024);
    for bad in [
        csr(&[(DnType::CommonName, "plc-7")], &["a b"]),
        csr(&[(DnType::CommonName, "plc-7")], &["*"]),
        csr(&[(DnType::CommonName, long.as_str())], &[]),
        csr(&[(DnType::CommonName, "plc\u{0}7")], &[]),
        csr(&[(DnType::CommonName, "plc\n7")], &[]),
        csr(&[], &[]),
    ] {
        refused(issue(&bad, None));
    }
}

#[test]
fn good_names_are_issued_and_the_default_policy_keeps_only_the_cn() {
    let cert = issue(
        &csr(
            &[
                (DnType::CommonName, "plc-7"),
                (DnType::OrganizationName, "Evil Corp"),
            ],
            &["plc-7", "*.plant.example", "xn--bcher-kva.example"],
        ),
        None,
    )
    .unwrap();
    assert_eq!(cert.subject, "CN=plc-7");
    assert_eq!(
        cert.sans,
        [
            "DNS:plc-7",
            "DNS:*.plant.example",
            "DNS:xn--bcher-kva.example"
        ]
    );
    let cert = issue(&csr(&[], &["plc-8.plant.example"]), None).unwrap();
    assert_eq!(cert.subject, "");
}

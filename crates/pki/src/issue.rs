//! Building certificates: end-entity certificates from verified CSRs under a profile, and CA certificates.

use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, PublicKeyData, SanType,
    SerialNumber, SigningKey,
};
use time::OffsetDateTime;
use yasna::Tag;
use yasna::models::ObjectIdentifier;

use crate::{Csr, Error, Profile, Serial, Signs, csr::parse_san};

/// How far notBefore is set into the past, so that devices with a slightly slow clock accept a new
/// certificate at once (step-ca does the same).
const BACKDATE_SECS: i64 = 60;

const DAY: i64 = 86_400;

/// A certificate's validity period in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// notBefore
    pub not_before: i64,
    /// notAfter
    pub not_after: i64,
}

impl Validity {
    /// The validity for a certificate issued at `now` by an issuer whose own certificate ends at
    /// `issuer_not_after`.
    ///
    /// An explicitly requested `days` that would outlive the issuer is an error (as Vault's `leaf_not_after_behavior
    /// = err`); the profile default is cut to the issuer's end instead, so a CA near its end keeps issuing.
    pub fn within_issuer(
        now: i64,
        requested_days: Option<u32>,
        default_days: u32,
        issuer_not_after: i64,
    ) -> Result<Validity, Error> {
        let not_before = now - BACKDATE_SECS;
        if issuer_not_after <= now {
            return Err(Error::InvalidValidity(
                "the issuing CA's certificate has expired".into(),
            ));
        }
        let not_after = match requested_days {
            Some(0) => {
                return Err(Error::InvalidValidity(
                    "validity_days must be at least 1".into(),
                ));
            }
            Some(days) => {
                let end = now + i64::from(days) * DAY;
                if end > issuer_not_after {
                    return Err(Error::InvalidValidity(format!(
                        "{days} days would outlive the issuing CA, which expires in {} days",
                        (issuer_not_after - now) / DAY
                    )));
                }
                end
            }
            None => (now + i64::from(default_days.max(1)) * DAY).min(issuer_not_after),
        };
        Ok(Validity {
            not_before,
            not_after,
        })
    }

    /// A validity for a self-signed root: `days` from `now`.
    pub fn root(now: i64, days: u32) -> Result<Validity, Error> {
        if days == 0 {
            return Err(Error::InvalidValidity(
                "validity_days must be at least 1".into(),
            ));
        }
        Ok(Validity {
            not_before: now - BACKDATE_SECS,
            not_after: now + i64::from(days) * DAY,
        })
    }

    fn apply(self, params: &mut CertificateParams) -> Result<(), Error> {
        params.not_before = timestamp(self.not_before)?;
        params.not_after = timestamp(self.not_after)?;
        Ok(())
    }
}

fn timestamp(secs: i64) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| Error::InvalidValidity(e.to_string()))
}

/// Everything needed to sign one end-entity certificate.
pub struct IssueRequest<'a> {
    /// The verified CSR; its subject and key are used.
    pub csr: &'a Csr,
    /// SANs from the API request; when `None` the CSR's requested SANs are used.
    pub sans: Option<&'a [String]>,
    /// The validity period, already checked against the issuer.
    pub validity: Validity,
    /// A fresh serial.
    pub serial: &'a Serial,
    /// The issuing CA's profile.
    pub profile: &'a Profile,
    /// Where relying parties check status: AIA and CRL distribution point URLs.
    pub revocation_urls: &'a RevocationUrls,
}

/// The URLs written into a certificate so relying parties find its status (RFC 5280 §4.2.1.13, §4.2.2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationUrls {
    /// AIA id-ad-ocsp.
    pub ocsp: Option<String>,
    /// AIA id-ad-caIssuers: where the issuer's certificate can be fetched.
    pub ca_issuers: Option<String>,
    /// cRLDistributionPoints.
    pub crl: Option<String>,
}

impl RevocationUrls {
    fn apply(&self, params: &mut CertificateParams) {
        if let Some(crl) = &self.crl {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![crl.clone()],
            }];
        }
        let access: Vec<(u64, &String)> =
            [(1u64, self.ocsp.as_ref()), (2, self.ca_issuers.as_ref())]
                .into_iter()
                .filter_map(|(m, u)| u.map(|u| (m, u)))
                .collect();
        if !access.is_empty() {
            // AuthorityInfoAccessSyntax ::= SEQUENCE OF AccessDescription { accessMethod OID, accessLocation [6] URI }
            let der = yasna::construct_der(|w| {
                w.write_sequence(|w| {
                    for (method, uri) in &access {
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&ObjectIdentifier::from_slice(&[
                                1, 3, 6, 1, 5, 5, 7, 48, *method,
                            ]));
                            w.next().write_tagged_implicit(Tag::context(6), |w| {
                                w.write_ia5_string(uri)
                            });
                        })
                    }
                })
            });
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                    der,
                ));
        }
    }
}

/// Signs an end-entity certificate and returns its DER.
///
/// The profile's [`crate::NamePolicy`] decides the names: the subject from the CSR's attributes (allowed,
/// fixed or dropped), the SANs from the request (or the CSR), each validated, at most `max_sans`, and not
/// both empty (RFC 5280 §4.1.2.6; rcgen marks the SAN extension critical when the subject is empty).
///
/// The profile decides the extensions (RFC 5280 §4.2): basicConstraints cA=FALSE (critical), keyUsage
/// (critical), extKeyUsage, SKI from the subject key and AKI from the issuer's key, and the SANs.
pub fn issue_leaf(
    req: &IssueRequest<'_>,
    issuer: &Issuer<'_, impl Signs>,
) -> Result<Vec<u8>, Error> {
    req.profile.check_key_type(req.csr.key_type())?;
    let names = &req.profile.names;
    let subject = names.subject_for(req.csr.subject())?;
    let sans = match req.sans {
        Some(sans) if sans.len() > names.max_sans as usize => {
            return Err(Error::TooManySans {
                count: sans.len(),
                max: names.max_sans,
            });
        }
        Some(sans) => sans
            .iter()
            .map(|s| parse_san(s))
            .collect::<Result<_, _>>()?,
        None => req.csr.sans().to_vec(),
    };
    names.check_sans(&subject, &sans)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.to_dn()?;
    params.subject_alt_names = sans;
    params.serial_number = Some(SerialNumber::from_slice(req.serial.as_bytes()));
    req.validity.apply(&mut params)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = req
        .profile
        .leaf_key_usages(req.csr.key_type())?
        .into_iter()
        .map(|k| k.to_rcgen())
        .collect();
    params.extended_key_usages = req
        .profile
        .ext_key_usages
        .iter()
        .map(|k| k.to_rcgen())
        .collect();
    params.use_authority_key_identifier_extension = true;
    req.revocation_urls.apply(&mut params);
    let cert = params
        .signed_by(req.csr.public_key(), issuer)
        .map_err(|e| Error::signing(issuer.key(), e))?;
    Ok(cert.der().to_vec())
}

/// Signs a delegated OCSP responder certificate (RFC 6960 §4.2.2.2): EKU id-kp-OCSPSigning, and
/// id-pkix-ocsp-nocheck so clients do not ask for the responder's own status.
pub fn issue_ocsp_responder(
    subject: DistinguishedName,
    public_key: &impl PublicKeyData,
    validity: Validity,
    serial: &Serial,
    issuer: &Issuer<'_, impl Signs>,
) -> Result<Vec<u8>, Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    validity.apply(&mut params)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    params.use_authority_key_identifier_extension = true;
    // id-pkix-ocsp-nocheck 1.3.6.1.5.5.7.48.1.5, value NULL.
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5],
            vec![0x05, 0x00],
        ));
    let cert = params
        .signed_by(public_key, issuer)
        .map_err(|e| Error::signing(issuer.key(), e))?;
    Ok(cert.der().to_vec())
}

/// Signs a TLS server certificate for `names` (DNS names or IP addresses), as the HTTPS listener's
/// internal TLS CA issues it: subject CN the first name (`localhost` when there is none), one SAN per
/// name (an IP address SAN when the name parses as one, a DNS name otherwise), keyUsage digitalSignature,
/// extKeyUsage serverAuth, basicConstraints cA=FALSE, SKI from the subject key and AKI from the issuer's.
pub fn issue_tls_server(
    names: &[String],
    public_key: &impl PublicKeyData,
    validity: Validity,
    serial: &Serial,
    issuer: &Issuer<'_, impl Signs>,
) -> Result<Vec<u8>, Error> {
    let params = tls_server_params(names, validity, serial)?;
    let cert = params
        .signed_by(public_key, issuer)
        .map_err(|e| Error::signing(issuer.key(), e))?;
    Ok(cert.der().to_vec())
}

fn tls_server_params(
    names: &[String],
    validity: Validity,
    serial: &Serial,
) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().map(String::as_str).unwrap_or("localhost"),
    );
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    validity.apply(&mut params)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => {
                crate::check_dns_name(n)?;
                n.as_str()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|_| Error::InvalidName(format!("{n:?} is not a valid DNS name")))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(params)
}

/// Signs a self-signed root CA certificate with `key`: [`build_ca_params`] for a root, self-signed.
pub fn issue_root_ca(
    subject: DistinguishedName,
    validity: Validity,
    serial: &Serial,
    path_len: Option<u8>,
    key: &impl Signs,
) -> Result<Vec<u8>, Error> {
    let cert = build_ca_params(subject, validity, serial, path_len, true)?
        .self_signed(key)
        .map_err(|e| Error::signing(key, e))?;
    Ok(cert.der().to_vec())
}

/// The issuer that signs with `key` under the CA certificate `ca_der` (its subject, key identifier and
/// key usages are taken from the certificate).
pub fn ca_issuer<S: SigningKey>(ca_der: &[u8], key: S) -> Result<Issuer<'static, S>, Error> {
    Issuer::from_ca_cert_der(&ca_der.into(), key).map_err(|e| Error::malformed("CA certificate", e))
}

/// Parameters of a CA certificate: keyCertSign, cRLSign and digitalSignature (for OCSP responses it signs
/// itself), basicConstraints cA=TRUE with the given path length, SKI, and AKI unless it is a root.
pub fn build_ca_params(
    subject: DistinguishedName,
    validity: Validity,
    serial: &Serial,
    path_len: Option<u8>,
    is_root: bool,
) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    validity.apply(&mut params)?;
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = !is_root;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_validity_beyond_issuer_is_refused_default_is_cut() {
        let now = 1_000_000;
        let issuer_end = now + 10 * DAY;
        assert!(matches!(
            Validity::within_issuer(now, Some(11), 365, issuer_end),
            Err(Error::InvalidValidity(_))
        ));
        let v = Validity::within_issuer(now, None, 365, issuer_end).unwrap();
        assert_eq!(v.not_after, issuer_end);
        let v = Validity::within_issuer(now, Some(5), 365, issuer_end).unwrap();
        assert_eq!(v.not_after, now + 5 * DAY);
        assert!(Validity::within_issuer(now, Some(0), 365, issuer_end).is_err());
    }

    #[test]
    fn tls_server_certificate_names_every_name_for_server_auth() {
        use x509_parser::prelude::{FromDer, X509Certificate};

        let now = 1_700_000_000;
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "test TLS CA");
        let ca_validity = Validity::root(now, 3650).unwrap();
        let ca_der = issue_root_ca(dn, ca_validity, &Serial::random(), Some(0), &ca_key).unwrap();
        let ca = crate::CertInfo::from_der(&ca_der).unwrap();
        assert!(ca.is_ca && ca.self_issued);

        let issuer = ca_issuer(&ca_der, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let names = ["shedu.example".to_string(), "127.0.0.1".to_string()];
        let validity = Validity::within_issuer(now, None, 365, ca.not_after).unwrap();
        let der = issue_tls_server(&names, &key, validity, &Serial::random(), &issuer).unwrap();

        let info = crate::CertInfo::from_der(&der).unwrap();
        assert!(!info.is_ca);
        assert_eq!(info.subject, "CN=shedu.example");
        assert_eq!(info.sans, ["DNS:shedu.example", "IP:127.0.0.1"]);
        assert_eq!(
            (info.not_before, info.not_after),
            (validity.not_before, validity.not_after)
        );
        assert!(crate::is_signed_by(&der, &ca_der));
        let (_, x509) = X509Certificate::from_der(&der).unwrap();
        let ku = x509.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_cert_sign());
        let eku = x509.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        assert!(x509.basic_constraints().unwrap().unwrap().critical);
    }

    #[test]
    fn tls_server_certificate_refuses_a_name_that_is_not_a_dns_name() {
        let now = 1_700_000_000;
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_der = issue_root_ca(
            DistinguishedName::new(),
            Validity::root(now, 10).unwrap(),
            &Serial::random(),
            None,
            &ca_key,
        )
        .unwrap();
        let issuer = ca_issuer(&ca_der, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let validity = Validity::root(now, 1).unwrap();
        let err = issue_tls_server(
            &["bad\u{e9}name".into()],
            &key,
            validity,
            &Serial::random(),
            &issuer,
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidName(_)), "{err}");
        assert!(matches!(
            ca_issuer(b"not a certificate", rcgen::KeyPair::generate().unwrap()),
            Err(Error::Malformed { .. })
        ));
    }
}

//! Reading certificates back: the facts shedu stores and indexes.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{Error, KeyType, Serial, name};

/// The facts of a parsed certificate that shedu keeps as columns.
#[derive(Clone, Debug)]
pub struct CertInfo {
    /// The serial number.
    pub serial: Serial,
    /// One-line subject.
    pub subject: String,
    /// The subject's first common name, if any (what binds a bootstrap certificate to its device).
    pub common_name: Option<String>,
    /// One-line issuer.
    pub issuer: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// The subject key's type.
    pub key_type: KeyType,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// Subject alternative names, rendered as openssl does ("DNS:a.example", "IP:10.0.0.1").
    pub sans: Vec<String>,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint: String,
    /// The subject public key bits (SPKI BIT STRING content), to match a private key against.
    pub public_key_bits: Vec<u8>,
    /// Whether subject and issuer names are equal (a self-issued certificate).
    pub self_issued: bool,
    /// The subject DN as DER, for CRL issuer names and OCSP name hashes.
    pub subject_der: Vec<u8>,
    /// The subjectKeyIdentifier, if present.
    pub subject_key_id: Option<Vec<u8>>,
    /// Whether an extendedKeyUsage extension is present and lists clientAuth (or anyExtendedKeyUsage).
    pub client_auth: bool,
    /// The ACME tls-alpn-01 `acmeIdentifier` extension (RFC 8737 §3), if present.
    pub acme_identifier: Option<AcmeIdentifier>,
    /// The SubjectPublicKeyInfo, DER (what checks a TLS handshake signature by the raw key).
    pub spki_der: Vec<u8>,
}

/// The `id-pe-acmeIdentifier` extension of a tls-alpn-01 validation certificate (RFC 8737 §3):
///
/// ```text
/// id-pe-acmeIdentifier OBJECT IDENTIFIER ::= { id-pe 31 }
/// Authorization ::= OCTET STRING (SIZE (32))
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeIdentifier {
    /// Whether the extension is marked critical (RFC 8737 says it MUST be).
    pub critical: bool,
    /// The `Authorization` octets: the SHA-256 digest of the key authorization.
    pub authorization: Vec<u8>,
}

/// RFC 8737 §6.1: id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31.
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

/// Reads the acmeIdentifier extension: its value is the DER of one OCTET STRING of 32 octets.
fn acme_identifier(cert: &X509Certificate<'_>) -> Result<Option<AcmeIdentifier>, Error> {
    let Some(ext) = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == ACME_IDENTIFIER_OID)
    else {
        return Ok(None);
    };
    match ext.value {
        [0x04, 32, digest @ ..] if digest.len() == 32 => Ok(Some(AcmeIdentifier {
            critical: ext.critical,
            authorization: digest.to_vec(),
        })),
        _ => Err(Error::malformed(
            "certificate",
            "the acmeIdentifier extension is not an OCTET STRING of 32 octets",
        )),
    }
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, Error> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| Error::malformed("certificate", e))?;
        if !rest.is_empty() {
            return Err(Error::malformed("certificate", "trailing bytes"));
        }
        let tbs = &cert.tbs_certificate;
        let is_ca = cert
            .basic_constraints()
            .map_err(|e| Error::malformed("certificate", e))?
            .is_some_and(|bc| bc.value.ca);
        let sans = cert
            .subject_alternative_name()
            .map_err(|e| Error::malformed("certificate", e))?
            .map(|ext| ext.value.general_names.iter().map(render_san).collect())
            .unwrap_or_default();
        let client_auth = cert
            .extended_key_usage()
            .map_err(|e| Error::malformed("certificate", e))?
            .is_some_and(|eku| eku.value.client_auth || eku.value.any);
        Ok(CertInfo {
            acme_identifier: acme_identifier(&cert)?,
            spki_der: tbs.subject_pki.raw.to_vec(),
            client_auth,
            serial: Serial::from_bytes(tbs.raw_serial()),
            subject: name::display_name(&tbs.subject),
            common_name: name::first_common_name(&tbs.subject),
            issuer: name::display_name(&tbs.issuer),
            not_before: tbs.validity.not_before.timestamp(),
            not_after: tbs.validity.not_after.timestamp(),
            key_type: KeyType::from_spki_der(tbs.subject_pki.raw)?,
            is_ca,
            sans,
            fingerprint: fingerprint_sha256(der),
            public_key_bits: tbs.subject_pki.subject_public_key.data.to_vec(),
            self_issued: tbs.subject.as_raw() == tbs.issuer.as_raw(),
            subject_der: tbs.subject.as_raw().to_vec(),
            subject_key_id: cert
                .extensions()
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                        Some(k.0.to_vec())
                    }
                    _ => None,
                }),
        })
    }
}

/// SHA-256 over DER, lowercase hex: the fingerprint shedu indexes certificates by.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// PEM-encodes one DER certificate.
pub fn pem_encode_cert(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Decodes every `CERTIFICATE` block of a PEM text (or one DER certificate) into DER.
pub fn pem_to_der_certs(input: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    if !input.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(vec![input.to_vec()]);
    }
    let blocks = pem::parse_many(input).map_err(|e| Error::malformed("certificate", e))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect();
    if certs.is_empty() {
        return Err(Error::malformed(
            "certificate",
            "no CERTIFICATE block in the PEM",
        ));
    }
    Ok(certs)
}

/// Decodes a client chain a TLS-terminating proxy forwarded in a header, leaf first, in either form proxies
/// write: the PEM percent-encoded (nginx `$ssl_client_escaped_cert`), or base64 DER, a chain's certificates
/// separated by commas (HAProxy `%[ssl_c_der,base64]`, Traefik's `X-Forwarded-Tls-Client-Cert`), itself
/// possibly percent-encoded. A malformed `%XX` escape or base64, PEM without a certificate or an empty value
/// is an error; the DER of each certificate is judged by whoever verifies the chain.
pub fn escaped_pem_to_der_certs(value: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    use base64::Engine;
    let text = percent_decode(value)
        .ok_or_else(|| Error::malformed("certificate", "bad percent-encoding"))?;
    let certs = if text.trim_ascii_start().starts_with(b"-----BEGIN") {
        pem_to_der_certs(&text)?
    } else {
        text.split(|&b| b == b',')
            .map(|part| {
                base64::engine::general_purpose::STANDARD
                    .decode(part.trim_ascii())
                    .map_err(|_| {
                        Error::malformed("certificate", "neither PEM nor base64-encoded DER")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if certs.iter().all(Vec::is_empty) {
        return Err(Error::malformed("certificate", "no certificate"));
    }
    Ok(certs)
}

/// `%XX` decoding (RFC 3986 §2.1); `None` on a malformed escape.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let hex = [*bytes.next()?, *bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// Whether `child_der` is signed by the key of `parent_der` and names it as issuer. Used to place an
/// imported CA under a managed parent.
pub fn is_signed_by(child_der: &[u8], parent_der: &[u8]) -> bool {
    let (Ok((_, child)), Ok((_, parent))) = (
        X509Certificate::from_der(child_der),
        X509Certificate::from_der(parent_der),
    ) else {
        return false;
    };
    child.tbs_certificate.issuer.as_raw() == parent.tbs_certificate.subject.as_raw()
        && child.verify_signature(Some(parent.public_key())).is_ok()
}

/// Renders a SAN the way `openssl x509 -text` does.
pub(crate) fn render_san(gn: &x509_parser::extensions::GeneralName<'_>) -> String {
    use x509_parser::extensions::GeneralName as G;
    match gn {
        G::DNSName(s) => format!("DNS:{s}"),
        G::RFC822Name(s) => format!("email:{s}"),
        G::URI(s) => format!("URI:{s}"),
        G::IPAddress(b) => match b.len() {
            4 => <[u8; 4]>::try_from(*b)
                .map(|a| format!("IP:{}", std::net::Ipv4Addr::from(a)))
                .unwrap_or_default(),
            16 => <[u8; 16]>::try_from(*b)
                .map(|a| format!("IP:{}", std::net::Ipv6Addr::from(a)))
                .unwrap_or_default(),
            _ => format!("IP:{}", hex::encode(b)),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(
            percent_decode(b"-----BEGIN%20CERT%0A").unwrap(),
            b"-----BEGIN CERT\n"
        );
        assert!(percent_decode(b"%2").is_none());
        assert!(percent_decode(b"%zz").is_none());
        // "+" is not a space here: nginx escapes a space as %20.
        assert_eq!(percent_decode(b"a+b").unwrap(), b"a+b");
    }

    #[test]
    fn an_escaped_chain_decodes_to_its_certificates() {
        let pem = "-----BEGIN CERTIFICATE-----\nMAMCAQc=\n-----END CERTIFICATE-----\n\
                   -----BEGIN CERTIFICATE-----\nMAMCAQg=\n-----END CERTIFICATE-----\n";
        let escaped = pem
            .replace(' ', "%20")
            .replace('\n', "%0A")
            .replace('=', "%3D");
        let certs = escaped_pem_to_der_certs(escaped.as_bytes()).unwrap();
        assert_eq!(
            certs,
            [
                vec![0x30, 0x03, 0x02, 0x01, 0x07],
                vec![0x30, 0x03, 0x02, 0x01, 0x08]
            ]
        );
        assert!(escaped_pem_to_der_certs(b"").is_err());
        assert!(escaped_pem_to_der_certs(b"%ZZ").is_err());
        let key = "-----BEGIN%20PRIVATE%20KEY-----%0AMAMCAQc%3D%0A-----END%20PRIVATE%20KEY-----%0A";
        assert!(escaped_pem_to_der_certs(key.as_bytes()).is_err());
    }

    #[test]
    fn base64_der_as_haproxy_and_traefik_forward_it_decodes_too() {
        let chain = [
            vec![0x30, 0x03, 0x02, 0x01, 0x07],
            vec![0x30, 0x03, 0x02, 0x01, 0x08],
        ];
        // HAProxy `%[ssl_c_der,base64]`: the leaf alone.
        assert_eq!(
            escaped_pem_to_der_certs(b"MAMCAQc=").unwrap(),
            [chain[0].clone()]
        );
        // Traefik: the chain comma-separated, percent-encoded.
        assert_eq!(
            escaped_pem_to_der_certs(b"MAMCAQc%3D%2CMAMCAQg%3D").unwrap(),
            chain
        );
        assert!(escaped_pem_to_der_certs(b"MAMC*Qc=").is_err());
        assert!(escaped_pem_to_der_certs(b" , ").is_err());
    }
}

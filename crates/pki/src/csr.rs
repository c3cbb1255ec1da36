//! PKCS#10 certificate signing requests: decoded once, signature verified, then trusted.

use rcgen::SanType;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::names::RequestedAttr;
use crate::{Error, KeyType, name};

/// Largest CSR accepted. A 4096-bit RSA CSR with many SANs stays far below this.
const MAX_CSR_BYTES: usize = 64 * 1024;

/// A CSR whose self-signature has been verified. Only its subject, key and requested SANs are used:
/// a CA does not copy other requested extensions, its profile decides them.
#[derive(Clone, Debug)]
pub struct Csr {
    key_type: KeyType,
    public_key: rcgen::SubjectPublicKeyInfo,
    subject: Vec<RequestedAttr>,
    subject_display: String,
    common_name: Option<String>,
    sans: Vec<SanType>,
    sans_display: Vec<String>,
}

impl Csr {
    /// Decodes a CSR from PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or DER, and verifies it.
    pub fn parse(input: &[u8]) -> Result<Csr, Error> {
        if input.len() > MAX_CSR_BYTES {
            return Err(Error::malformed("CSR", "larger than 64 KiB"));
        }
        let trimmed = input.trim_ascii_start();
        if trimmed.starts_with(b"-----BEGIN") {
            // One request per call: a second PEM block would otherwise be ignored silently.
            let blocks = pem::parse_many(trimmed).map_err(|e| Error::malformed("CSR", e))?;
            let [pem] = blocks.as_slice() else {
                return Err(Error::malformed(
                    "CSR",
                    format!("{} PEM blocks; send exactly one request", blocks.len()),
                ));
            };
            if !matches!(pem.tag(), "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST") {
                return Err(Error::malformed(
                    "CSR",
                    format!("PEM label is {:?}", pem.tag()),
                ));
            }
            Csr::from_der(pem.contents())
        } else {
            Csr::from_der(input)
        }
    }

    /// A request for a key the caller holds no CSR for (KMIP Certify of a stored public key, whose
    /// private key the server itself keeps): the DER SubjectPublicKeyInfo `spki_der` and a subject of one
    /// common name, no requested SANs. There is no self-signature to check: whoever calls this vouches
    /// for the key.
    pub fn for_public_key(spki_der: &[u8], common_name: &str) -> Result<Csr, Error> {
        let key_type = KeyType::from_spki_der(spki_der)?;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| Error::UnsupportedKey(e.to_string()))?;
        Ok(Csr {
            key_type,
            public_key,
            // id-at-commonName (2.5.4.3).
            subject: vec![RequestedAttr {
                oid: vec![2, 5, 4, 3],
                value: Some(common_name.to_string()),
            }],
            subject_display: format!("CN={common_name}"),
            common_name: Some(common_name.to_string()),
            sans: Vec::new(),
            sans_display: Vec::new(),
        })
    }

    /// Decodes a DER CSR and verifies its self-signature.
    pub fn from_der(der: &[u8]) -> Result<Csr, Error> {
        let (rest, csr) =
            X509CertificationRequest::from_der(der).map_err(|e| Error::malformed("CSR", e))?;
        if !rest.is_empty() {
            return Err(Error::malformed("CSR", "trailing bytes after the request"));
        }
        let info = &csr.certification_request_info;
        let spki_der = info.subject_pki.raw;
        // The key type first: a key shedu does not support (RSA-1024, secp256k1) is `UnsupportedKey`,
        // which the signature check would otherwise report as a bad signature, since it cannot verify one.
        let key_type = KeyType::from_spki_der(spki_der)?;
        csr.verify_signature().map_err(|_| Error::BadCsrSignature)?;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| Error::UnsupportedKey(e.to_string()))?;
        let subject = name::requested_attrs(&info.subject)?;
        let subject_display = name::display_name(&info.subject);
        let common_name = name::first_common_name(&info.subject);
        let (sans, sans_display) = match csr.requested_extensions() {
            Some(exts) => requested_sans(exts)?,
            None => (Vec::new(), Vec::new()),
        };
        Ok(Csr {
            key_type,
            public_key,
            subject,
            subject_display,
            common_name,
            sans,
            sans_display,
        })
    }

    /// The requester's key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The requester's public key.
    pub fn public_key(&self) -> &rcgen::SubjectPublicKeyInfo {
        &self.public_key
    }

    /// The requested subject's attributes, in order; the profile's [`crate::NamePolicy`] decides which
    /// reach the certificate.
    pub fn subject(&self) -> &[RequestedAttr] {
        &self.subject
    }

    /// The requested subject as one line ("CN=device-1, O=Acme").
    pub fn subject_display(&self) -> &str {
        &self.subject_display
    }

    /// The subject alternative names requested in the CSR's extensionRequest.
    pub fn sans(&self) -> &[SanType] {
        &self.sans
    }

    /// The requested SANs rendered as [`crate::CertInfo::sans`] renders a certificate's ("DNS:x", "IP:y"),
    /// so a request can be compared with an issued certificate.
    pub fn sans_display(&self) -> &[String] {
        &self.sans_display
    }

    /// The subject's first common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The same request for another key: server-side key generation (EST `serverkeygen`) keeps the
    /// requested subject and SANs and certifies the key the server generated.
    pub fn with_public_key(mut self, spki_der: &[u8]) -> Result<Csr, Error> {
        self.key_type = KeyType::from_spki_der(spki_der)?;
        self.public_key = rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| Error::UnsupportedKey(e.to_string()))?;
        Ok(self)
    }
}

fn requested_sans<'a>(
    exts: impl Iterator<Item = &'a ParsedExtension<'a>>,
) -> Result<(Vec<SanType>, Vec<String>), Error> {
    let (mut sans, mut display) = (Vec::new(), Vec::new());
    for ext in exts {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for gn in &san.general_names {
                sans.push(san_from_general_name(gn)?);
                display.push(crate::cert::render_san(gn));
            }
        }
    }
    Ok((sans, display))
}

fn san_from_general_name(gn: &GeneralName<'_>) -> Result<SanType, Error> {
    let ia5 = |s: &str| {
        s.try_into()
            .map_err(|_| Error::InvalidName(format!("{s:?} is not IA5")))
    };
    Ok(match gn {
        GeneralName::DNSName(s) => SanType::DnsName(ia5(s)?),
        GeneralName::RFC822Name(s) => SanType::Rfc822Name(ia5(s)?),
        GeneralName::URI(s) => SanType::URI(ia5(s)?),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => SanType::IpAddress(<[u8; 4]>::try_from(*bytes).map_err(|_| bad_ip())?.into()),
            16 => SanType::IpAddress(<[u8; 16]>::try_from(*bytes).map_err(|_| bad_ip())?.into()),
            _ => return Err(bad_ip()),
        },
        other => {
            return Err(Error::InvalidName(format!(
                "unsupported SAN type {other:?}"
            )));
        }
    })
}

fn bad_ip() -> Error {
    Error::InvalidName("IP address SAN must be 4 or 16 octets".into())
}

/// Parses a SAN given on the API: `dns:`, `ip:`, `email:` or `uri:` prefixed, or bare (an IP if it parses
/// as one, else a DNS name).
pub(crate) fn parse_san(s: &str) -> Result<SanType, Error> {
    let ia5 = |v: &str| {
        v.try_into()
            .map_err(|_| Error::InvalidName(format!("{v:?} is not IA5")))
    };
    let ip = |v: &str| {
        v.parse::<std::net::IpAddr>()
            .map_err(|_| Error::InvalidName(format!("{v:?} is not an IP address")))
    };
    if let Some((kind, value)) = s.split_once(':') {
        match kind.to_ascii_lowercase().as_str() {
            "dns" => return Ok(SanType::DnsName(ia5(value)?)),
            "ip" => return Ok(SanType::IpAddress(ip(value)?)),
            "email" => return Ok(SanType::Rfc822Name(ia5(value)?)),
            "uri" => return Ok(SanType::URI(ia5(value)?)),
            _ => {}
        }
    }
    if let Ok(addr) = s.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(addr));
    }
    if s.is_empty() || s.contains(char::is_whitespace) {
        return Err(Error::InvalidName(format!("{s:?} is not a valid SAN")));
    }
    Ok(SanType::DnsName(ia5(s)?))
}

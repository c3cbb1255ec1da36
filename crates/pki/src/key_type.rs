//! The key types shedu issues for and signs with.

use std::fmt;
use std::str::FromStr;

use rcgen::SignatureAlgorithm;

/// A key algorithm and size. The string form (`ec-p256`, …) is the API's and the database's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// ECDSA on NIST P-256, signing with SHA-256.
    EcP256,
    /// ECDSA on NIST P-384, signing with SHA-384.
    EcP384,
    /// RSA 2048-bit, PKCS#1 v1.5 with SHA-256.
    Rsa2048,
    /// RSA 3072-bit, PKCS#1 v1.5 with SHA-256.
    Rsa3072,
    /// RSA 4096-bit, PKCS#1 v1.5 with SHA-256.
    Rsa4096,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    /// Every key type, in the order the API documents them.
    pub const ALL: [KeyType; 6] = [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::Ed25519,
    ];

    /// The canonical name used on the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::Ed25519 => "ed25519",
        }
    }

    /// The signature algorithm a key of this type signs with.
    pub fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    /// The DER AlgorithmIdentifier of the signature algorithm, for structures shedu encodes itself (OCSP
    /// responses, CRLs). RSA carries the explicit NULL parameter RFC 4055 requires; ECDSA and Ed25519 none.
    pub fn signature_algorithm_der(self) -> &'static [u8] {
        match self {
            // ecdsa-with-SHA256 1.2.840.10045.4.3.2
            KeyType::EcP256 => &[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
            ],
            // ecdsa-with-SHA384 1.2.840.10045.4.3.3
            KeyType::EcP384 => &[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
            ],
            // sha256WithRSAEncryption 1.2.840.113549.1.1.11, NULL
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &[
                0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
                0x00,
            ],
            // id-Ed25519 1.3.101.112
            KeyType::Ed25519 => &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70],
        }
    }

    /// The RSA modulus size, for RSA types.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyType::Rsa2048 => Some(2048),
            KeyType::Rsa3072 => Some(3072),
            KeyType::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// Identifies the key type of a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<KeyType, crate::Error> {
        use x509_parser::prelude::FromDer;
        use x509_parser::public_key::PublicKey;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| crate::Error::malformed("public key", e))?;
        let oid = spki.algorithm.algorithm.to_id_string();
        match oid.as_str() {
            // id-ecPublicKey: the curve is the parameter.
            "1.2.840.10045.2.1" => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                match curve.as_str() {
                    "1.2.840.10045.3.1.7" => Ok(KeyType::EcP256),
                    "1.3.132.0.34" => Ok(KeyType::EcP384),
                    other => Err(crate::Error::UnsupportedKey(format!("EC curve {other}"))),
                }
            }
            // rsaEncryption
            "1.2.840.113549.1.1.1" => {
                let bits = match spki.parsed() {
                    Ok(PublicKey::RSA(rsa)) => rsa.key_size(),
                    _ => 0,
                };
                match bits {
                    2048 => Ok(KeyType::Rsa2048),
                    3072 => Ok(KeyType::Rsa3072),
                    4096 => Ok(KeyType::Rsa4096),
                    other => Err(crate::Error::UnsupportedKey(format!(
                        "RSA with {other} bits"
                    ))),
                }
            }
            "1.3.101.112" => Ok(KeyType::Ed25519),
            other => Err(crate::Error::UnsupportedKey(format!("algorithm {other}"))),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| crate::Error::UnsupportedKey(format!("unknown key type {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in KeyType::ALL {
            assert_eq!(k.as_str().parse::<KeyType>().unwrap(), k);
        }
        assert!("dsa-1024".parse::<KeyType>().is_err());
    }
}

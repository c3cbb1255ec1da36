//! Issuance profiles: what a CA puts into the certificates it signs.

use std::fmt;
use std::str::FromStr;

use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};

use crate::{Error, KeyType, NamePolicy};

/// An X.509 key usage bit (RFC 5280 §4.2.1.3), by API name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum KeyUsage {
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
    KeyCertSign,
    CrlSign,
}

/// An extended key usage (RFC 5280 §4.2.1.12), by API name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ExtKeyUsage {
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    TimeStamping,
    OcspSigning,
}

macro_rules! named_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The API name.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                $ty::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| Error::malformed(stringify!($ty), format!("unknown value {s:?}")))
            }
        }
    };
}

named_enum!(KeyUsage {
    DigitalSignature => "digital_signature",
    ContentCommitment => "content_commitment",
    KeyEncipherment => "key_encipherment",
    DataEncipherment => "data_encipherment",
    KeyAgreement => "key_agreement",
    KeyCertSign => "key_cert_sign",
    CrlSign => "crl_sign",
});

named_enum!(ExtKeyUsage {
    ServerAuth => "server_auth",
    ClientAuth => "client_auth",
    CodeSigning => "code_signing",
    EmailProtection => "email_protection",
    TimeStamping => "time_stamping",
    OcspSigning => "ocsp_signing",
});

impl KeyUsage {
    pub(crate) fn to_rcgen(self) -> KeyUsagePurpose {
        match self {
            KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            KeyUsage::ContentCommitment => KeyUsagePurpose::ContentCommitment,
            KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            KeyUsage::DataEncipherment => KeyUsagePurpose::DataEncipherment,
            KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
            KeyUsage::KeyCertSign => KeyUsagePurpose::KeyCertSign,
            KeyUsage::CrlSign => KeyUsagePurpose::CrlSign,
        }
    }
}

impl ExtKeyUsage {
    pub(crate) fn to_rcgen(self) -> ExtendedKeyUsagePurpose {
        match self {
            ExtKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            ExtKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            ExtKeyUsage::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
            ExtKeyUsage::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
            ExtKeyUsage::TimeStamping => ExtendedKeyUsagePurpose::TimeStamping,
            ExtKeyUsage::OcspSigning => ExtendedKeyUsagePurpose::OcspSigning,
        }
    }
}

/// What a CA puts into the end-entity certificates it issues, and what it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Validity of an issued certificate when the request names none.
    pub default_validity_days: u32,
    /// Key usage bits of issued certificates (the extension is marked critical).
    pub key_usages: Vec<KeyUsage>,
    /// Extended key usages of issued certificates.
    pub ext_key_usages: Vec<ExtKeyUsage>,
    /// pathLenConstraint given to sub-CAs created under this CA; `None` leaves it unconstrained.
    pub path_len: Option<u8>,
    /// Key types accepted in CSRs.
    pub allowed_key_types: Vec<KeyType>,
    /// How long before notAfter a certificate counts as `about_to_expire`.
    pub expiry_warning_days: u32,
    /// Which names a request may put into a certificate.
    pub names: NamePolicy,
}

impl Default for Profile {
    /// A device-identity profile: one year, TLS client and server, every key type, a 30-day warning, the
    /// default [`NamePolicy`] (the subject's CN only).
    fn default() -> Self {
        Profile {
            default_validity_days: 365,
            key_usages: vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
            ext_key_usages: vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth],
            path_len: None,
            allowed_key_types: KeyType::ALL.to_vec(),
            expiry_warning_days: 30,
            names: NamePolicy::default(),
        }
    }
}

impl Profile {
    /// Checks that the profile describes end-entity certificates: keyCertSign and cRLSign belong to CAs
    /// (RFC 5280 §4.2.1.3, §4.2.1.9), and a `CA:FALSE` certificate that may sign certificates or CRLs is a
    /// contradiction that some relying parties resolve the dangerous way.
    pub fn check_leaf(&self) -> Result<(), Error> {
        match self
            .key_usages
            .iter()
            .find(|k| matches!(k, KeyUsage::KeyCertSign | KeyUsage::CrlSign))
        {
            Some(k) => Err(Error::InvalidProfile(format!(
                "key usage {k} is for CA certificates; an issued end-entity certificate cannot have it"
            ))),
            None => Ok(()),
        }
    }

    /// The key usages of an end-entity certificate for a `key_type` key: the profile's, less those the key
    /// cannot have. Only RSA keys encipher: keyEncipherment and dataEncipherment MUST NOT appear with ECDSA
    /// keys (RFC 8813 §3) nor with Ed25519, which allows only digitalSignature, nonRepudiation, keyCertSign
    /// and cRLSign (RFC 8410 §5); the CA usages never appear (see [`Profile::check_leaf`]).
    pub fn leaf_key_usages(&self, key_type: KeyType) -> Result<Vec<KeyUsage>, Error> {
        let rsa = matches!(
            key_type,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096
        );
        let fits = |k: &&KeyUsage| match k {
            KeyUsage::KeyCertSign | KeyUsage::CrlSign => false,
            KeyUsage::KeyEncipherment | KeyUsage::DataEncipherment => rsa,
            KeyUsage::KeyAgreement => key_type != KeyType::Ed25519,
            KeyUsage::DigitalSignature | KeyUsage::ContentCommitment => true,
        };
        let usages: Vec<KeyUsage> = self.key_usages.iter().filter(fits).copied().collect();
        if usages.is_empty() && !self.key_usages.is_empty() {
            return Err(Error::InvalidProfile(format!(
                "none of the profile's key usages fits a {key_type} key"
            )));
        }
        Ok(usages)
    }

    /// Refuses a key type the profile does not list.
    pub fn check_key_type(&self, key_type: KeyType) -> Result<(), Error> {
        if self.allowed_key_types.contains(&key_type) {
            Ok(())
        } else {
            Err(Error::KeyTypeNotAllowed(key_type))
        }
    }
}

/// Joins API names with commas, the storage form of the profile's lists.
pub fn join_names<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a comma-separated list of API names.
pub fn parse_names<T: FromStr<Err = Error>>(s: &str) -> Result<Vec<T>, Error> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(T::from_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_usages(key_usages: Vec<KeyUsage>) -> Profile {
        Profile {
            key_usages,
            ..Profile::default()
        }
    }

    // See: issue 12.
    #[test]
    fn leaves_never_get_ca_usages_and_only_rsa_keys_encipher() {
        use KeyUsage::*;
        let all = with_usages(KeyUsage::ALL.to_vec());
        assert!(matches!(all.check_leaf(), Err(Error::InvalidProfile(_))));
        assert!(Profile::default().check_leaf().is_ok());
        let usages = |kt| all.leaf_key_usages(kt).unwrap();
        assert_eq!(
            usages(KeyType::Rsa2048),
            [
                DigitalSignature,
                ContentCommitment,
                KeyEncipherment,
                DataEncipherment,
                KeyAgreement
            ]
        );
        assert_eq!(
            usages(KeyType::EcP256),
            [DigitalSignature, ContentCommitment, KeyAgreement]
        );
        assert_eq!(
            usages(KeyType::Ed25519),
            [DigitalSignature, ContentCommitment]
        );
        assert!(matches!(
            with_usages(vec![KeyEncipherment]).leaf_key_usages(KeyType::EcP384),
            Err(Error::InvalidProfile(_))
        ));
        assert_eq!(
            with_usages(vec![])
                .leaf_key_usages(KeyType::EcP256)
                .unwrap(),
            []
        );
    }
}

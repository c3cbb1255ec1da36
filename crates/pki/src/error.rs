//! The error type of the pure PKI layer.

/// Why a PKI operation failed. Each variant says what the caller sent wrong; none carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was not valid PEM/DER of the expected kind; `what` names the object.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// The object that failed to decode ("CSR", "certificate", "private key", …).
        what: &'static str,
        /// A short description of the decoding failure.
        detail: String,
    },
    /// The CSR's self-signature does not verify against its own public key.
    #[error("the CSR signature does not verify")]
    BadCsrSignature,
    /// The public key algorithm or size is not one of shedu's key types.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// The key type is known but the issuance profile does not allow it.
    #[error("key type {0} is not allowed by the CA's profile")]
    KeyTypeNotAllowed(crate::KeyType),
    /// A requested validity is impossible (zero, or longer than the issuer's remaining life).
    #[error("invalid validity: {0}")]
    InvalidValidity(String),
    /// A subject or subject alternative name could not be encoded.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// A certificate would carry more subject alternative names than its profile's `max_sans`.
    #[error("{count} subject alternative names; the profile allows at most {max}")]
    TooManySans {
        /// How many were asked.
        count: usize,
        /// The profile's cap.
        max: u32,
    },
    /// A certificate would have neither a subject nor a subject alternative name (RFC 5280 §4.1.2.6):
    /// it names nobody.
    #[error("the certificate would have an empty subject and no subject alternative name")]
    EmptySubject,
    /// An issuance profile asks for something an end-entity certificate must not carry.
    #[error("invalid profile: {0}")]
    InvalidProfile(String),
    /// The private key does not belong to the certificate it came with.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// The certificate given as a CA is not a CA certificate (no basicConstraints cA=TRUE).
    #[error("the certificate is not a CA certificate")]
    NotCa,
    /// Signing failed inside the key engine or the encoder. The source is the key engine's own error when
    /// the key kept it (see [`Signs`](crate::Signs)), else rcgen's.
    #[error("signing failed: {source}")]
    Signing {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn malformed(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Error::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}

//! Key engine errors.

/// Why a key operation failed. None of the variants carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A sealed key did not open: wrong master secret, a tampered record, or a record of another owner.
    #[error("the sealed key for {owner} does not open (wrong master key or tampered record)")]
    Unseal {
        /// The owner id (a CA id) the key was sealed for.
        owner: String,
    },
    /// The private key could not be decoded or is of an unsupported kind.
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// The master secret is missing, malformed or unreadable.
    #[error("master key: {0}")]
    MasterKey(String),
    /// Key generation or signing failed inside the crypto library.
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
    /// The PKCS#11 module (shared library) is missing, does not load, or does not initialise.
    #[error("PKCS#11 module {module}: {reason}")]
    Pkcs11Module {
        /// The module path as configured.
        module: String,
        /// What went wrong.
        reason: String,
    },
    /// No token with the configured label is present in any slot of the module.
    #[error("no PKCS#11 token labelled {label:?} (tokens present: {available})")]
    TokenNotFound {
        /// The configured token label.
        label: String,
        /// The labels of the tokens that are present, comma separated, or `none`.
        available: String,
    },
    /// The token refused the user PIN (wrong PIN, or a PIN of the wrong length), or the PIN is locked.
    #[error("PKCS#11 token {token:?} refused the user PIN: {reason}")]
    WrongPin {
        /// The token label.
        token: String,
        /// Why, without the PIN.
        reason: &'static str,
    },
    /// No private key with this label is in the token, or its public half is missing.
    #[error("no PKCS#11 key labelled {label:?}: {reason}")]
    KeyNotFound {
        /// The key label.
        label: String,
        /// What is missing.
        reason: &'static str,
    },
    /// An object with this label already exists in the token; keys are never overwritten.
    #[error("the PKCS#11 token already holds an object labelled {label:?}")]
    KeyExists {
        /// The key label.
        label: String,
    },
    /// The key engine or token cannot handle this algorithm or key type.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The token cannot be reached right now (session closed, device removed, user logged out, …). The
    /// failed operation is not retried; the engine reopens and logs the session in again on the next call.
    #[error("PKCS#11 token unavailable: {0}")]
    TokenUnavailable(String),
    /// Any other PKCS#11 failure (function name and return code).
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
}

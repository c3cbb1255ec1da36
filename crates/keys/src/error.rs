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
}

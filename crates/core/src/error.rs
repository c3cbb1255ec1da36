//! Service errors, classified for callers. No HTTP here: each edge maps these to its protocol.

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's input is wrong. `code` is a stable machine-readable reason (`bad-csr-signature`,
    /// `key-type-not-allowed`, …) that edges expose; `detail` says what to fix.
    #[error("{detail}")]
    Invalid {
        /// Stable reason code.
        code: &'static str,
        /// Human-readable explanation.
        detail: String,
    },
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (a duplicate name, revoking twice, a key-less CA).
    #[error("{detail}")]
    Conflict {
        /// Stable reason code.
        code: &'static str,
        /// Human-readable explanation.
        detail: String,
    },
    /// Storage is unreachable or refused the write; nothing was changed.
    #[error("storage unavailable")]
    Unavailable(#[source] shedu_store::Error),
    /// The caller did not prove who it is (bad credentials, invalid or expired token). The detail is
    /// deliberately generic.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known (or presented credentials) but may not do this: a bootstrap certificate of
    /// the wrong CA, a CA outside an RA's list, a re-enrolment outside its window.
    #[error("{detail}")]
    Forbidden {
        /// Stable reason code.
        code: &'static str,
        /// Human-readable explanation.
        detail: String,
    },
    /// Too many attempts; try again in `retry_after` seconds.
    #[error("{detail}")]
    RateLimited {
        /// Human-readable explanation.
        detail: String,
        /// Seconds until the next attempt is allowed (at least 1).
        retry_after: u64,
    },
    /// A CA's key cannot be used right now: its sealed record does not open (tampered, or another master
    /// key), or its token is unreachable. Other CAs keep working; the detail names the CA, never key material.
    #[error("{0}")]
    KeyUnavailable(String),
    /// A failure inside shedu (a key that does not open, corrupt data). Details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn invalid(code: &'static str, detail: impl Into<String>) -> Error {
        Error::Invalid {
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn conflict(code: &'static str, detail: impl Into<String>) -> Error {
        Error::Conflict {
            code,
            detail: detail.into(),
        }
    }
}

impl From<shedu_pki::Error> for Error {
    fn from(e: shedu_pki::Error) -> Error {
        use shedu_pki::Error as P;
        let code = match &e {
            P::Malformed { .. } => "malformed-input",
            P::BadCsrSignature => "bad-csr-signature",
            P::UnsupportedKey(_) => "unsupported-key",
            P::KeyTypeNotAllowed(_) => "key-type-not-allowed",
            P::InvalidValidity(_) => "invalid-validity",
            P::InvalidName(_) => "invalid-name",
            P::TooManySans { .. } => "too-many-sans",
            P::EmptySubject => "empty-subject",
            P::KeyMismatch => "key-mismatch",
            P::NotCa => "not-a-ca",
            P::InvalidProfile(_) => "invalid-profile",
            P::Signing { .. } => return Error::Internal(e.to_string()),
            _ => "invalid-input",
        };
        Error::invalid(code, e.to_string())
    }
}

impl From<shedu_keys::Error> for Error {
    fn from(e: shedu_keys::Error) -> Error {
        match e {
            shedu_keys::Error::InvalidKey(_) => {
                Error::invalid("invalid-private-key", e.to_string())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

/// Whether a key engine error means that the key cannot be used right now (its token is unreachable,
/// refuses the login, or no longer holds the key) rather than a bug or a wrong request. The one
/// classification of engine failures, for opening keys ([`crate::engines`]) and for signing
/// ([`signing_err`]).
pub(crate) fn key_unavailable(e: &shedu_keys::Error) -> bool {
    use shedu_keys::Error as K;
    matches!(
        e,
        K::TokenUnavailable(_) | K::KeyNotFound { .. } | K::WrongPin { .. }
    )
}

/// Maps a pki error from signing with the key of CA `ca_id`: a signature that failed because the key
/// engine cannot use the key right now makes the CA's key unavailable (naming the CA, never key material);
/// anything else maps as any pki error.
pub(crate) fn signing_err(ca_id: &str) -> impl FnOnce(shedu_pki::Error) -> Error + '_ {
    move |e| {
        let engine = match &e {
            shedu_pki::Error::Signing { source } => source.downcast_ref::<shedu_keys::Error>(),
            _ => None,
        };
        match engine {
            Some(engine) if key_unavailable(engine) => Error::KeyUnavailable(format!(
                "the key of CA {ca_id} cannot sign right now: {engine}"
            )),
            _ => e.into(),
        }
    }
}

/// Maps a store error; `NotFound` becomes the caller-named thing.
pub(crate) fn store_err(what: impl Into<String>) -> impl FnOnce(shedu_store::Error) -> Error {
    let what = what.into();
    move |e| match e {
        shedu_store::Error::NotFound => Error::NotFound(what),
        shedu_store::Error::Corrupt(d) => Error::Internal(d),
        shedu_store::Error::Unauthorized => {
            Error::Unauthenticated("the one-time secret does not match or was already used".into())
        }
        other => Error::Unavailable(other),
    }
}

/// An in-memory cache's lock was poisoned by a panic elsewhere.
pub(crate) fn poisoned() -> Error {
    Error::Internal("an in-memory cache lock is poisoned".into())
}

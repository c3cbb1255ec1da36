//! Errors are ACME problems: the type the client reads (RFC 8555 §6.7) and a detail for humans.

/// An RFC 8555 §6.7 error type (plus `invalidProfile` of the profiles extension and `alreadyReplaced`
/// of RFC 9773). Each is `urn:ietf:params:acme:error:<name>` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemType {
    /// The request's account does not exist (`onlyReturnExisting`, unknown `kid`).
    AccountDoesNotExist,
    /// The certificate is already revoked.
    AlreadyRevoked,
    /// The certificate named by `replaces` was already replaced (RFC 9773 §5).
    AlreadyReplaced,
    /// The CSR is unacceptable (its names differ from the order's, a bad signature…).
    BadCsr,
    /// The nonce is unknown, used, or expired.
    BadNonce,
    /// The JWS key is of an unsupported type or too weak.
    BadPublicKey,
    /// The revocation reason is not allowed.
    BadRevocationReason,
    /// The JWS algorithm is not supported.
    BadSignatureAlgorithm,
    /// A CAA record forbids issuance.
    Caa,
    /// Several problems: see the subproblems.
    Compound,
    /// The server could not connect to the validation target.
    Connection,
    /// DNS answered wrong or not at all.
    Dns,
    /// An external account binding is required.
    ExternalAccountRequired,
    /// The challenge response was wrong.
    IncorrectResponse,
    /// A contact URL is invalid.
    InvalidContact,
    /// The order's profile is unknown (ACME profiles extension).
    InvalidProfile,
    /// The request is malformed.
    Malformed,
    /// The request is not allowed in the object's current state (finalizing an order not ready).
    OrderNotReady,
    /// Too many requests.
    RateLimited,
    /// The identifier is not one this server issues for.
    RejectedIdentifier,
    /// The server failed.
    ServerInternal,
    /// The tls-alpn-01 answer was wrong.
    Tls,
    /// The client may not do this (wrong account, deactivated account).
    Unauthorized,
    /// The contact scheme is not supported.
    UnsupportedContact,
    /// The identifier type is not supported.
    UnsupportedIdentifier,
    /// The client must visit the `instance` URL (not used here).
    UserActionRequired,
}

impl ProblemType {
    /// The type's name after `urn:ietf:params:acme:error:`.
    pub fn name(self) -> &'static str {
        use ProblemType as P;
        match self {
            P::AccountDoesNotExist => "accountDoesNotExist",
            P::AlreadyRevoked => "alreadyRevoked",
            P::AlreadyReplaced => "alreadyReplaced",
            P::BadCsr => "badCSR",
            P::BadNonce => "badNonce",
            P::BadPublicKey => "badPublicKey",
            P::BadRevocationReason => "badRevocationReason",
            P::BadSignatureAlgorithm => "badSignatureAlgorithm",
            P::Caa => "caa",
            P::Compound => "compound",
            P::Connection => "connection",
            P::Dns => "dns",
            P::ExternalAccountRequired => "externalAccountRequired",
            P::IncorrectResponse => "incorrectResponse",
            P::InvalidContact => "invalidContact",
            P::InvalidProfile => "invalidProfile",
            P::Malformed => "malformed",
            P::OrderNotReady => "orderNotReady",
            P::RateLimited => "rateLimited",
            P::RejectedIdentifier => "rejectedIdentifier",
            P::ServerInternal => "serverInternal",
            P::Tls => "tls",
            P::Unauthorized => "unauthorized",
            P::UnsupportedContact => "unsupportedContact",
            P::UnsupportedIdentifier => "unsupportedIdentifier",
            P::UserActionRequired => "userActionRequired",
        }
    }

    /// The full type URN.
    pub fn urn(self) -> String {
        format!("urn:ietf:params:acme:error:{}", self.name())
    }
}

/// A request the protocol refuses: the problem type a client reads and a human-readable detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", problem.name())]
pub struct Error {
    /// The ACME problem type.
    pub problem: ProblemType,
    /// What was wrong.
    pub detail: String,
    /// The problem of each identifier, when several identifiers of one request failed (RFC 8555 §6.7.1).
    pub subproblems: Vec<(crate::types::Identifier, Error)>,
}

impl Error {
    /// An error of a given type.
    pub fn new(problem: ProblemType, detail: impl Into<String>) -> Error {
        Error {
            problem,
            detail: detail.into(),
            subproblems: Vec::new(),
        }
    }

    /// One problem for several identifiers' problems (RFC 8555 §6.7.1): of their type when they share
    /// it, `compound` otherwise; the detail lists them. A single problem stays as it is.
    pub fn of_identifiers(mut problems: Vec<(crate::types::Identifier, Error)>) -> Error {
        if problems.len() == 1 {
            return problems.remove(0).1;
        }
        let kind = match problems.first() {
            Some((_, first)) if problems.iter().all(|(_, e)| e.problem == first.problem) => {
                first.problem
            }
            _ => ProblemType::Compound,
        };
        let detail = problems
            .iter()
            .map(|(id, e)| format!("{}: {}", id.value, e.detail))
            .collect::<Vec<_>>()
            .join("; ");
        Error {
            problem: kind,
            detail,
            subproblems: problems,
        }
    }

    /// A `malformed` request.
    pub fn malformed(detail: impl Into<String>) -> Error {
        Error::new(ProblemType::Malformed, detail)
    }
}

//! Why a KMIP message could not be read.

/// A decoding or message-structure error. Every variant is an `InvalidMessage` to a KMIP peer; the
/// variant says where and why, for the server's log and the result message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ends inside an item (header or value) that starts at `at`.
    #[error("TTLV item at byte {at} is truncated")]
    Truncated {
        /// Byte offset of the item.
        at: usize,
    },
    /// An item's type byte is not one of the TTLV item types.
    #[error("TTLV item at byte {at} has unknown type 0x{code:02x}")]
    UnknownType {
        /// Byte offset of the item.
        at: usize,
        /// The type byte.
        code: u8,
    },
    /// An item's length does not fit its type (an Integer is 4 bytes, a Long Integer 8, …).
    #[error("TTLV item at byte {at} has length {len}, invalid for its type")]
    BadLength {
        /// Byte offset of the item.
        at: usize,
        /// The declared length.
        len: u32,
    },
    /// Padding bytes that are not zero, or a Boolean that is neither 0 nor 1.
    #[error("TTLV item at byte {at} has a non-canonical value or padding")]
    NonCanonical {
        /// Byte offset of the item.
        at: usize,
    },
    /// A Text String that is not UTF-8.
    #[error("TTLV text string at byte {at} is not UTF-8")]
    BadUtf8 {
        /// Byte offset of the item.
        at: usize,
    },
    /// Structures nested deeper than [`crate::MAX_DEPTH`].
    #[error("TTLV structures nested deeper than {}", crate::MAX_DEPTH)]
    TooDeep,
    /// Bytes after the end of the top-level item.
    #[error("{count} bytes after the end of the message")]
    Trailing {
        /// How many.
        count: usize,
    },
    /// A message or value larger than a length field can hold, or than the caller's limit.
    #[error("message of {len} bytes is larger than the limit")]
    TooLarge {
        /// The length.
        len: usize,
    },
    /// The JSON TTLV form is not valid: `detail` says what was wrong.
    #[error("JSON TTLV: {detail}")]
    Json {
        /// What was wrong, for a human.
        detail: String,
    },
    /// A required field of a message or payload is missing.
    #[error("missing {what}")]
    Missing {
        /// The field's specification name.
        what: &'static str,
    },
    /// A field has the wrong item type or an invalid value.
    #[error("invalid {what}")]
    Invalid {
        /// The field's specification name.
        what: &'static str,
    },
}

impl Error {
    pub(crate) fn json(detail: impl Into<String>) -> Self {
        Self::Json {
            detail: detail.into(),
        }
    }
}

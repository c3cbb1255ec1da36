//! The KMIP wire format (OASIS Key Management Interoperability Protocol 1.0–2.1): TTLV items
//! ([`Ttlv`], [`Value`]), their binary encoding ([`decode`], [`encode`], [`message_len`] for stream
//! framing) and JSON form ([`to_json`], [`from_json`]; a bare operation as Cosmian's `/kmip/2_1` takes it,
//! [`operation_from_json`]), the request and response messages
//! ([`RequestMessage`], [`ResponseMessage`]), attributes in the 1.x and 2.x forms ([`Attribute`]) and the
//! specification's tag and enumeration numbers and names ([`tag`], [`operation`], [`result_reason`], …).
//!
//! Like `shedu-pki`, this crate does no I/O and never panics on input: every decoder returns [`Error`],
//! which a server answers with `Invalid Message`. Decoding is bounded: structures nest at most
//! [`MAX_DEPTH`] deep and every length is checked against the input before anything is allocated for it.
//! What an operation means, who may call it and what is stored are `shedu-core`'s business.
#![warn(missing_docs)]

mod attributes;
mod binary;
mod error;
mod json;
mod message;
#[allow(missing_docs)]
mod names;
mod ttlv;

pub use attributes::{
    Attribute, answer_attribute, attribute_name, attribute_tag, name_text, name_value,
    read_attributes, write_attribute,
};
pub use binary::{HEADER_LEN, decode, encode, message_len};
pub use error::Error;
pub use json::{
    from_json, from_json_slice, operation_from_json, operation_response_json, to_json,
    to_json_string,
};
pub use message::{
    ProtocolVersion, RequestBatchItem, RequestMessage, ResponseBatchItem, ResponseMessage,
};
pub use names::*;
pub use ttlv::{ItemType, Ttlv, Value};

/// The deepest nesting of structures a decoder accepts (KMIP messages nest about 8 deep).
pub const MAX_DEPTH: usize = 32;

/// The JSON name of tag `t`, if the specification names it.
pub fn tag_name(t: u32) -> Option<&'static str> {
    names::TAG_NAMES
        .binary_search_by_key(&t, |(n, _)| *n)
        .ok()
        .map(|i| names::TAG_NAMES[i].1)
}

/// The tag named `name` in the JSON form.
pub fn tag_value(name: &str) -> Option<u32> {
    names::TAG_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(t, _)| *t)
}

/// The name of value `v` of the enumeration carried by tag `t`.
pub fn enum_name(t: u32, v: u32) -> Option<&'static str> {
    let (_, table) = names::ENUM_NAMES.iter().find(|(x, _)| *x == t)?;
    table.iter().find(|(n, _)| *n == v).map(|(_, s)| *s)
}

/// The value named `name` of the enumeration carried by tag `t`.
pub fn enum_value(t: u32, name: &str) -> Option<u32> {
    let (_, table) = names::ENUM_NAMES.iter().find(|(x, _)| *x == t)?;
    table.iter().find(|(_, s)| *s == name).map(|(n, _)| *n)
}

/// The value named `name` of the enumeration carried by tag `t`, also as the OASIS XML test cases spell
/// it: letters and digits apart by `_` (`SHA_256`, `PKCS_1`, `X_509`), any case.
pub fn enum_value_loose(t: u32, name: &str) -> Option<u32> {
    if let Some(v) = enum_value(t, name) {
        return Some(v);
    }
    let (_, table) = names::ENUM_NAMES.iter().find(|(x, _)| *x == t)?;
    let bare = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let wanted = bare(name);
    table
        .iter()
        .find(|(_, s)| bare(s) == wanted)
        .map(|(n, _)| *n)
}

/// The Cryptographic Usage Mask written as bit names, as the OASIS XML and JSON encodings write it
/// (`"Encrypt Decrypt"`, `"Sign|Verify"`): the names separated by spaces or `|`; `None` if one is not a
/// bit's name or there is none.
pub fn usage_mask_value(names: &str) -> Option<i32> {
    let mut mask = 0;
    let mut any = false;
    for name in names.split(|c: char| c == '|' || c.is_whitespace()) {
        if name.is_empty() {
            continue;
        }
        let (bit, _) = names::CRYPTOGRAPHIC_USAGE_MASK_NAMES
            .iter()
            .find(|(_, n)| *n == name)?;
        mask |= bit;
        any = true;
    }
    any.then_some(mask)
}

#[cfg(test)]
mod tests;

//! The JSON TTLV form (OASIS KMIP profiles "JSON encoding", as Cosmian's KMS speaks it): each item is
//! `{"tag": "<name or 0x42xxxx>", "type": "<item type>", "value": …}`; `type` may be left out for a
//! Structure, whose value is an array of items. Integers are numbers (or `0x…` hex strings on input),
//! Big Integers `0x…` hex, Enumerations their name in the tag's enumeration (or `0x…`), Byte Strings hex,
//! Date-Times RFC 3339 text (or `0x…` seconds), Intervals and Date-Time Extended numbers.

use serde_json::{Map, Value as Json, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::names::tag;
use crate::ttlv::{ItemType, Ttlv, Value};
use crate::{Error, MAX_DEPTH, enum_name, enum_value, tag_name, tag_value};

/// The JSON form of an item.
pub fn to_json(item: &Ttlv) -> Json {
    let value = match &item.value {
        Value::Structure(items) => Json::Array(items.iter().map(to_json).collect()),
        _ => match scalar(item) {
            Scalar::Number(v) => json!(v),
            Scalar::Bool(v) => json!(v),
            Scalar::Text(text) => json!(text),
        },
    };
    json!({"tag": tag_text(item.tag), "type": item.value.item_type().name(), "value": value})
}

/// The JSON form of an item as text, exactly what `to_json(item).to_string()` writes, without building
/// the `serde_json::Value` tree first (a map per item: most of the cost of storing an object's attributes).
pub fn to_json_string(item: &Ttlv) -> String {
    let mut out = Vec::with_capacity(512);
    write_json(&mut out, item);
    // Only `serde_json`'s escaped strings, ASCII punctuation and digits were written.
    String::from_utf8(out).unwrap_or_default()
}

fn write_json(out: &mut Vec<u8>, item: &Ttlv) {
    out.extend_from_slice(b"{\"tag\":");
    write_text(out, &tag_text(item.tag));
    out.extend_from_slice(b",\"type\":");
    write_text(out, item.value.item_type().name());
    out.extend_from_slice(b",\"value\":");
    match &item.value {
        Value::Structure(items) => {
            out.push(b'[');
            for (i, child) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, child);
            }
            out.push(b']');
        }
        _ => match scalar(item) {
            Scalar::Number(v) => out.extend_from_slice(v.to_string().as_bytes()),
            Scalar::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
            Scalar::Text(text) => write_text(out, &text),
        },
    }
    out.push(b'}');
}

/// `text` as a JSON string, escaped as `serde_json` escapes it.
fn write_text(out: &mut Vec<u8>, text: &str) {
    // Writing a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, text);
}

/// The JSON value of an item that is not a Structure.
enum Scalar<'a> {
    Number(i64),
    Bool(bool),
    Text(std::borrow::Cow<'a, str>),
}

fn scalar(item: &Ttlv) -> Scalar<'_> {
    match &item.value {
        // A Structure's value is its items (see the callers).
        Value::Structure(_) => Scalar::Text("".into()),
        Value::Integer(v) => Scalar::Number(i64::from(*v)),
        Value::LongInteger(v) | Value::DateTimeExtended(v) => Scalar::Number(*v),
        Value::BigInteger(b) => Scalar::Text(format!("0x{}", hex::encode_upper(b)).into()),
        Value::Enumeration(v) => match enum_name(item.tag, *v) {
            Some(name) => Scalar::Text(name.into()),
            None => Scalar::Text(format!("0x{v:08X}").into()),
        },
        Value::Boolean(v) => Scalar::Bool(*v),
        Value::TextString(s) => Scalar::Text(s.as_str().into()),
        Value::ByteString(b) => Scalar::Text(hex::encode_upper(b).into()),
        Value::DateTime(v) => match OffsetDateTime::from_unix_timestamp(*v)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(text) => Scalar::Text(text.into()),
            None => Scalar::Text(format!("0x{:016X}", *v).into()),
        },
        Value::Interval(v) => Scalar::Number(i64::from(*v)),
    }
}

/// A tag's name in the JSON form, or `0x42xxxx` for one without a name.
fn tag_text(t: u32) -> std::borrow::Cow<'static, str> {
    match tag_name(t) {
        Some(name) => name.into(),
        None => format!("0x{t:06X}").into(),
    }
}

/// Reads the JSON form of an item from bytes.
pub fn from_json_slice(input: &[u8]) -> Result<Ttlv, Error> {
    let value: Json =
        serde_json::from_slice(input).map_err(|e| Error::json(format!("not JSON: {e}")))?;
    from_json(&value)
}

/// Reads the JSON form of an item.
pub fn from_json(input: &Json) -> Result<Ttlv, Error> {
    item(input, 0)
}

/// Reads a bare operation as Cosmian's `/kmip/2_1` endpoint takes it: `{"tag": "<Operation>", "value":
/// [the request payload's items]}`, the tag naming the operation (`Create`, `Get`, `GetAttributes`, …)
/// as the Operation enumeration names it. Answers the Operation and the payload as a Request Payload.
pub fn operation_from_json(input: &[u8]) -> Result<(u32, Ttlv), Error> {
    let value: Json =
        serde_json::from_slice(input).map_err(|e| Error::json(format!("not JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| Error::json("the operation is not an object"))?;
    let name = field(obj, "tag")?
        .as_str()
        .ok_or_else(|| Error::json("tag is not a string"))?;
    let op = enum_value(tag::OPERATION, name)
        .ok_or_else(|| Error::json(format!("unknown operation {name}")))?;
    if let Some(t) = obj.get("type")
        && t.as_str() != Some(ItemType::Structure.name())
    {
        return Err(Error::json("an operation is a Structure"));
    }
    let items = field(obj, "value")?
        .as_array()
        .ok_or_else(|| Error::json(format!("the value of {name} is not an array")))?
        .iter()
        .map(|i| item(i, 1))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((op, Ttlv::structure(tag::REQUEST_PAYLOAD, items)))
}

/// The JSON answer to a bare operation: `{"tag": "<Operation>Response", "type": "Structure", "value":
/// [the response payload's items]}`, as Cosmian's `/kmip/2_1` endpoint answers.
pub fn operation_response_json(op: u32, payload: &Ttlv) -> Json {
    let name = match enum_name(tag::OPERATION, op) {
        Some(n) => format!("{n}Response"),
        None => format!("0x{op:08X}Response"),
    };
    json!({
        "tag": name,
        "type": ItemType::Structure.name(),
        "value": payload.items().iter().map(to_json).collect::<Vec<_>>(),
    })
}

fn item(input: &Json, depth: usize) -> Result<Ttlv, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep);
    }
    let obj = input
        .as_object()
        .ok_or_else(|| Error::json("an item is not an object"))?;
    let tag_text = field(obj, "tag")?
        .as_str()
        .ok_or_else(|| Error::json("tag is not a string"))?;
    let tag = match hex_number(tag_text) {
        Some(n) if n <= 0xFF_FFFF => {
            u32::try_from(n).map_err(|_| Error::json("tag out of range"))?
        }
        Some(_) => return Err(Error::json("tag out of range")),
        None => {
            tag_value(tag_text).ok_or_else(|| Error::json(format!("unknown tag {tag_text}")))?
        }
    };
    let item_type = match obj.get("type") {
        None => ItemType::Structure,
        Some(t) => t
            .as_str()
            .and_then(ItemType::from_name)
            .ok_or_else(|| Error::json(format!("unknown type of {tag_text}")))?,
    };
    let raw = field(obj, "value")?;
    let bad = || Error::json(format!("invalid {} value of {tag_text}", item_type.name()));
    let value = match item_type {
        ItemType::Structure => Value::Structure(
            raw.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|i| item(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        ItemType::Integer => Value::Integer(
            int(raw)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(bad)?,
        ),
        ItemType::LongInteger => Value::LongInteger(int(raw).ok_or_else(bad)?),
        ItemType::DateTimeExtended => Value::DateTimeExtended(int(raw).ok_or_else(bad)?),
        ItemType::Interval => Value::Interval(
            int(raw)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(bad)?,
        ),
        ItemType::BigInteger => {
            let text = raw
                .as_str()
                .and_then(|s| s.strip_prefix("0x"))
                .ok_or_else(bad)?;
            let bytes = hex::decode(text).map_err(|_| bad())?;
            Value::BigInteger(bytes)
        }
        ItemType::Enumeration => Value::Enumeration(match raw {
            Json::String(s) => match hex_number(s) {
                Some(n) => u32::try_from(n).map_err(|_| bad())?,
                None => enum_value(tag, s)
                    .ok_or_else(|| Error::json(format!("unknown {tag_text} {s}")))?,
            },
            other => int(other)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(bad)?,
        }),
        ItemType::Boolean => Value::Boolean(raw.as_bool().ok_or_else(bad)?),
        ItemType::TextString => Value::TextString(raw.as_str().ok_or_else(bad)?.to_owned()),
        ItemType::ByteString => {
            Value::ByteString(hex::decode(raw.as_str().ok_or_else(bad)?).map_err(|_| bad())?)
        }
        ItemType::DateTime => Value::DateTime(match raw {
            Json::String(s) if s.starts_with("0x") => int(raw).ok_or_else(bad)?,
            Json::String(s) => OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|_| bad())?
                .unix_timestamp(),
            other => int(other).ok_or_else(bad)?,
        }),
    };
    Ok(Ttlv { tag, value })
}

fn field<'a>(obj: &'a Map<String, Json>, name: &'static str) -> Result<&'a Json, Error> {
    obj.get(name)
        .ok_or_else(|| Error::json(format!("an item has no {name}")))
}

/// A JSON number, or a `0x…` hex string read as a two's-complement 64-bit value.
fn int(raw: &Json) -> Option<i64> {
    match raw {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => hex_number(s).map(|n| n as i64),
        _ => None,
    }
}

fn hex_number(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

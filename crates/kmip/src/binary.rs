//! The binary TTLV encoding (KMIP 1.4 §9.1.1): 3-byte tag, 1-byte type, 4-byte big-endian length,
//! then the value padded with zeros to a multiple of 8 bytes.

use crate::ttlv::{ItemType, Ttlv, Value};
use crate::{Error, MAX_DEPTH};

/// The length of the first 8 bytes of a message (tag, type, length), which say how long the rest is.
pub const HEADER_LEN: usize = 8;

/// The total length of the message whose first 8 bytes are `header`: what a stream reader must read in
/// all. The top-level item must be a structure, as every KMIP message is.
pub fn message_len(header: &[u8; HEADER_LEN]) -> Result<usize, Error> {
    if header[3] != ItemType::Structure as u8 {
        return Err(Error::UnknownType {
            at: 0,
            code: header[3],
        });
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if !len.is_multiple_of(8) {
        return Err(Error::BadLength { at: 0, len });
    }
    usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(HEADER_LEN))
        .ok_or(Error::TooLarge { len: usize::MAX })
}

/// Decodes one item that must span all of `input`.
pub fn decode(input: &[u8]) -> Result<Ttlv, Error> {
    let mut reader = Reader {
        buf: input,
        pos: 0,
        base: 0,
    };
    let item = reader.item(0)?;
    match input.len() - reader.pos {
        0 => Ok(item),
        count => Err(Error::Trailing { count }),
    }
}

/// Encodes an item. Fails only for a value longer than a 32-bit length can say.
pub fn encode(item: &Ttlv) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    encode_into(item, &mut out)?;
    Ok(out)
}

fn encode_into(item: &Ttlv, out: &mut Vec<u8>) -> Result<(), Error> {
    let tag = item.tag.to_be_bytes();
    out.extend_from_slice(&tag[1..4]);
    out.push(item.value.item_type() as u8);
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let start = out.len();
    match &item.value {
        Value::Structure(items) => {
            for child in items {
                encode_into(child, out)?;
            }
        }
        Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => {
            out.extend_from_slice(&v.to_be_bytes())
        }
        Value::BigInteger(b) => {
            // Sign-extend to a multiple of 8 bytes (an empty value is a zero).
            let pad = (8 - b.len() % 8) % 8;
            let fill = if b.first().is_some_and(|x| x & 0x80 != 0) {
                0xff
            } else {
                0
            };
            if b.is_empty() {
                out.extend_from_slice(&[0; 8]);
            } else {
                out.extend(std::iter::repeat_n(fill, pad));
                out.extend_from_slice(b);
            }
        }
        Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
        Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
        Value::ByteString(b) => out.extend_from_slice(b),
    }
    let len = out.len() - start;
    let len32 = u32::try_from(len).map_err(|_| Error::TooLarge { len })?;
    out[len_at..start].copy_from_slice(&len32.to_be_bytes());
    out.resize(start + padded(len).ok_or(Error::TooLarge { len })?, 0);
    Ok(())
}

fn padded(len: usize) -> Option<usize> {
    Some(len.checked_add(7)? / 8 * 8)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the whole message, for error positions.
    base: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, at: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(Error::Truncated { at })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn item(&mut self, depth: usize) -> Result<Ttlv, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        let at = self.base + self.pos;
        let head = self.take(8, at)?;
        let tag = u32::from_be_bytes([0, head[0], head[1], head[2]]);
        let code = head[3];
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let item_type = ItemType::from_code(code).ok_or(Error::UnknownType { at, code })?;
        let ulen = usize::try_from(len).map_err(|_| Error::Truncated { at })?;
        let fixed = |want: u32| {
            if len == want {
                Ok(())
            } else {
                Err(Error::BadLength { at, len })
            }
        };
        let body_at = self.base + self.pos;
        let value = match item_type {
            ItemType::Structure => {
                if !len.is_multiple_of(8) {
                    return Err(Error::BadLength { at, len });
                }
                let body = self.take(ulen, at)?;
                let mut inner = Reader {
                    buf: body,
                    pos: 0,
                    base: body_at,
                };
                let mut items = Vec::new();
                while inner.pos < body.len() {
                    items.push(inner.item(depth + 1)?);
                }
                Value::Structure(items)
            }
            ItemType::Integer => {
                fixed(4)?;
                let b = self.padded(4, at)?;
                Value::Integer(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            ItemType::Enumeration | ItemType::Interval => {
                fixed(4)?;
                let b = self.padded(4, at)?;
                let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                if item_type == ItemType::Enumeration {
                    Value::Enumeration(v)
                } else {
                    Value::Interval(v)
                }
            }
            ItemType::LongInteger | ItemType::DateTime | ItemType::DateTimeExtended => {
                fixed(8)?;
                let b = self.take(8, at)?;
                let v = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                match item_type {
                    ItemType::LongInteger => Value::LongInteger(v),
                    ItemType::DateTime => Value::DateTime(v),
                    _ => Value::DateTimeExtended(v),
                }
            }
            ItemType::Boolean => {
                fixed(8)?;
                let b = self.take(8, at)?;
                match u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) {
                    0 => Value::Boolean(false),
                    1 => Value::Boolean(true),
                    _ => return Err(Error::NonCanonical { at }),
                }
            }
            ItemType::BigInteger => {
                if len == 0 || !len.is_multiple_of(8) {
                    return Err(Error::BadLength { at, len });
                }
                Value::BigInteger(self.take(ulen, at)?.to_vec())
            }
            ItemType::TextString => {
                let b = self.padded(ulen, at)?;
                Value::TextString(
                    std::str::from_utf8(b)
                        .map_err(|_| Error::BadUtf8 { at })?
                        .to_owned(),
                )
            }
            ItemType::ByteString => Value::ByteString(self.padded(ulen, at)?.to_vec()),
        };
        Ok(Ttlv { tag, value })
    }

    /// Takes a value of `len` bytes and its zero padding to a multiple of 8.
    fn padded(&mut self, len: usize, at: usize) -> Result<&'a [u8], Error> {
        let total = padded(len).ok_or(Error::Truncated { at })?;
        let b = self.take(total, at)?;
        if b[len..].iter().any(|x| *x != 0) {
            return Err(Error::NonCanonical { at });
        }
        Ok(&b[..len])
    }
}

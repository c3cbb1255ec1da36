//! The TTLV item: a tag, a type and a value (KMIP 1.4 §9.1, KMIP 2.1 §9.1).

use crate::Error;

/// One TTLV item. `tag` is the three-byte tag (`0x42xxxx` for the specification's tags, see
/// [`crate::tag`]); the type is the [`Value`]'s variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttlv {
    /// The tag number.
    pub tag: u32,
    /// The typed value.
    pub value: Value,
}

/// A TTLV value of one of the eleven item types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Type 0x01: an ordered list of items.
    Structure(Vec<Ttlv>),
    /// Type 0x02: a signed 32-bit integer (also bit masks such as the Cryptographic Usage Mask).
    Integer(i32),
    /// Type 0x03: a signed 64-bit integer.
    LongInteger(i64),
    /// Type 0x04: a two's-complement big-endian integer whose length is a multiple of 8 bytes.
    BigInteger(Vec<u8>),
    /// Type 0x05: an unsigned 32-bit enumeration value.
    Enumeration(u32),
    /// Type 0x06: a boolean, 8 bytes on the wire.
    Boolean(bool),
    /// Type 0x07: UTF-8 text.
    TextString(String),
    /// Type 0x08: bytes.
    ByteString(Vec<u8>),
    /// Type 0x09: seconds since the Unix epoch.
    DateTime(i64),
    /// Type 0x0A: an unsigned 32-bit number of seconds.
    Interval(u32),
    /// Type 0x0B: microseconds since the Unix epoch (KMIP 2.0).
    DateTimeExtended(i64),
}

/// The item type byte of each [`Value`] variant, and its JSON name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemType {
    /// 0x01
    Structure = 1,
    /// 0x02
    Integer = 2,
    /// 0x03
    LongInteger = 3,
    /// 0x04
    BigInteger = 4,
    /// 0x05
    Enumeration = 5,
    /// 0x06
    Boolean = 6,
    /// 0x07
    TextString = 7,
    /// 0x08
    ByteString = 8,
    /// 0x09
    DateTime = 9,
    /// 0x0A
    Interval = 10,
    /// 0x0B
    DateTimeExtended = 11,
}

const ITEM_TYPES: [(ItemType, &str); 11] = [
    (ItemType::Structure, "Structure"),
    (ItemType::Integer, "Integer"),
    (ItemType::LongInteger, "LongInteger"),
    (ItemType::BigInteger, "BigInteger"),
    (ItemType::Enumeration, "Enumeration"),
    (ItemType::Boolean, "Boolean"),
    (ItemType::TextString, "TextString"),
    (ItemType::ByteString, "ByteString"),
    (ItemType::DateTime, "DateTime"),
    (ItemType::Interval, "Interval"),
    (ItemType::DateTimeExtended, "DateTimeExtended"),
];

impl ItemType {
    /// The type of a type byte, if it is one.
    pub fn from_code(code: u8) -> Option<Self> {
        ITEM_TYPES
            .get(usize::from(code).checked_sub(1)?)
            .map(|(t, _)| *t)
    }

    /// The type named `name` in the JSON form.
    pub fn from_name(name: &str) -> Option<Self> {
        ITEM_TYPES.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
    }

    /// The name of the type in the JSON form.
    pub fn name(self) -> &'static str {
        ITEM_TYPES[self as usize - 1].1
    }
}

impl Value {
    /// The item type of this value.
    pub fn item_type(&self) -> ItemType {
        match self {
            Value::Structure(_) => ItemType::Structure,
            Value::Integer(_) => ItemType::Integer,
            Value::LongInteger(_) => ItemType::LongInteger,
            Value::BigInteger(_) => ItemType::BigInteger,
            Value::Enumeration(_) => ItemType::Enumeration,
            Value::Boolean(_) => ItemType::Boolean,
            Value::TextString(_) => ItemType::TextString,
            Value::ByteString(_) => ItemType::ByteString,
            Value::DateTime(_) => ItemType::DateTime,
            Value::Interval(_) => ItemType::Interval,
            Value::DateTimeExtended(_) => ItemType::DateTimeExtended,
        }
    }
}

impl Ttlv {
    /// An item.
    pub fn new(tag: u32, value: Value) -> Self {
        Self { tag, value }
    }

    /// A structure of `items`.
    pub fn structure(tag: u32, items: Vec<Ttlv>) -> Self {
        Self::new(tag, Value::Structure(items))
    }

    /// An enumeration.
    pub fn enumeration(tag: u32, value: u32) -> Self {
        Self::new(tag, Value::Enumeration(value))
    }

    /// An integer.
    pub fn integer(tag: u32, value: i32) -> Self {
        Self::new(tag, Value::Integer(value))
    }

    /// A text string.
    pub fn text(tag: u32, value: impl Into<String>) -> Self {
        Self::new(tag, Value::TextString(value.into()))
    }

    /// A byte string.
    pub fn bytes(tag: u32, value: impl Into<Vec<u8>>) -> Self {
        Self::new(tag, Value::ByteString(value.into()))
    }

    /// The items of a structure (empty for any other type).
    pub fn items(&self) -> &[Ttlv] {
        match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        }
    }

    /// The first item of this structure with `tag`.
    pub fn child(&self, tag: u32) -> Option<&Ttlv> {
        self.items().iter().find(|i| i.tag == tag)
    }

    /// Every item of this structure with `tag`, in order.
    pub fn children(&self, tag: u32) -> impl Iterator<Item = &Ttlv> {
        self.items().iter().filter(move |i| i.tag == tag)
    }

    /// The first item with `tag`, or [`Error::Missing`] naming it `what`.
    pub fn require(&self, tag: u32, what: &'static str) -> Result<&Ttlv, Error> {
        self.child(tag).ok_or(Error::Missing { what })
    }

    /// This item's text, or [`Error::Invalid`] naming it `what`.
    pub fn as_text(&self, what: &'static str) -> Result<&str, Error> {
        match &self.value {
            Value::TextString(s) => Ok(s),
            _ => Err(Error::Invalid { what }),
        }
    }

    /// This item's bytes.
    pub fn as_bytes(&self, what: &'static str) -> Result<&[u8], Error> {
        match &self.value {
            Value::ByteString(b) => Ok(b),
            _ => Err(Error::Invalid { what }),
        }
    }

    /// This item's enumeration value.
    pub fn as_enum(&self, what: &'static str) -> Result<u32, Error> {
        match self.value {
            Value::Enumeration(v) => Ok(v),
            _ => Err(Error::Invalid { what }),
        }
    }

    /// This item's integer value.
    pub fn as_int(&self, what: &'static str) -> Result<i32, Error> {
        match self.value {
            Value::Integer(v) => Ok(v),
            _ => Err(Error::Invalid { what }),
        }
    }

    /// This item's boolean value.
    pub fn as_bool(&self, what: &'static str) -> Result<bool, Error> {
        match self.value {
            Value::Boolean(v) => Ok(v),
            _ => Err(Error::Invalid { what }),
        }
    }

    /// This item's date-time (seconds since the epoch), from a Date-Time or Date-Time Extended.
    pub fn as_date(&self, what: &'static str) -> Result<i64, Error> {
        match self.value {
            Value::DateTime(v) => Ok(v),
            Value::DateTimeExtended(v) => Ok(v.div_euclid(1_000_000)),
            _ => Err(Error::Invalid { what }),
        }
    }
}

//! Certificate serial numbers.

use std::fmt;
use std::str::FromStr;

/// A certificate serial number as its DER INTEGER content bytes (big-endian, minimal, positive).
///
/// Shedu generates 16 random bytes with the top bit cleared and the next one set: the number is positive,
/// exactly 16 octets long (so its hex form has a fixed width) and carries 126 bits of entropy, far above the
/// 64 bits CA/B Forum asks for. rcgen's default serial (a hash of the public key) repeats when a device
/// re-enrols with the same key, so every certificate gets one of these.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A fresh random serial.
    pub fn random() -> Serial {
        let mut bytes: [u8; 16] = rand::random();
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        Serial(bytes.to_vec())
    }

    /// A serial from INTEGER content bytes, as x509-parser returns them. Leading zero octets are dropped.
    pub fn from_bytes(bytes: &[u8]) -> Serial {
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len().saturating_sub(1));
        Serial(bytes[start..].to_vec())
    }

    /// The big-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hex without separators: the API's and the database's form.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

impl FromStr for Serial {
    type Err = crate::Error;

    /// Accepts hex with or without `:` separators, any case, as openssl and browsers print serials.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let clean: String = s.chars().filter(|c| *c != ':').collect();
        let clean = if clean.len() % 2 == 1 {
            format!("0{clean}")
        } else {
            clean
        };
        let bytes = hex::decode(&clean).map_err(|e| crate::Error::malformed("serial", e))?;
        if bytes.is_empty() || bytes.len() > 21 {
            return Err(crate::Error::malformed("serial", "must be 1 to 20 octets"));
        }
        Ok(Serial::from_bytes(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_fixed_width_and_distinct() {
        let a = Serial::random();
        let b = Serial::random();
        assert_ne!(a, b);
        for s in [&a, &b] {
            assert_eq!(s.as_bytes().len(), 16);
            assert_eq!(s.as_bytes()[0] & 0x80, 0, "must be positive");
            assert_eq!(s.to_hex().len(), 32);
        }
    }

    #[test]
    fn parses_openssl_forms() {
        let s: Serial = "00:4A:bc".parse().unwrap();
        assert_eq!(s.to_hex(), "4abc");
        assert!("zz".parse::<Serial>().is_err());
    }
}

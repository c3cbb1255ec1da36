//! shedu's one bounds-checked DER reader, for the few structures it parses by hand: OCSP requests here,
//! and the private keys the PKCS#11 engine of `shedu-keys` imports into a token; and its one DER writer
//! ([`push_tlv`], [`push_unsigned`], [`tlv`]) for the little DER written by hand (the PKCS#11 engine's
//! signatures and public keys, the fuzz targets' inputs).
//!
//! Every read checks lengths against the remaining input; nothing here can panic or allocate on input.
//! Only single-octet tags and definite lengths up to four octets are accepted, which is all DER allows
//! for our sizes. Errors are [`Error::Malformed`] naming the object being read, and never carry its bytes.

use crate::Error;

/// The INTEGER tag.
pub const TAG_INTEGER: u8 = 0x02;
/// The OCTET STRING tag.
pub const TAG_OCTET_STRING: u8 = 0x04;
/// The OBJECT IDENTIFIER tag.
pub const TAG_OID: u8 = 0x06;
/// The (constructed) SEQUENCE tag.
pub const TAG_SEQUENCE: u8 = 0x30;

/// A cursor over DER bytes.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    what: &'static str,
}

/// One TLV: its tag octet, its content, and the whole encoding (tag and length included).
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    /// The tag octet.
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// The whole encoding: tag, length and content.
    pub raw: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`; `what` names the object in errors ("OCSP request", "private key", …).
    pub fn new(data: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { data, what }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The tag of the next TLV, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// A [`Error::Malformed`] about the object this reader reads, for checks made by the caller.
    pub fn malformed(&self, detail: &str) -> Error {
        Error::malformed(self.what, detail)
    }

    fn err(&self, detail: &str) -> Error {
        self.malformed(detail)
    }

    /// Reads the next TLV of any tag.
    pub fn read(&mut self) -> Result<Tlv<'a>, Error> {
        let (&tag, rest) = self
            .data
            .split_first()
            .ok_or_else(|| self.err("truncated (no tag)"))?;
        if tag & 0x1f == 0x1f {
            return Err(self.err("multi-byte tags are not used here"));
        }
        let (&first, rest) = rest
            .split_first()
            .ok_or_else(|| self.err("truncated (no length)"))?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(self.err("unsupported or truncated length"));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(self.err("length runs past the end"));
        }
        let header = self.data.len() - rest.len();
        let raw = &self.data[..header + len];
        let content = &rest[..len];
        self.data = &rest[len..];
        Ok(Tlv { tag, content, raw })
    }

    /// Reads the next TLV and checks its tag.
    pub fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, Error> {
        let tlv = self.read()?;
        if tlv.tag != tag {
            return Err(self.err(&format!("expected tag {tag:#04x}, found {:#04x}", tlv.tag)));
        }
        Ok(tlv)
    }

    /// Reads the next TLV only if it has `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, Error> {
        if self.peek_tag() == Some(tag) {
            self.expect(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless everything was consumed.
    pub fn finish(&self) -> Result<(), Error> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }

    /// Reads an INTEGER and returns its magnitude as unsigned big-endian bytes without leading zeros
    /// (zero is one `0x00`), refusing negative numbers and an empty encoding.
    pub fn unsigned(&mut self) -> Result<&'a [u8], Error> {
        let content = self.expect(TAG_INTEGER)?.content;
        match content.first() {
            None => Err(self.err("empty INTEGER")),
            Some(b) if b & 0x80 != 0 => Err(self.err("negative INTEGER")),
            Some(_) => {
                let start = content
                    .iter()
                    .position(|&b| b != 0)
                    .unwrap_or(content.len() - 1);
                Ok(&content[start..])
            }
        }
    }
}

/// Appends a DER definite length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Appends one element: its tag, the length of `content`, and `content`.
pub fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// One element as a new vector (see [`push_tlv`]).
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    push_tlv(&mut out, tag, content);
    out
}

/// Appends an unsigned big-endian number as a minimal, positive DER INTEGER.
pub fn push_unsigned(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let trimmed = &magnitude[start..];
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    match trimmed.first() {
        None => content.push(0),
        Some(b) if b & 0x80 != 0 => {
            content.push(0);
            content.extend_from_slice(trimmed);
        }
        Some(_) => content.extend_from_slice(trimmed),
    }
    push_tlv(out, TAG_INTEGER, &content);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths_and_rejects_overruns() {
        let mut r = Reader::new(&[0x30, 0x03, 0x02, 0x01, 0x05], "t");
        let seq = r.expect(0x30).unwrap();
        assert_eq!(seq.content, &[0x02, 0x01, 0x05]);
        assert!(r.finish().is_ok());
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(Reader::new(&long, "t").read().unwrap().content.len(), 0x80);
        assert!(Reader::new(&[0x30, 0x05, 0x00], "t").read().is_err());
        assert!(
            Reader::new(&[0x30, 0x80, 0x00, 0x00], "t").read().is_err(),
            "indefinite length"
        );
        assert!(Reader::new(&[0x30], "t").read().is_err());
        assert!(Reader::new(&[], "t").read().is_err());
    }

    #[test]
    fn the_writer_round_trips_through_the_reader_at_every_length_form() {
        for len in [0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000] {
            let content = vec![0xa5u8; len];
            let der = tlv(TAG_OCTET_STRING, &content);
            let header = match len {
                0..=0x7f => 2,
                0x80..=0xff => 3,
                0x100..=0xffff => 4,
                _ => 5,
            };
            assert_eq!(der.len(), header + len, "minimal length octets for {len}");
            let mut r = Reader::new(&der, "t");
            assert_eq!(r.expect(TAG_OCTET_STRING).unwrap().content, &content[..]);
            assert!(r.finish().is_ok());
        }
        let mut int = Vec::new();
        push_unsigned(&mut int, &[0x00, 0x00, 0x80, 0x01]);
        assert_eq!(int, [0x02, 0x03, 0x00, 0x80, 0x01]);
        assert_eq!(Reader::new(&int, "t").unsigned().unwrap(), &[0x80, 0x01]);
        let mut zero = Vec::new();
        push_unsigned(&mut zero, &[]);
        assert_eq!(zero, [0x02, 0x01, 0x00]);
    }

    // Moved from the PKCS#11 engine's former reader in shedu-keys, assertions unchanged.
    #[test]
    fn reader_rejects_truncation_and_negative_integers() {
        assert!(Reader::new(&[0x30, 0x05, 0x00], "t").read().is_err());
        assert!(Reader::new(&[0x30, 0x80], "t").read().is_err());
        assert!(Reader::new(&[0x02, 0x01, 0xff], "t").unsigned().is_err());
        assert_eq!(
            Reader::new(&[0x02, 0x02, 0x00, 0x80], "t")
                .unsigned()
                .unwrap(),
            &[0x80]
        );
    }

    #[test]
    fn unsigned_strips_leading_zeros_and_keeps_zero() {
        assert_eq!(
            Reader::new(&[0x02, 0x01, 0x00], "t").unsigned().unwrap(),
            &[0x00]
        );
        assert_eq!(
            Reader::new(&[0x02, 0x03, 0x00, 0x00, 0x05], "t")
                .unsigned()
                .unwrap(),
            &[0x05]
        );
        assert!(Reader::new(&[0x02, 0x00], "t").unsigned().is_err());
        assert!(
            Reader::new(&[0x04, 0x01, 0x05], "t").unsigned().is_err(),
            "not an INTEGER"
        );
        let err = Reader::new(&[0x02, 0x01, 0xff], "private key")
            .unsigned()
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Malformed {
                    what: "private key",
                    ..
                }
            ),
            "{err}"
        );
    }
}

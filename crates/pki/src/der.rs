//! A minimal, bounds-checked DER reader for the few structures shedu parses itself (OCSP requests).
//!
//! Every read checks lengths against the remaining input; nothing here can panic or allocate on input.
//! Only definite lengths up to four octets are accepted, which is all DER allows for our sizes.

use crate::Error;

/// A cursor over DER bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    what: &'static str,
}

/// One TLV: its tag octet, its content, and the whole encoding (tag and length included).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) content: &'a [u8],
    pub(crate) raw: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { data, what }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    fn err(&self, detail: &str) -> Error {
        Error::malformed(self.what, detail)
    }

    /// Reads the next TLV of any tag.
    pub(crate) fn read(&mut self) -> Result<Tlv<'a>, Error> {
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
    pub(crate) fn expect(&mut self, tag: u8) -> Result<Tlv<'a>, Error> {
        let tlv = self.read()?;
        if tlv.tag != tag {
            return Err(self.err(&format!("expected tag {tag:#04x}, found {:#04x}", tlv.tag)));
        }
        Ok(tlv)
    }

    /// Reads the next TLV only if it has `tag`.
    pub(crate) fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, Error> {
        if self.peek_tag() == Some(tag) {
            self.expect(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless everything was consumed.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
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
}

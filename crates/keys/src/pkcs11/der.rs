//! The little DER the PKCS#11 engine needs, written by hand so the crate pulls in no ASN.1 library: a
//! strict reader for private keys (PKCS#8, SEC1, PKCS#1), the encoders for `Ecdsa-Sig-Value` and
//! `RSAPublicKey`, and the OCTET STRING wrapping of `CKA_EC_POINT`.

/// The DER is malformed or not what was expected. Deliberately carries no bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerError;

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// Reads consecutive DER elements from a buffer. Only single-byte tags and definite lengths up to four
/// length bytes are accepted, which covers every structure read here.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Reads the next element: its tag and contents.
    pub(crate) fn read_any(&mut self) -> Result<(u8, &'a [u8]), DerError> {
        let (&tag, rest) = self.buf.split_first().ok_or(DerError)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError);
        }
        let (&first, rest) = rest.split_first().ok_or(DerError)?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(DerError);
            }
            let (len_bytes, rest) = rest.split_at(n);
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, rest)
        };
        if rest.len() < len {
            return Err(DerError);
        }
        let (content, rest) = rest.split_at(len);
        self.buf = rest;
        Ok((tag, content))
    }

    /// Reads the next element, which must have `tag`.
    pub(crate) fn read(&mut self, tag: u8) -> Result<&'a [u8], DerError> {
        match self.read_any()? {
            (t, content) if t == tag => Ok(content),
            _ => Err(DerError),
        }
    }

    /// Reads the next element if it has `tag`.
    pub(crate) fn read_optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads an INTEGER and returns its magnitude as unsigned big-endian bytes (PKCS#11 "Big integer"),
    /// refusing negative numbers.
    pub(crate) fn read_unsigned(&mut self) -> Result<&'a [u8], DerError> {
        let content = self.read(TAG_INTEGER)?;
        match content.first() {
            None => Err(DerError),
            Some(b) if b & 0x80 != 0 => Err(DerError),
            Some(_) => {
                let start = content
                    .iter()
                    .position(|&b| b != 0)
                    .unwrap_or(content.len() - 1);
                Ok(&content[start..])
            }
        }
    }

    /// Reads an INTEGER that must be a small non-negative number (a version field).
    pub(crate) fn read_small(&mut self) -> Result<u8, DerError> {
        match self.read_unsigned()? {
            [b] => Ok(*b),
            _ => Err(DerError),
        }
    }
}

/// Appends a DER length.
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

/// Appends one element.
pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// Appends an unsigned big-endian number as a minimal, positive DER INTEGER.
pub(crate) fn push_unsigned(out: &mut Vec<u8>, magnitude: &[u8]) {
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

/// Converts the raw `r || s` a PKCS#11 token returns for `CKM_ECDSA` into the DER `Ecdsa-Sig-Value`
/// X.509 expects. `field_len` is the curve's coordinate size (32 for P-256, 48 for P-384).
pub(crate) fn ecdsa_raw_to_der(raw: &[u8], field_len: usize) -> Result<Vec<u8>, DerError> {
    if raw.len() != 2 * field_len {
        return Err(DerError);
    }
    let (r, s) = raw.split_at(field_len);
    let mut body = Vec::with_capacity(raw.len() + 6);
    push_unsigned(&mut body, r);
    push_unsigned(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 3);
    push_tlv(&mut out, TAG_SEQUENCE, &body);
    Ok(out)
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`, the subjectPublicKey bits of an
/// RSA SPKI.
pub(crate) fn rsa_public_key(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(modulus.len() + exponent.len() + 10);
    push_unsigned(&mut body, modulus);
    push_unsigned(&mut body, exponent);
    let mut out = Vec::with_capacity(body.len() + 4);
    push_tlv(&mut out, TAG_SEQUENCE, &body);
    out
}

/// The public point from `CKA_EC_POINT`. PKCS#11 says it is a DER OCTET STRING (`04 41 04 …`); some
/// tokens return the bare point, which is accepted too when it has exactly the expected length.
pub(crate) fn ec_point_from_attribute(value: &[u8], point_len: usize) -> Result<Vec<u8>, DerError> {
    let mut reader = Reader::new(value);
    if let Ok(inner) = reader.read(TAG_OCTET_STRING)
        && reader.is_empty()
        && inner.len() == point_len
    {
        return Ok(inner.to_vec());
    }
    if value.len() == point_len {
        return Ok(value.to_vec());
    }
    Err(DerError)
}

/// The DER OCTET STRING form of a public point, as `CKA_EC_POINT` wants it.
pub(crate) fn ec_point_attribute(point: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(point.len() + 3);
    push_tlv(&mut out, TAG_OCTET_STRING, point);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_conversion_is_minimal_and_positive() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero
        raw[32] = 0x00; // s has leading zeros to strip
        raw[33] = 0x00;
        raw[34] = 0x01;
        let der = ecdsa_raw_to_der(&raw, 32).unwrap();
        let mut outer = Reader::new(&der);
        let mut seq = Reader::new(outer.read(TAG_SEQUENCE).unwrap());
        assert!(outer.is_empty());
        let r = seq.read(TAG_INTEGER).unwrap();
        assert_eq!(r.len(), 33);
        assert_eq!(&r[..2], &[0x00, 0x80]);
        let s = seq.read(TAG_INTEGER).unwrap();
        assert_eq!(s.len(), 30);
        assert_eq!(s[0], 0x01);
        assert!(seq.is_empty());
        assert!(ecdsa_raw_to_der(&raw[..63], 32).is_err());
        let zero = ecdsa_raw_to_der(&[0u8; 64], 32).unwrap();
        assert_eq!(zero, [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
    }

    #[test]
    fn long_lengths_round_trip() {
        let modulus = vec![0xc3u8; 512];
        let der = rsa_public_key(&modulus, &[0x01, 0x00, 0x01]);
        assert_eq!(&der[..4], &[0x30, 0x82, 0x02, 0x0a]);
        let mut outer = Reader::new(&der);
        let mut seq = Reader::new(outer.read(TAG_SEQUENCE).unwrap());
        assert_eq!(seq.read_unsigned().unwrap(), &modulus[..]);
        assert_eq!(seq.read_unsigned().unwrap(), &[0x01, 0x00, 0x01]);
    }

    #[test]
    fn ec_point_wrapping() {
        let point: Vec<u8> = std::iter::once(4).chain(1..=64).collect();
        let wrapped = ec_point_attribute(&point);
        assert_eq!(&wrapped[..2], &[0x04, 0x41]);
        assert_eq!(ec_point_from_attribute(&wrapped, 65).unwrap(), point);
        assert_eq!(ec_point_from_attribute(&point, 65).unwrap(), point);
        assert!(ec_point_from_attribute(&wrapped, 97).is_err());
    }

    #[test]
    fn reader_rejects_truncation_and_negative_integers() {
        assert!(Reader::new(&[0x30, 0x05, 0x00]).read_any().is_err());
        assert!(Reader::new(&[0x30, 0x80]).read_any().is_err());
        assert!(Reader::new(&[0x02, 0x01, 0xff]).read_unsigned().is_err());
        assert_eq!(
            Reader::new(&[0x02, 0x02, 0x00, 0x80])
                .read_unsigned()
                .unwrap(),
            &[0x80]
        );
    }
}

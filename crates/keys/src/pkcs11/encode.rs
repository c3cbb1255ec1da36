//! The little DER the PKCS#11 engine writes, by hand so the crate pulls in no ASN.1 library: the encoders
//! for `Ecdsa-Sig-Value` and `RSAPublicKey`, and the OCTET STRING wrapping of `CKA_EC_POINT`. Reading and
//! writing DER go through `shedu_pki::der`, the one reader and writer.

pub(crate) use shedu_pki::der::push_tlv;
use shedu_pki::der::{Reader, TAG_OCTET_STRING, TAG_SEQUENCE, push_unsigned};

/// Converts the raw `r || s` a PKCS#11 token returns for `CKM_ECDSA` into the DER `Ecdsa-Sig-Value`
/// X.509 expects. `field_len` is the curve's coordinate size (32 for P-256, 48 for P-384); `None` when
/// `raw` is not twice that long.
pub(crate) fn ecdsa_raw_to_der(raw: &[u8], field_len: usize) -> Option<Vec<u8>> {
    if raw.len() != 2 * field_len {
        return None;
    }
    let (r, s) = raw.split_at(field_len);
    let mut body = Vec::with_capacity(raw.len() + 6);
    push_unsigned(&mut body, r);
    push_unsigned(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 3);
    push_tlv(&mut out, TAG_SEQUENCE, &body);
    Some(out)
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
/// tokens return the bare point, which is accepted too when it has exactly the expected length. `None`
/// when it is neither.
pub(crate) fn ec_point_from_attribute(value: &[u8], point_len: usize) -> Option<Vec<u8>> {
    let mut reader = Reader::new(value, "CKA_EC_POINT");
    if let Ok(inner) = reader.expect(TAG_OCTET_STRING)
        && reader.is_empty()
        && inner.content.len() == point_len
    {
        return Some(inner.content.to_vec());
    }
    if value.len() == point_len {
        return Some(value.to_vec());
    }
    None
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
    use shedu_pki::der::TAG_INTEGER;

    #[test]
    fn ecdsa_conversion_is_minimal_and_positive() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero
        raw[32] = 0x00; // s has leading zeros to strip
        raw[33] = 0x00;
        raw[34] = 0x01;
        let der = ecdsa_raw_to_der(&raw, 32).unwrap();
        let mut outer = Reader::new(&der, "t");
        let mut seq = Reader::new(outer.expect(TAG_SEQUENCE).unwrap().content, "t");
        assert!(outer.is_empty());
        let r = seq.expect(TAG_INTEGER).unwrap().content;
        assert_eq!(r.len(), 33);
        assert_eq!(&r[..2], &[0x00, 0x80]);
        let s = seq.expect(TAG_INTEGER).unwrap().content;
        assert_eq!(s.len(), 30);
        assert_eq!(s[0], 0x01);
        assert!(seq.is_empty());
        assert!(ecdsa_raw_to_der(&raw[..63], 32).is_none());
        let zero = ecdsa_raw_to_der(&[0u8; 64], 32).unwrap();
        assert_eq!(zero, [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
    }

    #[test]
    fn long_lengths_round_trip() {
        let modulus = vec![0xc3u8; 512];
        let der = rsa_public_key(&modulus, &[0x01, 0x00, 0x01]);
        assert_eq!(&der[..4], &[0x30, 0x82, 0x02, 0x0a]);
        let mut outer = Reader::new(&der, "t");
        let mut seq = Reader::new(outer.expect(TAG_SEQUENCE).unwrap().content, "t");
        assert_eq!(seq.unsigned().unwrap(), &modulus[..]);
        assert_eq!(seq.unsigned().unwrap(), &[0x01, 0x00, 0x01]);
    }

    #[test]
    fn ec_point_wrapping() {
        let point: Vec<u8> = std::iter::once(4).chain(1..=64).collect();
        let wrapped = ec_point_attribute(&point);
        assert_eq!(&wrapped[..2], &[0x04, 0x41]);
        assert_eq!(ec_point_from_attribute(&wrapped, 65).unwrap(), point);
        assert_eq!(ec_point_from_attribute(&point, 65).unwrap(), point);
        assert!(ec_point_from_attribute(&wrapped, 97).is_none());
    }
}

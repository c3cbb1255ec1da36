//! The cryptographic operations on managed keys, with aws-lc-rs (the library the key engines and
//! rustls use): AES-GCM (server-chosen 96-bit IV, 128-bit tag) and AES-CBC with PKCS#5 padding,
//! HMAC-SHA256, and signatures (RSA PKCS#1 v1.5 and PSS, ECDSA P-256/P-384, Ed25519) with keys kept as
//! PKCS#8 (private) and SubjectPublicKeyInfo (public).

use aws_lc_rs::aead::{AES_128_GCM, AES_192_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    AES_128, AES_192, AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use aws_lc_rs::{hmac, iv::FixedLength};
use shedu_kmip::{block_cipher_mode, cryptographic_algorithm, hashing_algorithm, padding_method};
use shedu_kmip::{digital_signature_algorithm, result_reason};

use super::Failure;

/// What Cryptographic Parameters ask for (absent fields: the defaults documented per operation).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Params {
    pub(crate) mode: Option<u32>,
    pub(crate) padding: Option<u32>,
    pub(crate) hashing: Option<u32>,
    pub(crate) signature: Option<u32>,
}

fn bad_params(what: &str) -> Failure {
    Failure::new(result_reason::BAD_CRYPTOGRAPHIC_PARAMETERS, what)
}

fn crypto_failed() -> Failure {
    Failure::new(
        result_reason::CRYPTOGRAPHIC_FAILURE,
        "cryptographic failure",
    )
}

/// What AES encryption returns.
pub(crate) struct Sealed {
    pub(crate) data: Vec<u8>,
    pub(crate) iv: Vec<u8>,
    /// The GCM tag (none for CBC).
    pub(crate) tag: Option<Vec<u8>>,
}

/// The inputs of an AES operation.
pub(crate) struct Aes<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) params: Params,
    pub(crate) data: &'a [u8],
    pub(crate) iv: Option<&'a [u8]>,
    /// Authenticated Encryption Additional Data (GCM; empty when absent).
    pub(crate) aad: &'a [u8],
}

/// AES encryption: GCM (the default) or CBC with PKCS#5 padding.
pub(crate) fn aes_encrypt(a: &Aes<'_>) -> Result<Sealed, Failure> {
    let (key, p, data, iv, aad) = (a.key, a.params, a.data, a.iv, a.aad);
    match p.mode.unwrap_or(block_cipher_mode::GCM) {
        block_cipher_mode::GCM => {
            let nonce: [u8; 12] = match iv {
                Some(iv) => iv
                    .try_into()
                    .map_err(|_| bad_params("a GCM IV is 12 bytes"))?,
                None => random()?,
            };
            let sealer = gcm_key(key)?;
            let mut out = data.to_vec();
            let tag = sealer
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut out,
                )
                .map_err(|_| crypto_failed())?;
            Ok(Sealed {
                data: out,
                iv: nonce.to_vec(),
                tag: Some(tag.as_ref().to_vec()),
            })
        }
        block_cipher_mode::CBC => {
            if !matches!(p.padding, None | Some(padding_method::PKCS5)) {
                return Err(bad_params("AES-CBC is served with PKCS#5 padding only"));
            }
            let iv: [u8; 16] = match iv {
                Some(iv) => iv
                    .try_into()
                    .map_err(|_| bad_params("a CBC IV is 16 bytes"))?,
                None => random()?,
            };
            let k = PaddedBlockEncryptingKey::cbc_pkcs7(cipher_key(key)?)
                .map_err(|_| crypto_failed())?;
            let mut out = data.to_vec();
            k.less_safe_encrypt(&mut out, EncryptionContext::Iv128(FixedLength::from(iv)))
                .map_err(|_| crypto_failed())?;
            Ok(Sealed {
                data: out,
                iv: iv.to_vec(),
                tag: None,
            })
        }
        _ => Err(bad_params("AES is served in GCM and CBC modes")),
    }
}

/// AES decryption; a wrong key, IV, tag or padding is a `Cryptographic Failure`.
pub(crate) fn aes_decrypt(a: &Aes<'_>, tag: Option<&[u8]>) -> Result<Vec<u8>, Failure> {
    let (key, p, data, iv, aad) = (a.key, a.params, a.data, a.iv, a.aad);
    let iv = iv.ok_or(Failure::new(
        result_reason::MISSING_DATA,
        "decryption needs the IV/Counter/Nonce",
    ))?;
    match p.mode.unwrap_or(block_cipher_mode::GCM) {
        block_cipher_mode::GCM => {
            let nonce: [u8; 12] = iv
                .try_into()
                .map_err(|_| bad_params("a GCM IV is 12 bytes"))?;
            let tag = tag.ok_or(Failure::new(
                result_reason::MISSING_DATA,
                "GCM decryption needs the Authenticated Encryption Tag",
            ))?;
            let mut buf = data.to_vec();
            buf.extend_from_slice(tag);
            let plain = gcm_key(key)?
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut buf,
                )
                .map_err(|_| crypto_failed())?;
            Ok(plain.to_vec())
        }
        block_cipher_mode::CBC => {
            let iv: [u8; 16] = iv
                .try_into()
                .map_err(|_| bad_params("a CBC IV is 16 bytes"))?;
            let k = PaddedBlockDecryptingKey::cbc_pkcs7(cipher_key(key)?)
                .map_err(|_| crypto_failed())?;
            let mut buf = data.to_vec();
            let plain = k
                .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv)))
                .map_err(|_| crypto_failed())?;
            Ok(plain.to_vec())
        }
        _ => Err(bad_params("AES is served in GCM and CBC modes")),
    }
}

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// A fresh key pair as (PKCS#8, SubjectPublicKeyInfo) for `algorithm` and `length`.
pub(crate) fn generate_pair(algorithm: u32, length: i32) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    use shedu_pki::KeyType;
    let key_type = match (algorithm, length) {
        (cryptographic_algorithm::RSA, 2048) => KeyType::Rsa2048,
        (cryptographic_algorithm::RSA, 3072) => KeyType::Rsa3072,
        (cryptographic_algorithm::RSA, 4096) => KeyType::Rsa4096,
        (cryptographic_algorithm::ECDSA | cryptographic_algorithm::EC, 256) => KeyType::EcP256,
        (cryptographic_algorithm::ECDSA | cryptographic_algorithm::EC, 384) => KeyType::EcP384,
        (cryptographic_algorithm::ED25519, 255 | 256) => KeyType::Ed25519,
        _ => {
            return Err(Failure::invalid(
                "key pairs are RSA 2048/3072/4096, EC P-256/P-384 or Ed25519",
            ));
        }
    };
    let pair = shedu_keys::ExportedKey::generate(key_type)
        .map_err(|_| Failure::general("key generation failed"))?;
    Ok((pair.pkcs8.to_vec(), pair.spki))
}

/// Signs `data` with a PKCS#8 private key of `algorithm` (RSA, ECDSA/EC, Ed25519).
pub(crate) fn sign(
    pkcs8: &[u8],
    algorithm: u32,
    p: Params,
    data: &[u8],
) -> Result<Vec<u8>, Failure> {
    let rng = SystemRandom::new();
    match algorithm {
        cryptographic_algorithm::RSA => {
            let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| crypto_failed())?;
            let mut sig = vec![0; key.public_modulus_len()];
            key.sign(rsa_algorithms(p)?.0, &rng, data, &mut sig)
                .map_err(|_| crypto_failed())?;
            Ok(sig)
        }
        cryptographic_algorithm::ECDSA | cryptographic_algorithm::EC => {
            let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8)
                .or_else(|_| {
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8)
                })
                .map_err(|_| crypto_failed())?;
            Ok(key
                .sign(&rng, data)
                .map_err(|_| crypto_failed())?
                .as_ref()
                .to_vec())
        }
        cryptographic_algorithm::ED25519 => {
            let key =
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| crypto_failed())?;
            Ok(key.sign(data).as_ref().to_vec())
        }
        _ => Err(bad_params("this key does not sign")),
    }
}

/// Verifies a signature with a SubjectPublicKeyInfo public key of `algorithm`.
pub(crate) fn verify(
    spki: &[u8],
    algorithm: u32,
    p: Params,
    data: &[u8],
    sig: &[u8],
) -> Result<bool, Failure> {
    let alg: &dyn signature::VerificationAlgorithm = match algorithm {
        cryptographic_algorithm::RSA => rsa_algorithms(p)?.1,
        cryptographic_algorithm::ECDSA | cryptographic_algorithm::EC => {
            // The curve is the key's: try P-256, then P-384.
            let p256 = signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, spki);
            if p256.verify(data, sig).is_ok() {
                return Ok(true);
            }
            &signature::ECDSA_P384_SHA384_ASN1
        }
        cryptographic_algorithm::ED25519 => &signature::ED25519,
        _ => return Err(bad_params("this key does not verify")),
    };
    Ok(signature::UnparsedPublicKey::new(alg, spki)
        .verify(data, sig)
        .is_ok())
}

fn is_pss(p: Params) -> bool {
    p.padding == Some(padding_method::PSS)
        || p.signature == Some(digital_signature_algorithm::RSASSA_PSS)
}

fn hash_of(p: Params) -> u32 {
    match (p.hashing, p.signature) {
        (Some(h), _) => h,
        (None, Some(digital_signature_algorithm::SHA384_WITH_RSA_ENCRYPTION)) => {
            hashing_algorithm::SHA_384
        }
        (None, Some(digital_signature_algorithm::SHA512_WITH_RSA_ENCRYPTION)) => {
            hashing_algorithm::SHA_512
        }
        _ => hashing_algorithm::SHA_256,
    }
}

/// The RSA algorithms (signing, verifying) that Cryptographic Parameters ask for.
fn rsa_algorithms(
    p: Params,
) -> Result<
    (
        &'static dyn signature::RsaEncoding,
        &'static dyn signature::VerificationAlgorithm,
    ),
    Failure,
> {
    use signature::*;
    Ok(match (is_pss(p), hash_of(p)) {
        (false, hashing_algorithm::SHA_256) => (&RSA_PKCS1_SHA256, &RSA_PKCS1_2048_8192_SHA256),
        (false, hashing_algorithm::SHA_384) => (&RSA_PKCS1_SHA384, &RSA_PKCS1_2048_8192_SHA384),
        (false, hashing_algorithm::SHA_512) => (&RSA_PKCS1_SHA512, &RSA_PKCS1_2048_8192_SHA512),
        (true, hashing_algorithm::SHA_256) => (&RSA_PSS_SHA256, &RSA_PSS_2048_8192_SHA256),
        (true, hashing_algorithm::SHA_384) => (&RSA_PSS_SHA384, &RSA_PSS_2048_8192_SHA384),
        (true, hashing_algorithm::SHA_512) => (&RSA_PSS_SHA512, &RSA_PSS_2048_8192_SHA512),
        _ => return Err(bad_params("RSA signatures use SHA-256, SHA-384 or SHA-512")),
    })
}

fn gcm_key(key: &[u8]) -> Result<LessSafeKey, Failure> {
    let alg = match key.len() {
        16 => &AES_128_GCM,
        24 => &AES_192_GCM,
        32 => &AES_256_GCM,
        _ => return Err(bad_params("not an AES key")),
    };
    Ok(LessSafeKey::new(
        UnboundKey::new(alg, key).map_err(|_| crypto_failed())?,
    ))
}

fn cipher_key(key: &[u8]) -> Result<UnboundCipherKey, Failure> {
    let alg = match key.len() {
        16 => &AES_128,
        24 => &AES_192,
        32 => &AES_256,
        _ => return Err(bad_params("not an AES key")),
    };
    UnboundCipherKey::new(alg, key).map_err(|_| crypto_failed())
}

fn random<const N: usize>() -> Result<[u8; N], Failure> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| Failure::general("no randomness"))?;
    Ok(out)
}

/// Wraps `plaintext` under the AES key `kek` (128 or 256 bits): NIST key wrap (RFC 3394, SP 800-38F
/// KW; `plaintext` a multiple of 8 bytes, at least 16) or, with `padded`, key wrap with padding
/// (RFC 5649, KWP; any length). aws-lc-rs's key wrap, the library the rest of the key manager uses.
pub(crate) fn aes_key_wrap(kek: &[u8], plaintext: &[u8], padded: bool) -> Result<Vec<u8>, Failure> {
    use aws_lc_rs::key_wrap::{self, AesKek, KeyWrap, KeyWrapPadded};
    let cipher = match kek.len() {
        16 => &key_wrap::AES_128,
        32 => &key_wrap::AES_256,
        _ => {
            return Err(Failure::new(
                result_reason::FEATURE_NOT_SUPPORTED,
                "the wrapping key must be AES-128 or AES-256",
            ));
        }
    };
    let kek = AesKek::new(cipher, kek).map_err(|_| crypto_failed())?;
    // KWP pads to a multiple of 8, then adds an 8-byte block.
    let mut out = vec![0u8; plaintext.len() + 16];
    let len = if padded {
        kek.wrap_with_padding(plaintext, &mut out)
            .map_err(|_| crypto_failed())?
            .len()
    } else {
        if plaintext.len() < 16 || !plaintext.len().is_multiple_of(8) {
            return Err(bad_params(
                "NIST key wrap needs a multiple of 8 bytes, at least 16: use AESKeyWrapPadding",
            ));
        }
        kek.wrap(plaintext, &mut out)
            .map_err(|_| crypto_failed())?
            .len()
    };
    out.truncate(len);
    Ok(out)
}

/// The inputs of a key derivation (KMIP 1.4 §4.6, Derivation Parameters).
pub(crate) struct Derivation<'a> {
    /// The Derivation Method.
    pub(crate) method: u32,
    /// The bytes to derive, at most [`MAX_DERIVED`].
    pub(crate) length: usize,
    /// The derivation key's material (absent for Hash over Derivation Data).
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) params: Params,
    /// The encryption algorithm of method Encrypt (Cryptographic Parameters' Cryptographic Algorithm).
    pub(crate) cipher: Option<u32>,
    pub(crate) data: Option<&'a [u8]>,
    pub(crate) salt: Option<&'a [u8]>,
    pub(crate) iterations: Option<i32>,
    pub(crate) iv: Option<&'a [u8]>,
}

/// The most bytes a derivation makes (8192 bits), and the most PBKDF2 iterations a request may ask: a
/// client may not make the server spin (100,000 iterations are tens of milliseconds of one core, run
/// on the request's own task).
pub(crate) const MAX_DERIVED: usize = 1024;
const MAX_ITERATIONS: u32 = 100_000;

/// Derives `d.length` bytes as PyKMIP's server does: PBKDF2 (HMAC of the Hashing Algorithm, with the
/// Salt and Iteration Count), Hash (of the Derivation Data, or else of the key), HMAC and HKDF (RFC 5869
/// with the Salt and the Derivation Data as info), NIST SP 800-108 counter mode (HMAC, a 32-bit counter
/// before the Derivation Data as fixed input), and Encrypt (the Derivation Data encrypted under the key:
/// AES or Blowfish in CBC mode with PKCS#5 padding and the given IV).
pub(crate) fn derive(d: &Derivation<'_>) -> Result<zeroize::Zeroizing<Vec<u8>>, Failure> {
    use shedu_kmip::derivation_method as method;
    let key = || {
        d.key.ok_or(Failure::new(
            result_reason::MISSING_DATA,
            "the derivation needs a key",
        ))
    };
    let data = || {
        d.data.ok_or(Failure::new(
            result_reason::MISSING_DATA,
            "the derivation needs Derivation Data",
        ))
    };
    let hash = || {
        d.params.hashing.ok_or(Failure::new(
            result_reason::MISSING_DATA,
            "the derivation needs a Hashing Algorithm",
        ))
    };
    let mut out = zeroize::Zeroizing::new(match d.method {
        method::PBKDF2 => {
            use aws_lc_rs::pbkdf2;
            let alg = match hash()? {
                hashing_algorithm::SHA_1 => pbkdf2::PBKDF2_HMAC_SHA1,
                hashing_algorithm::SHA_256 => pbkdf2::PBKDF2_HMAC_SHA256,
                hashing_algorithm::SHA_384 => pbkdf2::PBKDF2_HMAC_SHA384,
                hashing_algorithm::SHA_512 => pbkdf2::PBKDF2_HMAC_SHA512,
                _ => return Err(bad_params("PBKDF2 uses SHA-1, SHA-256, SHA-384 or SHA-512")),
            };
            let salt = d.salt.ok_or(Failure::new(
                result_reason::MISSING_DATA,
                "PBKDF2 needs a Salt",
            ))?;
            let iterations = d
                .iterations
                .and_then(|i| u32::try_from(i).ok())
                .filter(|i| (1..=MAX_ITERATIONS).contains(i))
                .and_then(std::num::NonZeroU32::new)
                .ok_or_else(|| {
                    Failure::invalid(format!(
                        "PBKDF2 needs an Iteration Count from 1 to {MAX_ITERATIONS}"
                    ))
                })?;
            let mut out = vec![0u8; d.length];
            pbkdf2::derive(alg, iterations, salt, key()?, &mut out);
            out
        }
        method::HASH => {
            use aws_lc_rs::digest;
            let alg = match hash()? {
                hashing_algorithm::SHA_1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
                hashing_algorithm::SHA_224 => &digest::SHA224,
                hashing_algorithm::SHA_256 => &digest::SHA256,
                hashing_algorithm::SHA_384 => &digest::SHA384,
                hashing_algorithm::SHA_512 => &digest::SHA512,
                _ => return Err(bad_params("Hash derivation uses SHA-1 or SHA-2")),
            };
            let input = match (d.data, d.key) {
                (Some(data), _) => data,
                (None, Some(key)) => key,
                (None, None) => data()?,
            };
            digest::digest(alg, input).as_ref().to_vec()
        }
        method::HMAC | method::HKDF => {
            let alg = hmac_algorithm(hash()?)?;
            // RFC 5869: an absent salt is a block of zeros, which HMAC reads as the empty key.
            let prk = hmac::sign(&hmac::Key::new(alg, d.salt.unwrap_or(&[])), key()?);
            let prk = hmac::Key::new(alg, prk.as_ref());
            let info = d.data.unwrap_or(&[]);
            let mut out = Vec::new();
            let mut last: Vec<u8> = Vec::new();
            for i in 1..=255u8 {
                if out.len() >= d.length {
                    break;
                }
                let mut ctx = hmac::Context::with_key(&prk);
                ctx.update(&last);
                ctx.update(info);
                ctx.update(&[i]);
                last = ctx.sign().as_ref().to_vec();
                out.extend_from_slice(&last);
            }
            out
        }
        method::NIST800_108_C => {
            let k = hmac::Key::new(hmac_algorithm(hash()?)?, key()?);
            let fixed = d.data.unwrap_or(&[]);
            let mut out = Vec::new();
            let mut i = 1u32;
            while out.len() < d.length {
                let mut ctx = hmac::Context::with_key(&k);
                ctx.update(&i.to_be_bytes());
                ctx.update(fixed);
                out.extend_from_slice(ctx.sign().as_ref());
                i += 1;
            }
            out
        }
        method::ENCRYPT => encrypt_derivation(d, key()?, data()?)?,
        _ => {
            return Err(Failure::new(
                result_reason::FEATURE_NOT_SUPPORTED,
                "the Derivation Method is PBKDF2, Hash, HMAC, HKDF, NIST800-108-C or Encrypt",
            ));
        }
    });
    if out.len() < d.length {
        return Err(Failure::new(
            result_reason::CRYPTOGRAPHIC_FAILURE,
            "the derivation method makes fewer bytes than the length asked",
        ));
    }
    out.truncate(d.length);
    Ok(out)
}

fn hmac_algorithm(hash: u32) -> Result<hmac::Algorithm, Failure> {
    Ok(match hash {
        hashing_algorithm::SHA_1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        hashing_algorithm::SHA_224 => hmac::HMAC_SHA224,
        hashing_algorithm::SHA_256 => hmac::HMAC_SHA256,
        hashing_algorithm::SHA_384 => hmac::HMAC_SHA384,
        hashing_algorithm::SHA_512 => hmac::HMAC_SHA512,
        _ => return Err(bad_params("HMAC uses SHA-1 or SHA-2")),
    })
}

/// Derivation method Encrypt: the Derivation Data under the key in CBC mode with PKCS#5 padding and the
/// request's IV, with AES (aws-lc-rs) or Blowfish (RustCrypto's, which PyKMIP's suite derives with).
fn encrypt_derivation(d: &Derivation<'_>, key: &[u8], data: &[u8]) -> Result<Vec<u8>, Failure> {
    if d.params.mode != Some(block_cipher_mode::CBC)
        || !matches!(d.params.padding, None | Some(padding_method::PKCS5))
    {
        return Err(bad_params(
            "derivation by encryption is CBC with PKCS#5 padding",
        ));
    }
    let iv = d.iv.ok_or(Failure::new(
        result_reason::MISSING_INITIALIZATION_VECTOR,
        "derivation by encryption needs an Initialization Vector",
    ))?;
    match d.cipher {
        Some(cryptographic_algorithm::AES) => Ok(aes_encrypt(&Aes {
            key,
            params: d.params,
            data,
            iv: Some(iv),
            aad: &[],
        })?
        .data),
        Some(cryptographic_algorithm::BLOWFISH) => blowfish_cbc(key, iv, data),
        _ => Err(bad_params("derivation by encryption uses AES or Blowfish")),
    }
}

/// Blowfish in CBC mode with PKCS#5 padding (8-byte blocks).
fn blowfish_cbc(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, Failure> {
    use cipher::{Array, BlockCipherEncrypt, KeyInit};
    let bf = <blowfish::Blowfish>::new_from_slice(key)
        .map_err(|_| bad_params("a Blowfish key is 4 to 56 bytes"))?;
    let mut chain: [u8; 8] = iv
        .try_into()
        .map_err(|_| bad_params("a Blowfish CBC IV is 8 bytes"))?;
    let pad = 8 - data.len() % 8;
    let mut padded = data.to_vec();
    padded.resize(data.len() + pad, u8::try_from(pad).unwrap_or(8));
    let mut out = Vec::with_capacity(padded.len());
    for block in padded.chunks_exact(8) {
        let mut b = Array::from(chain);
        for (x, y) in b.iter_mut().zip(block) {
            *x ^= y;
        }
        bf.encrypt_block(&mut b);
        chain = b.into();
        out.extend_from_slice(&chain);
    }
    Ok(out)
}

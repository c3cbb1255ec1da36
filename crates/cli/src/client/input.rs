//! Files the client commands read and write: CSRs, CA certificates and keys in, certificates out.
//!
//! Kept apart from the HTTP code so the few format decisions (PEM vs DER CSRs) are in one place and
//! testable without a server.

use std::path::Path;

use anyhow::Context;

/// A text file (PEM). The message names the file and what it was meant to be, never its contents, since
/// some of these files hold private keys.
pub(crate) fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the {what} {} is not a PEM text file", path.display()))
}

/// The `csr_pem` value for a CSR file: PEM as is; anything else is taken as DER and sent base64-encoded,
/// which the API accepts in the same field.
pub(crate) fn csr_payload(path: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read the CSR {}", path.display()))?;
    if bytes.is_empty() {
        anyhow::bail!("the CSR file {} is empty", path.display());
    }
    let trimmed = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&bytes[..0], |start| &bytes[start..]);
    if trimmed.starts_with(b"-----BEGIN") {
        return String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("the CSR {} is not valid PEM text", path.display()));
    }
    Ok(base64(&bytes))
}

/// Writes a certificate or chain (public data, so ordinary permissions) and says so on stderr.
pub(crate) fn write_pem(path: &Path, pem: &str, what: &str) -> anyhow::Result<()> {
    std::fs::write(path, pem).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote the {what} to {}", path.display());
    Ok(())
}

/// Standard base64 with padding. A dozen lines here instead of one more dependency for the one DER CSR
/// case.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test reports failure
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn csr_files_go_as_pem_or_base64_der() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("a.csr");
        std::fs::write(&pem, "\n-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n").unwrap();
        assert!(csr_payload(&pem).unwrap().contains("-----BEGIN"));
        let der = dir.path().join("a.der");
        std::fs::write(&der, [0x30, 0x82, 0x01]).unwrap();
        assert_eq!(csr_payload(&der).unwrap(), "MIIB");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        assert!(csr_payload(&empty).is_err());
    }
}

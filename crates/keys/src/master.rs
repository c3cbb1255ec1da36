//! The master secret the software keystore's key-encryption key is derived from.

use std::fmt;
use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use crate::Error;

/// 32 secret bytes. Its `Debug` never prints them.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> MasterKey {
        MasterKey(Zeroizing::new(rand::random()))
    }

    /// Parses the hex form (64 hex digits, surrounding whitespace ignored), as in the key file and in
    /// `SHEDU_MASTER_KEY`.
    pub fn from_hex(text: &str) -> Result<MasterKey, Error> {
        let mut out = Zeroizing::new([0u8; 32]);
        let text = text.trim();
        if text.len() != 64 {
            return Err(Error::MasterKey("expected 64 hex digits".into()));
        }
        for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
            let pair =
                std::str::from_utf8(chunk).map_err(|_| Error::MasterKey("not hex".into()))?;
            out[i] =
                u8::from_str_radix(pair, 16).map_err(|_| Error::MasterKey("not hex".into()))?;
        }
        Ok(MasterKey(out))
    }

    /// Reads the key file, or creates it (mode 0600, fresh random key) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => MasterKey::from_hex(&text)
                .map_err(|e| Error::MasterKey(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate();
                write_secret_file(path, key.to_hex().as_bytes()).map_err(|e| {
                    Error::MasterKey(format!("cannot create {}: {e}", path.display()))
                })?;
                Ok(key)
            }
            Err(e) => Err(Error::MasterKey(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Derives the master key from a passphrase with Argon2id (m = 64 MiB, t = 3, p = 1), so an operator can
    /// keep the root of trust in their head or a secret manager instead of a file. `salt` is stored beside the
    /// data (it is not secret) and makes the derivation unique to this installation.
    pub fn from_passphrase(passphrase: &str, salt: &[u8]) -> Result<MasterKey, Error> {
        if passphrase.chars().count() < 12 {
            return Err(Error::MasterKey(
                "the passphrase needs at least 12 characters".into(),
            ));
        }
        let params = argon2::Params::new(64 * 1024, 3, 1, Some(32))
            .map_err(|e| Error::MasterKey(format!("Argon2 parameters: {e}")))?;
        let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        kdf.hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
            .map_err(|e| Error::MasterKey(format!("Argon2id: {e}")))?;
        Ok(MasterKey(out))
    }

    /// The hex form, for writing the key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(64));
        for b in self.0.iter() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> MasterKey {
        MasterKey(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Creates a file readable only by its owner (0600 on Unix) and writes `contents`; fails if it exists, so
/// a secret is never overwritten.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Creates `dir` (and its parents) when missing and makes it private to this user (0700 on Unix): the data
/// folder holds sealed keys, tokens and the database, and nobody else needs to list it.
pub fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_derive_stable_salted_keys() {
        let a = MasterKey::from_passphrase("correct horse battery staple", b"salt-one-16bytes")
            .unwrap();
        let b = MasterKey::from_passphrase("correct horse battery staple", b"salt-one-16bytes")
            .unwrap();
        let c = MasterKey::from_passphrase("correct horse battery staple", b"salt-two-16bytes")
            .unwrap();
        let d = MasterKey::from_passphrase("correct horse battery stapler", b"salt-one-16bytes")
            .unwrap();
        assert_eq!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), c.bytes());
        assert_ne!(a.bytes(), d.bytes());
        assert!(MasterKey::from_passphrase("short", b"salt-one-16bytes").is_err());
    }

    #[test]
    fn hex_round_trip_and_debug_redacts() {
        let k = MasterKey::generate();
        let k2 = MasterKey::from_hex(&k.to_hex()).unwrap();
        assert_eq!(k.bytes(), k2.bytes());
        assert_eq!(format!("{k:?}"), "MasterKey(<redacted>)");
        assert!(MasterKey::from_hex("abcd").is_err());
    }
}

//! Key engines for shedu. Every CA key sits behind [`Signer`]; the rest of the platform signs through
//! it and never sees key material.
//!
//! The `software` engine ([`Keystore`]) keeps keys only sealed with AES-256-GCM under a key-encryption key
//! derived from a master secret; each sealed key binds its owner's id as associated data, so a ciphertext
//! copied onto another CA's record does not open.
#![warn(missing_docs)]

mod error;
mod master;
pub mod pkcs11;
mod signer;
mod software;
mod unseal;

pub use error::Error;
pub use master::{MasterKey, make_private_dir, write_secret_file};
pub use pkcs11::{Pkcs11Config, Pkcs11Engine};
pub use signer::{CaSigner, Signer};
pub use software::{ExportedKey, Keystore, SoftwareKey};
pub use unseal::{MIN_INPUT_LEN, UnsealKek, WRAPPED_LEN};

//! `shedu keys rotate-master`: replace the master key that seals every software key and webhook secret.
//!
//! Run it with the server stopped. Order of work, so that a crash leaves a recoverable state: the new
//! master key and re-wrapped TLS key files are written beside the old ones (`*.new`), then the database
//! is re-wrapped in one transaction, then the new files are renamed over the old ones. The old master key
//! is gone afterwards and opens nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use shedu_core::rewrap_database_keys;
use shedu_keys::{Keystore, MasterKey, write_secret_file};
use shedu_store::{Store, redact_url};

use crate::config::ServeArgs;

/// The variable that holds the new passphrase when the master key is passphrase-derived.
const NEW_PASSPHRASE: &str = "SHEDU_NEW_MASTER_PASSPHRASE";

/// `shedu keys …`
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Re-wrap every sealed key under a new master key (stop the server first).
    RotateMaster(RotateArgs),
}

/// Options of `rotate-master`: the same data folder, database and master key options as `serve` (with
/// `--unseal`, the new master key is wrapped under the same key-encryption key into
/// `<data-dir>/master.key.wrapped`).
#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Where to write the new master key when the current one comes from SHEDU_MASTER_KEY (the operator then
    /// moves it into that variable). Ignored when the master key is a file (the file is replaced) or comes
    /// from SHEDU_MASTER_PASSPHRASE (the new passphrase comes from SHEDU_NEW_MASTER_PASSPHRASE and a new
    /// salt replaces `<data-dir>/master.salt`).
    #[arg(long)]
    new_master_key_file: Option<PathBuf>,
}

pub(crate) async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::RotateMaster(args) => rotate_master(args).await,
    }
}

async fn rotate_master(args: RotateArgs) -> anyhow::Result<()> {
    let s = args.serve.resolve()?;
    // The current key comes from where `serve` takes it; the successor goes to the same kind of place.
    let (old, _) = crate::serve::load_master_key(&s, false)?;
    let (new, target, staged_contents) = if let Some(source) = &s.unseal {
        // Auto-unseal: the new key is wrapped under the same key-encryption key (same input, same salt).
        let kek = crate::unseal::kek(&s.data_dir, source, s.pkcs11.as_ref(), false)?;
        let new = MasterKey::generate();
        let wrapped = kek.wrap(&new)?;
        (new, s.data_dir.join(crate::unseal::WRAPPED_FILE), wrapped)
    } else if std::env::var("SHEDU_MASTER_KEY").is_ok() {
        let target = args
            .new_master_key_file
            .context("the master key comes from SHEDU_MASTER_KEY: give --new-master-key-file for the new one")?;
        let new = MasterKey::generate();
        let hex = new.to_hex();
        (new, target, hex.as_bytes().to_vec())
    } else if std::env::var("SHEDU_MASTER_PASSPHRASE").is_ok() {
        // A passphrase-derived key is replaced by the new passphrase's key under a fresh salt; the salt
        // file is what changes on disk.
        let passphrase = std::env::var(NEW_PASSPHRASE).with_context(|| {
            format!("the master key comes from SHEDU_MASTER_PASSPHRASE: set {NEW_PASSPHRASE} to the new passphrase")
        })?;
        let salt = rand::random::<[u8; 16]>().to_vec();
        let new = MasterKey::from_passphrase(&passphrase, &salt).context(NEW_PASSPHRASE)?;
        (new, crate::serve::master_salt_path(&s), salt)
    } else {
        let new = MasterKey::generate();
        let hex = new.to_hex();
        (new, s.master_key_file.clone(), hex.as_bytes().to_vec())
    };
    let (old_ks, new_ks) = (Keystore::new(&old)?, Keystore::new(&new)?);

    // 1. Re-wrap the TLS keys in memory (this also proves the current key opens them), then stage the new
    //    files beside the old ones.
    let mut rewrapped = Vec::new();
    for file in shedu_server::tls::SEALED_KEY_FILES {
        let path = file.path(&s.data_dir);
        if !path.exists() {
            continue;
        }
        let sealed =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let key = old_ks
            .open(file.owner, file.key_type, &sealed)
            .with_context(|| {
                format!(
                    "{} does not open with the current master key; nothing was changed",
                    path.display()
                )
            })?;
        rewrapped.push((path, new_ks.seal(file.owner, &key)?));
    }
    let staged_master = with_suffix(&target, "new");
    let _ = std::fs::remove_file(&staged_master);
    write_secret_file(&staged_master, &staged_contents)
        .with_context(|| format!("cannot write {}", staged_master.display()))?;
    let mut staged_tls = Vec::new();
    for (path, sealed) in rewrapped {
        let staged = with_suffix(&path, "new");
        let _ = std::fs::remove_file(&staged);
        write_secret_file(&staged, &sealed)?;
        staged_tls.push((staged, path));
    }

    // 2. The database, in one transaction.
    let store = Store::connect(&s.database_url, &shedu_core::EVENT_WORDS)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&s.database_url)))?;
    let count = match rewrap_database_keys(&store, &old_ks, &new_ks).await {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&staged_master);
            for (staged, _) in &staged_tls {
                let _ = std::fs::remove_file(staged);
            }
            bail!("{e}");
        }
    };
    store.close().await;

    // 3. Swap the files in.
    for (staged, path) in &staged_tls {
        std::fs::rename(staged, path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
    }
    std::fs::rename(&staged_master, &target)
        .with_context(|| format!("cannot replace {}", target.display()))?;
    println!(
        "re-wrapped {count} sealed database keys and secrets and {} TLS key files under a new master key in {}",
        staged_tls.len(),
        target.display()
    );
    if std::env::var("SHEDU_MASTER_KEY").is_ok() {
        println!(
            "set SHEDU_MASTER_KEY to the contents of {} before the next start",
            target.display()
        );
    } else if std::env::var("SHEDU_MASTER_PASSPHRASE").is_ok() {
        println!(
            "start the server with SHEDU_MASTER_PASSPHRASE set to the new passphrase ({NEW_PASSPHRASE})"
        );
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

//! `--unseal kdf:<source>`: the master key lives on disk only wrapped (`<data-dir>/master.key.wrapped`)
//! under a key-encryption key derived from machine-bound input (HKDF-SHA256, salt `<data-dir>/unseal.salt`;
//! the pure part is `shedu_keys::UnsealKek`). This module reads the input and the files.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shedu_keys::{MasterKey, Pkcs11Config, Pkcs11Engine, UnsealKek, write_secret_file};
use zeroize::Zeroizing;

/// The wrapped master key, in the data folder.
pub(crate) const WRAPPED_FILE: &str = "master.key.wrapped";
/// The HKDF salt, in the data folder.
pub(crate) const SALT_FILE: &str = "unseal.salt";
/// Where `machine-id` reads from.
const MACHINE_ID: &str = "/etc/machine-id";
/// Where `dmi` reads from: the firmware's (SMBIOS) identity of the machine, readable by root only.
const DMI_DIR: &str = "/sys/class/dmi/id";
/// Values boards ship instead of a real identity: never machine-bound input.
const DMI_PLACEHOLDERS: [&str; 9] = [
    "",
    "not specified",
    "not applicable",
    "not available",
    "none",
    "default string",
    "to be filled by o.e.m.",
    "system serial number",
    "0123456789",
];
/// How long an `exec:` program may run.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// The most output of an `exec:` program that is read.
const EXEC_MAX_OUTPUT: u64 = 64 * 1024;

/// Where the machine-bound input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UnsealSource {
    /// The bytes of a file (tests, or a secret mounted by the platform).
    File(PathBuf),
    /// `/etc/machine-id`.
    MachineId,
    /// The firmware's product UUID and serial number (`/sys/class/dmi/id`, root only).
    Dmi,
    /// A program's standard output: hex key material (EdgeX's hook).
    Exec(PathBuf),
    /// Not derived: the master key is encrypted by the AES-256 key of this label in the PKCS#11 token
    /// (`--pkcs11-module`, `--pkcs11-token-label`), made there at the first start.
    Pkcs11(String),
}

impl UnsealSource {
    /// `kdf:file:<path>`, `kdf:machine-id`, `kdf:dmi`, `kdf:exec:<program>`.
    pub(crate) fn parse(text: &str) -> anyhow::Result<UnsealSource> {
        if let Some(label) = text.strip_prefix("pkcs11:") {
            if label.is_empty() {
                bail!("--unseal pkcs11:<label> needs the label of the token's key");
            }
            return Ok(UnsealSource::Pkcs11(label.to_string()));
        }
        let Some(source) = text.strip_prefix("kdf:") else {
            bail!(
                "--unseal must be kdf:<source> (kdf:machine-id, kdf:dmi, kdf:file:<path>, kdf:exec:<program>) or pkcs11:<label>, not {text:?}"
            );
        };
        if source == "machine-id" {
            return Ok(UnsealSource::MachineId);
        }
        if source == "dmi" {
            return Ok(UnsealSource::Dmi);
        }
        if let Some(path) = source.strip_prefix("file:").filter(|p| !p.is_empty()) {
            return Ok(UnsealSource::File(PathBuf::from(path)));
        }
        if let Some(program) = source.strip_prefix("exec:").filter(|p| !p.is_empty()) {
            return Ok(UnsealSource::Exec(PathBuf::from(program)));
        }
        bail!(
            "unknown --unseal source {source:?}: expected machine-id, dmi, file:<path> or exec:<program>"
        )
    }

    /// The machine-bound input.
    fn read(&self) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        match self {
            UnsealSource::File(path) => std::fs::read(path)
                .map(Zeroizing::new)
                .with_context(|| format!("cannot read the unseal input file {}", path.display())),
            UnsealSource::MachineId => {
                let text = std::fs::read_to_string(MACHINE_ID)
                    .with_context(|| format!("cannot read {MACHINE_ID}"))?;
                Ok(Zeroizing::new(text.trim().as_bytes().to_vec()))
            }
            UnsealSource::Dmi => read_dmi(Path::new(DMI_DIR)),
            UnsealSource::Exec(program) => run_program(program),
            UnsealSource::Pkcs11(_) => bail!("pkcs11: derives nothing"),
        }
    }
}

impl std::fmt::Display for UnsealSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnsealSource::File(p) => write!(f, "kdf:file:{}", p.display()),
            UnsealSource::MachineId => f.write_str("kdf:machine-id"),
            UnsealSource::Dmi => f.write_str("kdf:dmi"),
            UnsealSource::Exec(p) => write!(f, "kdf:exec:{}", p.display()),
            UnsealSource::Pkcs11(label) => write!(f, "pkcs11:{label}"),
        }
    }
}

/// The DMI identity under `dir`: `product_uuid=<uuid>\nproduct_serial=<serial>\n`. The UUID must be a
/// real one (not all zeros or all Fs, not a placeholder); the serial is included when the firmware gives a
/// real one. Both files are readable by root only.
fn read_dmi(dir: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if !dir.exists() {
        bail!(
            "kdf:dmi: {} is missing (no SMBIOS data on this machine, or /sys is not mounted); use \
             kdf:machine-id or kdf:exec",
            dir.display()
        );
    }
    let read = |name: &str| -> anyhow::Result<Option<String>> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let value = text.trim().to_string();
                let placeholder = DMI_PLACEHOLDERS.contains(&value.to_ascii_lowercase().as_str())
                    || value.chars().all(|c| matches!(c, '0' | '-'))
                    || value.chars().all(|c| matches!(c, 'f' | 'F' | '-'));
                Ok((!placeholder).then_some(value))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => bail!(
                "kdf:dmi: {} is readable by root only: run shedu as root, or use kdf:exec with a \
                 helper allowed to read it",
                path.display()
            ),
            Err(e) => Err(e).with_context(|| format!("kdf:dmi: cannot read {}", path.display())),
        }
    };
    let uuid = read("product_uuid")?.with_context(|| {
        format!(
            "kdf:dmi: {}/product_uuid holds no real UUID (missing, zeros or a placeholder): this \
             firmware does not identify the machine; use kdf:machine-id or kdf:exec",
            dir.display()
        )
    })?;
    let mut input = format!("product_uuid={uuid}\n");
    if let Some(serial) = read("product_serial")? {
        input.push_str(&format!("product_serial={serial}\n"));
    }
    Ok(Zeroizing::new(input.into_bytes()))
}

/// Runs `program` with no arguments and takes its standard output as hex key material.
fn run_program(program: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let what = || format!("the unseal program {}", program.display());
    let mut child = Command::new(program)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {}", what()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = Zeroizing::new(Vec::new());
        let _ = stdout.take(EXEC_MAX_OUTPUT).read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + EXEC_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} did not finish within {}s",
                what(),
                EXEC_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reading the output of {} failed", what()))?;
    if !status.success() {
        bail!("{} failed ({status})", what());
    }
    let text = std::str::from_utf8(&out)
        .ok()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .with_context(|| format!("{} printed no hex key material", what()))?;
    let bytes = hex::decode(text)
        .map(Zeroizing::new)
        .map_err(|_| anyhow::anyhow!("{} printed something other than hex", what()))?;
    Ok(bytes)
}

/// What wraps the master key: a key derived from machine-bound input, or a key in a PKCS#11 token.
pub(crate) enum Wrapper {
    Kdf(UnsealKek),
    Token { engine: Pkcs11Engine, label: String },
}

/// The associated data of a master key sealed in the token.
const TOKEN_AAD: &[u8] = b"shedu-master-key-v1";

impl Wrapper {
    pub(crate) fn wrap(&self, master: &MasterKey) -> anyhow::Result<Vec<u8>> {
        Ok(match self {
            Wrapper::Kdf(kek) => kek.wrap(master)?,
            Wrapper::Token { engine, label } => {
                engine.seal_secret(label, TOKEN_AAD, master.to_hex().as_bytes())?
            }
        })
    }

    pub(crate) fn unwrap(&self, wrapped: &[u8]) -> anyhow::Result<MasterKey> {
        Ok(match self {
            Wrapper::Kdf(kek) => kek.unwrap(wrapped)?,
            Wrapper::Token { engine, label } => {
                let hex = engine.open_secret(label, TOKEN_AAD, wrapped)?;
                MasterKey::from_hex(std::str::from_utf8(&hex).context("not a master key")?)?
            }
        })
    }
}

/// What wraps the master key for `source`: for `kdf:`, the key derived from the input and the salt in
/// `data_dir` (created when `create` and missing); for `pkcs11:`, the token of `pkcs11` (module, token
/// label, PIN file).
pub(crate) fn kek(
    data_dir: &Path,
    source: &UnsealSource,
    pkcs11: Option<&(PathBuf, String, Option<PathBuf>)>,
    create: bool,
) -> anyhow::Result<Wrapper> {
    if let UnsealSource::Pkcs11(label) = source {
        let token = pkcs11.with_context(|| {
            format!("--unseal {source} needs the token: --pkcs11-module and --pkcs11-token-label")
        })?;
        let engine = Pkcs11Engine::open(pkcs11_config(token)?)
            .with_context(|| format!("auto-unseal ({source})"))?;
        return Ok(Wrapper::Token {
            engine,
            label: label.clone(),
        });
    }
    let input = source
        .read()
        .with_context(|| format!("auto-unseal ({source})"))?;
    let salt = read_or_create_salt(&data_dir.join(SALT_FILE), 32, create)?;
    Ok(Wrapper::Kdf(
        UnsealKek::derive(&input, &salt).with_context(|| format!("auto-unseal ({source})"))?,
    ))
}

/// The token's configuration: the PIN from `SHEDU_PKCS11_PIN` or the PIN file.
pub(crate) fn pkcs11_config(
    (module, label, pin_file): &(PathBuf, String, Option<PathBuf>),
) -> anyhow::Result<Pkcs11Config> {
    let pin = match (std::env::var("SHEDU_PKCS11_PIN"), pin_file) {
        (Ok(pin), _) => pin,
        (Err(_), Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the PKCS#11 PIN file {}", file.display()))?
            .trim()
            .to_string(),
        (Err(_), None) => {
            bail!("set SHEDU_PKCS11_PIN or --pkcs11-pin-file for the PKCS#11 token")
        }
    };
    Ok(Pkcs11Config::new(
        module.clone(),
        label.clone(),
        Zeroizing::new(pin),
    ))
}

/// The salt in `path`; when missing and `create`, a fresh random one of `len` bytes, written with mode 0600
/// and synced with its folder.
pub(crate) fn read_or_create_salt(
    path: &Path,
    len: usize,
    create: bool,
) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(salt) => Ok(salt),
        Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
            let salt: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
            write_secret_file(path, &salt)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            Ok(salt)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The master key in auto-unseal mode, and where it comes from (for messages). At the first start in this
/// mode (`create`), the clear `master_key_file` is wrapped when present, else a fresh key is made; the
/// clear file is removed only after the wrapped one is durably written and opens again.
pub(crate) fn load(
    data_dir: &Path,
    master_key_file: &Path,
    source: &UnsealSource,
    pkcs11: Option<&(PathBuf, String, Option<PathBuf>)>,
    create: bool,
) -> anyhow::Result<(MasterKey, String)> {
    let wrapped_path = data_dir.join(WRAPPED_FILE);
    let described = format!("{} (auto-unseal {source})", wrapped_path.display());
    let kek = kek(data_dir, source, pkcs11, create)?;
    match std::fs::read(&wrapped_path) {
        Ok(wrapped) => {
            let master = kek.unwrap(&wrapped).with_context(|| match source {
                UnsealSource::Pkcs11(_) => format!(
                    "auto-unseal ({source}) cannot open {}: the token's key does not open it (another \
                     token, or the key was replaced); nothing was changed",
                    wrapped_path.display()
                ),
                _ => format!(
                    "auto-unseal ({source}) cannot open {}: the machine-bound input is not the one it was \
                     wrapped with; nothing was changed (restore the input, or start with the old one and \
                     rotate)",
                    wrapped_path.display()
                ),
            })?;
            // A crash between writing the wrapped key and removing the clear one: finish the move.
            if create {
                remove_clear_copy(master_key_file, &master)?;
            }
            Ok((master, described))
        }
        Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
            let master = match std::fs::read_to_string(master_key_file) {
                Ok(text) => MasterKey::from_hex(&text)
                    .with_context(|| format!("{}", master_key_file.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => MasterKey::generate(),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot read the master key file {}",
                            master_key_file.display()
                        )
                    });
                }
            };
            write_wrapped(data_dir, &wrapped_path, &kek.wrap(&master)?)?;
            let reread = std::fs::read(&wrapped_path)
                .with_context(|| format!("cannot re-read {}", wrapped_path.display()))?;
            let check = kek.unwrap(&reread).with_context(|| {
                format!("{} does not open after writing", wrapped_path.display())
            })?;
            if check.to_hex() != master.to_hex() {
                bail!("{} holds another key after writing", wrapped_path.display());
            }
            remove_clear_copy(master_key_file, &master)?;
            Ok((master, described))
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "auto-unseal ({source}): cannot read {}",
                wrapped_path.display()
            )
        }),
    }
}

/// Writes a wrapped master key (mode 0600, new file) and syncs the file and its folder.
pub(crate) fn write_wrapped(data_dir: &Path, path: &Path, wrapped: &[u8]) -> anyhow::Result<()> {
    write_secret_file(path, wrapped).with_context(|| format!("cannot write {}", path.display()))?;
    sync_dir(data_dir)
}

/// Removes the clear master key file when it holds `master` (it was wrapped); a file with another key is
/// left alone and stops the start.
fn remove_clear_copy(master_key_file: &Path, master: &MasterKey) -> anyhow::Result<()> {
    let text = match std::fs::read_to_string(master_key_file) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", master_key_file.display()));
        }
    };
    let clear = MasterKey::from_hex(&text).ok();
    if clear.map(|k| k.to_hex()) != Some(master.to_hex()) {
        bail!(
            "{} holds another master key than the wrapped one; remove one of them",
            master_key_file.display()
        );
    }
    std::fs::remove_file(master_key_file)
        .with_context(|| format!("cannot remove {}", master_key_file.display()))?;
    if let Some(dir) = master_key_file.parent() {
        sync_dir(dir)?;
    }
    tracing::info!(
        file = %master_key_file.display(),
        "the clear master key file was wrapped for auto-unseal and removed"
    );
    Ok(())
}

/// Makes a folder's entries (a new or removed file) durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_print_back() {
        for text in [
            "kdf:machine-id",
            "kdf:dmi",
            "kdf:file:/run/key",
            "kdf:exec:/usr/bin/get-key",
            "pkcs11:master-wrap",
        ] {
            assert_eq!(UnsealSource::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "machine-id",
            "kdf:",
            "kdf:file:",
            "kdf:exec:",
            "kdf:dmi:x",
            "pkcs11",
            "pkcs11:",
        ] {
            assert!(UnsealSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dmi_input_is_the_uuid_and_serial_and_refuses_placeholders() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, value: &str| std::fs::write(dir.path().join(name), value).unwrap();
        write("product_uuid", "4c4c4544-0042-3510-8052-b4c04f564e32\n");
        write("product_serial", "5R2VN32\n");
        let input = read_dmi(dir.path()).unwrap();
        assert_eq!(
            std::str::from_utf8(&input).unwrap(),
            "product_uuid=4c4c4544-0042-3510-8052-b4c04f564e32\nproduct_serial=5R2VN32\n"
        );
        // A board's placeholder serial is left out; the UUID still binds the input.
        write("product_serial", "To Be Filled By O.E.M.\n");
        assert_eq!(
            std::str::from_utf8(&read_dmi(dir.path()).unwrap()).unwrap(),
            "product_uuid=4c4c4544-0042-3510-8052-b4c04f564e32\n"
        );
        for bad in [
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "Not Specified",
            "",
        ] {
            write("product_uuid", bad);
            let err = read_dmi(dir.path()).unwrap_err().to_string();
            assert!(err.contains("holds no real UUID"), "{bad:?}: {err}");
        }
        let err = read_dmi(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is missing (no SMBIOS data"), "{err}");
    }
}

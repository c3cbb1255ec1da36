//! The HTTPS listener's certificate: operator-provided files, or an internal TLS CA that shedu creates at
//! first boot under `<data-dir>/tls/` and reuses afterwards.
//!
//! Private keys there are sealed by the keystore like CA keys (`*.key.sealed`); only the CA certificate
//! (`ca.pem`, what clients trust) and the server certificate are plaintext. The internal server certificate
//! is renewed when less than a third of its life remains or the requested names changed: at start-up and by
//! a periodic check while running ([`ServerTls::reload`]), which also picks up operator files replaced on
//! disk. The listener resolves its certificate per handshake, so a renewed certificate is served to the next
//! connection without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use shedu_core::TlsCaBundle;
use shedu_keys::{CaSigner, Keystore, SoftwareKey};
use shedu_pki::{
    CertInfo, KeyType, Serial, SubjectName, Validity, ca_issuer, issue_root_ca, issue_tls_server,
    pem_encode_cert,
};

const CA_DAYS: u32 = 3650;

/// The internal TLS CA's folder, under the data folder.
pub const TLS_DIR: &str = "tls";
/// The internal TLS CA's certificate (what clients trust), in [`TLS_DIR`].
const CA_CERT_FILE: &str = "ca.pem";
/// The internal server certificate, in [`TLS_DIR`].
const SERVER_CERT_FILE: &str = "server.pem";

/// A private key file of the internal TLS CA, sealed by the keystore to an owner id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedKeyFile {
    /// The file name in [`TLS_DIR`].
    pub file: &'static str,
    /// The keystore owner id the key is sealed to.
    pub owner: &'static str,
    /// The key's type.
    pub key_type: KeyType,
}

impl SealedKeyFile {
    /// The file's path under the data folder `data_dir`.
    pub fn path(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(TLS_DIR).join(self.file)
    }
}

/// The internal TLS CA's key.
pub const CA_KEY: SealedKeyFile = SealedKeyFile {
    file: "ca.key.sealed",
    owner: shedu_core::INTERNAL_TLS_CA_OWNER,
    key_type: shedu_core::INTERNAL_TLS_CA_KEY_TYPE,
};

/// The internal server certificate's key.
pub const SERVER_KEY: SealedKeyFile = SealedKeyFile {
    file: "server.key.sealed",
    owner: "tls-server",
    key_type: KeyType::EcP256,
};

/// Every sealed key file under [`TLS_DIR`]: what a master-key rotation re-wraps.
pub const SEALED_KEY_FILES: [SealedKeyFile; 2] = [CA_KEY, SERVER_KEY];

/// A certificate (DER) and its key.
type CertAndKey = (Vec<u8>, Arc<SoftwareKey>);
const SERVER_DAYS: u32 = 365;

/// Certificate chain and key for the HTTPS listener.
pub struct TlsMaterial {
    /// Server certificate first, then its issuers.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server key.
    pub key: PrivateKeyDer<'static>,
    /// The CA file clients should trust, when shedu made it.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("chain_len", &self.chain.len())
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl TlsMaterial {
    /// Reads an operator's PEM certificate chain and key.
    pub fn from_files(cert: &Path, key: &Path) -> Result<TlsMaterial, String> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read TLS certificate {}: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("{} holds no certificate", cert.display()));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("cannot read TLS key {}: {e}", key.display()))?;
        Ok(TlsMaterial {
            chain,
            key,
            ca_file: None,
        })
    }

    fn certified_key(self) -> Result<Arc<CertifiedKey>, String> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        CertifiedKey::from_der(self.chain, self.key, &provider)
            .map(Arc::new)
            .map_err(|e| format!("TLS certificate and key do not fit together: {e}"))
    }
}

/// Where the listener's certificate comes from.
pub enum TlsSource {
    /// Operator-provided PEM files, re-read by [`ServerTls::reload`].
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// The internal TLS CA under `<data_dir>/tls`.
    Internal {
        /// The data folder.
        data_dir: PathBuf,
        /// Seals the keys there.
        keystore: Keystore,
        /// DNS names or IPs the certificate must name.
        names: Vec<String>,
    },
}

impl TlsSource {
    fn load(&self, now: i64) -> Result<TlsMaterial, String> {
        match self {
            TlsSource::Files { cert, key } => TlsMaterial::from_files(cert, key),
            TlsSource::Internal {
                data_dir,
                keystore,
                names,
            } => internal(data_dir, keystore, names, now),
        }
    }
}

/// The HTTPS listener's certificate, swappable while running.
pub struct ServerTls {
    source: TlsSource,
    ca_file: Option<PathBuf>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads (or, for the internal CA, creates or renews) the certificate as of `now`.
    pub fn load(source: TlsSource, now: i64) -> Result<Arc<ServerTls>, String> {
        let material = source.load(now)?;
        let ca_file = material.ca_file.clone();
        Ok(Arc::new(ServerTls {
            source,
            ca_file,
            current: RwLock::new(material.certified_key()?),
        }))
    }

    /// The CA file clients should trust, when shedu made it.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The certificate served now (DER).
    pub fn current_certificate(&self) -> Option<Vec<u8>> {
        let current = self.current.read().ok()?;
        current.cert.first().map(|c| c.to_vec())
    }

    /// Re-reads the operator's files or renews the internal certificate when due, and serves the result
    /// from the next handshake on. Returns whether the certificate changed. On error the current
    /// certificate stays in service.
    pub fn reload(&self, now: i64) -> Result<bool, String> {
        let fresh = self.source.load(now)?;
        if self.current_certificate().as_deref() == fresh.chain.first().map(|c| c.as_ref()) {
            return Ok(false);
        }
        let key = fresh.certified_key()?;
        *self
            .current
            .write()
            .map_err(|_| "TLS certificate lock poisoned".to_string())? = key;
        Ok(true)
    }

    /// The rustls configuration: TLS 1.2 and 1.3 with rustls' default (modern, AEAD-only) suites, HTTP/2
    /// and 1.1, the certificate resolved per handshake, and client certificates verified by `clients`.
    ///
    /// Sessions resume from tickets the server encrypts under keys it keeps in memory and rotates every
    /// six hours (rustls' RFC 5077 ticketer, TLS 1.2 and 1.3): a fleet of any size resumes without the
    /// server holding a session per device (rustls' default keeps 256, so a fleet never resumed). A resumed
    /// session carries the client certificate of its first handshake; revocation is still checked on every
    /// request ([`crate::mtls`]), so resuming does not outlive a revocation.
    pub fn server_config(
        self: &Arc<Self>,
        clients: Arc<dyn ClientCertVerifier>,
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut cfg = rustls::ServerConfig::builder()
            .with_client_cert_verifier(clients)
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        cfg.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| format!("cannot make the TLS session ticket keys: {e}"))?;
        Ok(Arc::new(cfg))
    }
}

impl ResolvesServerCert for ServerTls {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// Loads or creates the internal TLS CA and a server certificate for `names` (DNS names or IPs).
pub fn internal(
    data_dir: &Path,
    keystore: &Keystore,
    names: &[String],
    now: i64,
) -> Result<TlsMaterial, String> {
    let dir = data_dir.join(TLS_DIR);
    shedu_keys::make_private_dir(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (ca_der, ca_key) = load_or_create_ca(&dir, keystore, now)?;
    let ca_info = CertInfo::from_der(&ca_der).map_err(|e| e.to_string())?;
    let (server_der, server_key) = match load_server(&dir, keystore)? {
        Some((der, key)) if server_is_current(&der, names, now) => (der, key),
        _ => issue_server(
            &dir,
            keystore,
            &ca_der,
            ca_key,
            ca_info.not_after,
            names,
            now,
        )?,
    };
    Ok(TlsMaterial {
        chain: vec![
            CertificateDer::from(server_der),
            CertificateDer::from(ca_der),
        ],
        key: server_key.to_tls_private_key(),
        ca_file: Some(dir.join(CA_CERT_FILE)),
    })
}

fn load_or_create_ca(dir: &Path, keystore: &Keystore, now: i64) -> Result<CertAndKey, String> {
    let (cert_path, key_path) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY.file));
    if cert_path.exists() && key_path.exists() {
        return Ok((
            read_cert(&cert_path)?,
            read_key(&key_path, keystore, CA_KEY)?,
        ));
    }
    let key = Arc::new(SoftwareKey::generate(CA_KEY.key_type).map_err(|e| e.to_string())?);
    let subject = SubjectName {
        common_name: "shedu internal TLS CA".into(),
        organization: Some("shedu".into()),
        ..Default::default()
    };
    let validity = Validity::root(now, CA_DAYS).map_err(|e| e.to_string())?;
    let dn = subject.to_dn().map_err(|e| e.to_string())?;
    let der = issue_root_ca(
        dn,
        validity,
        &Serial::random(),
        Some(0),
        &CaSigner(key.clone()),
    )
    .map_err(|e| e.to_string())?;
    write_key(&key_path, keystore, CA_KEY, &key)?;
    write_file(&cert_path, pem_encode_cert(&der).as_bytes())?;
    Ok((der, key))
}

/// The internal TLS CA of `data_dir` (created if missing), as replicas on one database share it.
pub fn internal_ca_bundle(
    data_dir: &Path,
    keystore: &Keystore,
    now: i64,
) -> Result<TlsCaBundle, String> {
    let dir = data_dir.join(TLS_DIR);
    shedu_keys::make_private_dir(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    load_or_create_ca(&dir, keystore, now)?;
    let read =
        |p: PathBuf| std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    Ok(TlsCaBundle {
        pem: read(dir.join(CA_CERT_FILE))?,
        sealed_key: read(dir.join(CA_KEY.file))?,
    })
}

/// Makes `bundle` (possibly another replica's) the internal TLS CA of `data_dir`, without reading what
/// is there (it may be sealed under a master key since rotated). When the certificate changes, the server
/// certificate is dropped so that the next [`ServerTls::load`] issues one under the agreed CA. Checks that
/// the certificate parses and that the key opens under this keystore before writing anything.
pub fn install_internal_ca(
    data_dir: &Path,
    keystore: &Keystore,
    bundle: &TlsCaBundle,
) -> Result<(), String> {
    let bad = || "the agreed internal TLS CA is malformed".to_string();
    shedu_pki::pem_to_der_certs(&bundle.pem)
        .ok()
        .filter(|c| c.len() == 1)
        .ok_or_else(bad)?;
    keystore
        .open(CA_KEY.owner, CA_KEY.key_type, &bundle.sealed_key)
        .map_err(|e| {
            format!("the agreed internal TLS CA's key does not open with this master key: {e}")
        })?;
    let dir = data_dir.join(TLS_DIR);
    shedu_keys::make_private_dir(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let same_cert = std::fs::read(dir.join(CA_CERT_FILE)).ok().as_deref() == Some(&bundle.pem[..]);
    let same_key =
        std::fs::read(dir.join(CA_KEY.file)).ok().as_deref() == Some(&bundle.sealed_key[..]);
    if same_cert && same_key {
        return Ok(());
    }
    // The server key here may be sealed under a master key since rotated: a new one is issued.
    for stale in [SERVER_CERT_FILE, SERVER_KEY.file] {
        match std::fs::remove_file(dir.join(stale)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {stale}: {e}")),
        }
    }
    write_file(&dir.join(CA_KEY.file), &bundle.sealed_key)?;
    write_file(&dir.join(CA_CERT_FILE), &bundle.pem)
}

fn load_server(dir: &Path, keystore: &Keystore) -> Result<Option<CertAndKey>, String> {
    let (cert_path, key_path) = (dir.join(SERVER_CERT_FILE), dir.join(SERVER_KEY.file));
    if !(cert_path.exists() && key_path.exists()) {
        return Ok(None);
    }
    Ok(Some((
        read_cert(&cert_path)?,
        read_key(&key_path, keystore, SERVER_KEY)?,
    )))
}

/// Current when it names every requested name and more than a third of its life remains.
fn server_is_current(der: &[u8], names: &[String], now: i64) -> bool {
    let Ok(info) = CertInfo::from_der(der) else {
        return false;
    };
    let remaining = info.not_after - now;
    let life = info.not_after - info.not_before;
    let covered = names.iter().all(|n| {
        info.sans
            .iter()
            .any(|s| s.strip_prefix("DNS:").or_else(|| s.strip_prefix("IP:")) == Some(n.as_str()))
    });
    covered && remaining > life / 3
}

fn issue_server(
    dir: &Path,
    keystore: &Keystore,
    ca_der: &[u8],
    ca_key: Arc<SoftwareKey>,
    ca_not_after: i64,
    names: &[String],
    now: i64,
) -> Result<CertAndKey, String> {
    let issuer = ca_issuer(ca_der, CaSigner(ca_key)).map_err(|e| e.to_string())?;
    let key = Arc::new(SoftwareKey::generate(SERVER_KEY.key_type).map_err(|e| e.to_string())?);
    let validity =
        Validity::within_issuer(now, None, SERVER_DAYS, ca_not_after).map_err(|e| e.to_string())?;
    let der = issue_tls_server(
        names,
        &CaSigner(key.clone()),
        validity,
        &Serial::random(),
        &issuer,
    )
    .map_err(|e| e.to_string())?;
    write_key(&dir.join(SERVER_KEY.file), keystore, SERVER_KEY, &key)?;
    write_file(
        &dir.join(SERVER_CERT_FILE),
        pem_encode_cert(&der).as_bytes(),
    )?;
    Ok((der, key))
}

fn read_cert(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    shedu_pki::pem_to_der_certs(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{} holds no certificate", path.display()))
}

fn read_key(
    path: &Path,
    keystore: &Keystore,
    file: SealedKeyFile,
) -> Result<Arc<SoftwareKey>, String> {
    let sealed = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    keystore
        .open(file.owner, file.key_type, &sealed)
        .map(Arc::new)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn write_key(
    path: &Path,
    keystore: &Keystore,
    file: SealedKeyFile,
    key: &SoftwareKey,
) -> Result<(), String> {
    let sealed = keystore.seal(file.owner, key).map_err(|e| e.to_string())?;
    write_file(path, &sealed)
}

/// Writes through a temporary file and a rename, so a crash never leaves a half-written file. The file is
/// private to this user (0600 on Unix), as everything in the data folder is.
fn write_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ca_writes_exactly_the_sealed_key_files_of_the_layout() {
        let data = tempfile::tempdir().unwrap();
        let keystore = Keystore::new(&shedu_keys::MasterKey::generate()).unwrap();
        let names = ["shedu.test".to_string(), "127.0.0.1".to_string()];
        let now = 1_700_000_000;
        let material = internal(data.path(), &keystore, &names, now).unwrap();

        let mut sealed: Vec<String> = std::fs::read_dir(data.path().join(TLS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sealed"))
            .collect();
        sealed.sort();
        let mut listed: Vec<&str> = SEALED_KEY_FILES.iter().map(|f| f.file).collect();
        listed.sort();
        assert_eq!(sealed, listed);
        for f in SEALED_KEY_FILES {
            let bytes = std::fs::read(f.path(data.path())).unwrap();
            keystore.open(f.owner, f.key_type, &bytes).unwrap();
        }

        let server = CertInfo::from_der(&material.chain[0]).unwrap();
        assert!(!server.is_ca);
        assert_eq!(server.sans, ["DNS:shedu.test", "IP:127.0.0.1"]);
        assert!(shedu_pki::is_signed_by(
            &material.chain[0],
            &material.chain[1]
        ));
        assert_eq!(
            material.ca_file.as_deref(),
            Some(data.path().join(TLS_DIR).join(CA_CERT_FILE).as_path())
        );
    }
}

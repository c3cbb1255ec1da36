//! `shedu bootstrap-pki`: the PKI of an edge box's services, made at first boot (EdgeX's PKI
//! initialisation): a root CA (or an imported CA), an intermediate CA under it, and a TLS server
//! certificate per service, written to files the services read.
//!
//! The configuration is the `[pki]` table of a TOML file (the same `services.toml` may hold the
//! `[[secrets.clients]]` entries; other tables are ignored here):
//!
//! ```toml
//! [pki]
//! organization = "Plant 4"          # optional O of the CA subjects
//! key_type = "ec-p256"              # every key made here (default ec-p256)
//! root_days = 3650                  # validity of the root, the intermediate and the leaves
//! intermediate_days = 1825
//! leaf_days = 365
//! renew_before_days = 30            # cache mode renews what expires within this window
//! destroy_ca_keys = false           # true: the CA keys are never written (nothing can be renewed)
//! ca_cert = "/etc/edge/ca.pem"      # import mode: the CA (PEM certificate, chain allowed) …
//! ca_key = "/etc/edge/ca.key"       # … and its PEM private key
//!
//! [[pki.services]]
//! service = "core-data"             # the folder <out>/core-data
//! sans = ["core-data", "localhost", "127.0.0.1"]
//! uid = 2002                        # owner of the folder and its files (default: the caller)
//! gid = 2001
//! days = 90                         # optional: overrides leaf_days
//! ```
//!
//! Layout of `--out`: `ca/ca.pem` (what the services trust), `ca/intermediate.pem`, `ca/ca.key` and
//! `ca/intermediate.key` (0600, unless destroyed or imported), `<service>/server.crt` (the leaf, then
//! the intermediate), `<service>/server.key` and `<service>/ca.pem` (0600, in a 0700 folder owned by the
//! service's uid and gid), and the sentinel `.pki-complete`, written last.
//!
//! Modes: `generate` makes everything anew; `cache` (the default) reuses what the sentinel vouches for and
//! renews, in place, whatever expires within `renew_before_days`, is missing, names other SANs than
//! configured, or no longer chains (a renewed intermediate reissues every leaf); `import` is `cache`
//! under the CA given by `ca_cert`/`ca_key`. With `destroy_ca_keys`, a renewal needs a new root (nothing
//! else can sign), so the whole PKI is made anew and the services must reload `ca.pem` too.
//!
//! Nothing is written before the whole configuration is checked and every certificate is signed in
//! memory; each file is written aside and renamed over, and the sentinel is removed first and written
//! last, so an interrupted run leaves no sentinel and the next `cache` run starts over.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use shedu_keys::{CaSigner, ExportedKey, SoftwareKey};
use shedu_pki::rcgen::PublicKeyData;
use shedu_pki::{
    CertInfo, KeyType, Serial, SubjectName, Validity, build_ca_params, ca_issuer, check_dns_name,
    fingerprint_sha256, is_signed_by, issue_root_ca, issue_tls_server, pem_encode_cert,
    pem_to_der_certs,
};
use zeroize::Zeroizing;

const DAY: i64 = 86_400;
/// The sentinel: present only after a complete run.
const SENTINEL: &str = ".pki-complete";
const CA_DIR: &str = "ca";
const ROOT_CERT: &str = "ca.pem";
const ROOT_KEY: &str = "ca.key";
const INTERMEDIATE_CERT: &str = "intermediate.pem";
const INTERMEDIATE_KEY: &str = "intermediate.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";

/// `shedu bootstrap-pki`'s options.
#[derive(Debug, clap::Args)]
pub(crate) struct BootstrapArgs {
    /// TOML file with a `[pki]` table and its `[[pki.services]]`.
    #[arg(long)]
    config: PathBuf,
    /// Folder to write the PKI to.
    #[arg(long)]
    out: PathBuf,
    /// `generate` anew, reuse and renew a `cache`d PKI, or `import` the CA of `ca_cert`/`ca_key`.
    #[arg(long, value_enum, default_value_t = Mode::Cache)]
    mode: Mode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Generate,
    Cache,
    Import,
}

/// The file: only `[pki]` is read; other tables (`[secrets]`, serve's options) belong to others.
#[derive(Debug, Deserialize)]
struct File {
    pki: Option<PkiConfig>,
}

/// The `[pki]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PkiConfig {
    organization: Option<String>,
    key_type: Option<String>,
    root_days: Option<u32>,
    intermediate_days: Option<u32>,
    leaf_days: Option<u32>,
    renew_before_days: Option<u32>,
    #[serde(default)]
    destroy_ca_keys: bool,
    ca_cert: Option<PathBuf>,
    ca_key: Option<PathBuf>,
    #[serde(default)]
    services: Vec<ServiceConfig>,
}

/// One `[[pki.services]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceConfig {
    service: String,
    sans: Vec<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    days: Option<u32>,
}

/// The checked configuration.
struct Config {
    organization: Option<String>,
    key_type: KeyType,
    root_days: u32,
    intermediate_days: u32,
    renew_before: i64,
    destroy_ca_keys: bool,
    import: Option<(PathBuf, PathBuf)>,
    services: Vec<Service>,
}

struct Service {
    name: String,
    sans: Vec<String>,
    owner: Owner,
    days: u32,
}

/// Who owns a service's folder and files; `None` keeps the caller's.
#[derive(Clone, Copy)]
struct Owner {
    uid: Option<u32>,
    gid: Option<u32>,
}

impl Config {
    fn load(path: &Path, mode: Mode) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: File = toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        let pki = file
            .pki
            .with_context(|| format!("{} has no [pki] table", path.display()))?;
        let key_type: KeyType = pki.key_type.as_deref().unwrap_or("ec-p256").parse()?;
        let root_days = pki.root_days.unwrap_or(3650);
        let intermediate_days = pki.intermediate_days.unwrap_or(1825);
        let leaf_days = pki.leaf_days.unwrap_or(365);
        let renew_before_days = pki.renew_before_days.unwrap_or(30);
        if pki.services.is_empty() {
            bail!("{}: [pki] lists no [[pki.services]]", path.display());
        }
        let import = match (mode, pki.ca_cert, pki.ca_key) {
            (Mode::Import, Some(cert), Some(key)) => Some((cert, key)),
            (Mode::Import, _, _) => bail!("--mode import needs ca_cert and ca_key in [pki]"),
            (_, None, None) => None,
            _ => bail!("ca_cert and ca_key are for --mode import"),
        };
        let mut seen = HashSet::new();
        let mut services = Vec::new();
        for (i, s) in pki.services.into_iter().enumerate() {
            let at = format!("pki.services[{i}] ({:?})", s.service);
            check_service_name(&s.service).with_context(|| at.clone())?;
            if !seen.insert(s.service.clone()) {
                bail!("{at}: the service is listed twice");
            }
            if s.sans.is_empty() {
                bail!("{at}: sans must name at least one DNS name or IP address");
            }
            for san in &s.sans {
                if san.parse::<std::net::IpAddr>().is_err() {
                    check_dns_name(san).with_context(|| format!("{at}: SAN {san:?}"))?;
                }
            }
            let mut unique = HashSet::new();
            if let Some(dup) = s.sans.iter().find(|n| !unique.insert(n.as_str())) {
                bail!("{at}: SAN {dup:?} is listed twice");
            }
            services.push(Service {
                name: s.service,
                sans: s.sans,
                owner: Owner {
                    uid: s.uid,
                    gid: s.gid,
                },
                days: s.days.unwrap_or(leaf_days),
            });
        }
        let shortest = services
            .iter()
            .map(|s| s.days)
            .chain([root_days, intermediate_days])
            .min()
            .unwrap_or(0);
        if shortest == 0 {
            bail!("validity days must be at least 1");
        }
        if renew_before_days >= shortest {
            bail!(
                "renew_before_days ({renew_before_days}) must be shorter than every validity \
                 ({shortest} days is the shortest), or every run would renew"
            );
        }
        Ok(Config {
            organization: pki.organization,
            key_type,
            root_days,
            intermediate_days,
            renew_before: i64::from(renew_before_days) * DAY,
            destroy_ca_keys: pki.destroy_ca_keys,
            import,
            services,
        })
    }

    fn subject(&self, common_name: &str) -> SubjectName {
        SubjectName {
            common_name: common_name.into(),
            organization: self.organization.clone(),
            ..Default::default()
        }
    }
}

/// A service name is a folder name: letters, digits, `-`, `_`, `.`, not starting with a dot, not `ca`.
fn check_service_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name != CA_DIR
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!(
            "the service name must be 1 to 64 letters, digits, '-', '_' or '.', not start with a dot, \
             and not be {CA_DIR:?}"
        );
    }
    Ok(())
}

/// A certificate and, when this run can sign with it, its key.
struct Ca {
    der: Vec<u8>,
    info: CertInfo,
    signer: Option<CaSigner>,
    /// The PEM key to write (a new key that is kept), when it changed.
    new_key: Option<Zeroizing<String>>,
}

/// A service's files.
struct Leaf {
    der: Vec<u8>,
    info: CertInfo,
    /// `Some` when issued by this run.
    key: Option<Zeroizing<String>>,
}

/// A new key pair: its PEM (to write) and a signer over it.
fn new_key(key_type: KeyType) -> anyhow::Result<(Zeroizing<String>, CaSigner)> {
    let exported = ExportedKey::generate(key_type)?;
    let pem = exported.to_pem();
    let key = SoftwareKey::from_pem(&pem, key_type)?;
    Ok((pem, CaSigner(Arc::new(key))))
}

fn read_cert(path: &Path) -> anyhow::Result<(Vec<u8>, CertInfo)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let der = pem_to_der_certs(&bytes)
        .ok()
        .and_then(|c| c.into_iter().next())
        .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
    let info = CertInfo::from_der(&der).with_context(|| format!("{}", path.display()))?;
    Ok((der, info))
}

/// The key of `path` for the certificate `info`, checked to be that certificate's key.
fn read_key(path: &Path, der: &[u8], info: &CertInfo) -> anyhow::Result<CaSigner> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let key = CaSigner(Arc::new(
        SoftwareKey::from_pem(&text, info.key_type)
            .with_context(|| format!("{}", path.display()))?,
    ));
    if key.subject_public_key_info() != info.spki_der {
        bail!(
            "{} is not the key of the certificate {} (sha256 {})",
            path.display(),
            info.subject,
            fingerprint_sha256(der)
        );
    }
    Ok(key)
}

/// What is on disk, when the sentinel vouches for it.
struct Existing {
    root: Option<Ca>,
    intermediate: Option<Ca>,
}

fn read_ca(dir: &Path, cert: &str, key: &str) -> Option<Ca> {
    let (der, info) = read_cert(&dir.join(cert)).ok()?;
    let key_path = dir.join(key);
    let signer = if key_path.exists() {
        Some(read_key(&key_path, &der, &info).ok()?)
    } else {
        None
    };
    Some(Ca {
        der,
        info,
        signer,
        new_key: None,
    })
}

/// Runs `shedu bootstrap-pki`.
pub(crate) fn run(args: BootstrapArgs) -> anyhow::Result<()> {
    let report = make(&args.config, &args.out, args.mode)?;
    for line in &report.lines {
        println!("{line}");
    }
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    Ok(())
}

/// What a run did: one line per service (`core-data: renewed (expires in 365 days)`), and notes.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) lines: Vec<String>,
    pub(crate) notes: Vec<String>,
    /// Whether any file changed (a certificate issued or renewed, a CA made).
    pub(crate) changed: bool,
}

/// The renewal `shedu serve --bootstrap-pki` runs at start and at every lifecycle tick: `cache` mode, or
/// `import` when the `[pki]` table names a CA to issue under.
pub(crate) fn renew(config: &Path, out: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let file: File = toml::from_str(&text)
        .with_context(|| format!("invalid configuration in {}", config.display()))?;
    let import = file
        .pki
        .as_ref()
        .is_some_and(|p| p.ca_cert.is_some() || p.ca_key.is_some());
    make(config, out, if import { Mode::Import } else { Mode::Cache })
}

/// Makes, reuses or renews the PKI under `out` as `mode` says.
fn make(config: &Path, out: &Path, mode: Mode) -> anyhow::Result<Report> {
    let cfg = Config::load(config, mode)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs() as i64;
    let mut report = Report::default();
    let ca_dir = out.join(CA_DIR);
    let had_sentinel = out.join(SENTINEL).exists();
    let existing = (mode != Mode::Generate && had_sentinel).then(|| Existing {
        root: read_ca(&ca_dir, ROOT_CERT, ROOT_KEY),
        intermediate: read_ca(&ca_dir, INTERMEDIATE_CERT, INTERMEDIATE_KEY),
    });
    let due = |info: &CertInfo| info.not_after - now <= cfg.renew_before;
    let mut notes: Vec<String> = Vec::new();

    // The root: imported, reused, or new.
    let imported = match &cfg.import {
        Some((cert, key)) => Some(import_ca(cert, key, now, &cfg)?),
        None => None,
    };
    let (mut existing_root, mut existing_intermediate) = match existing {
        Some(e) => (e.root, e.intermediate),
        None => (None, None),
    };
    let mut root_new = match (&imported, &existing_root) {
        (Some(_), _) => false,
        (None, Some(root)) => due(&root.info) || !root.info.is_ca,
        (None, None) => true,
    };
    let root_changed = match (&imported, &existing_root) {
        (Some((chain, _)), Some(root)) => chain.first() != Some(&root.der),
        (Some(_), None) => true,
        (None, _) => root_new,
    };
    let root_der_now = match (&imported, &existing_root) {
        (Some((chain, _)), _) => chain.first().cloned(),
        (None, Some(root)) => Some(root.der.clone()),
        (None, None) => None,
    };
    let mut intermediate_new = root_changed
        || match (&existing_intermediate, &root_der_now) {
            (Some(i), Some(root)) => due(&i.info) || !is_signed_by(&i.der, root),
            _ => true,
        };
    let leaf_due: Vec<bool> = cfg
        .services
        .iter()
        .map(
            |s| match existing_leaf(out, s, existing_intermediate.as_ref()) {
                Some(leaf) => due(&leaf.info),
                None => true,
            },
        )
        .collect();
    let intermediate_key = existing_intermediate
        .as_ref()
        .is_some_and(|i| i.signer.is_some());
    if leaf_due.iter().any(|d| *d) && !intermediate_new && !intermediate_key {
        notes.push("the intermediate CA's key was destroyed: a new intermediate CA".into());
        intermediate_new = true;
    }
    let root_key = imported.is_some() || existing_root.as_ref().is_some_and(|r| r.signer.is_some());
    if intermediate_new && !root_new && !root_key {
        notes.push("the root CA's key was destroyed: a new root CA (reload ca.pem)".into());
        root_new = true;
    }

    // Sign everything in memory. What the services trust: the imported CA with its chain, or the root.
    let imported_pem: Option<String> = imported
        .as_ref()
        .map(|(chain, _)| chain.iter().map(|d| pem_encode_cert(d)).collect());
    let root = if let Some((chain, key)) = imported {
        let info = CertInfo::from_der(&chain[0])?;
        Ca {
            der: chain[0].clone(),
            info,
            signer: Some(key),
            new_key: None,
        }
    } else if root_new {
        let (pem, signer) = new_key(cfg.key_type)?;
        let validity = Validity::root(now, cfg.root_days)?;
        let dn = cfg.subject("shedu bootstrap root CA").to_dn()?;
        let der = issue_root_ca(dn, validity, &Serial::random(), Some(1), &signer)?;
        Ca {
            info: CertInfo::from_der(&der)?,
            der,
            signer: Some(signer),
            new_key: (!cfg.destroy_ca_keys).then_some(pem),
        }
    } else {
        existing_root.take().context("no root CA")?
    };
    let intermediate = if intermediate_new || root_new {
        let issuer_key = root
            .signer
            .clone()
            .context("the root CA's key is missing")?;
        let issuer = ca_issuer(&root.der, issuer_key)?;
        let (pem, signer) = new_key(cfg.key_type)?;
        let validity =
            Validity::within_issuer(now, None, cfg.intermediate_days, root.info.not_after)?;
        let dn = cfg.subject("shedu bootstrap intermediate CA").to_dn()?;
        let der = build_ca_params(dn, validity, &Serial::random(), Some(0), false)?
            .signed_by(&signer, &issuer)
            .context("cannot sign the intermediate CA")?
            .der()
            .to_vec();
        Ca {
            info: CertInfo::from_der(&der)?,
            der,
            signer: Some(signer),
            new_key: (!cfg.destroy_ca_keys).then_some(pem),
        }
    } else {
        existing_intermediate.take().context("no intermediate CA")?
    };
    let intermediate_changed = intermediate_new || root_new;
    let mut leaves = Vec::new();
    for (service, due_now) in cfg.services.iter().zip(&leaf_due) {
        if !due_now && !intermediate_changed {
            let leaf = existing_leaf(out, service, Some(&intermediate)).context("no leaf")?;
            leaves.push((leaf, "reused"));
            continue;
        }
        let issuer_key = intermediate
            .signer
            .clone()
            .context("the intermediate CA's key is missing")?;
        let issuer = ca_issuer(&intermediate.der, issuer_key)?;
        let exported = ExportedKey::generate(cfg.key_type)?;
        let public = CaSigner(Arc::new(SoftwareKey::from_pem(
            &exported.to_pem(),
            cfg.key_type,
        )?));
        let validity =
            Validity::within_issuer(now, None, service.days, intermediate.info.not_after)?;
        let der = issue_tls_server(&service.sans, &public, validity, &Serial::random(), &issuer)
            .with_context(|| format!("the certificate of {}", service.name))?;
        let existed = mode != Mode::Generate
            && had_sentinel
            && out.join(&service.name).join(SERVER_CERT).exists();
        leaves.push((
            Leaf {
                info: CertInfo::from_der(&der)?,
                der,
                key: Some(exported.to_pem()),
            },
            if existed { "renewed" } else { "issued" },
        ));
    }

    // Write: the sentinel goes first and comes back last.
    let changed = root_changed
        || root_new
        || intermediate_changed
        || leaves.iter().any(|(l, _)| l.key.is_some());
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if changed {
        remove_if_present(&out.join(SENTINEL))?;
    }
    make_dir(&ca_dir, 0o755, None)?;
    let me = Owner {
        uid: None,
        gid: None,
    };
    let root_pem = imported_pem.unwrap_or_else(|| pem_encode_cert(&root.der));
    if root_changed || root_new {
        write_file(&ca_dir.join(ROOT_CERT), root_pem.as_bytes(), 0o644, me)?;
    }
    if intermediate_changed {
        write_file(
            &ca_dir.join(INTERMEDIATE_CERT),
            pem_encode_cert(&intermediate.der).as_bytes(),
            0o644,
            me,
        )?;
    }
    for (ca, file) in [(&root, ROOT_KEY), (&intermediate, INTERMEDIATE_KEY)] {
        if let Some(pem) = &ca.new_key {
            write_file(&ca_dir.join(file), pem.as_bytes(), 0o600, me)?;
        }
    }
    // An imported CA's key stays where the operator keeps it: no copy is ever made here, and a root key
    // an earlier run made goes.
    if cfg.destroy_ca_keys || cfg.import.is_some() {
        destroy(&ca_dir.join(ROOT_KEY))?;
    }
    if cfg.destroy_ca_keys {
        destroy(&ca_dir.join(INTERMEDIATE_KEY))?;
    }
    for (service, (leaf, what)) in cfg.services.iter().zip(&leaves) {
        let dir = out.join(&service.name);
        make_dir(&dir, 0o700, Some(service.owner))?;
        if let Some(key) = &leaf.key {
            let mut chain = pem_encode_cert(&leaf.der);
            chain.push_str(&pem_encode_cert(&intermediate.der));
            write_file(&dir.join(SERVER_KEY), key.as_bytes(), 0o600, service.owner)?;
            write_file(
                &dir.join(SERVER_CERT),
                chain.as_bytes(),
                0o600,
                service.owner,
            )?;
        } else {
            for file in [SERVER_KEY, SERVER_CERT] {
                own(&dir.join(file), service.owner)?;
            }
        }
        let ca_file = dir.join(ROOT_CERT);
        if std::fs::read(&ca_file).ok().as_deref() != Some(root_pem.as_bytes()) {
            write_file(&ca_file, root_pem.as_bytes(), 0o600, service.owner)?;
        } else {
            own(&ca_file, service.owner)?;
        }
        report.lines.push(format!(
            "{}: {what} (expires in {} days)",
            service.name,
            (leaf.info.not_after - now + DAY / 2) / DAY
        ));
    }
    if changed || !out.join(SENTINEL).exists() {
        let text = format!(
            "root sha256 {}\nintermediate sha256 {}\n",
            fingerprint_sha256(&root.der),
            fingerprint_sha256(&intermediate.der)
        );
        write_file(&out.join(SENTINEL), text.as_bytes(), 0o644, me)?;
    }
    report.notes = notes;
    report.changed = changed;
    Ok(report)
}

/// The imported CA: its certificate chain (the CA first) and its key, checked.
fn import_ca(
    cert: &Path,
    key: &Path,
    now: i64,
    cfg: &Config,
) -> anyhow::Result<(Vec<Vec<u8>>, CaSigner)> {
    let bytes = std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let chain = pem_to_der_certs(&bytes).with_context(|| format!("{}", cert.display()))?;
    let first = chain
        .first()
        .with_context(|| format!("{} holds no certificate", cert.display()))?;
    let info = CertInfo::from_der(first).with_context(|| format!("{}", cert.display()))?;
    if !info.is_ca {
        bail!("{} is not a CA certificate", cert.display());
    }
    if info.not_after - now <= cfg.renew_before {
        bail!(
            "the imported CA {} expires in {} days, within renew_before_days: import a newer one",
            info.subject,
            (info.not_after - now) / DAY
        );
    }
    let signer = read_key(key, first, &info)?;
    Ok((chain, signer))
}

/// The service's current leaf, if it is complete, names exactly the configured SANs and chains to
/// `intermediate`.
fn existing_leaf(out: &Path, service: &Service, intermediate: Option<&Ca>) -> Option<Leaf> {
    let intermediate = intermediate?;
    let dir = out.join(&service.name);
    if !dir.join(SERVER_KEY).exists() {
        return None;
    }
    let (der, info) = read_cert(&dir.join(SERVER_CERT)).ok()?;
    let wanted: BTreeSet<String> = service
        .sans
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(_) => format!("IP:{n}"),
            Err(_) => format!("DNS:{n}"),
        })
        .collect();
    let has: BTreeSet<String> = info.sans.iter().cloned().collect();
    (wanted == has && is_signed_by(&der, &intermediate.der)).then_some(Leaf {
        der,
        info,
        key: None,
    })
}

fn make_dir(dir: &Path, mode: u32, owner: Option<Owner>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    if let Some(owner) = owner {
        own(dir, owner)?;
    }
    Ok(())
}

fn own(path: &Path, owner: Owner) -> anyhow::Result<()> {
    if owner.uid.is_none() && owner.gid.is_none() {
        return Ok(());
    }
    std::os::unix::fs::chown(path, owner.uid, owner.gid).with_context(|| {
        format!(
            "cannot give {} to uid {:?} gid {:?}",
            path.display(),
            owner.uid,
            owner.gid
        )
    })
}

/// Writes `bytes` aside with `mode` and `owner`, then renames it over `path`: a reader sees the old file
/// or the new one, never half of one.
fn write_file(path: &Path, bytes: &[u8], mode: u32, owner: Owner) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .context("a file name")?
        .to_string_lossy()
        .into_owned();
    let staged = path.with_file_name(format!(".{name}.new"));
    remove_if_present(&staged)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&staged)
        .with_context(|| format!("cannot write {}", staged.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", staged.display()))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))?;
    own(&staged, owner)?;
    std::fs::rename(&staged, path).with_context(|| format!("cannot write {}", path.display()))
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Overwrites a key file with zeros before unlinking it (a best effort: a journaling or flash file system
/// may keep old blocks; the point of `destroy_ca_keys` is that a new key is never written at all).
fn destroy(path: &Path) -> anyhow::Result<()> {
    if let Ok(meta) = std::fs::metadata(path) {
        let zeros = vec![0u8; meta.len() as usize];
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path) {
            let _ = f.write_all(&zeros).and_then(|()| f.sync_all());
        }
    }
    remove_if_present(path)
}

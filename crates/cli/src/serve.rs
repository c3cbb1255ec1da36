//! `shedu serve`: open storage and keys, make sure TLS material exists, start the lifecycle job and both
//! listeners, and print where everything is.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use shedu_core::{
    CHECKPOINT_FILE, Engines, Services, ServicesConfig, SystemClock, VaConfig,
    spawn_audit_checkpoints, spawn_lifecycle,
};
use shedu_keys::{Keystore, MasterKey, Pkcs11Engine, make_private_dir, write_secret_file};
use shedu_server::tls::{ServerTls, TlsSource};
use shedu_server::{AdminToken, AppState, ServerConfig};
use shedu_store::{Store, redact_url};

use crate::config::{ServeArgs, Settings};
use shedu_core::{ADMIN_TOKEN_CONTEXT, Agreed, TlsCaBundle};

/// One `bootstrap-pki` renewal, off the async threads (it signs and writes files).
async fn bootstrap_pki(config: PathBuf, out: PathBuf) -> anyhow::Result<crate::bootstrap::Report> {
    tokio::task::spawn_blocking(move || crate::bootstrap::renew(&config, &out))
        .await
        .context("the bootstrap PKI renewal stopped")?
}

fn log_bootstrap_pki(report: &crate::bootstrap::Report) {
    for line in &report.lines {
        if report.changed {
            tracing::info!(target: "shedu::bootstrap_pki", "{line}");
        } else {
            tracing::debug!(target: "shedu::bootstrap_pki", "{line}");
        }
    }
    for note in &report.notes {
        tracing::warn!(target: "shedu::bootstrap_pki", "{note}");
    }
}

/// With `--bootstrap-pki`: the services' certificates are renewed by the running server, at every
/// lifecycle tick, once they are within the `[pki]` table's `renew_before_days` (`cache` mode run again).
fn spawn_bootstrap_pki(config: PathBuf, out: PathBuf, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match bootstrap_pki(config.clone(), out.clone()).await {
                Ok(report) => log_bootstrap_pki(&report),
                Err(e) => tracing::warn!(
                    target: "shedu::bootstrap_pki",
                    error = format!("{e:#}"),
                    "the bootstrap PKI could not be renewed; trying again at the next tick"
                ),
            }
        }
    });
}

/// How often the audit chain's head is checkpointed (when it moved); also at start and at shutdown.
const AUDIT_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let s = args.resolve()?;
    init_tracing(&s)?;
    if s.print_config {
        println!("{}", printable(&s));
        return Ok(());
    }
    make_private_dir(&s.data_dir)
        .with_context(|| format!("cannot create {}", s.data_dir.display()))?;

    // Before anything counts: the event dispatchers set their gauges as they start.
    shedu_server::metrics::install();
    let (master, master_source) = load_master_key(&s, true)?;
    let store = Store::connect(&s.database_url, &shedu_core::EVENT_WORDS)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&s.database_url)))?;
    let pkcs11 = match &s.pkcs11 {
        Some(p11) => Some(open_pkcs11(p11).await?),
        None => None,
    };
    let config = ServicesConfig {
        va: VaConfig {
            public_url: s.public_url.clone(),
            crl_validity_secs: i64::try_from(s.crl_validity.as_secs()).unwrap_or(i64::MAX),
            ..VaConfig::default()
        },
        engines: Engines::new(pkcs11, s.default_engine),
        est_default_ra: s.est_default_ra.clone(),
        oidc: s.oidc.clone(),
        webhook_allow: s.webhook_allow.clone(),
        audit_checkpoint_file: Some(s.data_dir.join(CHECKPOINT_FILE)),
        acme: s.acme.clone(),
        connector: s.connector.clone(),
        secrets: s.secrets.clone(),
        cloud: shedu_core::CloudConfig::default(),
        rotation: s.rotation.clone(),
    };
    let services = Services::open(store.clone(), &master, Arc::new(SystemClock), config)
        .await
        .with_context(|| format!("cannot open the services (master key from {master_source})"))?;
    let events = shedu_events::start(
        store,
        services.webhooks.clone(),
        shedu_events::EventsConfig {
            bus_urls: s.events_urls.clone(),
            smtp: s.smtp.clone(),
            template_dir: s.template_dir.clone(),
            event_types: &shedu_core::EVENT_TYPES,
            cloud: Some(services.cloud.clone()),
            delivery: shedu_events::DeliveryOptions {
                webhook_timeout: s.webhook_timeout,
                ..Default::default()
            },
            reminders: shedu_events::ReminderOptions {
                days_before: s.reminders.0.clone(),
                interval: s.reminders.1,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .context("cannot start event delivery")?;

    let tls_source = match &s.tls_files {
        Some((cert, key)) => TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        None => {
            let keystore = Keystore::new(&master)?;
            // Replicas of one database share one internal TLS CA (the first one stored). An agreed one is
            // taken without reading the local copy, which may be sealed under a master key since rotated.
            let agreed = match services.agreed(Agreed::InternalTlsCa).await? {
                Some(bytes) => bytes,
                None => {
                    let mine = shedu_server::tls::internal_ca_bundle(
                        &s.data_dir,
                        &keystore,
                        services.registry.now(),
                    )
                    .map_err(anyhow::Error::msg)?;
                    services
                        .agree(Agreed::InternalTlsCa, &mine.encode())
                        .await
                        .context("cannot agree on the internal TLS CA with the other replicas")?
                }
            };
            let bundle =
                TlsCaBundle::decode(&agreed).context("the agreed internal TLS CA is malformed")?;
            shedu_server::tls::install_internal_ca(&s.data_dir, &keystore, &bundle)
                .map_err(anyhow::Error::msg)?;
            TlsSource::Internal {
                data_dir: s.data_dir.clone(),
                keystore,
                names: s.tls_names.clone(),
            }
        }
    };
    let tls = ServerTls::load(tls_source, services.registry.now()).map_err(anyhow::Error::msg)?;
    let ca_file = tls.ca_file().map(Path::to_path_buf);
    let (token, token_source) = admin_token(&s.data_dir, &services, &master).await?;

    if let Some((config, out)) = &s.bootstrap_pki {
        // At start, before the services that read these files could be told to start.
        let report = bootstrap_pki(config.clone(), out.clone())
            .await
            .context("--bootstrap-pki")?;
        log_bootstrap_pki(&report);
        spawn_bootstrap_pki(config.clone(), out.clone(), s.lifecycle_interval);
    }
    spawn_lifecycle(&services, s.lifecycle_interval);
    spawn_audit_checkpoints(&services, AUDIT_CHECKPOINT_INTERVAL);
    let audit = services.audit.clone();
    let mut state = AppState::new(services, token, s.bootstrap_until_admin, Some(events));
    state.ready_bus = s.ready_bus;
    let cfg = ServerConfig {
        listen: s.listen,
        http_listen: s.http_listen,
        tls,
        tls_check_interval: s.tls_reload_every,
        proxied_certificates: shedu_server::mtls::ProxiedCertificates::new(
            s.trusted_proxies.clone(),
            s.client_cert_header.as_deref(),
        )
        .map_err(|e| anyhow::anyhow!("--client-cert-header: {e}"))?,
        limits: shedu_server::ConnectionLimits::default(),
        secrets_socket: s.secrets_socket.clone(),
        kmip: Some(s.kmip),
    };
    let mut running = shedu_server::start(state, cfg)
        .await
        .context("cannot bind the listeners")?;
    // Before the banner: whoever reads it may stop the server at once.
    let shutdown = shutdown_signal();

    let ca_line = match &ca_file {
        Some(p) => p.display().to_string(),
        None => "(operator-provided certificate)".into(),
    };
    println!(
        "shedu {} is running (started in {} ms)",
        env!("CARGO_PKG_VERSION"),
        started.elapsed().as_millis()
    );
    println!(
        "  API (HTTPS):  https://{}/api/v1   (OpenAPI: /api/openapi.json)",
        running.https_addr
    );
    println!(
        "  Console:      https://{}/ui/   (sign in with a user, or the admin token)",
        running.https_addr
    );
    println!(
        "  HTTP:         http://{}/health   (OCSP: /ocsp, CRLs: /crl/<ca-id>)",
        running.http_addr
    );
    match running.kmip_addr {
        Some(addr) => println!("  KMIP (TLS):   {addr}   (client certificates from a managed CA)"),
        None => println!("  KMIP (TLS):   off   (the default address is taken)"),
    }
    println!(
        "  Public URL:   {}   (written into certificates' AIA and CRL distribution points)",
        s.public_url
    );
    println!("  Database:     {}", redact_url(&s.database_url));
    println!("  TLS CA:       {ca_line}");
    println!("  Admin token:  {token_source}");
    if let (Some(ca), Some(path)) = (&ca_file, token_path_hint(&s.data_dir, &token_source)) {
        println!(
            "  Try:          curl --cacert {} -H \"Authorization: Bearer $(cat {})\" https://{}/api/v1/cas",
            ca.display(),
            path.display(),
            running.https_addr
        );
    }
    tracing::info!(https = %running.https_addr, http = %running.http_addr, "listening");
    spawn_memory_trim(MEMORY_TRIM_INTERVAL);

    tokio::select! {
        _ = shutdown => tracing::info!("shutting down"),
        _ = running.wait() => anyhow::bail!("a listener stopped unexpectedly"),
    }
    // The last word on the audit chain's head, outside the table.
    audit
        .checkpoint()
        .await
        .context("cannot write the audit checkpoint at shutdown")?;
    Ok(())
}

/// How often the allocator's free memory is given back to the system.
const MEMORY_TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Gives the allocator's free pages back to the system now (once start-up is done) and every `interval`:
/// glibc keeps what a burst of work freed (start-up, a sweep, a load peak) in its arenas until told, so an idle
/// server would otherwise keep the RSS of its busiest moment (measured by the benchmark's idle RSS).
fn spawn_memory_trim(interval: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // It walks every arena under its lock: off the runtime's workers.
            let _ = tokio::task::spawn_blocking(trim_free_memory).await;
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_free_memory() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointer; it walks glibc's own arenas under their locks and only releases
    // pages that hold no allocation.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_free_memory() {}

/// SIGINT (Ctrl-C) or SIGTERM (systemd, container runtimes). The handlers are installed by this call, not
/// when the future is first polled: a signal sent between the banner and the first poll would otherwise
/// kill the process with the default action, without the shutdown checkpoint (found by the CLI's audit
/// test on PostgreSQL, which stops a server right after its banner).
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = signal(SignalKind::terminate()).and_then(|term| {
        let int = signal(SignalKind::interrupt())?;
        Ok((term, int))
    });
    async move {
        match handlers {
            Ok((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The master key: with `--unseal`, unwrapped from `<data-dir>/master.key.wrapped`; else from the first
/// source present: `SHEDU_MASTER_KEY` (hex), `SHEDU_MASTER_PASSPHRASE`
/// (Argon2id with a salt kept in `<data-dir>/master.salt`), or the master key file (created at first boot
/// when `create`; tools that only read, like `audit verify`, pass `false` and fail instead).
pub(crate) fn load_master_key(s: &Settings, create: bool) -> anyhow::Result<(MasterKey, String)> {
    if let Some(source) = &s.unseal {
        for var in ["SHEDU_MASTER_KEY", "SHEDU_MASTER_PASSPHRASE"] {
            if std::env::var_os(var).is_some() {
                anyhow::bail!("--unseal {source} and {var} exclude each other: choose one");
            }
        }
        return crate::unseal::load(
            &s.data_dir,
            &s.master_key_file,
            source,
            s.pkcs11.as_ref(),
            create,
        );
    }
    if let Ok(hex) = std::env::var("SHEDU_MASTER_KEY") {
        return Ok((
            MasterKey::from_hex(&hex).context("SHEDU_MASTER_KEY")?,
            "SHEDU_MASTER_KEY".into(),
        ));
    }
    if let Ok(passphrase) = std::env::var("SHEDU_MASTER_PASSPHRASE") {
        let salt = crate::unseal::read_or_create_salt(&master_salt_path(s), 16, create)?;
        let key = MasterKey::from_passphrase(&passphrase, &salt)?;
        return Ok((key, "SHEDU_MASTER_PASSPHRASE".into()));
    }
    let key = if create {
        MasterKey::load_or_create(&s.master_key_file)?
    } else {
        let text = std::fs::read_to_string(&s.master_key_file).with_context(|| {
            format!(
                "cannot read the master key file {}",
                s.master_key_file.display()
            )
        })?;
        MasterKey::from_hex(&text)?
    };
    Ok((key, s.master_key_file.display().to_string()))
}

/// Where the salt of a passphrase-derived master key is kept.
pub(crate) fn master_salt_path(s: &Settings) -> PathBuf {
    s.data_dir.join("master.salt")
}

/// Opens the configured PKCS#11 token; the PIN comes from SHEDU_PKCS11_PIN or the PIN file.
async fn open_pkcs11(token: &(PathBuf, String, Option<PathBuf>)) -> anyhow::Result<Pkcs11Engine> {
    let config = crate::unseal::pkcs11_config(token)?;
    let engine = tokio::task::spawn_blocking(move || Pkcs11Engine::open(config)).await??;
    Ok(engine)
}

/// The bootstrap admin token: `SHEDU_ADMIN_TOKEN`, else `<data-dir>/admin-token` (generated at first boot,
/// mode 0600). Returns the token and a description of where it is, never the token itself.
/// The bootstrap admin token: `SHEDU_ADMIN_TOKEN`, or `<data-dir>/admin-token` (made on first start). The
/// replicas of one database agree on one token, stored sealed under the master key.
async fn admin_token(
    data_dir: &Path,
    services: &Services,
    master: &shedu_keys::MasterKey,
) -> anyhow::Result<(AdminToken, String)> {
    if let Ok(t) = std::env::var("SHEDU_ADMIN_TOKEN") {
        return Ok((
            AdminToken::new(t).map_err(anyhow::Error::msg)?,
            "from SHEDU_ADMIN_TOKEN".into(),
        ));
    }
    let path = data_dir.join("admin-token");
    let local = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mine = local
        .clone()
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>()));
    let keystore = Keystore::new(master)?;
    let sealed = keystore.seal_secret(ADMIN_TOKEN_CONTEXT, mine.as_bytes())?;
    let agreed = services
        .agree(Agreed::AdminToken, &sealed)
        .await
        .context("cannot agree on the admin token with the other replicas")?;
    let token = if agreed == sealed {
        mine
    } else {
        let plain = keystore
            .open_secret(ADMIN_TOKEN_CONTEXT, &agreed)
            .context("the other replicas' admin token does not open with this master key")?;
        String::from_utf8(plain.to_vec()).context("the stored admin token is not text")?
    };
    if local.as_deref() != Some(token.as_str()) {
        write_secret_file(&path, token.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok((
        AdminToken::new(token).map_err(anyhow::Error::msg)?,
        path.display().to_string(),
    ))
}

fn token_path_hint(data_dir: &Path, source: &str) -> Option<PathBuf> {
    let path = data_dir.join("admin-token");
    (source == path.display().to_string()).then_some(path)
}

fn init_tracing(s: &Settings) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&s.log)
        .with_context(|| format!("invalid log filter {:?}", s.log))?;
    // Colours only for a person at a terminal: a log file or a pipe (journald, a collector) gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = if s.log_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot initialise logging: {e}"))
}

fn printable(s: &Settings) -> String {
    let c = &s.connector;
    let protocols = format!(
        "acme_http01_port = {}\nacme_tlsalpn01_port = {}\nacme_dns_resolver = {:?}\nacme_validation_timeout = \"{}s\"\n\
         connector_base = {:?}\nconnector_url = {:?}\nconnector_gateway_url = {:?}\n\
         connector_application_ca = {:?}\nconnector_runtime_ca = {:?}\nconnector_validity_days = {}\n\
         connector_token_ttl = \"{}s\"\nconnector_runtime_token_ttl = \"{}s\"\nconnector_csr_token_ttl = \"{}s\"",
        s.acme.http01_port,
        s.acme.tlsalpn01_port,
        s.acme
            .dns_resolver
            .map(|a| a.to_string())
            .unwrap_or_else(|| "system".into()),
        s.acme.validation_timeout.as_secs(),
        c.base_path,
        c.public_url,
        c.gateway_url,
        c.application_ca,
        c.runtime_ca,
        c.validity_days,
        c.application_token_ttl,
        c.runtime_token_ttl,
        c.csr_token_ttl,
    );
    let general = format!(
        "data_dir = {:?}\nlisten = \"{}\"\nhttp_listen = \"{}\"\nkmip_listen = \"{}\"\npublic_url = {:?}\ndatabase_url = {:?}\ntls_cert = {:?}\ntls_names = {:?}\ntls_reload_every = \"{}s\"\n\
         master_key_file = {:?}\nunseal = {:?}\nlifecycle_interval = \"{}s\"\ncrl_validity = \"{}s\"\nreminder_days = {:?}\nreminder_interval = \"{}s\"\nlog = {:?}\nlog_format = \"{}\"\noidc_issuers = {:?}\n\
         webhook_allow = {:?}\nwebhook_timeout = \"{}s\"\nready_bus = \"{}\"",
        s.data_dir,
        s.listen,
        s.http_listen,
        s.kmip.addr,
        s.public_url,
        redact_url(&s.database_url),
        s.tls_files.as_ref().map(|(c, _)| c),
        s.tls_names,
        s.tls_reload_every.as_secs(),
        s.master_key_file,
        s.unseal.as_ref().map(ToString::to_string),
        s.lifecycle_interval.as_secs(),
        s.crl_validity.as_secs(),
        if s.reminders.0.is_empty() {
            "none".to_string()
        } else {
            s.reminders
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        },
        s.reminders.1.as_secs(),
        s.log,
        if s.log_json { "json" } else { "text" },
        s.oidc.iter().map(|i| &i.issuer).collect::<Vec<_>>(),
        s.webhook_allow
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        s.webhook_timeout.as_secs(),
        s.ready_bus.as_str(),
    );
    format!("{general}\n{protocols}")
}

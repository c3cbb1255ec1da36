//! `shedu serve` configuration, in two stages: raw [`ServeArgs`] (flags, `SHEDU_*` variables, an optional
//! TOML file, in that precedence) resolved into typed [`Settings`] with the defaults applied.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use shedu_core::EngineKind;

mod connector;
mod rotation;
mod secrets;

/// Options of `shedu serve`. Every option can also be set by its `SHEDU_*` variable or in the TOML file
/// given by `--config` (keys are the long option names with `_`, e.g. `data_dir = "/var/lib/shedu"`).
/// Secrets are never flags: the admin token comes from `SHEDU_ADMIN_TOKEN` (or is generated into
/// `<data-dir>/admin-token`), the master key from `SHEDU_MASTER_KEY` or the master key file.
#[derive(Debug, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServeArgs {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "SHEDU_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Data folder: SQLite database, TLS files, admin token, master key. [default: ./shedu-data]
    #[arg(long, env = "SHEDU_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// HTTPS listener (API). [default: 127.0.0.1:8443]
    #[arg(long, env = "SHEDU_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Plain-HTTP listener: health, OCSP, CRLs and CA certificates. [default: 127.0.0.1:8080]
    #[arg(long, env = "SHEDU_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,

    /// KMIP listener: binary TTLV over TLS, client certificates from a managed CA required. When not
    /// set and the default address is taken, shedu serves without KMIP (a warning). [default: 127.0.0.1:5696]
    #[arg(long, env = "SHEDU_KMIP_LISTEN")]
    pub kmip_listen: Option<SocketAddr>,

    /// Base URL relying parties use for OCSP, CRLs and CA certificates; written into issued certificates
    /// (AIA, CRL distribution points). [default: http://<http-listen>]
    #[arg(long, env = "SHEDU_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Database URL: `sqlite://path` or `postgres://user@host/db`. [default: sqlite://<data-dir>/shedu.db]
    #[arg(long, env = "SHEDU_DATABASE_URL")]
    pub database_url: Option<String>,

    /// PEM certificate chain for the HTTPS listener; without it shedu issues one from its internal TLS CA.
    #[arg(long, env = "SHEDU_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key matching --tls-cert.
    #[arg(long, env = "SHEDU_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// How often the HTTPS listener re-reads --tls-cert and --tls-key (a replaced pair is served from the
    /// next handshake on) or checks the internal certificate for renewal, e.g. `30s`, `5m`. [default: 5m]
    #[arg(long, env = "SHEDU_TLS_RELOAD_EVERY")]
    pub tls_reload_every: Option<String>,

    /// Extra DNS names or IPs for the internally issued TLS certificate (comma-separated).
    /// [default: localhost, 127.0.0.1, ::1 and the listen address]
    #[arg(long, env = "SHEDU_TLS_NAMES", value_delimiter = ',')]
    pub tls_names: Option<Vec<String>>,

    /// File holding the master key that seals CA keys (created with mode 0600 when missing; ignored when
    /// SHEDU_MASTER_KEY is set). [default: <data-dir>/master.key]
    #[arg(long, env = "SHEDU_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,

    /// Auto-unseal: keep the master key only wrapped (`<data-dir>/master.key.wrapped`) under a key derived
    /// with HKDF-SHA256 from machine-bound input: `kdf:machine-id` (/etc/machine-id), `kdf:dmi` (the
    /// firmware's product UUID and serial, root only), `kdf:file:<path>`
    /// (the file's bytes) or `kdf:exec:<program>` (the hex key material the program prints); or
    /// `pkcs11:<label>`: wrapped by that AES key of the PKCS#11 token (made there at the first start). A
    /// clear master key file is wrapped and removed at the first start in this mode.
    #[arg(long, env = "SHEDU_UNSEAL")]
    pub unseal: Option<String>,

    /// PKCS#11 module (shared library) of the HSM that may hold CA keys, e.g. SoftHSM2's libsofthsm2.so.
    #[arg(long, env = "SHEDU_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,

    /// Label of the PKCS#11 token to use.
    #[arg(long, env = "SHEDU_PKCS11_TOKEN_LABEL")]
    pub pkcs11_token_label: Option<String>,

    /// File holding the token's user PIN (or set SHEDU_PKCS11_PIN; never a flag in clear).
    #[arg(long, env = "SHEDU_PKCS11_PIN_FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,

    /// Engine for CAs that do not name one: `software` or `pkcs11`. [default: software]
    #[arg(long, env = "SHEDU_DEFAULT_ENGINE")]
    pub default_engine: Option<String>,

    /// How often the lifecycle job moves certificates between statuses, e.g. `30s`, `1m`, `1h`. [default: 1m]
    #[arg(long, env = "SHEDU_LIFECYCLE_INTERVAL")]
    pub lifecycle_interval: Option<String>,

    /// How long a CRL is valid (nextUpdate − thisUpdate), e.g. `1h`, `24h`, `7d`; CRLs are re-signed at half
    /// of it, by one replica of a cluster. [default: 24h]
    #[arg(long, env = "SHEDU_CRL_VALIDITY")]
    pub crl_validity: Option<String>,

    /// Days before notAfter at which a certificate gets a `certificate.expiry_reminder` event,
    /// comma-separated; `none` turns the reminders off. [default: 30,7,1]
    #[arg(long, env = "SHEDU_REMINDER_DAYS")]
    pub reminder_days: Option<String>,

    /// How often the expiry reminder job looks, e.g. `10m`, `1h`. [default: 1h]
    #[arg(long, env = "SHEDU_REMINDER_INTERVAL")]
    pub reminder_interval: Option<String>,

    /// `shedu bootstrap-pki`'s configuration (a TOML file with a `[pki]` table): the services' PKI under
    /// `--bootstrap-pki-out` is made or renewed (`cache` mode; `import` when `[pki]` names a CA) at start
    /// and at every lifecycle tick. [default: none]
    #[arg(long, env = "SHEDU_BOOTSTRAP_PKI")]
    pub bootstrap_pki: Option<PathBuf>,

    /// The folder `--bootstrap-pki` writes the services' PKI to (`bootstrap-pki --out`).
    #[arg(long, env = "SHEDU_BOOTSTRAP_PKI_OUT")]
    pub bootstrap_pki_out: Option<PathBuf>,

    /// External event bus for the outbox: `nats://host:4222` (JetStream, subject `shedu.<type>`) or
    /// `amqp://user:pass@host:5672/%2f` (RabbitMQ topic exchange `shedu.events`). Repeatable; comma-separated
    /// in SHEDU_EVENTS_URL.
    #[arg(long = "events-url", env = "SHEDU_EVENTS_URL", value_delimiter = ',')]
    pub events_url: Option<Vec<String>>,

    /// What an event bus that stops answering does to `/ready`: `require` answers 503 while any bus of
    /// --events-url is unreachable (the balancer takes the replica out); `report` stays 200 (events wait in
    /// the outbox) and shows the bus state in the body. [default: require]
    #[arg(long, env = "SHEDU_READY_BUS")]
    pub ready_bus: Option<String>,

    /// SMTP relay for e-mail alerts.
    #[arg(long, env = "SHEDU_SMTP_HOST")]
    pub smtp_host: Option<String>,

    /// SMTP port. [default: 587, or 465 with --smtp-tls tls, 25 with none]
    #[arg(long, env = "SHEDU_SMTP_PORT")]
    pub smtp_port: Option<u16>,

    /// SMTP transport security: `none`, `starttls` or `tls`. [default: starttls]
    #[arg(long, env = "SHEDU_SMTP_TLS")]
    pub smtp_tls: Option<String>,

    /// Sender address of alert mails. [default: shedu@localhost]
    #[arg(long, env = "SHEDU_SMTP_FROM")]
    pub smtp_from: Option<String>,

    /// SMTP user name.
    #[arg(long, env = "SHEDU_SMTP_USERNAME")]
    pub smtp_username: Option<String>,

    /// File holding the SMTP password (or SHEDU_SMTP_PASSWORD; never a flag in clear).
    #[arg(long, env = "SHEDU_SMTP_PASSWORD_FILE")]
    pub smtp_password_file: Option<PathBuf>,

    /// PEM file of CA certificates to trust for the SMTP relay's TLS certificate, besides the built-in web
    /// roots (a relay with a certificate from a private CA).
    #[arg(long, env = "SHEDU_SMTP_CA_FILE")]
    pub smtp_ca_file: Option<PathBuf>,

    /// Folder of alert template overrides (`<event type>.subject.txt`, `.txt`, `.html`).
    #[arg(long, env = "SHEDU_TEMPLATE_DIR")]
    pub template_dir: Option<PathBuf>,

    /// Address of a TLS-terminating proxy whose forwarded client certificate (URL-encoded PEM, nginx
    /// `$ssl_client_escaped_cert`, or base64 DER, HAProxy `%[ssl_c_der,base64]`) and `X-Forwarded-For`
    /// client address are believed. Repeatable; comma-separated in SHEDU_TRUSTED_PROXY.
    #[arg(
        long = "trusted-proxy",
        env = "SHEDU_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxy: Option<Vec<std::net::IpAddr>>,

    /// The header a trusted proxy forwards the client certificate in. [default: X-Client-Cert]
    #[arg(long, env = "SHEDU_CLIENT_CERT_HEADER")]
    pub client_cert_header: Option<String>,

    /// The RA (name or id) that answers EST requests whose URL has no label (`/.well-known/est/simpleenroll`).
    #[arg(long, env = "SHEDU_EST_DEFAULT_RA")]
    pub est_default_ra: Option<String>,

    /// Stop accepting the bootstrap admin token once an enabled admin user exists.
    #[arg(long, env = "SHEDU_BOOTSTRAP_UNTIL_ADMIN")]
    #[serde(default)]
    pub bootstrap_until_admin: bool,

    /// Issuer (exact `iss`) of an OIDC identity provider whose bearer JWTs the API accepts; goes with
    /// --oidc-audience, --oidc-jwks-url and --oidc-roles-claim. In the TOML file, list providers as
    /// `[[oidc]]` tables (issuer, audience, jwks_url, roles_claim; optional algorithms, username_claim,
    /// leeway_seconds); these flags add one more.
    #[arg(long, env = "SHEDU_OIDC_ISSUER")]
    #[serde(skip)]
    pub oidc_issuer: Option<String>,

    /// The audience (`aud`) the provider's tokens must carry for shedu.
    #[arg(long, env = "SHEDU_OIDC_AUDIENCE")]
    #[serde(skip)]
    pub oidc_audience: Option<String>,

    /// The provider's JWKS URL (https://, or http:// to a loopback address).
    #[arg(long, env = "SHEDU_OIDC_JWKS_URL")]
    #[serde(skip)]
    pub oidc_jwks_url: Option<String>,

    /// The claim holding the roles, a dotted path such as `realm_access.roles`, `roles` or `groups`; the
    /// values `admin`, `operator` and `auditor` count, the strongest wins.
    #[arg(long, env = "SHEDU_OIDC_ROLES_CLAIM")]
    #[serde(skip)]
    pub oidc_roles_claim: Option<String>,

    /// OIDC identity providers from the TOML file (`[[oidc]]`).
    #[arg(skip)]
    pub oidc: Vec<OidcArgs>,

    /// An address block webhooks (alert subscriptions, RA approval services) may reach although it is not
    /// globally routable, e.g. `10.20.0.0/16` or `127.0.0.1/32`. Loopback, link-local (cloud metadata),
    /// private, CGNAT and other non-global addresses are refused otherwise. Repeatable; comma-separated in
    /// SHEDU_WEBHOOK_ALLOW; `webhook_allow = [..]` in the TOML file.
    #[arg(
        long = "webhook-allow",
        env = "SHEDU_WEBHOOK_ALLOW",
        value_delimiter = ','
    )]
    pub webhook_allow: Option<Vec<String>>,

    /// How long an alert webhook may take to answer (connect, send, answer), e.g. `10s`; a slower answer is
    /// a failed attempt, retried later. [default: 10s]
    #[arg(long, env = "SHEDU_WEBHOOK_TIMEOUT")]
    pub webhook_timeout: Option<String>,

    /// The port ACME http-01 validations connect to (RFC 8555 §8.3 says 80; tests use a client's own
    /// port). [default: 80]
    #[arg(long, env = "SHEDU_ACME_HTTP01_PORT")]
    pub acme_http01_port: Option<u16>,

    /// The port ACME tls-alpn-01 validations connect to (RFC 8737 says 443; tests use a client's own
    /// port). [default: 443]
    #[arg(long, env = "SHEDU_ACME_TLSALPN01_PORT")]
    pub acme_tlsalpn01_port: Option<u16>,

    /// The DNS server (`host:port`) ACME dns-01 validations ask for TXT records. [default: the system's
    /// resolvers, /etc/resolv.conf]
    #[arg(long, env = "SHEDU_ACME_DNS_RESOLVER")]
    pub acme_dns_resolver: Option<std::net::SocketAddr>,

    /// How long one ACME validation may take (connect and answer), e.g. `10s`. [default: 10s]
    #[arg(long, env = "SHEDU_ACME_VALIDATION_TIMEOUT")]
    pub acme_validation_timeout: Option<String>,

    /// Log filter (tracing `EnvFilter` syntax). [default: info]
    #[arg(long, env = "SHEDU_LOG")]
    pub log: Option<String>,

    /// Log format: `text` or `json`. [default: text]
    #[arg(long, env = "SHEDU_LOG_FORMAT")]
    pub log_format: Option<String>,

    /// Print the resolved configuration (secrets redacted) and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_config: bool,

    /// The connector's options (`[connector]` in the TOML file).
    #[command(flatten)]
    pub connector: connector::ConnectorArgs,

    /// The secret store's options (`[secrets]` in the TOML file).
    #[command(flatten)]
    pub secrets: secrets::SecretsArgs,

    /// Agentless rotation's options (`[rotation]` in the TOML file).
    #[command(flatten)]
    pub rotation: rotation::RotationArgs,

    /// `[pki]`: `shedu bootstrap-pki`'s table (`bootstrap.rs` reads it), allowed here so that one
    /// `services.toml` holds the services' token entries and their certificates; serve ignores it.
    #[arg(skip)]
    #[serde(rename = "pki")]
    pub _bootstrap_pki: Option<toml::Table>,
}

/// One `[[oidc]]` table of the TOML file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OidcArgs {
    issuer: String,
    audience: String,
    jwks_url: String,
    roles_claim: String,
    algorithms: Option<Vec<String>>,
    username_claim: Option<String>,
    leeway_seconds: Option<u64>,
    /// Web console sign-in through this provider (authorization code + PKCE): the client registered
    /// there (the audience must be the same), its secret for a confidential client, the button's label.
    console_client_id: Option<String>,
    console_client_secret: Option<String>,
    console_label: Option<String>,
}

impl OidcArgs {
    fn into_issuer(self) -> shedu_core::OidcIssuer {
        let mut issuer = shedu_core::OidcIssuer::new(
            self.issuer,
            self.audience,
            self.jwks_url,
            self.roles_claim,
        );
        if let Some(algorithms) = self.algorithms {
            issuer.algorithms = algorithms;
        }
        if let Some(claim) = self.username_claim {
            issuer.username_claim = claim;
        }
        if let Some(secs) = self.leeway_seconds {
            issuer.leeway = Duration::from_secs(secs);
        }
        if let Some(client_id) = self.console_client_id {
            issuer.sign_in = Some(shedu_core::OidcSignIn {
                label: self
                    .console_label
                    .unwrap_or_else(|| format!("Sign in with {}", issuer.issuer)),
                client_id,
                client_secret: self.console_client_secret,
            });
        }
        issuer
    }
}

/// Fully resolved settings.
#[derive(Debug)]
pub(crate) struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub kmip: shedu_server::KmipListen,
    pub public_url: String,
    pub database_url: String,
    pub tls_files: Option<(PathBuf, PathBuf)>,
    pub tls_names: Vec<String>,
    pub tls_reload_every: Duration,
    pub master_key_file: PathBuf,
    pub unseal: Option<crate::unseal::UnsealSource>,
    pub pkcs11: Option<(PathBuf, String, Option<PathBuf>)>,
    pub default_engine: EngineKind,
    pub lifecycle_interval: Duration,
    pub crl_validity: Duration,
    /// Expiry reminder thresholds in days (empty: off) and the job's interval.
    pub reminders: (Vec<i64>, Duration),
    /// `--bootstrap-pki` and `--bootstrap-pki-out`.
    pub bootstrap_pki: Option<(PathBuf, PathBuf)>,
    pub log: String,
    pub log_json: bool,
    pub bootstrap_until_admin: bool,
    pub events_urls: Vec<String>,
    pub ready_bus: shedu_server::ReadyBus,
    pub smtp: Option<shedu_events::SmtpConfig>,
    pub template_dir: Option<PathBuf>,
    pub est_default_ra: Option<String>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub client_cert_header: Option<String>,
    pub oidc: Vec<shedu_core::OidcIssuer>,
    pub webhook_allow: Vec<shedu_core::Cidr>,
    pub webhook_timeout: Duration,
    pub print_config: bool,
    pub acme: shedu_core::AcmeConfig,
    pub connector: shedu_core::ConnectorConfig,
    pub secrets: shedu_core::SecretsConfig,
    pub secrets_socket: Option<PathBuf>,
    pub rotation: shedu_core::RotationConfig,
}

impl ServeArgs {
    /// Fills every option not given by flag or environment from the TOML file, then applies defaults.
    pub(crate) fn resolve(self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("shedu-data"));
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443)));
        let http_listen = self
            .http_listen
            .or(file.http_listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let kmip = match self.kmip_listen.or(file.kmip_listen) {
            Some(addr) => shedu_server::KmipListen {
                addr,
                optional: false,
            },
            None => shedu_server::KmipListen {
                addr: SocketAddr::from(([127, 0, 0, 1], 5696)),
                optional: true,
            },
        };
        let public_url = self
            .public_url
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{http_listen}"))
            .trim_end_matches('/')
            .to_string();
        let database_url = self.database_url.or(file.database_url).unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", data_dir.join("shedu.db").display())
        });
        let tls_files = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        let mut tls_names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        if !listen.ip().is_unspecified() && !tls_names.contains(&listen.ip().to_string()) {
            tls_names.push(listen.ip().to_string());
        }
        for n in self.tls_names.or(file.tls_names).unwrap_or_default() {
            if !tls_names.contains(&n) {
                tls_names.push(n);
            }
        }
        let reload_text = self
            .tls_reload_every
            .or(file.tls_reload_every)
            .unwrap_or_else(|| "5m".into());
        let tls_reload_every = parse_duration(&reload_text)
            .with_context(|| format!("invalid TLS reload period {reload_text:?}"))?;
        let master_key_file = self
            .master_key_file
            .or(file.master_key_file)
            .unwrap_or_else(|| data_dir.join("master.key"));
        let unseal = self
            .unseal
            .or(file.unseal)
            .map(|text| crate::unseal::UnsealSource::parse(&text))
            .transpose()?;
        let pkcs11 = match (
            self.pkcs11_module.or(file.pkcs11_module),
            self.pkcs11_token_label.or(file.pkcs11_token_label),
        ) {
            (Some(module), Some(label)) => {
                Some((module, label, self.pkcs11_pin_file.or(file.pkcs11_pin_file)))
            }
            (None, None) => None,
            _ => bail!("--pkcs11-module and --pkcs11-token-label go together"),
        };
        let default_engine = match self.default_engine.or(file.default_engine) {
            None => EngineKind::Software,
            Some(name) => name.parse().map_err(|_| {
                anyhow::anyhow!("--default-engine must be software or pkcs11, not {name:?}")
            })?,
        };
        if default_engine == EngineKind::Pkcs11 && pkcs11.is_none() {
            bail!("--default-engine pkcs11 needs --pkcs11-module and --pkcs11-token-label");
        }
        let interval_text = self
            .lifecycle_interval
            .or(file.lifecycle_interval)
            .unwrap_or_else(|| "1m".into());
        let lifecycle_interval = parse_duration(&interval_text)
            .with_context(|| format!("invalid lifecycle interval {interval_text:?}"))?;
        let crl_text = self
            .crl_validity
            .or(file.crl_validity)
            .unwrap_or_else(|| "24h".into());
        let crl_validity = parse_duration(&crl_text)
            .with_context(|| format!("invalid CRL validity {crl_text:?}"))?;
        if crl_validity < Duration::from_secs(2) || crl_validity > Duration::from_secs(366 * 86_400)
        {
            bail!("the CRL validity is 2 seconds to 366 days, not {crl_text:?}");
        }
        let days_text = self
            .reminder_days
            .or(file.reminder_days)
            .unwrap_or_else(|| "30,7,1".into());
        let reminder_days = parse_reminder_days(&days_text)?;
        let reminder_text = self
            .reminder_interval
            .or(file.reminder_interval)
            .unwrap_or_else(|| "1h".into());
        let reminder_interval = parse_duration(&reminder_text)
            .with_context(|| format!("invalid reminder interval {reminder_text:?}"))?;
        let log_format = self
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        let log_json = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => bail!("log format must be text or json, not {other:?}"),
        };
        let smtp = match self.smtp_host.or(file.smtp_host) {
            None => None,
            Some(host) => {
                let tls = match self
                    .smtp_tls
                    .or(file.smtp_tls)
                    .as_deref()
                    .unwrap_or("starttls")
                {
                    "none" => shedu_events::SmtpTls::None,
                    "starttls" => shedu_events::SmtpTls::StartTls,
                    "tls" => shedu_events::SmtpTls::Tls,
                    other => bail!("--smtp-tls must be none, starttls or tls, not {other:?}"),
                };
                let default_port = match tls {
                    shedu_events::SmtpTls::None => 25,
                    shedu_events::SmtpTls::StartTls => 587,
                    shedu_events::SmtpTls::Tls => 465,
                };
                let password = match (
                    std::env::var("SHEDU_SMTP_PASSWORD"),
                    self.smtp_password_file.or(file.smtp_password_file),
                ) {
                    (Ok(p), _) => Some(p),
                    (Err(_), Some(f)) => Some(
                        std::fs::read_to_string(&f)
                            .with_context(|| {
                                format!("cannot read the SMTP password file {}", f.display())
                            })?
                            .trim()
                            .to_string(),
                    ),
                    (Err(_), None) => None,
                };
                Some(shedu_events::SmtpConfig {
                    host,
                    port: self.smtp_port.or(file.smtp_port).unwrap_or(default_port),
                    tls,
                    from: self
                        .smtp_from
                        .or(file.smtp_from)
                        .unwrap_or_else(|| "shedu@localhost".into()),
                    username: self.smtp_username.or(file.smtp_username),
                    password: password.map(zeroize::Zeroizing::new),
                    ca_file: self.smtp_ca_file.or(file.smtp_ca_file),
                })
            }
        };
        let mut oidc = file.oidc;
        match (
            self.oidc_issuer,
            self.oidc_audience,
            self.oidc_jwks_url,
            self.oidc_roles_claim,
        ) {
            (None, None, None, None) => {}
            (Some(issuer), Some(audience), Some(jwks_url), Some(roles_claim)) => {
                oidc.push(OidcArgs {
                    issuer,
                    audience,
                    jwks_url,
                    roles_claim,
                    algorithms: None,
                    username_claim: None,
                    leeway_seconds: None,
                    console_client_id: None,
                    console_client_secret: None,
                    console_label: None,
                })
            }
            _ => bail!(
                "--oidc-issuer, --oidc-audience, --oidc-jwks-url and --oidc-roles-claim go together"
            ),
        }
        let webhook_allow = self
            .webhook_allow
            .or(file.webhook_allow)
            .unwrap_or_default()
            .iter()
            .map(|c| {
                c.parse()
                    .map_err(|e| anyhow::anyhow!("--webhook-allow: {e}"))
            })
            .collect::<anyhow::Result<Vec<shedu_core::Cidr>>>()?;
        let ready_bus_text = self
            .ready_bus
            .or(file.ready_bus)
            .unwrap_or_else(|| "require".into());
        let ready_bus = shedu_server::ReadyBus::parse(&ready_bus_text).with_context(|| {
            format!("invalid --ready-bus {ready_bus_text:?} (use require or report)")
        })?;
        let timeout_text = self
            .webhook_timeout
            .or(file.webhook_timeout)
            .unwrap_or_else(|| "10s".into());
        let webhook_timeout = parse_duration(&timeout_text)
            .with_context(|| format!("invalid webhook timeout {timeout_text:?}"))?;
        let acme_timeout_text = self
            .acme_validation_timeout
            .or(file.acme_validation_timeout)
            .unwrap_or_else(|| "10s".into());
        let acme = shedu_core::AcmeConfig {
            http01_port: self
                .acme_http01_port
                .or(file.acme_http01_port)
                .unwrap_or(80),
            tlsalpn01_port: self
                .acme_tlsalpn01_port
                .or(file.acme_tlsalpn01_port)
                .unwrap_or(443),
            validation_timeout: parse_duration(&acme_timeout_text).with_context(|| {
                format!("invalid ACME validation timeout {acme_timeout_text:?}")
            })?,
            dns_resolver: self.acme_dns_resolver.or(file.acme_dns_resolver),
            ..shedu_core::AcmeConfig::default()
        };
        let (secrets, secrets_socket) = self.secrets.resolve(file.secrets)?;
        let bootstrap_pki = match (
            self.bootstrap_pki.or(file.bootstrap_pki),
            self.bootstrap_pki_out.or(file.bootstrap_pki_out),
        ) {
            (Some(config), Some(out)) => Some((config, out)),
            (None, None) => None,
            _ => bail!("--bootstrap-pki and --bootstrap-pki-out go together"),
        };
        Ok(Settings {
            data_dir,
            listen,
            http_listen,
            kmip,
            public_url,
            database_url,
            tls_files,
            tls_names,
            tls_reload_every,
            master_key_file,
            unseal,
            pkcs11,
            default_engine,
            lifecycle_interval,
            crl_validity,
            reminders: (reminder_days, reminder_interval),
            bootstrap_pki,
            log: self.log.or(file.log).unwrap_or_else(|| "info".into()),
            log_json,
            bootstrap_until_admin: self.bootstrap_until_admin || file.bootstrap_until_admin,
            events_urls: self.events_url.or(file.events_url).unwrap_or_default(),
            ready_bus,
            smtp,
            template_dir: self.template_dir.or(file.template_dir),
            est_default_ra: self.est_default_ra.or(file.est_default_ra),
            trusted_proxies: self
                .trusted_proxy
                .or(file.trusted_proxy)
                .unwrap_or_default(),
            client_cert_header: self.client_cert_header.or(file.client_cert_header),
            oidc: oidc.into_iter().map(OidcArgs::into_issuer).collect(),
            webhook_allow,
            webhook_timeout,
            print_config: self.print_config,
            acme,
            connector: self.connector.resolve(file.connector)?,
            secrets,
            secrets_socket,
            rotation: self.rotation.resolve(file.rotation)?,
        })
    }
}

/// The `[[secrets.clients]]` entries of the serve configuration file at `path`.
pub(crate) fn secrets_clients(path: &Path) -> anyhow::Result<Vec<shedu_core::SecretClient>> {
    let file = read_file(path)?;
    Ok(secrets::SecretsArgs::default()
        .resolve(file.secrets)?
        .0
        .clients)
}

fn read_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration in {}", path.display()))
}

/// `90`, `90s`, `5m`, `1h` → a duration of at least one second.
pub(crate) fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .context("expected a number with an optional s/m/h/d suffix")?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => bail!("unknown unit {other:?}"),
    };
    if secs == 0 {
        bail!("must be at least 1s");
    }
    Ok(Duration::from_secs(secs))
}

/// `30,7,1` → `[30, 7, 1]`; `none` → no reminders. Each threshold is 1 to 3650 days.
fn parse_reminder_days(text: &str) -> anyhow::Result<Vec<i64>> {
    if text.trim() == "none" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|d| {
            let days: i64 = d.trim().parse().ok().filter(|d| (1..=3650).contains(d)).with_context(
                || format!("invalid reminder days {text:?}: whole days from 1 to 3650, comma-separated, or none"),
            )?;
            Ok(days)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5w").is_err());
        assert_eq!(parse_reminder_days("30, 7,1").unwrap(), [30, 7, 1]);
        assert!(parse_reminder_days("none").unwrap().is_empty());
        for bad in ["", "0", "7,x", "-1", "4000"] {
            assert!(parse_reminder_days(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_tls_reload_period_defaults_to_five_minutes_and_comes_from_flag_or_file() {
        assert_eq!(
            ServeArgs::default().resolve().unwrap().tls_reload_every,
            Duration::from_secs(300)
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shedu.toml");
        std::fs::write(&file, "tls_reload_every = \"1m\"\n").unwrap();
        let from_file = ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        assert_eq!(
            from_file.resolve().unwrap().tls_reload_every,
            Duration::from_secs(60)
        );
        let from_flag = ServeArgs {
            config: Some(file),
            tls_reload_every: Some("1s".into()),
            ..Default::default()
        };
        assert_eq!(
            from_flag.resolve().unwrap().tls_reload_every,
            Duration::from_secs(1)
        );
        let zero = ServeArgs {
            tls_reload_every: Some("0s".into()),
            ..Default::default()
        };
        assert!(zero.resolve().is_err());
    }

    #[test]
    fn flags_override_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shedu.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9443\"\nhttp_listen = \"127.0.0.1:9080\"\nlifecycle_interval = \"30s\"\n")
            .unwrap();
        let args = ServeArgs {
            config: Some(file),
            http_listen: Some("127.0.0.1:7080".parse().unwrap()),
            ..Default::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.listen.port(), 9443, "file value");
        assert_eq!(s.http_listen.port(), 7080, "flag beats file");
        assert_eq!(s.lifecycle_interval, Duration::from_secs(30));
        assert_eq!(s.data_dir, PathBuf::from("shedu-data"), "default");
    }

    #[test]
    fn oidc_issuers_come_from_the_file_and_the_flags_add_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shedu.toml");
        std::fs::write(
            &file,
            r#"
[[oidc]]
issuer = "https://kc.example/realms/pki"
audience = "shedu"
jwks_url = "https://kc.example/realms/pki/protocol/openid-connect/certs"
roles_claim = "realm_access.roles"
console_client_id = "shedu"
console_client_secret = "kc-client-secret"
console_label = "Sign in with Keycloak"

[[oidc]]
issuer = "https://tenant.auth0.example/"
audience = "https://shedu.example/api"
jwks_url = "https://tenant.auth0.example/.well-known/jwks.json"
roles_claim = "https://shedu.example/roles"
algorithms = ["ES256"]
username_claim = "email"
leeway_seconds = 5
"#,
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            oidc_issuer: Some("https://idp.example".into()),
            oidc_audience: Some("shedu-api".into()),
            oidc_jwks_url: Some("https://idp.example/jwks".into()),
            oidc_roles_claim: Some("groups".into()),
            ..Default::default()
        };
        let s = args.resolve().unwrap();
        let issuers: Vec<&str> = s.oidc.iter().map(|i| i.issuer.as_str()).collect();
        assert_eq!(
            issuers,
            [
                "https://kc.example/realms/pki",
                "https://tenant.auth0.example/",
                "https://idp.example"
            ]
        );
        let (kc, auth0, flags) = (&s.oidc[0], &s.oidc[1], &s.oidc[2]);
        assert_eq!(kc.roles_claim, "realm_access.roles");
        assert_eq!(kc.username_claim, "preferred_username", "default");
        assert_eq!(kc.leeway, Duration::from_secs(60), "default");
        let sign_in = kc.sign_in.as_ref().unwrap();
        assert_eq!(
            (
                sign_in.client_id.as_str(),
                sign_in.client_secret.as_deref(),
                sign_in.label.as_str()
            ),
            ("shedu", Some("kc-client-secret"), "Sign in with Keycloak")
        );
        assert!(auth0.sign_in.is_none() && flags.sign_in.is_none());
        assert!(kc.algorithms.iter().any(|a| a == "RS256"), "default list");
        assert_eq!(auth0.algorithms, ["ES256"]);
        assert_eq!(auth0.username_claim, "email");
        assert_eq!(auth0.leeway, Duration::from_secs(5));
        assert_eq!(
            (
                flags.audience.as_str(),
                flags.jwks_url.as_str(),
                flags.roles_claim.as_str()
            ),
            ("shedu-api", "https://idp.example/jwks", "groups")
        );

        let incomplete = ServeArgs {
            oidc_issuer: Some("https://idp.example".into()),
            oidc_jwks_url: Some("https://idp.example/jwks".into()),
            ..Default::default()
        };
        let err = incomplete.resolve().unwrap_err().to_string();
        assert!(err.contains("go together"), "{err}");

        std::fs::write(&file, "[[oidc]]\nissuer = \"https://idp.example\"\njwks_url = \"https://idp.example/jwks\"\nroles_claim = \"roles\"\n").unwrap();
        let no_audience = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        let err = format!("{:#}", no_audience.resolve().unwrap_err());
        assert!(err.contains("missing field `audience`"), "{err}");
    }

    // See: issue 12 (e-mail over STARTTLS to a relay with a private CA): the extra CA file reaches the mailer.
    #[test]
    fn smtp_settings_with_a_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shedu.toml");
        std::fs::write(
            &file,
            "smtp_host = \"mail.example\"\nsmtp_ca_file = \"/etc/relay-ca.pem\"\n",
        )
        .unwrap();
        let s = ServeArgs {
            config: Some(file),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let smtp = s.smtp.unwrap();
        assert_eq!(smtp.tls, shedu_events::SmtpTls::StartTls);
        assert_eq!(smtp.port, 587);
        assert_eq!(smtp.ca_file, Some(PathBuf::from("/etc/relay-ca.pem")));
    }

    // See: issue 19: what an unreachable bus does to /ready, from the file or the flag.
    #[test]
    fn ready_bus_setting() {
        assert_eq!(
            ServeArgs::default().resolve().unwrap().ready_bus,
            shedu_server::ReadyBus::Require
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shedu.toml");
        std::fs::write(&file, "ready_bus = \"report\"\n").unwrap();
        let s = ServeArgs {
            config: Some(file),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(s.ready_bus, shedu_server::ReadyBus::Report);
        let err = ServeArgs {
            ready_bus: Some("sometimes".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{err:#}").contains("require or report"), "{err:#}");
    }

    // See: issue 12 (blind SSRF): the operator's webhook allow-list, from the file and the flags.
    #[test]
    fn webhook_allow_list_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shedu.toml");
        std::fs::write(
            &file,
            "webhook_allow = [\"10.20.0.0/16\", \"fd00::/8\"]\nwebhook_timeout = \"3s\"\n",
        )
        .unwrap();
        let s = ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let allow: Vec<String> = s.webhook_allow.iter().map(ToString::to_string).collect();
        assert_eq!(allow, ["10.20.0.0/16", "fd00::/8"]);
        assert_eq!(s.webhook_timeout, Duration::from_secs(3));
        let s = ServeArgs {
            config: Some(file),
            webhook_allow: Some(vec!["127.0.0.1/32".into()]),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(s.webhook_allow.len(), 1, "flags replace the file's list");
        assert_eq!(
            ServeArgs::default().resolve().unwrap().webhook_timeout,
            Duration::from_secs(10)
        );
        let err = ServeArgs {
            webhook_allow: Some(vec!["10.0.0.0/33".into()]),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("--webhook-allow"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shedu.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        assert!(args.resolve().is_err());
    }
}

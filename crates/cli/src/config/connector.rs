//! The connector's options: `--connector-*` flags, `SHEDU_CONNECTOR_*` variables, or a `[connector]` table
//! in the TOML file whose keys are the flag names without `--connector-` (`application_ca = "apps"`),
//! resolved into `shedu_core::ConnectorConfig`.

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use shedu_core::ConnectorConfig;

use super::parse_duration;

/// The connector (Kyma-compatible pairing of applications and runtimes).
#[derive(Debug, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ConnectorArgs {
    /// Path the connector is served under on the HTTPS listener. [default: /connector]
    #[arg(long = "connector-base", env = "SHEDU_CONNECTOR_BASE")]
    pub base: Option<String>,

    /// The connector's public URL, base included (e.g. `https://pki.example/connector`), used in the URLs
    /// it hands out. [default: from the request's X-Forwarded-Host/-Proto/-Prefix, else its Host]
    #[arg(long = "connector-url", env = "SHEDU_CONNECTOR_URL")]
    pub url: Option<String>,

    /// The application gateway's URL; `eventsUrl`, `eventsInfoUrl` and `metadataUrl` are
    /// `<url>/<application>/v1/…`. Left out of the answers when not set.
    #[arg(long = "connector-gateway-url", env = "SHEDU_CONNECTOR_GATEWAY_URL")]
    pub gateway_url: Option<String>,

    /// CA (id or name) that signs application certificates. [default: the CA named `connector`]
    #[arg(
        long = "connector-application-ca",
        env = "SHEDU_CONNECTOR_APPLICATION_CA"
    )]
    pub application_ca: Option<String>,

    /// CA (id or name) that signs runtime certificates. [default: the application CA]
    #[arg(long = "connector-runtime-ca", env = "SHEDU_CONNECTOR_RUNTIME_CA")]
    pub runtime_ca: Option<String>,

    /// Subject attributes of connector certificates besides the CN, in order, e.g.
    /// `O=Acme,OU=Apps,L=Berlin,ST=Berlin,C=DE` (O, OU, L, ST, C). [default: Kyma's
    /// O=Organization,OU=OrgUnit,L=Waldorf,ST=Waldorf,C=DE]
    #[arg(long = "connector-subject", env = "SHEDU_CONNECTOR_SUBJECT")]
    pub subject: Option<String>,

    /// Validity of connector certificates in days, 1 to 92. [default: 92]
    #[arg(
        long = "connector-validity-days",
        env = "SHEDU_CONNECTOR_VALIDITY_DAYS"
    )]
    pub validity_days: Option<u32>,

    /// Lifetime of an application's pairing token, e.g. `5m`. [default: 5m]
    #[arg(long = "connector-token-ttl", env = "SHEDU_CONNECTOR_TOKEN_TTL")]
    pub token_ttl: Option<String>,

    /// Lifetime of a runtime's pairing token. [default: 10m]
    #[arg(
        long = "connector-runtime-token-ttl",
        env = "SHEDU_CONNECTOR_RUNTIME_TOKEN_TTL"
    )]
    pub runtime_token_ttl: Option<String>,

    /// Lifetime of the CSR token the info call hands out. [default: 5m]
    #[arg(
        long = "connector-csr-token-ttl",
        env = "SHEDU_CONNECTOR_CSR_TOKEN_TTL"
    )]
    pub csr_token_ttl: Option<String>,
}

impl ConnectorArgs {
    /// Flags and environment over the file's `[connector]` table, over the defaults.
    pub(crate) fn resolve(self, file: ConnectorArgs) -> anyhow::Result<ConnectorConfig> {
        let d = ConnectorConfig::default();
        let base = self.base.or(file.base).unwrap_or(d.base_path.clone());
        if !base.starts_with('/')
            || base.len() < 2
            || base.ends_with('/')
            || base.starts_with("/api")
            || base
                .chars()
                .any(|c| c.is_whitespace() || c == '{' || c == '}')
        {
            bail!(
                "--connector-base must be a path like /connector (not /, not under /api, no trailing /)"
            );
        }
        let application_ca = self
            .application_ca
            .or(file.application_ca)
            .unwrap_or(d.application_ca);
        let runtime_ca = self
            .runtime_ca
            .or(file.runtime_ca)
            .unwrap_or_else(|| application_ca.clone());
        let subject = match self.subject.or(file.subject) {
            None => d.subject,
            Some(text) => ConnectorConfig::parse_subject(&text)
                .map_err(|e| anyhow::anyhow!("--connector-subject: {e}"))?,
        };
        let validity_days = self
            .validity_days
            .or(file.validity_days)
            .unwrap_or(d.validity_days);
        if !(1..=shedu_core::CONNECTOR_MAX_VALIDITY_DAYS).contains(&validity_days) {
            bail!("--connector-validity-days must be 1 to 92");
        }
        let ttl = |flag: &str, v: Option<String>, default: i64| -> anyhow::Result<i64> {
            match v {
                None => Ok(default),
                Some(t) => Ok(parse_duration(&t)
                    .with_context(|| format!("invalid {flag} {t:?}"))?
                    .as_secs() as i64),
            }
        };
        Ok(ConnectorConfig {
            base_path: base,
            public_url: self
                .url
                .or(file.url)
                .map(|u| u.trim_end_matches('/').to_string()),
            gateway_url: self.gateway_url.or(file.gateway_url),
            application_ca,
            runtime_ca,
            subject,
            validity_days,
            application_token_ttl: ttl(
                "--connector-token-ttl",
                self.token_ttl.or(file.token_ttl),
                d.application_token_ttl,
            )?,
            runtime_token_ttl: ttl(
                "--connector-runtime-token-ttl",
                self.runtime_token_ttl.or(file.runtime_token_ttl),
                d.runtime_token_ttl,
            )?,
            csr_token_ttl: ttl(
                "--connector-csr-token-ttl",
                self.csr_token_ttl.or(file.csr_token_ttl),
                d.csr_token_ttl,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_defaults_and_overrides() {
        let c = ConnectorArgs::default()
            .resolve(ConnectorArgs::default())
            .unwrap();
        assert_eq!(c.base_path, "/connector");
        assert_eq!(
            (
                c.application_token_ttl,
                c.runtime_token_ttl,
                c.csr_token_ttl
            ),
            (300, 600, 300)
        );
        assert_eq!(
            (c.application_ca.as_str(), c.runtime_ca.as_str()),
            ("connector", "connector")
        );
        let c = ConnectorArgs {
            base: Some("/kyma".into()),
            application_ca: Some("apps".into()),
            subject: Some("O=Acme, C=DE".into()),
            token_ttl: Some("1m".into()),
            ..Default::default()
        }
        .resolve(ConnectorArgs {
            validity_days: Some(1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.base_path, "/kyma");
        assert_eq!(
            c.runtime_ca, "apps",
            "the runtime CA follows the application CA"
        );
        assert_eq!(c.subject.len(), 2);
        assert_eq!((c.application_token_ttl, c.validity_days), (60, 1));
        for bad in [
            ConnectorArgs {
                base: Some("/".into()),
                ..Default::default()
            },
            ConnectorArgs {
                base: Some("/api/kyma".into()),
                ..Default::default()
            },
            ConnectorArgs {
                subject: Some("CN=x".into()),
                ..Default::default()
            },
            ConnectorArgs {
                validity_days: Some(93),
                ..Default::default()
            },
        ] {
            assert!(bad.resolve(ConnectorArgs::default()).is_err());
        }
    }
}

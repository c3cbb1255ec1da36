//! Agentless rotation's options: `--rotation-*` flags (and `--max-concurrent-rotations`),
//! `SHEDU_ROTATION_*` variables, or a `[rotation]` table in the TOML file whose keys are the field names
//! (`max_concurrent = 5`), resolved into `shedu_core::RotationConfig`.

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use shedu_core::RotationConfig;

use super::parse_duration;

/// Agentless certificate rotation (assets, executors, routes, runs).
#[derive(Debug, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RotationArgs {
    /// Rotation runs at once on this replica; the rest wait in the queue. [default: 50]
    #[arg(
        long = "max-concurrent-rotations",
        env = "SHEDU_MAX_CONCURRENT_ROTATIONS"
    )]
    pub max_concurrent: Option<usize>,

    /// A run's whole budget, e.g. `10m`; a step still running then is killed. [default: 10m]
    #[arg(long = "rotation-run-timeout", env = "SHEDU_ROTATION_RUN_TIMEOUT")]
    pub run_timeout: Option<String>,

    /// How long validation on the wire retries after `reload`. [default: 30s]
    #[arg(
        long = "rotation-validation-timeout",
        env = "SHEDU_ROTATION_VALIDATION_TIMEOUT"
    )]
    pub validation_timeout: Option<String>,

    /// A running run whose worker stopped stamping its heartbeat this long ago (its replica died) is
    /// abandoned: failed, its new certificate revoked, its asset due again. [default: 60s]
    #[arg(long = "rotation-stale-after", env = "SHEDU_ROTATION_STALE_AFTER")]
    pub stale_after: Option<String>,

    /// Revoke the previous certificate (superseded) after a verified rotation.
    #[arg(
        long = "rotation-revoke-previous",
        env = "SHEDU_ROTATION_REVOKE_PREVIOUS"
    )]
    pub revoke_previous: Option<bool>,
}

impl RotationArgs {
    /// Flags and environment over the file's `[rotation]` table, over the defaults.
    pub(crate) fn resolve(self, file: RotationArgs) -> anyhow::Result<RotationConfig> {
        let d = RotationConfig::default();
        let max_concurrent = self
            .max_concurrent
            .or(file.max_concurrent)
            .unwrap_or(d.max_concurrent);
        if !(1..=10_000).contains(&max_concurrent) {
            bail!("--max-concurrent-rotations must be 1 to 10000");
        }
        let duration = |flag: &str, v: Option<String>, default| -> anyhow::Result<_> {
            match v {
                None => Ok(default),
                Some(t) => parse_duration(&t).with_context(|| format!("invalid {flag} {t:?}")),
            }
        };
        Ok(RotationConfig {
            max_concurrent,
            run_timeout: duration(
                "--rotation-run-timeout",
                self.run_timeout.or(file.run_timeout),
                d.run_timeout,
            )?,
            validation_timeout: duration(
                "--rotation-validation-timeout",
                self.validation_timeout.or(file.validation_timeout),
                d.validation_timeout,
            )?,
            stale_after: {
                let d = duration(
                    "--rotation-stale-after",
                    self.stale_after.or(file.stale_after),
                    d.stale_after,
                )?;
                if d < std::time::Duration::from_secs(2) {
                    bail!("--rotation-stale-after must be at least 2s");
                }
                d
            },
            revoke_previous: self
                .revoke_previous
                .or(file.revoke_previous)
                .unwrap_or(d.revoke_previous),
            ..d
        })
    }
}

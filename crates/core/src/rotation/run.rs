//! One run, start to end: route, `csr` on the host, issuance, `install`, `reload`, then validation on the
//! wire (retried until it holds or the validation time is up), all within the run's timeout (a step still
//! running then is killed). A failure once `install` has begun runs `rollback` when the executor has one
//! (the run ends `rolled_back`); a failure after issuance revokes the new certificate
//! (`cessationOfOperation`: it was never in service, so `superseded` would be wrong); success revokes the
//! previous one (`superseded`) when configured. The run's end, what the asset serves and the
//! `rotation.succeeded`/`rotation.failed` event commit together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use shedu_pki::{RevocationReason, Serial};
use shedu_store::{AssetObserved, RunRow};
use zeroize::Zeroizing;

use super::exec::{StepInput, run_step};
use super::{
    Asset, KeyMode, Rotation, RunState, RunStep, SKIP_FAILED, first_match, scheduler_actor, wire,
};
use crate::error::store_err;
use crate::events::{EventKind, event};
use crate::{Error, IssueInput};

/// The log of a run in progress.
struct Log {
    steps: Vec<RunStep>,
    serial: Option<String>,
    /// The executor's opened secret, for the rollback after a failure; kept out of every detail.
    secret: Option<zeroize::Zeroizing<String>>,
    /// The CA of the new certificate, once issued.
    ca_id: Option<String>,
}

impl Rotation {
    /// Executes a claimed run and records its end. `Err` only when the end could not be recorded.
    pub(super) async fn execute(self: &Arc<Self>, run: RunRow) -> Result<(), Error> {
        let deadline = Instant::now() + self.config.run_timeout;
        let asset = self.asset(&run.system_name).await?;
        let mut log = Log {
            steps: Vec::new(),
            serial: None,
            secret: None,
            ca_id: None,
        };
        let outcome = self.attempt(&run, &asset, &mut log, deadline).await;
        self.finish(run, &asset, log, outcome).await
    }

    async fn attempt(
        &self,
        run: &RunRow,
        asset: &Asset,
        log: &mut Log,
        deadline: Instant,
    ) -> Result<Done, Failure> {
        let now = || self.reg.now();
        let a = &asset.input;
        let routes = self.routes().await.map_err(Failure::plain)?;
        let Some(route) = first_match(routes, a) else {
            return Err(Failure::plain("no route matches the asset (no_route)"));
        };
        let executor_row = self
            .reg
            .store
            .executor(&route.executor_id)
            .await
            .map_err(|e| Failure::plain(e.to_string()))?
            .ok_or_else(|| Failure::plain("the route's executor is gone"))?;
        let spec = super::ExecutorSpec::from_json(&executor_row.kind, &executor_row.config)
            .map_err(Failure::plain)?;
        let secret = match &executor_row.sealed {
            None => None,
            Some(sealed) => Some(
                self.open_executor_secret(&executor_row.id, sealed)
                    .map_err(Failure::plain)?,
            ),
        };
        let secret = secret.as_ref().map(|s| s.as_str());
        log.secret = secret.map(str::to_string).map(zeroize::Zeroizing::new);
        log.push_ok(
            now(),
            "route",
            format!(
                "route {} (position {}), executor {}",
                route.id, route.position, executor_row.name
            ),
        );

        let timeout = self.config.run_timeout;
        let (csr_pem, server_key) = match route.settings.key_mode {
            // csr: the key is made on the host and never leaves it.
            KeyMode::OnDevice => {
                let budget = log.budget(now(), deadline, "csr", timeout)?;
                let csr = run_step(
                    &spec,
                    secret,
                    &self.http,
                    &StepInput {
                        step: "csr",
                        asset: a,
                        certificate: None,
                        chain: None,
                        key: None,
                    },
                    budget,
                )
                .await;
                let csr = log.push(
                    now(),
                    "csr",
                    timed(csr, deadline, timeout)
                        .map(|out| (out.clone(), "CSR received".to_string())),
                )?;
                let csr_pem = pem_block(&csr, "CERTIFICATE REQUEST").ok_or_else(|| {
                    log.fail(now(), "csr", "the answer holds no PEM CERTIFICATE REQUEST")
                })?;
                (csr_pem, None)
            }
            // keygen: shedu makes the key, in memory only; `install` delivers it with the certificate.
            KeyMode::Server => {
                let key_type = route.settings.key_type.as_deref().unwrap_or("ec-p256");
                let (csr_pem, key) = server_key(key_type, &a.common_name)
                    .map_err(|e| log.fail(now(), "keygen", &e))?;
                log.push_ok(
                    now(),
                    "keygen",
                    format!("{key_type} key made by shedu, delivered by install, never stored"),
                );
                (csr_pem, Some(key))
            }
        };

        // issue, under the asset's CA or the route's.
        let ca_id = a
            .ca_id
            .clone()
            .unwrap_or_else(|| route.settings.ca_id.clone());
        let mut names = vec![a.common_name.clone()];
        names.extend(a.subject_alternative_name.iter().cloned());
        names.dedup();
        let issued = self
            .issuance
            .issue(
                &scheduler_actor(&run.id),
                &ca_id,
                IssueInput {
                    csr: csr_pem.into_bytes(),
                    validity_days: route.settings.validity_days,
                    sans: Some(names.clone()),
                },
            )
            .await
            .map_err(|e| log.fail(now(), "issue", &e.to_string()))?;
        let cert = &issued.certificate;
        log.serial = Some(cert.serial.to_hex());
        log.push_ok(
            now(),
            "issue",
            format!(
                "serial {} from CA {ca_id}, notAfter {}",
                cert.serial, cert.not_after
            ),
        );
        let issued_ref = Issued {
            ca_id: ca_id.clone(),
            serial: cert.serial.clone(),
        };
        // Recorded at once: if this replica dies from here on, whoever abandons the run revokes it.
        self.progress(run, log, &ca_id).await;
        let cert_pem = crate::Issuance::pem(cert);
        let chain_pem = issued.chain_pem.clone();

        // install and reload. From here on the host may hold the new certificate: a failure rolls back
        // (when the executor has a rollback step) and revokes it.
        let budget = log
            .budget(now(), deadline, "install", timeout)
            .map_err(|f| f.with(issued_ref.clone()))?;
        let installed = run_step(
            &spec,
            secret,
            &self.http,
            &StepInput {
                step: "install",
                asset: a,
                certificate: Some(&cert_pem),
                chain: Some(&chain_pem),
                key: server_key.as_deref().map(String::as_str),
            },
            budget,
        )
        .await;
        let on_host = |f: Failure| {
            f.with(issued_ref.clone())
                .installed()
                .rollback(spec.clone())
        };
        log.push(
            now(),
            "install",
            timed(installed, deadline, timeout).map(|o| (o, "installed".into())),
        )
        .map_err(on_host)?;
        let budget = log
            .budget(now(), deadline, "reload", timeout)
            .map_err(on_host)?;
        let reloaded = run_step(
            &spec,
            secret,
            &self.http,
            &StepInput {
                step: "reload",
                asset: a,
                certificate: None,
                chain: None,
                key: None,
            },
            budget,
        )
        .await;
        log.push(
            now(),
            "reload",
            timed(reloaded, deadline, timeout).map(|o| (o, "reloaded".into())),
        )
        .map_err(on_host)?;

        // validate on the wire.
        let root = chain_root(&chain_pem).ok_or_else(|| {
            on_host(log.fail(now(), "validate", "the CA chain has no certificate"))
        })?;
        let address = a.ip_address.clone().unwrap_or_default();
        let until = Instant::now() + self.config.validation_timeout;
        let mut attempts = 0;
        let verdict = loop {
            attempts += 1;
            let verdict = self
                .judge(
                    &address,
                    a.port,
                    &a.common_name,
                    &cert.fingerprint,
                    &root,
                    &names,
                )
                .await;
            if verdict.is_ok() || Instant::now() >= until.min(deadline) {
                break verdict;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        match verdict {
            Ok(()) => {
                log.push_ok(now(), "validate", format!(
                    "{address}:{} serves serial {} (SHA-256 {}), chain verifies to the CA, names covered (attempt {attempts})",
                    a.port, cert.serial, cert.fingerprint
                ));
                Ok(Done {
                    not_after: cert.not_after,
                    fingerprint: cert.fingerprint.clone(),
                    serial: cert.serial.to_hex(),
                    renew_before_days: i64::from(route.settings.renew_before_days),
                    ca_id,
                })
            }
            Err(why) => {
                let why = over_time(
                    format!("after {attempts} attempts: {why}"),
                    deadline,
                    timeout,
                );
                Err(on_host(log.fail(now(), "validate", &why)))
            }
        }
    }

    /// One validation attempt.
    async fn judge(
        &self,
        address: &str,
        port: u16,
        common_name: &str,
        fingerprint: &str,
        root: &[u8],
        names: &[String],
    ) -> Result<(), String> {
        let chain =
            wire::served_chain(address, port, common_name, self.config.connect_timeout).await?;
        let leaf = chain.first().ok_or("no certificate served")?;
        let served = shedu_pki::CertInfo::from_der(leaf).map_err(|e| e.to_string())?;
        if served.fingerprint != fingerprint {
            return Err(format!(
                "the served certificate is not the issued one (served SHA-256 {}, serial {})",
                served.fingerprint, served.serial
            ));
        }
        wire::verify_chain(&chain, &[root.to_vec()], common_name, self.reg.now())?;
        let missing = wire::uncovered(&served.sans, names);
        if !missing.is_empty() {
            return Err(format!(
                "the served certificate does not cover {}",
                missing.join(", ")
            ));
        }
        Ok(())
    }

    /// Cleans up after a failure and records the end.
    async fn finish(
        &self,
        mut run: RunRow,
        asset: &Asset,
        mut log: Log,
        outcome: Result<Done, Failure>,
    ) -> Result<(), Error> {
        let now = self.reg.now();
        let name = asset.input.system_name.clone();
        let prior_failures = self
            .reg
            .store
            .asset(&name)
            .await
            .map_err(store_err("asset"))?
            .map_or(0, |r| r.failures);
        let (state, observed, kind, data) = match outcome {
            Ok(done) => {
                if self.config.revoke_previous
                    && let Some(previous) = self.previous_serial(&name).await
                    && previous != done.serial
                {
                    let revoked = self
                        .revoke(
                            &run.id,
                            &done.ca_id,
                            &previous,
                            RevocationReason::Superseded,
                        )
                        .await;
                    log.push(
                        now,
                        "revoke",
                        revoked.map(|()| {
                            (
                                "".into(),
                                format!("previous certificate {previous} revoked (superseded)"),
                            )
                        }),
                    )
                    .ok();
                }
                let data = serde_json::json!({
                    "system_name": name, "run_id": run.id, "serial": done.serial,
                    "fingerprint": done.fingerprint, "not_after": done.not_after,
                });
                (
                    RunState::Succeeded,
                    AssetObserved {
                        certificate_expiration: Some(done.not_after),
                        current_fingerprint: Some(done.fingerprint),
                        current_serial: Some(done.serial),
                        next_rotation_at: Some(done.not_after - done.renew_before_days * 86_400),
                        skip_reason: None,
                        failures: 0,
                    },
                    EventKind::RotationSucceeded,
                    data,
                )
            }
            Err(failure) => {
                let mut state = RunState::Failed;
                if let (true, Some(spec)) = (failure.installed, failure.rollback.as_ref()) {
                    let secret = log.secret.clone();
                    let rolled = run_step(
                        spec,
                        secret.as_ref().map(|s| s.as_str()),
                        &self.http,
                        &StepInput {
                            step: "rollback",
                            asset: &asset.input,
                            certificate: None,
                            chain: None,
                            key: None,
                        },
                        self.config.validation_timeout,
                    )
                    .await;
                    if log
                        .push(now, "rollback", rolled.map(|o| (o, "rolled back".into())))
                        .is_ok()
                    {
                        state = RunState::RolledBack;
                    }
                }
                if let Some(issued) = &failure.issued {
                    let serial = issued.serial.to_hex();
                    let revoked = self
                        .revoke(
                            &run.id,
                            &issued.ca_id,
                            &serial,
                            RevocationReason::CessationOfOperation,
                        )
                        .await;
                    log.push(
                        now,
                        "revoke",
                        revoked.map(|()| {
                            (
                                "".into(),
                                format!("new certificate {serial} revoked (cessationOfOperation)"),
                            )
                        }),
                    )
                    .ok();
                }
                let failures = prior_failures + 1;
                let backoff = self.config.backoff[(failures.clamp(1, 3) - 1) as usize];
                run.error = Some(failure.reason.clone());
                let previous = self
                    .reg
                    .store
                    .asset(&name)
                    .await
                    .map_err(store_err("asset"))?;
                let data = serde_json::json!({
                    "system_name": name, "run_id": run.id, "state": state.as_str(), "error": failure.reason,
                    "serial": failure.issued.as_ref().map(|i| i.serial.to_hex()),
                    "failures": failures, "next_attempt_at": now + backoff,
                });
                (
                    state,
                    AssetObserved {
                        certificate_expiration: previous
                            .as_ref()
                            .and_then(|p| p.certificate_expiration),
                        current_fingerprint: previous
                            .as_ref()
                            .and_then(|p| p.current_fingerprint.clone()),
                        current_serial: previous.as_ref().and_then(|p| p.current_serial.clone()),
                        next_rotation_at: Some(now + backoff),
                        skip_reason: Some(SKIP_FAILED.to_string()),
                        failures,
                    },
                    EventKind::RotationFailed,
                    data,
                )
            }
        };
        log.push_ok(now, "finish", state.as_str().to_string());
        run.state = state.as_str().to_string();
        run.steps =
            serde_json::to_string(&log.steps).map_err(|e| Error::Internal(e.to_string()))?;
        run.serial = log.serial;
        run.finished_at = Some(now);
        let ev = event(kind, format!("assets/{name}"), now, data);
        let recorded = self
            .reg
            .store
            .finish_run(&run, &observed, &ev)
            .await
            .map_err(store_err(format!("run {}", run.id)))?;
        if !recorded {
            // Another replica took this run for abandoned (this one's heartbeat stalled): its end stands,
            // and the certificate this run issued is not the asset's.
            tracing::warn!(run = %run.id, "rotation run was abandoned meanwhile; its new certificate is revoked");
            if let (Some(serial), Some(ca_id)) = (run.serial.as_deref(), log.ca_id.as_deref()) {
                let _ = self
                    .revoke(
                        &run.id,
                        ca_id,
                        serial,
                        RevocationReason::CessationOfOperation,
                    )
                    .await;
            }
        }
        Ok(())
    }

    /// Records a running run's log and new certificate (best effort: the end records them anyway).
    async fn progress(&self, run: &RunRow, log: &mut Log, ca_id: &str) {
        log.ca_id = Some(ca_id.to_string());
        let steps = serde_json::to_string(&log.steps).unwrap_or_else(|_| "[]".into());
        if let Err(e) = self
            .reg
            .store
            .run_progress(&run.id, &steps, log.serial.as_deref(), Some(ca_id))
            .await
        {
            tracing::warn!(run = %run.id, error = %e, "cannot record a rotation run's progress");
        }
    }

    /// Ends, once across replicas, every run whose worker stopped stamping its heartbeat for
    /// `stale_after` (its replica died) or that outlived its budget (the run's timeout, the validation
    /// time and `stale_after` again): `failed` with an `abandon` step, a `rotation.failed` event, the asset
    /// due again at once (with what it served before), and the certificate the run had issued, if any,
    /// revoked (`cessationOfOperation`: it may be installed, but it was never verified).
    pub(super) async fn abandon_stale(&self) -> Result<(), Error> {
        let now = self.reg.now();
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4);
        let stale = secs(self.config.stale_after).max(1);
        let budget = secs(self.config.run_timeout) + secs(self.config.validation_timeout) + stale;
        let (heartbeat_before, started_before) = (now - stale, now - budget);
        let store = &self.reg.store;
        let runs = store
            .stale_runs(heartbeat_before, started_before)
            .await
            .map_err(store_err("stale runs"))?;
        for mut run in runs {
            let name = run.system_name.clone();
            let why = if run.started_at.is_some_and(|t| t < started_before) {
                format!("abandoned: still running {budget} s after it started, past its budget")
            } else {
                format!(
                    "abandoned: its worker stopped for more than {stale} s (its replica is gone)"
                )
            };
            let mut steps: Vec<RunStep> = serde_json::from_str(&run.steps).unwrap_or_default();
            let step = |step: &str, outcome: &str, detail: String| RunStep {
                time: now,
                step: step.into(),
                outcome: outcome.into(),
                detail,
            };
            steps.push(step("abandon", "error", why.clone()));
            steps.push(step("finish", "ok", RunState::Failed.as_str().into()));
            let previous = store
                .asset(&name)
                .await
                .map_err(store_err("asset"))?
                .unwrap_or_default();
            let observed = AssetObserved {
                certificate_expiration: previous.certificate_expiration,
                current_fingerprint: previous.current_fingerprint,
                current_serial: previous.current_serial,
                next_rotation_at: Some(now),
                skip_reason: None,
                failures: previous.failures,
            };
            let data = serde_json::json!({
                "system_name": name, "run_id": run.id, "state": RunState::Failed.as_str(),
                "error": why, "serial": run.serial, "abandoned": true, "next_attempt_at": now,
            });
            let ev = event(
                EventKind::RotationFailed,
                format!("assets/{name}"),
                now,
                data,
            );
            run.state = RunState::Failed.as_str().into();
            run.error = Some(why);
            run.finished_at = Some(now);
            run.steps =
                serde_json::to_string(&steps).map_err(|e| Error::Internal(e.to_string()))?;
            let won = store
                .abandon_run(&run, &observed, &ev, heartbeat_before, started_before)
                .await
                .map_err(store_err(format!("run {}", run.id)))?;
            if !won {
                // Finished by its worker, or abandoned by another replica, meanwhile.
                continue;
            }
            tracing::warn!(run = %run.id, asset = %name, "abandoned a stale rotation run; the asset is due again");
            if let (Some(serial), Some(ca_id)) = (run.serial.clone(), run.ca_id.clone()) {
                let revoked = self
                    .revoke(
                        &run.id,
                        &ca_id,
                        &serial,
                        RevocationReason::CessationOfOperation,
                    )
                    .await;
                let detail = match &revoked {
                    Ok(()) => format!("new certificate {serial} revoked (cessationOfOperation)"),
                    Err(e) => format!("new certificate {serial} not revoked: {e}"),
                };
                let outcome = if revoked.is_ok() { "ok" } else { "error" };
                let at = steps.len() - 1;
                steps.insert(at, step("revoke", outcome, detail));
                let steps =
                    serde_json::to_string(&steps).map_err(|e| Error::Internal(e.to_string()))?;
                store
                    .amend_run_steps(&run.id, &steps)
                    .await
                    .map_err(store_err(format!("run {}", run.id)))?;
            }
        }
        Ok(())
    }

    async fn previous_serial(&self, name: &str) -> Option<String> {
        self.reg
            .store
            .asset(name)
            .await
            .ok()
            .flatten()
            .and_then(|a| a.current_serial)
    }

    async fn revoke(
        &self,
        run_id: &str,
        ca_id: &str,
        serial: &str,
        reason: RevocationReason,
    ) -> Result<(), String> {
        let serial: Serial = serial
            .parse()
            .map_err(|e: shedu_pki::Error| e.to_string())?;
        self.issuance
            .revoke(&scheduler_actor(run_id), ca_id, &serial, reason, None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl Log {
    /// Private keys and the executor's secret never reach the log, whatever a host prints.
    fn redact(&self, text: &str) -> String {
        let text = redact(text);
        match self.secret.as_deref().map(|s| s.trim()) {
            Some(secret) if !secret.is_empty() => text.replace(secret, "[secret redacted]"),
            _ => text,
        }
    }

    /// Records a step's result: the answer on success, the error (as a [`Failure`]) otherwise.
    fn push(
        &mut self,
        time: i64,
        step: &str,
        r: Result<(String, String), String>,
    ) -> Result<String, Failure> {
        match r {
            Ok((out, detail)) => {
                self.push_ok(time, step, detail);
                Ok(out)
            }
            Err(e) => Err(self.fail(time, step, &e)),
        }
    }

    /// The time `step` may take: what is left of the run's budget. Nothing left: the step is logged as
    /// not started, naming the run's timeout.
    fn budget(
        &mut self,
        time: i64,
        deadline: Instant,
        step: &str,
        timeout: Duration,
    ) -> Result<Duration, Failure> {
        left(deadline).ok_or_else(|| {
            let why = format!(
                "not started: the run's timeout ({}) is up",
                seconds(timeout)
            );
            self.fail(time, step, &why)
        })
    }

    fn push_ok(&mut self, time: i64, step: &str, detail: String) {
        let detail = self.redact(&detail);
        self.steps.push(RunStep {
            time,
            step: step.into(),
            outcome: "ok".into(),
            detail,
        });
    }

    fn fail(&mut self, time: i64, step: &str, why: &str) -> Failure {
        let why = self.redact(why);
        self.steps.push(RunStep {
            time,
            step: step.into(),
            outcome: "error".into(),
            detail: why.clone(),
        });
        Failure::plain(format!("{step}: {why}"))
    }
}

/// Private key blocks never reach the log, whatever a host prints.
fn redact(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN") {
        let (head, tail) = rest.split_at(start);
        out.push_str(head);
        let line_end = tail.find('\n').unwrap_or(tail.len());
        if tail[..line_end].contains("PRIVATE KEY") {
            out.push_str("[private key redacted]");
            rest = match tail.find("-----END") {
                Some(end) => {
                    let after = &tail[end + 8..];
                    after.find("-----").map_or("", |i| &after[i + 5..])
                }
                None => "",
            };
        } else {
            out.push_str(&tail[..line_end]);
            rest = &tail[line_end..];
        }
    }
    out.push_str(rest);
    out.chars().take(4096).collect()
}

/// What is left of the run's budget, if anything.
fn left(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// A step's error, naming the run's timeout when the step ran into it.
fn timed(
    r: Result<String, String>,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
    r.map_err(|e| over_time(e, deadline, timeout))
}

/// `why`, prefixed with the run's timeout once the run is past it.
fn over_time(why: String, deadline: Instant, timeout: Duration) -> String {
    if left(deadline).is_none() {
        format!("the run's timeout ({}) is up: {why}", seconds(timeout))
    } else {
        why
    }
}

/// `4 s`, `0.5 s`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A key of `key_type` made here for `key_mode = server`, and a CSR for it: the CSR goes through issuance
/// like a host's, the key (PKCS#8 PEM, zeroized on drop) only to the executor's `install`.
fn server_key(key_type: &str, common_name: &str) -> Result<(String, Zeroizing<String>), String> {
    use shedu_pki::rcgen;
    let key_type: shedu_pki::KeyType = key_type
        .parse()
        .map_err(|e: shedu_pki::Error| e.to_string())?;
    let key = shedu_keys::ExportedKey::generate(key_type).map_err(|e| e.to_string())?;
    let pair = rcgen::KeyPair::try_from(key.pkcs8.as_slice()).map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let csr = params
        .serialize_request(&pair)
        .and_then(|c| c.pem())
        .map_err(|e| format!("CSR for the new key: {e}"))?;
    Ok((csr, Zeroizing::new(pair.serialize_pem())))
}

/// The first PEM block of `label` in `text`.
fn pem_block(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(format!("{}\n", &text[start..stop]))
}

/// The last certificate of a PEM chain (the root), DER.
fn chain_root(chain_pem: &str) -> Option<Vec<u8>> {
    CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .filter_map(Result::ok)
        .last()
        .map(|c| c.as_ref().to_vec())
}

/// A verified rotation.
struct Done {
    not_after: i64,
    fingerprint: String,
    serial: String,
    renew_before_days: i64,
    ca_id: String,
}

/// A certificate the run issued.
#[derive(Clone)]
struct Issued {
    ca_id: String,
    serial: Serial,
}

/// Why a run failed, and what its failure leaves to clean up.
struct Failure {
    reason: String,
    issued: Option<Issued>,
    installed: bool,
    rollback: Option<Box<super::ExecutorSpec>>,
}

impl Failure {
    fn plain(reason: impl ToString) -> Failure {
        Failure {
            reason: reason.to_string(),
            issued: None,
            installed: false,
            rollback: None,
        }
    }

    fn with(mut self, issued: Issued) -> Failure {
        self.issued = Some(issued);
        self
    }

    fn installed(mut self) -> Failure {
        self.installed = true;
        self
    }

    fn rollback(mut self, spec: super::ExecutorSpec) -> Failure {
        if spec.has_rollback() {
            self.rollback = Some(Box::new(spec));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn private_keys_are_redacted() {
        let text = "x\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\ny";
        let r = super::redact(text);
        assert!(!r.contains("AAAA"), "{r}");
        assert!(r.contains('x') && r.contains('y'), "{r}");
        let csr = "-----BEGIN CERTIFICATE REQUEST-----\nBBBB\n-----END CERTIFICATE REQUEST-----\n";
        assert_eq!(super::redact(csr), csr);
    }
}

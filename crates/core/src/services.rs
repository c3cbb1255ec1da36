//! The one place that wires the services: `shedu serve` and the test kit both call [`Services::open`], so a
//! test server runs exactly the wiring a real one does.

use std::path::PathBuf;
use std::sync::Arc;

use shedu_keys::{Keystore, MasterKey};
use shedu_store::Store;

use crate::{
    Audit, AuthService, Cas, Cidr, Clock, Devices, Engines, Enrollment, Error, Events, Issuance,
    OidcIssuer, Registry, TargetPolicy, Va, VaConfig, Webhooks,
};
use crate::{Connector, ConnectorConfig};

/// What the services need beyond storage, the master key and the clock.
#[derive(Clone, Debug, Default)]
pub struct ServicesConfig {
    /// VA addressing and timing.
    pub va: VaConfig,
    /// Key engines (software always; a PKCS#11 token when configured).
    pub engines: Engines,
    /// The RA (id or name) answering EST requests whose URL names none.
    pub est_default_ra: Option<String>,
    /// OIDC identity providers whose bearer JWTs are accepted.
    pub oidc: Vec<OidcIssuer>,
    /// Address blocks webhooks may reach although they are not globally routable (`--webhook-allow`).
    pub webhook_allow: Vec<Cidr>,
    /// The file audit checkpoints are appended to (`<data-dir>/audit-checkpoints`); none in tests.
    pub audit_checkpoint_file: Option<PathBuf>,
    /// ACME validation (ports, timeouts).
    pub acme: crate::AcmeConfig,
    /// The connector (Kyma-compatible pairing).
    pub connector: ConnectorConfig,
    /// The secret store (KV v2 mounts, version and token limits).
    pub secrets: crate::SecretsConfig,
    /// The cloud connectors' sync worker timing.
    pub cloud: crate::CloudConfig,
    /// Agentless rotation (concurrency, timeouts, back-off).
    pub rotation: crate::RotationConfig,
}

/// Every service, each shared (`Arc`). Handlers name the one they need.
#[derive(Clone, Debug)]
pub struct Services {
    /// The shared CA registry (clock, trust anchors).
    pub registry: Arc<Registry>,
    /// CA management.
    pub cas: Arc<Cas>,
    /// Issuance, revocation, look-ups, the status sweep.
    pub issuance: Arc<Issuance>,
    /// OCSP and CRLs.
    pub va: Arc<Va>,
    /// RAs and EST.
    pub enrollment: Arc<Enrollment>,
    /// The device registry and groups.
    pub devices: Arc<Devices>,
    /// The audit log.
    pub audit: Arc<Audit>,
    /// The events outbox (read side).
    pub events: Arc<Events>,
    /// Users, sessions, API keys, OIDC.
    pub auth: Arc<AuthService>,
    /// Outbound webhooks: the target policy and the sealing of their secrets (alerts use it too).
    pub webhooks: Arc<Webhooks>,
    /// ACME per RA.
    pub acme: Arc<crate::Acme>,
    /// The connector: one-time-token pairing, renewal, revocation.
    pub connector: Arc<Connector>,
    /// The secret store (Vault KV v2 subset, policies, tokens).
    pub secrets: Arc<crate::Secrets>,
    /// The KMIP key manager.
    pub kmip: Arc<crate::Kmip>,
    /// Cloud connectors (AWS IoT Core) and their sync worker.
    pub cloud: Arc<crate::Cloud>,
    /// Agentless rotation: inventory, executors, routes, runs.
    pub rotation: Arc<crate::Rotation>,
}

impl Services {
    /// Opens every service over `store`. Fails, changing nothing, when `master` does not open this
    /// database's keys. Makes the audit key at the first start (see [`crate::audit`]).
    pub async fn open(
        store: Store,
        master: &MasterKey,
        clock: Arc<dyn Clock>,
        config: ServicesConfig,
    ) -> Result<Services, Error> {
        let registry = Arc::new(
            Registry::open(
                store.clone(),
                Keystore::new(master)?,
                clock.clone(),
                config.va,
                config.engines,
            )
            .await?,
        );
        if store.backend() == shedu_store::Backend::Postgres {
            crate::cluster::spawn(Arc::downgrade(&registry));
        }
        crate::audit::open_or_create_audit_key(&registry).await?;
        let auth = AuthService::open(store, Keystore::new(master)?, clock)
            .await?
            .with_oidc(config.oidc)?;
        let webhooks = Arc::new(Webhooks::new(
            master,
            TargetPolicy::new(config.webhook_allow),
        )?);
        let cas = Arc::new(Cas::new(registry.clone()));
        let issuance = Arc::new(Issuance::new(registry.clone()));
        let enrollment = Arc::new(Enrollment::new(
            registry.clone(),
            cas.clone(),
            issuance.clone(),
            config.est_default_ra,
            webhooks.clone(),
        ));
        let acme = Arc::new(crate::Acme::new(
            registry.clone(),
            enrollment.clone(),
            issuance.clone(),
            config.acme,
        )?);
        let connector = Arc::new(Connector::new(
            registry.clone(),
            issuance.clone(),
            config.connector,
        ));
        let secrets = Arc::new(
            crate::Secrets::open(registry.clone(), &Keystore::new(master)?, config.secrets).await?,
        );
        let cloud = Arc::new(crate::Cloud::new(
            registry.clone(),
            issuance.clone(),
            config.cloud,
        )?);
        let rotation = crate::Rotation::open(
            registry.clone(),
            issuance.clone(),
            master,
            config.rotation,
            webhooks.shared_client().clone(),
        )?;
        Ok(Services {
            rotation,
            acme,
            cloud,
            connector,
            secrets,
            kmip: Arc::new(crate::Kmip::new(registry.clone())),
            va: Arc::new(Va::new(registry.clone())),
            devices: Arc::new(Devices::new(
                registry.clone(),
                issuance.clone(),
                enrollment.clone(),
            )),
            audit: Arc::new(Audit::new(registry.clone(), config.audit_checkpoint_file)),
            events: Arc::new(Events::new(registry.clone())),
            auth: Arc::new(auth),
            webhooks,
            registry,
            cas,
            issuance,
            enrollment,
        })
    }
}

//! Master-key rotation: re-wrap every sealed key in the database under a new master key, in one
//! transaction, so the store is either entirely under the old key or entirely under the new one.

use shedu_keys::Keystore;
use shedu_pki::KeyType;
use shedu_store::Store;

use crate::Error;
use crate::audit::{AUDIT_KEY, AUDIT_KEY_CONTEXT};
use crate::auth::{SESSION_CONTEXT, SESSION_SECRET};
use crate::error::store_err;
use crate::registry::{CANARY_CONTEXT, CANARY_KEY};
use crate::secrets::{DATA_KEY, DATA_KEY_CONTEXT};
use crate::webhook::secret_context;

/// Re-wraps the keystore canary, every software CA key, every delegated OCSP responder key, every
/// webhook signing secret, the material of every KMIP object every cloud connector's credentials and every rotation executor's secret from `old` to `new`. Fails, changing nothing, when `old` is not this database's master key. Returns how many keys
/// were re-wrapped.
pub async fn rewrap_database_keys(
    store: &Store,
    old: &Keystore,
    new: &Keystore,
) -> Result<usize, Error> {
    // The canary first: it proves `old` is this database's key before anything else is touched.
    let mut meta = Vec::new();
    for (key, context) in SEALED_META {
        let Some(sealed) = store.meta_get(key).await.map_err(store_err("meta"))? else {
            continue;
        };
        let plain = old.open_secret(context, &sealed).map_err(|_| {
            Error::invalid(
                "wrong-master-key",
                "the current master key does not open this database's keys; nothing was changed",
            )
        })?;
        meta.push((*key, new.seal_secret(context, &plain)?));
    }
    if let Some(bundle) = crate::cluster::resealed_tls_ca(store, old, new).await? {
        meta.push(bundle);
    }
    let mut keys = store
        .sealed_keys()
        .await
        .map_err(store_err("sealed keys"))?;
    for k in &mut keys {
        let owner = match k.table {
            "ocsp_responders" => format!("ocsp-responder:{}", k.id),
            _ => k.id.clone(),
        };
        let key_type: KeyType = k.key_type.parse()?;
        let key = old.open(&owner, key_type, &k.sealed)?;
        k.sealed = new.seal(&owner, &key)?;
    }
    let mut secrets = store
        .sealed_webhook_secrets()
        .await
        .map_err(store_err("sealed webhook secrets"))?;
    for s in &mut secrets {
        let context = secret_context(&s.id);
        let plain = old.open_secret(&context, &s.sealed)?;
        s.sealed = new.seal_secret(&context, &plain)?;
    }
    let mut kmip = store
        .sealed_kmip_objects()
        .await
        .map_err(store_err("sealed KMIP objects"))?;
    for o in &mut kmip {
        o.sealed = crate::kmip::reseal(old, new, &o.id, &o.sealed)?;
    }
    let mut cloud = store
        .sealed_cloud_credentials()
        .await
        .map_err(store_err("sealed cloud credentials"))?;
    for c in &mut cloud {
        let context = crate::cloud::sealing_context(&c.id);
        let plain = old.open_secret(&context, &c.sealed)?;
        c.sealed = new.seal_secret(&context, &plain)?;
    }
    let mut executors = store
        .sealed_executor_secrets()
        .await
        .map_err(store_err("sealed executor secrets"))?;
    for e in &mut executors {
        let context = crate::rotation::executor_secret_context(&e.id);
        let plain = old.open_secret(&context, &e.sealed)?;
        e.sealed = new.seal_secret(&context, &plain)?;
    }
    store
        .replace_sealed_keys(&keys, &secrets, &kmip, &cloud, &executors, &meta)
        .await
        .map_err(store_err("sealed keys"))?;
    Ok(keys.len() + secrets.len() + kmip.len() + cloud.len() + executors.len())
}

/// Every secret sealed into the `meta` table, with its sealing context: the keystore canary (first), the
/// session-token signing secret, the audit key, the secret store's data key and the admin token the replicas
/// share (the shared internal TLS CA is re-sealed beside them). A new sealed meta secret must be listed here or rotation would strand it.
const SEALED_META: &[(&str, &[u8])] = &[
    (CANARY_KEY, CANARY_CONTEXT),
    (SESSION_SECRET, SESSION_CONTEXT),
    (AUDIT_KEY, AUDIT_KEY_CONTEXT),
    (DATA_KEY, DATA_KEY_CONTEXT),
    (
        crate::Agreed::AdminToken.meta_key(),
        crate::cluster::ADMIN_TOKEN_CONTEXT,
    ),
];

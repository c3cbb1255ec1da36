//! Master-key rotation: re-wrap every sealed key in the database under a new master key, in one
//! transaction, so the store is either entirely under the old key or entirely under the new one.

use shedu_keys::Keystore;
use shedu_pki::KeyType;
use shedu_store::Store;

use crate::Error;
use crate::ca::{CANARY_CONTEXT, CANARY_KEY};
use crate::error::store_err;

/// Re-wraps the keystore canary, every software CA key and every delegated OCSP responder key from `old`
/// to `new`. Fails, changing nothing, when `old` is not this database's master key. Returns how many keys
/// were re-wrapped.
pub async fn rewrap_database_keys(
    store: &Store,
    old: &Keystore,
    new: &Keystore,
) -> Result<usize, Error> {
    let canary = store
        .meta_get(CANARY_KEY)
        .await
        .map_err(store_err("meta"))?;
    let new_canary = match &canary {
        Some(sealed) => {
            let plain = old.open_secret(CANARY_CONTEXT, sealed).map_err(|_| {
                Error::invalid("wrong-master-key", "the current master key does not open this database's keys; nothing was changed")
            })?;
            Some(new.seal_secret(CANARY_CONTEXT, &plain)?)
        }
        None => None,
    };
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
    store
        .replace_sealed_keys(&keys, new_canary.as_deref().map(|c| (CANARY_KEY, c)))
        .await
        .map_err(store_err("sealed keys"))?;
    Ok(keys.len())
}

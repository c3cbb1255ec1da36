//! The objects the read operations (Get, Get Attributes, Encrypt, …) used recently, kept in memory so that
//! a read costs no database statement: each object's row opened into attributes (its material still
//! sealed), its owner and every grant on it.
//!
//! **Kept true.** Every change of a cached object's row or of a grant on it is forgotten here once it is
//! committed, before the changing call returns ([`Registry::on_kmip_changed`](crate::Registry)); on
//! PostgreSQL the other replicas forget it through the change feed (`0037_kmip_changes.sql`) and the
//! change waits until every replica with a live cache lease applied it, as a revocation does
//! (`cluster.rs`). A replica without a live lease reads the database. `generation` moves with every
//! change, so that a read that started before a change does not store what it read. Changes themselves
//! always read the database.
//!
//! **Bounded.** At most [`MAX_OBJECTS`] objects and about [`MAX_BYTES`] bytes; the cache starts afresh
//! when full.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::object::Managed;

/// Most objects kept.
const MAX_OBJECTS: usize = 16_384;
/// Most bytes kept (sealed material and attributes, roughly).
const MAX_BYTES: usize = 32 * 1024 * 1024;

/// An object as cached: the object and every grant on it.
#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) object: Managed,
    /// `(user, operation)`.
    pub(crate) grants: Vec<(String, String)>,
    size: usize,
}

impl Cached {
    pub(crate) fn new(object: Managed, grants: Vec<(String, String)>) -> Cached {
        let size = 256
            + object.sealed.as_ref().map_or(0, Vec::len)
            + object.attributes.len() * 128
            + grants
                .iter()
                .map(|(u, o)| u.len() + o.len() + 48)
                .sum::<usize>();
        Cached {
            object,
            grants,
            size,
        }
    }

    /// Whether `user` owns the object or holds a grant for `operation` on it.
    pub(crate) fn allows(&self, user: &str, operation: &str) -> bool {
        self.object.owner == user || self.grants.iter().any(|(u, o)| u == user && o == operation)
    }
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    bytes: usize,
    objects: HashMap<String, Arc<Cached>>,
}

/// See the module's documentation.
#[derive(Debug, Default)]
pub(crate) struct ObjectCache {
    inner: RwLock<Inner>,
}

impl ObjectCache {
    /// The object cached under `uid`, and the generation to store a database read under when there is none.
    pub(crate) fn get(&self, uid: &str) -> (Option<Arc<Cached>>, u64) {
        match self.inner.read() {
            Ok(inner) => (inner.objects.get(uid).cloned(), inner.generation),
            Err(_) => (None, u64::MAX),
        }
    }

    /// Keeps `cached`, read from the database under `generation`, unless something changed since.
    pub(crate) fn put(&self, cached: Cached, generation: u64) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        if inner.generation != generation || cached.size > MAX_BYTES {
            return;
        }
        if inner.objects.len() >= MAX_OBJECTS || inner.bytes + cached.size > MAX_BYTES {
            inner.objects.clear();
            inner.bytes = 0;
        }
        inner.bytes += cached.size;
        let uid = cached.object.uid.clone();
        if let Some(old) = inner.objects.insert(uid, Arc::new(cached)) {
            inner.bytes = inner.bytes.saturating_sub(old.size);
        }
    }

    /// Forgets `uid` (it or a grant on it changed).
    pub(crate) fn forget(&self, uid: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.generation += 1;
            if let Some(old) = inner.objects.remove(uid) {
                inner.bytes = inner.bytes.saturating_sub(old.size);
            }
        }
    }

    /// Forgets every object (the change feed was lost).
    pub(crate) fn forget_all(&self) {
        if let Ok(mut inner) = self.inner.write() {
            inner.generation += 1;
            inner.objects.clear();
            inner.bytes = 0;
        }
    }
}

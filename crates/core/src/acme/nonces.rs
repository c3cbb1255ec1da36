//! ACME nonces (RFC 8555 §6.5): handed out without a write, spent once.
//!
//! A nonce is 16 octets of identity, its expiry (Unix seconds, 8 octets big-endian) and an HMAC-SHA256 of
//! both: the server recognises its own nonces and their expiry without storing anything when it hands
//! one out. What must be remembered is a spend, and where it is remembered depends on who shares the
//! database:
//!
//! - **PostgreSQL** (replicas): the key is derived from the master secret, the same on every replica,
//!   and a spend is a row (`Store::acme_nonce_take`, through the group commit): a nonce one replica
//!   handed out is accepted once by any of them.
//! - **SQLite**: one process owns the database, so a spend needs no commit. The key is this process's
//!   own (random at start), so every nonce handed out before a restart is refused (`badNonce`, which
//!   clients answer by retrying with the fresh nonce of the refusal), and the identity starts with a
//!   counter: the spent ones are bits in a window of the last [`WINDOW`] nonces handed out (512 KiB at
//!   most). A nonce older than the window is refused as if it had expired.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::hmac;
use shedu_store::{Backend, Store};

/// A nonce: 16 octets of identity, its expiry and an HMAC-SHA256 of both.
const NONCE_LEN: usize = 16 + 8 + 32;

/// How many of the latest nonces an SQLite server tells apart as spent or not (a multiple of 64).
const WINDOW: u64 = 1 << 22;

/// Mints and spends the nonces of one server.
pub(super) struct Nonces {
    key: hmac::Key,
    book: Book,
}

enum Book {
    /// Spends are rows every replica sees.
    Stored,
    /// Spends are kept in memory by the one process that owns the database.
    Local {
        next: AtomicU64,
        spent: Mutex<Window>,
    },
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let book = match self.book {
            Book::Stored => "stored",
            Book::Local { .. } => "local",
        };
        f.debug_struct("Nonces").field("book", &book).finish()
    }
}

/// The spent bits of nonces `base..base + WINDOW` (by counter); everything below `base` counts as spent.
#[derive(Default)]
struct Window {
    base: u64,
    words: VecDeque<u64>,
}

impl Window {
    /// Marks nonce `n` spent: true the first time.
    fn spend(&mut self, n: u64) -> bool {
        if n < self.base {
            return false;
        }
        let over = (n - self.base) / 64 + 1;
        let words = WINDOW / 64;
        if over > words {
            // Slide: the oldest words leave the window, and with them every nonce they counted.
            let drop = over - words;
            let len = self.words.len() as u64;
            self.words
                .drain(..usize::try_from(drop.min(len)).unwrap_or(usize::MAX));
            self.base += drop * 64;
        }
        let offset = n - self.base;
        let (word, bit) = ((offset / 64) as usize, 1u64 << (offset % 64));
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        fresh
    }
}

impl Nonces {
    /// The nonces of a server on `backend`; `shared_key` is the deployment's key (derived from the master
    /// secret), which only PostgreSQL replicas use.
    pub(super) fn new(backend: Backend, shared_key: hmac::Key) -> Result<Nonces, String> {
        Ok(match backend {
            Backend::Postgres => Nonces {
                key: shared_key,
                book: Book::Stored,
            },
            Backend::Sqlite => Nonces {
                key: hmac::Key::generate(hmac::HMAC_SHA256, &aws_lc_rs::rand::SystemRandom::new())
                    .map_err(|_| "no random key for ACME nonces".to_string())?,
                book: Book::Local {
                    next: AtomicU64::new(0),
                    spent: Mutex::new(Window::default()),
                },
            },
        })
    }

    /// A fresh nonce that expires at `expires_at`.
    pub(super) fn mint(&self, expires_at: i64) -> String {
        let mut raw = Vec::with_capacity(NONCE_LEN);
        match &self.book {
            Book::Stored => raw.extend_from_slice(&rand::random::<[u8; 16]>()),
            Book::Local { next, .. } => {
                raw.extend_from_slice(&next.fetch_add(1, Ordering::Relaxed).to_be_bytes());
                raw.extend_from_slice(&rand::random::<[u8; 8]>());
            }
        }
        raw.extend_from_slice(&expires_at.to_be_bytes());
        let tag = hmac::sign(&self.key, &raw);
        raw.extend_from_slice(tag.as_ref());
        shedu_acme::b64(&raw)
    }

    /// Spends `nonce` at `now`: true when this server made it, it has not expired and it was not spent
    /// before. `purge` (stored spends only) also deletes what expired, in the same transaction.
    pub(super) async fn take(
        &self,
        store: &Store,
        nonce: &str,
        now: i64,
        purge: Option<i64>,
    ) -> Result<bool, shedu_store::Error> {
        let Some((identity, expires_at)) = self.open(nonce) else {
            return Ok(false);
        };
        if expires_at < now {
            return Ok(false);
        }
        match &self.book {
            Book::Stored => store.acme_nonce_take(nonce, expires_at, purge).await,
            Book::Local { spent, .. } => {
                let counter = u64::from_be_bytes(identity);
                Ok(spent.lock().is_ok_and(|mut w| w.spend(counter)))
            }
        }
    }

    /// Whether spends are rows (PostgreSQL), which the purge of expired rows then also sweeps.
    pub(super) fn stored(&self) -> bool {
        matches!(self.book, Book::Stored)
    }

    /// The first 8 octets of a nonce's identity and its expiry, when this server made it.
    fn open(&self, nonce: &str) -> Option<([u8; 8], i64)> {
        let raw = shedu_acme::b64_decode("nonce", nonce).ok()?;
        if raw.len() != NONCE_LEN {
            return None;
        }
        let (signed, tag) = raw.split_at(24);
        hmac::verify(&self.key, signed, tag).ok()?;
        Some((
            signed[..8].try_into().ok()?,
            i64::from_be_bytes(signed[16..24].try_into().ok()?),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn key() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32])
    }

    #[test]
    fn nonces_carry_their_expiry_under_the_key() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let nonces = Nonces::new(backend, key()).unwrap();
            let n = nonces.mint(1_700_000_000);
            assert_eq!(nonces.open(&n).map(|o| o.1), Some(1_700_000_000));
            assert_ne!(n, nonces.mint(1_700_000_000), "every nonce is new");
            // Tampered, foreign or malformed: not ours.
            let mut raw = shedu_acme::b64_decode("n", &n).unwrap();
            raw[20] ^= 1;
            assert!(nonces.open(&shedu_acme::b64(&raw)).is_none());
            assert!(nonces.open("not-a-nonce").is_none());
            assert!(nonces.open(&shedu_acme::b64(&[0u8; NONCE_LEN])).is_none());
        }
    }

    /// See: issue 15. On SQLite a nonce is spent in memory under a key of this process: another
    /// process's nonces (a restart's predecessor, or a second server on the same file) are not accepted.
    #[test]
    fn sqlite_nonces_are_this_process_own() {
        let a = Nonces::new(Backend::Sqlite, key()).unwrap();
        let b = Nonces::new(Backend::Sqlite, key()).unwrap();
        assert!(b.open(&a.mint(1_700_000_000)).is_none());
        // PostgreSQL replicas share the deployment's key.
        let p = Nonces::new(Backend::Postgres, key()).unwrap();
        let q = Nonces::new(Backend::Postgres, key()).unwrap();
        assert!(q.open(&p.mint(1_700_000_000)).is_some());
    }

    #[test]
    fn the_window_spends_each_nonce_once_in_bounded_memory() {
        let mut w = Window::default();
        assert!(w.spend(0));
        assert!(!w.spend(0), "a nonce is spent once");
        assert!(w.spend(5));
        assert!(w.spend(63) && w.spend(64) && !w.spend(64));
        // A nonce far ahead slides the window: what fell out of it counts as spent.
        let far = 3 * WINDOW + 10;
        assert!(w.spend(far));
        assert!(!w.spend(far));
        assert!(!w.spend(1), "below the window");
        assert!(!w.spend(far - WINDOW), "just below the window");
        assert!(w.spend(far - WINDOW + 64), "inside the window, not spent");
        assert!(w.words.len() as u64 <= WINDOW / 64);
        assert_eq!(w.base % 64, 0);
        // Spent in any order inside the window.
        assert!(w.spend(far - 1) && w.spend(far + 1) && !w.spend(far - 1));
    }
}

//! The `pkcs11` engine: CA keys that live in a PKCS#11 token (an HSM, or SoftHSM2 for tests) and never
//! leave it.
//!
//! Why a token: a software key, even sealed, is decrypted into process memory to sign; a key generated in
//! a token as `Sensitive` and non-`Extractable` can only be *used*, through a logged-in session, and is
//! never readable by shedu or by an attacker who owns the host. The CA record stores only the key's
//! **label**; [`Pkcs11Engine::find`] gets the key back after a restart.
//!
//! Design:
//! * One [`Pkcs11Engine`] per token. It opens a small pool of read/write sessions logged in as the user;
//!   a signature takes any idle session (`try_lock` round-robin, then waits on one), so signing scales with
//!   concurrency instead of queueing behind one lock.
//! * ECDSA is hashed in software (SoftHSM offers only raw `CKM_ECDSA`) and the token's raw `r || s` is
//!   re-encoded as the DER `Ecdsa-Sig-Value` X.509 wants; RSA uses `CKM_SHA256_RSA_PKCS`; Ed25519 uses
//!   `CKM_EDDSA` where the token has it.
//! * A broken session (token removed, session closed, user logged out, …) fails the call in progress with
//!   [`Error::TokenUnavailable`]; the engine then reopens and logs in every pooled session on its next use
//!   and looks keys up again by label, so the CA recovers without a restart.
//! * A module is loaded and `C_Initialize`d once per process and never finalized: PKCS#11 state (and the
//!   login) is per process, shared by every engine on the same module.

mod encode;
mod import;
mod secret;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
    TryLockError,
};

use aws_lc_rs::{digest, signature};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};
use shedu_pki::KeyType;
use zeroize::Zeroizing;

use crate::{Error, Signer, SoftwareKey};
use encode::{ec_point_from_attribute, ecdsa_raw_to_der, rsa_public_key};
use import::{bit_len, oid_der};

/// Where the token is and how to log in. `Debug` redacts the PIN.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (shared library), e.g.
    /// `/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label (`CKA_LABEL` of the token, as set at `--init-token`).
    pub token_label: String,
    /// The user PIN.
    pub pin: Zeroizing<String>,
    /// How many sessions the engine keeps open (at least one is used).
    pub sessions: usize,
}

impl Pkcs11Config {
    /// The pool size used by [`Pkcs11Config::new`].
    pub const DEFAULT_SESSIONS: usize = 4;

    /// A configuration with [`Pkcs11Config::DEFAULT_SESSIONS`] sessions.
    pub fn new(
        module: impl Into<PathBuf>,
        token_label: impl Into<String>,
        pin: Zeroizing<String>,
    ) -> Pkcs11Config {
        Pkcs11Config {
            module: module.into(),
            token_label: token_label.into(),
            pin,
            sessions: Self::DEFAULT_SESSIONS,
        }
    }

    /// Reads `SHEDU_PKCS11_MODULE`, `SHEDU_PKCS11_TOKEN_LABEL`, `SHEDU_PKCS11_PIN` and the optional
    /// `SHEDU_PKCS11_SESSIONS` (the variables `scripts/softhsm-env` prints). `Ok(None)` when
    /// `SHEDU_PKCS11_MODULE` is unset; an error when it is set but another required variable is not.
    pub fn from_env() -> Result<Option<Pkcs11Config>, Error> {
        let Some(module) = std::env::var_os("SHEDU_PKCS11_MODULE") else {
            return Ok(None);
        };
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                Error::Pkcs11(format!(
                    "SHEDU_PKCS11_MODULE is set but {name} is missing or not UTF-8"
                ))
            })
        };
        let mut config = Pkcs11Config::new(
            module,
            var("SHEDU_PKCS11_TOKEN_LABEL")?,
            Zeroizing::new(var("SHEDU_PKCS11_PIN")?),
        );
        if let Ok(n) = std::env::var("SHEDU_PKCS11_SESSIONS") {
            config.sessions = n.trim().parse().map_err(|_| {
                Error::Pkcs11("SHEDU_PKCS11_SESSIONS must be a positive number".into())
            })?;
        }
        Ok(Some(config))
    }
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .field("sessions", &self.sessions)
            .finish()
    }
}

/// A logged-in connection to one PKCS#11 token. Cheap to clone (an `Arc`); `Send + Sync`.
#[derive(Clone)]
pub struct Pkcs11Engine {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Pkcs11,
    module: PathBuf,
    token_label: String,
    pin: Zeroizing<String>,
    slot: Mutex<Slot>,
    pool: Vec<Mutex<Option<Pooled>>>,
    next: AtomicUsize,
    /// Bumped when a session breaks: every pooled session opened under an older generation is reopened
    /// and logged in again on its next use, and cached key handles are looked up again.
    generation: AtomicU64,
    mechanisms: Vec<MechanismType>,
    /// The module's object lock (see [`Module`]): generate, import and destroy hold it exclusively (so the
    /// "label is free" check and the creation do not race either), object searches hold it shared.
    objects: Arc<RwLock<()>>,
}

struct Pooled {
    session: Session,
    generation: u64,
}

impl Pkcs11Engine {
    /// Loads the module, finds the token by label, and opens and logs in the session pool.
    ///
    /// Errors: [`Error::Pkcs11Module`] (module missing or not loadable), [`Error::TokenNotFound`],
    /// [`Error::WrongPin`], or [`Error::Pkcs11`] for anything else the token reports.
    pub fn open(config: Pkcs11Config) -> Result<Pkcs11Engine, Error> {
        let Pkcs11Config {
            module,
            token_label,
            pin,
            sessions,
        } = config;
        let Module { ctx, objects } = context(&module)?;
        let slot = find_slot(&ctx, &token_label)?;
        let mechanisms = ctx.get_mechanism_list(slot).map_err(ck)?;
        let inner = Inner {
            ctx,
            module,
            token_label,
            pin,
            slot: Mutex::new(slot),
            pool: (0..sessions.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            mechanisms,
            objects,
        };
        // Open and log in every session now, so a wrong PIN or an exhausted token fails here and not at
        // the first signature.
        for cell in &inner.pool {
            let session = inner.open_session()?;
            *lock(cell) = Some(Pooled {
                session,
                generation: 0,
            });
        }
        Ok(Pkcs11Engine {
            inner: Arc::new(inner),
        })
    }

    /// The label of the token this engine is logged in to.
    pub fn token_label(&self) -> &str {
        &self.inner.token_label
    }

    /// Whether the token offers the mechanisms to generate and sign with keys of `key_type`.
    pub fn supports(&self, key_type: KeyType) -> bool {
        let (keygen, sign) = mechanisms_for(key_type);
        self.inner.has(keygen) && self.inner.has(sign)
    }

    /// Generates a key pair of `key_type` inside the token, labelled (`CKA_LABEL`, and `CKA_ID` = the
    /// label's bytes) `label`. The private key is a token object, private, sensitive, non-extractable,
    /// and may only sign (no decrypt, unwrap or derive). Refuses a label the token already holds.
    pub fn generate(&self, label: &str, key_type: KeyType) -> Result<Arc<dyn Signer>, Error> {
        check_label(label)?;
        if !self.supports(key_type) {
            return Err(self.unsupported(key_type));
        }
        let mechanism = match key_type {
            KeyType::EcP256 | KeyType::EcP384 => Mechanism::EccKeyPairGen,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => Mechanism::RsaPkcsKeyPairGen,
            KeyType::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
        };
        let mut public = public_attributes(label);
        match (key_type.rsa_bits(), curve_params(key_type)) {
            (Some(bits), _) => {
                let bits = Ulong::try_from(bits).map_err(ck)?;
                public.push(Attribute::ModulusBits(bits));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            }
            (None, Some(params)) => public.push(Attribute::EcParams(params)),
            (None, None) => return Err(self.unsupported(key_type)),
        }
        let private = private_attributes(label);

        let _create = write(&self.inner.objects);
        let key = self.inner.with_session(|session, generation| {
            self.inner.ensure_absent(session, label)?;
            let (pub_handle, priv_handle) = session
                .generate_key_pair(&mechanism, &public, &private)
                .map_err(ck)?;
            match read_public_key(session, pub_handle, key_type) {
                Ok(public_key) => Ok(Pkcs11Key::new(
                    &self.inner,
                    label,
                    key_type,
                    public_key,
                    Some((generation, priv_handle)),
                )),
                Err(e) => {
                    let _ = session.destroy_object(priv_handle);
                    let _ = session.destroy_object(pub_handle);
                    Err(e)
                }
            }
        })?;
        Ok(Arc::new(key))
    }

    /// Finds the key labelled `label` (e.g. after a restart) and checks that it is a `key_type` key whose
    /// public half matches the private one (one test signature, verified in software).
    pub fn find(&self, label: &str, key_type: KeyType) -> Result<Arc<dyn Signer>, Error> {
        check_label(label)?;
        let key = self.inner.with_session(|session, generation| {
            let priv_handle = find_one(
                &self.inner.objects,
                session,
                ObjectClass::PRIVATE_KEY,
                label,
            )?
            .ok_or_else(|| Error::KeyNotFound {
                label: label.to_string(),
                reason: "the token has no private key with this label",
            })?;
            check_key_type(session, priv_handle, key_type, label)?;
            let public_key =
                match find_one(&self.inner.objects, session, ObjectClass::PUBLIC_KEY, label)? {
                    Some(pub_handle) => read_public_key(session, pub_handle, key_type)?,
                    // An RSA private key carries its modulus and public exponent.
                    None if key_type.rsa_bits().is_some() => {
                        read_public_key(session, priv_handle, key_type)?
                    }
                    None => {
                        return Err(Error::KeyNotFound {
                            label: label.to_string(),
                            reason: "the public key object is missing",
                        });
                    }
                };
            Ok(Pkcs11Key::new(
                &self.inner,
                label,
                key_type,
                public_key,
                Some((generation, priv_handle)),
            ))
        })?;
        key.pairwise_check()?;
        Ok(Arc::new(key))
    }

    /// Imports a software key into the token (`C_CreateObject`), as a sensitive, non-extractable,
    /// sign-only private key plus its public key object, both labelled `label`. Token attributes then
    /// show `CKA_LOCAL = false` and `CKA_ALWAYS_SENSITIVE = false`: the key existed outside the token.
    /// Every buffer that held private key material is zeroized.
    pub fn import(&self, label: &str, key: &SoftwareKey) -> Result<Arc<dyn Signer>, Error> {
        check_label(label)?;
        let key_type = key.key_type();
        let (_, sign) = mechanisms_for(key_type);
        if !self.inner.has(sign) {
            return Err(self.unsupported(key_type));
        }
        let templates = import::key_templates(&key.private_key_der(), key_type, key.public_key())?;
        let mut private = templates.private;
        private.0.push(Attribute::Class(ObjectClass::PRIVATE_KEY));
        private.0.extend(private_attributes(label));
        let mut public = templates.public;
        public.push(Attribute::Class(ObjectClass::PUBLIC_KEY));
        public.extend(public_attributes(label));

        let create = write(&self.inner.objects);
        let (signer, handles) = self.inner.with_session(|session, generation| {
            self.inner.ensure_absent(session, label)?;
            let priv_handle = session.create_object(&private.0).map_err(ck)?;
            let pub_handle = match session.create_object(&public) {
                Ok(h) => h,
                Err(e) => {
                    let _ = session.destroy_object(priv_handle);
                    return Err(ck(e));
                }
            };
            let signer = Pkcs11Key::new(
                &self.inner,
                label,
                key_type,
                key.public_key().to_vec(),
                Some((generation, priv_handle)),
            );
            Ok((signer, [priv_handle, pub_handle]))
        })?;
        drop(private);
        // The check signs, and a signature may look the key up again (shared lock).
        drop(create);
        if let Err(e) = signer.pairwise_check() {
            let _ = self.inner.with_session(|session, _| {
                for h in handles {
                    let _ = session.destroy_object(h);
                }
                Ok(())
            });
            return Err(e);
        }
        Ok(Arc::new(signer))
    }

    /// Whether the token holds any object labelled `label`.
    pub fn contains(&self, label: &str) -> Result<bool, Error> {
        check_label(label)?;
        let _search = read(&self.inner.objects);
        self.inner.with_session(|session, _| {
            Ok(!session
                .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
                .map_err(ck)?
                .is_empty())
        })
    }

    /// Deletes every object labelled `label` (private and public key) and returns how many there were.
    /// Meant for rolling back a CA creation that failed after its key was generated; a signer already
    /// handed out for that label stops working.
    pub fn destroy(&self, label: &str) -> Result<usize, Error> {
        check_label(label)?;
        let _create = write(&self.inner.objects);
        self.inner.with_session(|session, _| {
            let handles = session
                .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
                .map_err(ck)?;
            for h in &handles {
                session.destroy_object(*h).map_err(ck)?;
            }
            Ok(handles.len())
        })
    }

    fn unsupported(&self, key_type: KeyType) -> Error {
        let (keygen, sign) = mechanisms_for(key_type);
        Error::UnsupportedAlgorithm(format!(
            "PKCS#11 token {:?} cannot handle {key_type} keys (needs {keygen} and {sign})",
            self.inner.token_label
        ))
    }
}

impl fmt::Debug for Pkcs11Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Engine")
            .field("module", &self.inner.module)
            .field("token_label", &self.inner.token_label)
            .field("sessions", &self.inner.pool.len())
            .finish()
    }
}

impl Inner {
    fn has(&self, mechanism: MechanismType) -> bool {
        self.mechanisms.contains(&mechanism)
    }

    /// Opens one R/W session and logs it in. When the slot is gone (token re-inserted, library
    /// re-initialised), finds the token by label again.
    fn open_session(&self) -> Result<Session, Error> {
        let slot = *lock(&self.slot);
        let session = match self.ctx.open_rw_session(slot) {
            Ok(s) => s,
            Err(CkError::Pkcs11(rv, _)) if unavailable(&rv) => {
                if rv == RvError::CryptokiNotInitialized {
                    initialize(&self.ctx).map_err(|e| Error::TokenUnavailable(e.to_string()))?;
                }
                let slot = find_slot(&self.ctx, &self.token_label).map_err(|e| match e {
                    Error::TokenNotFound { .. } => Error::TokenUnavailable(e.to_string()),
                    e => e,
                })?;
                *lock(&self.slot) = slot;
                self.ctx.open_rw_session(slot).map_err(ck)?
            }
            Err(e) => return Err(ck(e)),
        };
        self.login(&session)?;
        Ok(session)
    }

    fn login(&self, session: &Session) -> Result<(), Error> {
        let wrong = |reason| Error::WrongPin {
            token: self.token_label.clone(),
            reason,
        };
        let pin = AuthPin::new(self.pin.as_str().into());
        let key = (self.module.clone(), self.token_label.clone());
        let fingerprint = pin_fingerprint(&self.module, &self.token_label, &self.pin);
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) => {
                lock(logins()).insert(key, fingerprint);
                Ok(())
            }
            // Login state is per process: another engine on this token is already logged in. Make sure
            // this engine's PIN is the one that worked, so a wrong PIN is not hidden by a right one.
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                match lock(logins()).get(&key) {
                    Some(known) if *known != fingerprint => {
                        Err(wrong("not the PIN this process is logged in with"))
                    }
                    _ => Ok(()),
                }
            }
            Err(CkError::Pkcs11(
                RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
                _,
            )) => Err(wrong("incorrect PIN")),
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(wrong("the user PIN is locked")),
            Err(CkError::Pkcs11(RvError::PinExpired, _)) => Err(wrong("the user PIN has expired")),
            Err(e) => Err(ck(e)),
        }
    }

    /// Runs `op` on an idle pooled session (reopened first if it is missing or stale). When `op` reports
    /// [`Error::TokenUnavailable`], the session is dropped and the generation bumped, so this and the
    /// other sessions are reopened on their next use.
    fn with_session<T>(
        &self,
        op: impl FnOnce(&Session, u64) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut guard = self.checkout();
        let current = self.generation.load(Ordering::Acquire);
        if guard.as_ref().is_some_and(|p| p.generation != current) {
            *guard = None;
        }
        if guard.is_none() {
            *guard = Some(Pooled {
                session: self.open_session()?,
                generation: current,
            });
        }
        let Some(pooled) = guard.as_ref() else {
            return Err(Error::TokenUnavailable("no session".into()));
        };
        let generation = pooled.generation;
        let result = op(&pooled.session, generation);
        if matches!(result, Err(Error::TokenUnavailable(_))) {
            *guard = None;
            let _ = self.generation.compare_exchange(
                generation,
                generation + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        result
    }

    /// An idle session slot if there is one, else waits for one. A slot whose holder panicked is emptied,
    /// since its session may be mid-operation.
    fn checkout(&self) -> MutexGuard<'_, Option<Pooled>> {
        let n = self.pool.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            match self.pool[(start + i) % n].try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => {
                    let mut guard = p.into_inner();
                    *guard = None;
                    return guard;
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
        match self.pool[start].lock() {
            Ok(guard) => guard,
            Err(p) => {
                let mut guard = p.into_inner();
                *guard = None;
                guard
            }
        }
    }

    fn ensure_absent(&self, session: &Session, label: &str) -> Result<(), Error> {
        let by_label = session
            .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
            .map_err(ck)?;
        let by_id = session
            .find_objects(&[Attribute::Id(label.as_bytes().to_vec())])
            .map_err(ck)?;
        if by_label.is_empty() && by_id.is_empty() {
            Ok(())
        } else {
            Err(Error::KeyExists {
                label: label.to_string(),
            })
        }
    }
}

/// A private key in the token. Signs through the engine's session pool.
struct Pkcs11Key {
    engine: Arc<Inner>,
    label: String,
    key_type: KeyType,
    public_key: Vec<u8>,
    /// The private key's object handle and the session generation it was found under.
    handle: Mutex<Option<(u64, ObjectHandle)>>,
}

impl Pkcs11Key {
    fn new(
        engine: &Arc<Inner>,
        label: &str,
        key_type: KeyType,
        public_key: Vec<u8>,
        handle: Option<(u64, ObjectHandle)>,
    ) -> Pkcs11Key {
        Pkcs11Key {
            engine: engine.clone(),
            label: label.to_string(),
            key_type,
            public_key,
            handle: Mutex::new(handle),
        }
    }

    fn handle(&self, session: &Session, generation: u64) -> Result<ObjectHandle, Error> {
        if let Some((g, h)) = *lock(&self.handle)
            && g == generation
        {
            return Ok(h);
        }
        self.refind(session, generation)
    }

    fn refind(&self, session: &Session, generation: u64) -> Result<ObjectHandle, Error> {
        let handle = find_one(
            &self.engine.objects,
            session,
            ObjectClass::PRIVATE_KEY,
            &self.label,
        )?
        .ok_or_else(|| Error::KeyNotFound {
            label: self.label.clone(),
            reason: "the private key is no longer in the token",
        })?;
        *lock(&self.handle) = Some((generation, handle));
        Ok(handle)
    }

    /// Signs a fixed message and verifies it in software against `public_key`, so a key whose public and
    /// private halves do not belong together is never used to issue.
    fn pairwise_check(&self) -> Result<(), Error> {
        const PROBE: &[u8] = b"shedu pkcs11 pairwise consistency check";
        let sig = self.sign(PROBE)?;
        let alg: &dyn signature::VerificationAlgorithm = match self.key_type {
            KeyType::EcP256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyType::EcP384 => &signature::ECDSA_P384_SHA384_ASN1,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            KeyType::Ed25519 => &signature::ED25519,
        };
        signature::UnparsedPublicKey::new(alg, &self.public_key)
            .verify(PROBE, &sig)
            .map_err(|_| {
                Error::InvalidKey(format!(
                    "the public key labelled {:?} does not match its private key",
                    self.label
                ))
            })
    }
}

impl Signer for Pkcs11Key {
    fn key_type(&self) -> KeyType {
        self.key_type
    }

    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let hashed;
        let (mechanism, data, field_len) = match self.key_type {
            KeyType::EcP256 => {
                hashed = digest::digest(&digest::SHA256, message);
                (Mechanism::Ecdsa, hashed.as_ref(), Some(32))
            }
            KeyType::EcP384 => {
                hashed = digest::digest(&digest::SHA384, message);
                (Mechanism::Ecdsa, hashed.as_ref(), Some(48))
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                (Mechanism::Sha256RsaPkcs, message, None)
            }
            KeyType::Ed25519 => (
                Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                message,
                None,
            ),
        };
        let raw = self.engine.with_session(|session, generation| {
            let handle = self.handle(session, generation)?;
            match session.sign(&mechanism, handle, data) {
                // The handle went stale (the token reloaded its objects): look the key up once more.
                Err(CkError::Pkcs11(
                    RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid,
                    _,
                )) => {
                    let handle = self.refind(session, generation)?;
                    session.sign(&mechanism, handle, data).map_err(ck)
                }
                other => other.map_err(ck),
            }
        })?;
        match field_len {
            Some(n) => ecdsa_raw_to_der(&raw, n).ok_or_else(|| {
                Error::Pkcs11("the token returned a malformed ECDSA signature".into())
            }),
            None => Ok(raw),
        }
    }
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("token", &self.engine.token_label)
            .field("label", &self.label)
            .field("key_type", &self.key_type)
            .finish()
    }
}

/// The key-generation and signing mechanisms a key type needs.
fn mechanisms_for(key_type: KeyType) -> (MechanismType, MechanismType) {
    match key_type {
        KeyType::EcP256 | KeyType::EcP384 => {
            (MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA)
        }
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            MechanismType::SHA256_RSA_PKCS,
        ),
        KeyType::Ed25519 => (
            MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            MechanismType::EDDSA,
        ),
    }
}

/// The contents of the curve OID of an EC key type (`None` for RSA).
pub(crate) fn curve_oid(key_type: KeyType) -> Option<&'static [u8]> {
    match key_type {
        // 1.2.840.10045.3.1.7
        KeyType::EcP256 => Some(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
        // 1.3.132.0.34
        KeyType::EcP384 => Some(&[0x2b, 0x81, 0x04, 0x00, 0x22]),
        // 1.3.101.112 (id-Ed25519), the form SoftHSM and most HSMs accept for CKK_EC_EDWARDS
        KeyType::Ed25519 => Some(&[0x2b, 0x65, 0x70]),
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => None,
    }
}

/// `CKA_EC_PARAMS` for an EC or Edwards key type.
fn curve_params(key_type: KeyType) -> Option<Vec<u8>> {
    curve_oid(key_type).map(oid_der)
}

/// The length of the public key bits of an EC or Edwards key type.
fn point_len(key_type: KeyType) -> usize {
    match key_type {
        KeyType::EcP256 => 65,
        KeyType::EcP384 => 97,
        _ => 32,
    }
}

fn ck_key_type(key_type: KeyType) -> CkKeyType {
    match key_type {
        KeyType::EcP256 | KeyType::EcP384 => CkKeyType::EC,
        KeyType::Ed25519 => CkKeyType::EC_EDWARDS,
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => CkKeyType::RSA,
    }
}

fn private_attributes(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ]
}

fn public_attributes(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ]
}

/// Key labels are 1 to 255 bytes of printable text; they end up in logs and in the CA record.
fn check_label(label: &str) -> Result<(), Error> {
    if label.is_empty() || label.len() > 255 || label.chars().any(char::is_control) {
        return Err(Error::InvalidKey(
            "a PKCS#11 key label must be 1 to 255 bytes without control characters".into(),
        ));
    }
    Ok(())
}

/// The one object of `class` labelled `label`, if any; several is an error (the label is ambiguous).
/// When a private key is not found, makes sure the session is still logged in: a logged-out session
/// does not see private objects, which is a lost login and not a missing key.
fn find_one(
    objects: &RwLock<()>,
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<Option<ObjectHandle>, Error> {
    let found = {
        let _search = read(objects);
        session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(ck)?
    };
    match found.as_slice() {
        [] if class == ObjectClass::PRIVATE_KEY => {
            ensure_logged_in(session)?;
            Ok(None)
        }
        [] => Ok(None),
        [h] => Ok(Some(*h)),
        more => Err(Error::Pkcs11(format!(
            "{} {class} objects are labelled {label:?}",
            more.len()
        ))),
    }
}

/// [`Error::TokenUnavailable`] unless the session is a logged-in user session.
fn ensure_logged_in(session: &Session) -> Result<(), Error> {
    match session.get_session_info().map_err(ck)?.session_state() {
        SessionState::RwUser | SessionState::RoUser => Ok(()),
        state => Err(Error::TokenUnavailable(format!(
            "the session is no longer logged in ({state:?})"
        ))),
    }
}

/// Checks `CKA_KEY_TYPE` and the curve (EC) or modulus size (RSA) of a key object.
fn check_key_type(
    session: &Session,
    handle: ObjectHandle,
    key_type: KeyType,
    label: &str,
) -> Result<(), Error> {
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::Modulus,
            ],
        )
        .map_err(ck)?;
    let mut ok = false;
    let mut params_ok = false;
    for attr in &attrs {
        match attr {
            Attribute::KeyType(t) => ok = *t == ck_key_type(key_type),
            Attribute::EcParams(p) => params_ok = curve_params(key_type).as_ref() == Some(p),
            Attribute::Modulus(m) => params_ok = key_type.rsa_bits() == Some(bit_len(m)),
            _ => {}
        }
    }
    if ok && params_ok {
        Ok(())
    } else {
        Err(Error::InvalidKey(format!(
            "the PKCS#11 key labelled {label:?} is not a {key_type} key"
        )))
    }
}

/// The subjectPublicKey bits of a key object: the point for EC/Edwards (unwrapped from its OCTET STRING),
/// the `RSAPublicKey` DER for RSA.
fn read_public_key(
    session: &Session,
    handle: ObjectHandle,
    key_type: KeyType,
) -> Result<Vec<u8>, Error> {
    let wanted: &[AttributeType] = if key_type.rsa_bits().is_some() {
        &[
            AttributeType::KeyType,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ]
    } else {
        &[
            AttributeType::KeyType,
            AttributeType::EcParams,
            AttributeType::EcPoint,
        ]
    };
    let attrs = session.get_attributes(handle, wanted).map_err(ck)?;
    let mismatch = || Error::InvalidKey(format!("the token's public key is not a {key_type} key"));
    let (mut ck_type, mut params, mut point, mut modulus, mut exponent) =
        (None, None, None, None, None);
    for attr in attrs {
        match attr {
            Attribute::KeyType(t) => ck_type = Some(t),
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            Attribute::Modulus(m) => modulus = Some(m),
            Attribute::PublicExponent(e) => exponent = Some(e),
            _ => {}
        }
    }
    if ck_type != Some(ck_key_type(key_type)) {
        return Err(mismatch());
    }
    match key_type.rsa_bits() {
        Some(bits) => match (modulus, exponent) {
            (Some(n), Some(e)) if bit_len(&n) == bits => Ok(rsa_public_key(&n, &e)),
            (Some(_), Some(_)) => Err(mismatch()),
            _ => Err(Error::Pkcs11(
                "the RSA key lacks CKA_MODULUS or CKA_PUBLIC_EXPONENT".into(),
            )),
        },
        None => {
            if params != curve_params(key_type) {
                return Err(mismatch());
            }
            let point = point.ok_or_else(|| Error::Pkcs11("the key lacks CKA_EC_POINT".into()))?;
            let point = ec_point_from_attribute(&point, point_len(key_type))
                .ok_or_else(|| Error::Pkcs11("malformed CKA_EC_POINT".into()))?;
            if key_type != KeyType::Ed25519 && point.first() != Some(&0x04) {
                return Err(Error::Pkcs11(
                    "CKA_EC_POINT is not an uncompressed point".into(),
                ));
            }
            Ok(point)
        }
    }
}

/// The process-wide context of a module: loaded and `C_Initialize`d once, never finalized (PKCS#11 state
/// is per process, and finalizing would pull the sessions from under every other engine).
fn context(module: &Path) -> Result<Module, Error> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    let module_error = |reason: String| Error::Pkcs11Module {
        module: module.display().to_string(),
        reason,
    };
    let path = std::fs::canonicalize(module).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => module_error("file not found".into()),
        _ => module_error(format!("cannot access the file: {e}")),
    })?;
    let mut contexts = lock(CONTEXTS.get_or_init(Default::default));
    if let Some(module) = contexts.get(&path) {
        return Ok(module.clone());
    }
    let ctx = Pkcs11::new(&path).map_err(|e| module_error(format!("cannot load: {e}")))?;
    initialize(&ctx).map_err(|e| module_error(format!("C_Initialize failed: {e}")))?;
    let module = Module {
        ctx,
        objects: Arc::default(),
    };
    contexts.insert(path, module.clone());
    Ok(module)
}

/// A loaded module, shared by every engine of the process that uses it.
///
/// `objects` orders object searches against object creation and deletion across all of them. SoftHSM
/// 2.6.1 (what Debian ships) lets a `C_FindObjects` in one thread race a `C_GenerateKeyPair` or
/// `C_CreateObject` in another, and the creation then fails at random with `CKR_GENERAL_ERROR` or
/// `CKR_TEMPLATE_INCONSISTENT` (SoftHSMv2 issue 573, fixed after 2.6.1). Creating keys is rare and slow
/// anyway (a CA, a rotation), and signatures, which do not search, never wait for it.
#[derive(Clone)]
struct Module {
    ctx: Pkcs11,
    objects: Arc<RwLock<()>>,
}

/// `C_Initialize` with OS locking; "already initialized" (by another user of the module in this process)
/// is fine.
fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The slot holding the token labelled `label`; exactly one must match.
fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Slot, Error> {
    let mut found = Vec::new();
    let mut available = Vec::new();
    for slot in ctx.get_slots_with_token().map_err(ck)? {
        let info = ctx.get_token_info(slot).map_err(ck)?;
        let token = info.label().trim_end_matches([' ', '\0']);
        if token == label {
            found.push(slot);
        } else if info.token_initialized() {
            available.push(format!("{token:?}"));
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(Error::TokenNotFound {
            label: label.to_string(),
            available: if available.is_empty() {
                "none".into()
            } else {
                available.join(", ")
            },
        }),
        more => Err(Error::Pkcs11(format!(
            "{} tokens are labelled {label:?}; token labels must be unique",
            more.len()
        ))),
    }
}

/// The fingerprint of the PIN each (module, token) of this process logged in with.
type LoginKey = (PathBuf, String);

fn logins() -> &'static Mutex<HashMap<LoginKey, Vec<u8>>> {
    static LOGINS: OnceLock<Mutex<HashMap<LoginKey, Vec<u8>>>> = OnceLock::new();
    LOGINS.get_or_init(Default::default)
}

/// SHA-256 over module, token and PIN; kept in memory only, to compare PINs without storing them twice.
fn pin_fingerprint(module: &Path, token: &str, pin: &str) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(module.as_os_str().as_encoded_bytes());
    ctx.update(&[0]);
    ctx.update(token.as_bytes());
    ctx.update(&[0]);
    ctx.update(pin.as_bytes());
    ctx.finish().as_ref().to_vec()
}

/// PKCS#11 return codes that mean the session or token is gone rather than that the request was wrong.
fn unavailable(rv: &RvError) -> bool {
    matches!(
        rv,
        RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::UserNotLoggedIn
            | RvError::CryptokiNotInitialized
            | RvError::SlotIdInvalid
            | RvError::GeneralError
    )
}

/// Maps a cryptoki error to the engine's error; never includes attribute values.
fn ck(e: CkError) -> Error {
    match &e {
        CkError::Pkcs11(rv, function) if unavailable(rv) => {
            Error::TokenUnavailable(format!("{function:?} returned {rv:?}"))
        }
        CkError::Pkcs11(rv, function) => Error::Pkcs11(format!("{function:?} returned {rv:?}")),
        other => Error::Pkcs11(other.to_string()),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read(objects: &RwLock<()>) -> RwLockReadGuard<'_, ()> {
    objects.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(objects: &RwLock<()>) -> RwLockWriteGuard<'_, ()> {
    objects.write().unwrap_or_else(PoisonError::into_inner)
}

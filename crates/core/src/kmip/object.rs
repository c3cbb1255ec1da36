//! A managed object as the service handles it: the stored row opened into attributes, and its key
//! material sealed under the master key with the object's uid as associated data.

use shedu_keys::Keystore;
use shedu_kmip::{
    Attribute, ProtocolVersion, Ttlv, Value, drbg_algorithm, hashing_algorithm, object_type,
    read_attributes, rng_algorithm, state, tag, write_attribute,
};
use shedu_store::KmipObjectRow;
use zeroize::Zeroizing;

use super::Failure;

/// The context a managed object's material is sealed under: its uid.
fn seal_context(uid: &str) -> Vec<u8> {
    format!("shedu-kmip-object-v1:{uid}").into_bytes()
}

/// Re-seals an object's material from `old` to `new` (master-key rotation).
pub(crate) fn reseal(
    old: &Keystore,
    new: &Keystore,
    uid: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, shedu_keys::Error> {
    let plain = old.open_secret(&seal_context(uid), sealed)?;
    new.seal_secret(&seal_context(uid), &plain)
}

/// The attribute form stored in the database: KMIP 1.x `Attribute` structures (they carry names and
/// indexes, so custom attributes round-trip too).
const STORED_FORM: ProtocolVersion = ProtocolVersion::V1_0;

/// A managed object.
#[derive(Debug, Clone)]
pub(crate) struct Managed {
    pub(crate) uid: String,
    pub(crate) owner: String,
    pub(crate) object_type: u32,
    pub(crate) state: u32,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) sealed: Option<Vec<u8>>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

impl Managed {
    /// A new object of `object_type` owned by `owner`, its material sealed.
    pub(crate) fn new(
        keystore: &Keystore,
        owner: &str,
        object: &Ttlv,
        object_type: u32,
        attributes: Vec<Attribute>,
        now: i64,
    ) -> Result<Managed, Failure> {
        // A UUIDv7: ordered by creation, so a new object's uid lands at the right edge of the uid index
        // (a random one dirtied a leaf page of its own per object in every commit, written to the WAL).
        // Nothing is granted by knowing a uid: every operation checks the owner and grants.
        let uid = uuid::Uuid::now_v7().to_string();
        Managed::new_as(uid, keystore, owner, object, object_type, attributes, now)
    }

    /// A new object as [`Managed::new`] makes it, with the Unique Identifier `uid` (Import's).
    pub(crate) fn new_as(
        uid: String,
        keystore: &Keystore,
        owner: &str,
        object: &Ttlv,
        object_type: u32,
        mut attributes: Vec<Attribute>,
        now: i64,
    ) -> Result<Managed, Failure> {
        // What the client sent about identity, type, state and dates is the server's to set.
        attributes.retain(|a| !SERVER_SET.contains(&a.value.tag));
        let activation = attributes
            .iter()
            .find(|a| a.value.tag == tag::ACTIVATION_DATE)
            .and_then(|a| a.value.as_date("Activation Date").ok());
        let state = match activation {
            Some(at) if at <= now => state::ACTIVE,
            _ => state::PRE_ACTIVE,
        };
        let mut m = Managed {
            sealed: None,
            uid,
            owner: owner.to_owned(),
            object_type,
            state,
            attributes,
            created_at: now,
            updated_at: now,
        };
        m.seal(keystore, object)?;
        for item in object.child(tag::KEY_BLOCK).map(Ttlv::items).unwrap_or(&[]) {
            if matches!(
                item.tag,
                tag::CRYPTOGRAPHIC_ALGORITHM | tag::CRYPTOGRAPHIC_LENGTH
            ) && m.attr(item.tag).is_none()
            {
                m.set(item.clone());
            }
        }
        if let Some(t) = object.child(tag::CERTIFICATE_TYPE) {
            m.set(t.clone());
        }
        if let Some(d) = digest(object) {
            m.set(d);
        }
        m.set(Ttlv::text(tag::UNIQUE_IDENTIFIER, m.uid.clone()));
        m.set(Ttlv::enumeration(tag::OBJECT_TYPE, object_type));
        m.set(Ttlv::enumeration(tag::STATE, state));
        m.set(Ttlv::new(tag::INITIAL_DATE, Value::DateTime(now)));
        m.set(Ttlv::new(tag::LAST_CHANGE_DATE, Value::DateTime(now)));
        // A registering client may say when the object was first made; otherwise it is made now.
        if m.attr(tag::ORIGINAL_CREATION_DATE).is_none() {
            m.set(Ttlv::new(tag::ORIGINAL_CREATION_DATE, Value::DateTime(now)));
        }
        // KMIP 1.x's (deprecated) Operation Policy Name: shedu has one policy, the owner-and-grants one,
        // named `default` as PyKMIP's server names its own.
        if m.attr(tag::OPERATION_POLICY_NAME).is_none() {
            m.set(Ttlv::text(tag::OPERATION_POLICY_NAME, "default"));
        }
        if state == state::ACTIVE {
            m.set(Ttlv::new(
                tag::ACTIVATION_DATE,
                Value::DateTime(activation.unwrap_or(now)),
            ));
        }
        Ok(m)
    }

    /// Marks an object whose key material the server generated: its Random Number Generator attribute
    /// (KMIP 1.3 §3.44) names aws-lc's, a CTR DRBG over AES-256, which makes every key shedu generates.
    pub(crate) fn generated(mut self) -> Managed {
        self.set(Ttlv::structure(
            tag::RANDOM_NUMBER_GENERATOR,
            vec![
                Ttlv::enumeration(tag::RNG_ALGORITHM, rng_algorithm::DRBG),
                Ttlv::enumeration(
                    tag::CRYPTOGRAPHIC_ALGORITHM,
                    shedu_kmip::cryptographic_algorithm::AES,
                ),
                Ttlv::integer(tag::CRYPTOGRAPHIC_LENGTH, 256),
                Ttlv::enumeration(tag::DRBG_ALGORITHM, drbg_algorithm::CTR),
            ],
        ));
        self
    }

    /// Opens a stored row (its material stays sealed until [`Managed::open`]).
    pub(crate) fn from_row(row: KmipObjectRow) -> Result<Managed, Failure> {
        let corrupt = |_| Failure::general("a stored object's attributes do not read");
        let item = shedu_kmip::from_json_slice(row.attributes.as_bytes()).map_err(corrupt)?;
        Ok(Managed {
            attributes: read_attributes(&item).map_err(corrupt)?,
            uid: row.uid,
            owner: row.owner,
            object_type: u32::try_from(row.object_type).unwrap_or(0),
            state: u32::try_from(row.state).unwrap_or(0),
            sealed: row.sealed,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// The row to store.
    pub(crate) fn to_row(&self) -> KmipObjectRow {
        let items = self
            .attributes
            .iter()
            .map(|a| write_attribute(a, STORED_FORM))
            .collect();
        KmipObjectRow {
            uid: self.uid.clone(),
            owner: self.owner.clone(),
            object_type: i64::from(self.object_type),
            state: i64::from(self.state),
            attributes: shedu_kmip::to_json_string(&Ttlv::structure(tag::ATTRIBUTES, items)),
            sealed: self.sealed.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Seals `object` (the object's TTLV) as this object's material.
    pub(crate) fn seal(&mut self, keystore: &Keystore, object: &Ttlv) -> Result<(), Failure> {
        let plain = Zeroizing::new(
            shedu_kmip::encode(object).map_err(|_| Failure::invalid("the object is too large"))?,
        );
        self.sealed = Some(
            keystore
                .seal_secret(&seal_context(&self.uid), &plain)
                .map_err(|_| Failure::general("cannot seal the object"))?,
        );
        Ok(())
    }

    /// The object's TTLV; `None` once destroyed.
    pub(crate) fn open(&self, keystore: &Keystore) -> Result<Option<Ttlv>, Failure> {
        let Some(sealed) = &self.sealed else {
            return Ok(None);
        };
        let plain = keystore
            .open_secret(&seal_context(&self.uid), sealed)
            .map_err(|_| Failure::general("the object's material does not open"))?;
        shedu_kmip::decode(&plain)
            .map(Some)
            .map_err(|_| Failure::general("the object's material does not read"))
    }

    /// The first instance of the attribute with `t`.
    pub(crate) fn attr(&self, t: u32) -> Option<&Ttlv> {
        self.attributes
            .iter()
            .find(|a| a.value.tag == t)
            .map(|a| &a.value)
    }

    /// Sets the first instance of a standard attribute (its tag says which).
    pub(crate) fn set(&mut self, value: Ttlv) {
        if let Some(a) = self
            .attributes
            .iter_mut()
            .find(|a| a.value.tag == value.tag)
        {
            a.value = value;
            return;
        }
        let name = shedu_kmip::attribute_name(value.tag)
            .map(str::to_owned)
            .or_else(|| shedu_kmip::tag_name(value.tag).map(str::to_owned))
            .unwrap_or_default();
        self.attributes.push(Attribute {
            name,
            index: 0,
            value,
        });
    }

    /// Adds an instance of a multi-valued attribute (a Link, a Name), after those it already has.
    pub(crate) fn add(&mut self, value: Ttlv) {
        let name = shedu_kmip::attribute_name(value.tag)
            .map(str::to_owned)
            .or_else(|| shedu_kmip::tag_name(value.tag).map(str::to_owned))
            .unwrap_or_default();
        let count = self.attributes.iter().filter(|a| a.name == name).count();
        self.attributes.push(Attribute {
            name,
            index: i32::try_from(count).unwrap_or(i32::MAX),
            value,
        });
    }

    /// Moves to `new_state`, stamping the Last Change Date and `date` (the state's own date attribute).
    pub(crate) fn transition(&mut self, new_state: u32, date: Option<u32>, now: i64) {
        self.state = new_state;
        self.set(Ttlv::enumeration(tag::STATE, new_state));
        if let Some(t) = date {
            self.set(Ttlv::new(t, Value::DateTime(now)));
        }
        self.set(Ttlv::new(tag::LAST_CHANGE_DATE, Value::DateTime(now)));
        self.updated_at = now;
    }
}

/// Attributes only the server sets.
pub(crate) const SERVER_SET: &[u32] = &[
    tag::UNIQUE_IDENTIFIER,
    tag::OBJECT_TYPE,
    tag::STATE,
    tag::INITIAL_DATE,
    tag::LAST_CHANGE_DATE,
    tag::DESTROY_DATE,
    tag::COMPROMISE_DATE,
    tag::DEACTIVATION_DATE,
    tag::REVOCATION_REASON,
    tag::DIGEST,
];

/// The Digest attribute of an object (KMIP 1.4 §3.17): SHA-256 of its Key Material bytes with their Key
/// Format Type, or of its Certificate Value or Opaque Data Value; none for material held as a structure
/// (transparent keys) or wrapped.
fn digest(object: &Ttlv) -> Option<Ttlv> {
    let (bytes, format) = match object.child(tag::KEY_BLOCK) {
        Some(block) => (
            block.child(tag::KEY_VALUE)?.child(tag::KEY_MATERIAL)?,
            Some(block.child(tag::KEY_FORMAT_TYPE)?.clone()),
        ),
        None => (
            object
                .child(tag::CERTIFICATE_VALUE)
                .or_else(|| object.child(tag::OPAQUE_DATA_VALUE))?,
            None,
        ),
    };
    let Value::ByteString(bytes) = &bytes.value else {
        return None;
    };
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut items = vec![
        Ttlv::enumeration(tag::HASHING_ALGORITHM, hashing_algorithm::SHA_256),
        Ttlv::bytes(tag::DIGEST_VALUE, hash.as_ref()),
    ];
    items.extend(format);
    Some(Ttlv::structure(tag::DIGEST, items))
}

/// The tag of the structure that carries an object of `object_type` (Register, Get).
pub(crate) fn object_tag(t: u32) -> Option<u32> {
    Some(match t {
        object_type::CERTIFICATE => tag::CERTIFICATE,
        object_type::SYMMETRIC_KEY => tag::SYMMETRIC_KEY,
        object_type::PUBLIC_KEY => tag::PUBLIC_KEY,
        object_type::PRIVATE_KEY => tag::PRIVATE_KEY,
        object_type::SECRET_DATA => tag::SECRET_DATA,
        object_type::OPAQUE_OBJECT => tag::OPAQUE_OBJECT,
        object_type::SPLIT_KEY => tag::SPLIT_KEY,
        _ => return None,
    })
}

/// The key material bytes of a key object (Raw, PKCS#8, X.509, … or a Transparent Symmetric Key).
pub(crate) fn key_material(object: &Ttlv) -> Option<&[u8]> {
    let material = object
        .child(tag::KEY_BLOCK)?
        .child(tag::KEY_VALUE)?
        .child(tag::KEY_MATERIAL)?;
    match &material.value {
        Value::ByteString(b) => Some(b),
        Value::Structure(_) => match &material.child(tag::KEY)?.value {
            Value::ByteString(b) => Some(b),
            _ => None,
        },
        _ => None,
    }
}

/// A key object: `KeyBlock { Key Format Type, Key Value { Key Material }, algorithm, length }`.
pub(crate) fn key_object(
    object_tag: u32,
    format: u32,
    material: &[u8],
    algorithm: u32,
    length: i32,
) -> Ttlv {
    Ttlv::structure(
        object_tag,
        vec![Ttlv::structure(
            tag::KEY_BLOCK,
            vec![
                Ttlv::enumeration(tag::KEY_FORMAT_TYPE, format),
                Ttlv::structure(
                    tag::KEY_VALUE,
                    vec![Ttlv::bytes(tag::KEY_MATERIAL, material.to_vec())],
                ),
                Ttlv::enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, algorithm),
                Ttlv::integer(tag::CRYPTOGRAPHIC_LENGTH, length),
            ],
        )],
    )
}

//! Derive Key (KMIP 1.4 §4.6): a new symmetric key or secret data made from stored keys or secret data
//! by a derivation method (see [`crypto::derive`]), as PyKMIP's server derives: the first object named
//! is the keying material; the Derivation Data comes from the Derivation Parameters, or else from a
//! second object that is secret data. The length (in bits, a multiple of 8) and, for a key, the
//! algorithm come from the request's attributes. The new object is the caller's, Pre-Active (or Active
//! by its Activation Date, as for Create), with a Derivation Base Object Link to the keying object.
//!
//! Deriving reads the base objects' material, so the caller must be allowed to Get them (their owner,
//! or a holder of a `get` grant); each must be a key or secret data that is Pre-Active or Active and
//! whose Cryptographic Usage Mask, when set, has Derive Key.

use shedu_kmip::{
    Attribute, Ttlv, key_format_type, link_type, object_type, result_reason, secret_data_type,
    state, tag,
};

use super::{Batch, Ctx, Out, link, payload, uid_item, usage};
use crate::kmip::Failure;
use crate::kmip::crypto::{self, Derivation};
use crate::kmip::object::{Managed, key_material, key_object};

impl Ctx<'_> {
    pub(super) async fn derive_key(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let t = p
            .require(tag::OBJECT_TYPE, "Object Type")?
            .as_enum("Object Type")?;
        if !matches!(t, object_type::SYMMETRIC_KEY | object_type::SECRET_DATA) {
            return Err(Failure::invalid(
                "Derive Key makes a symmetric key or secret data",
            ));
        }
        let mut uids: Vec<String> = p
            .children(tag::UNIQUE_IDENTIFIER)
            .map(|u| u.as_text("Unique Identifier").map(str::to_owned))
            .collect::<Result<_, _>>()?;
        if uids.is_empty() {
            uids.extend(batch.placeholder.clone());
        }
        if uids.is_empty() {
            return Err(Failure::new(
                result_reason::MISSING_DATA,
                "no Unique Identifier",
            ));
        }
        let mut bases = Vec::with_capacity(uids.len());
        for uid in &uids {
            bases.push(self.derivation_base(uid).await?);
        }
        let method = p
            .require(tag::DERIVATION_METHOD, "Derivation Method")?
            .as_enum("Derivation Method")?;
        let dp = p.require(tag::DERIVATION_PARAMETERS, "Derivation Parameters")?;
        let mut attributes = Self::attributes(p, tag::TEMPLATE_ATTRIBUTE, tag::ATTRIBUTES)?;
        let find = |t: u32| attributes.iter().find(|a| a.value.tag == t);
        let bits = find(tag::CRYPTOGRAPHIC_LENGTH)
            .ok_or(Failure::new(
                result_reason::MISSING_DATA,
                "Derive Key needs a Cryptographic Length",
            ))?
            .value
            .as_int("Cryptographic Length")?;
        let length = usize::try_from(bits)
            .ok()
            .filter(|b| *b > 0 && b % 8 == 0 && b / 8 <= crypto::MAX_DERIVED)
            .map(|b| b / 8)
            .ok_or_else(|| {
                Failure::invalid(format!(
                    "the Cryptographic Length is a multiple of 8 bits, at most {}",
                    crypto::MAX_DERIVED * 8
                ))
            })?;
        let algorithm = match find(tag::CRYPTOGRAPHIC_ALGORITHM) {
            Some(a) => Some(a.value.as_enum("Cryptographic Algorithm")?),
            None if t == object_type::SYMMETRIC_KEY => {
                return Err(Failure::new(
                    result_reason::MISSING_DATA,
                    "deriving a key needs its Cryptographic Algorithm",
                ));
            }
            None => None,
        };
        let (key, _) = &bases[0];
        // Derivation Data given, or else a second object's secret data.
        let data = match Self::bytes(dp, tag::DERIVATION_DATA, "Derivation Data")? {
            Some(d) => Some(d),
            None => bases[1..]
                .iter()
                .find(|(m, _)| m.object_type == object_type::SECRET_DATA)
                .and_then(|(_, o)| key_material(o)),
        };
        let params = Self::params(dp)?;
        let cipher = dp
            .child(tag::CRYPTOGRAPHIC_PARAMETERS)
            .and_then(|c| c.child(tag::CRYPTOGRAPHIC_ALGORITHM))
            .map(|a| a.as_enum("Cryptographic Algorithm"))
            .transpose()?;
        let derived = crypto::derive(&Derivation {
            method,
            length,
            key: key_material(&bases[0].1),
            params,
            cipher,
            data,
            salt: Self::bytes(dp, tag::SALT, "Salt")?,
            iterations: dp
                .child(tag::ITERATION_COUNT)
                .map(|i| i.as_int("Iteration Count"))
                .transpose()?,
            iv: Self::bytes(dp, tag::INITIALIZATION_VECTOR, "Initialization Vector")?,
        })?;
        let object = match algorithm {
            Some(alg) if t == object_type::SYMMETRIC_KEY => key_object(
                tag::SYMMETRIC_KEY,
                key_format_type::RAW,
                &derived,
                alg,
                bits,
            ),
            _ => secret_data(&derived),
        };
        // The algorithm and length are the new Key Block's (Managed::new copies them, in that order).
        attributes.retain(|a: &Attribute| {
            !matches!(
                a.value.tag,
                tag::CRYPTOGRAPHIC_ALGORITHM | tag::CRYPTOGRAPHIC_LENGTH
            )
        });
        let mut m = self.new_object(&object, t, attributes)?;
        m.add(link(link_type::DERIVATION_BASE_OBJECT_LINK, &key.uid));
        self.store_new(&[&m]).await?;
        Ok(Out {
            payload: payload(vec![uid_item(&m.uid)]),
            target: Some(m.uid),
        })
    }

    /// A base object of a derivation and its material: the caller may Get it, it is a key or secret
    /// data, Pre-Active or Active, and its usage mask (when set) has Derive Key.
    async fn derivation_base(&self, uid: &str) -> Result<(Managed, Ttlv), Failure> {
        let m = self.object_for(uid, "get").await?;
        if !matches!(
            m.object_type,
            object_type::SYMMETRIC_KEY
                | object_type::SECRET_DATA
                | object_type::PUBLIC_KEY
                | object_type::PRIVATE_KEY
        ) {
            return Err(Failure::new(
                result_reason::INVALID_OBJECT_TYPE,
                "keys are derived from keys or secret data",
            ));
        }
        if !matches!(m.state, state::PRE_ACTIVE | state::ACTIVE) {
            return Err(Failure::state(
                "keys are derived from Pre-Active or Active objects",
            ));
        }
        Self::check_mask(&m, usage::DERIVE_KEY)?;
        let object = m
            .open(&self.kmip.reg.keystore)?
            .ok_or_else(|| self.destroyed())?;
        Ok((m, object))
    }
}

/// A Secret Data object of type Seed holding `bytes` (Key Format Type Opaque, as PyKMIP keeps it).
fn secret_data(bytes: &[u8]) -> Ttlv {
    Ttlv::structure(
        tag::SECRET_DATA,
        vec![
            Ttlv::enumeration(tag::SECRET_DATA_TYPE, secret_data_type::SEED),
            Ttlv::structure(
                tag::KEY_BLOCK,
                vec![
                    Ttlv::enumeration(tag::KEY_FORMAT_TYPE, key_format_type::OPAQUE),
                    Ttlv::structure(
                        tag::KEY_VALUE,
                        vec![Ttlv::bytes(tag::KEY_MATERIAL, bytes.to_vec())],
                    ),
                ],
            ),
        ],
    )
}

//! Re-key and Re-key Key Pair (KMIP 1.4 §4.4, §4.5): a new key (or pair) of the same algorithm and
//! length replaces an existing one. The new object takes the old one's attributes (but for what the
//! server sets, its dates and links) and its names, which leave the old object; the request's
//! attributes come on top. Replacement links join the two (Replacement Object on the old, Replaced
//! Object on the new). The new key is Active from now plus the request's Offset when the old one was
//! Active, else Pre-Active. The new objects and the changed old ones commit in one transaction.

use shedu_kmip::{
    Attribute, Ttlv, Value, key_format_type, link_type, object_type, result_reason, state, tag,
};
use shedu_store::NewEvent;

use super::{Batch, Ctx, Out, expect_type, link, payload, symmetric_key, uid_item};
use crate::events::EventKind;
use crate::kmip::Failure;
use crate::kmip::crypto;
use crate::kmip::object::{Managed, SERVER_SET, key_object};

/// What a replacement does not inherit: besides [`SERVER_SET`], the old object's dates and links.
const NOT_INHERITED: &[u32] = &[
    tag::ACTIVATION_DATE,
    tag::PROCESS_START_DATE,
    tag::PROTECT_STOP_DATE,
    tag::COMPROMISE_OCCURRENCE_DATE,
    tag::ARCHIVE_DATE,
    tag::ORIGINAL_CREATION_DATE,
    tag::LINK,
];

impl Ctx<'_> {
    pub(super) async fn rekey(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let mut old = self.object(p, batch).await?;
        expect_type(
            &old,
            object_type::SYMMETRIC_KEY,
            "Re-key replaces symmetric keys; use Re-key Key Pair",
        )?;
        self.replaceable(&old)?;
        let algorithm = Self::algorithm(&old);
        let length = Self::length(&old)?;
        let object = symmetric_key(algorithm, length)?;
        let requested = Self::attributes(p, tag::TEMPLATE_ATTRIBUTE, tag::ATTRIBUTES)?;
        let offset = Self::offset(p)?;
        let mut new = self.successor(&mut old, &object, &requested, offset)?;
        new.add(link(link_type::REPLACED_OBJECT_LINK, &old.uid));
        old.add(link(link_type::REPLACEMENT_OBJECT_LINK, &new.uid));
        self.store_replacement(&[&new], &[&old]).await?;
        Ok(Out {
            payload: payload(vec![uid_item(&new.uid)]),
            target: Some(new.uid),
        })
    }

    pub(super) async fn rekey_key_pair(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        // The private key is named by Private Key Unique Identifier (or the ID Placeholder).
        let named = Ttlv::structure(
            tag::REQUEST_PAYLOAD,
            p.child(tag::PRIVATE_KEY_UNIQUE_IDENTIFIER)
                .map(|u| vec![Ttlv::new(tag::UNIQUE_IDENTIFIER, u.value.clone())])
                .unwrap_or_default(),
        );
        let mut old_sk = self.object(&named, batch).await?;
        expect_type(
            &old_sk,
            object_type::PRIVATE_KEY,
            "Re-key Key Pair replaces a key pair named by its private key",
        )?;
        self.replaceable(&old_sk)?;
        let algorithm = Self::algorithm(&old_sk);
        let length = Self::length(&old_sk)?;
        // The old public key, when the caller owns it too.
        let mut old_pk = match old_sk
            .attributes
            .iter()
            .find(|a| {
                a.value.tag == tag::LINK
                    && a.value
                        .child(tag::LINK_TYPE)
                        .and_then(|t| t.as_enum("").ok())
                        == Some(link_type::PUBLIC_KEY_LINK)
            })
            .and_then(|a| a.value.child(tag::LINKED_OBJECT_IDENTIFIER))
            .and_then(|u| u.as_text("").ok())
        {
            Some(uid) => self
                .kmip
                .reg
                .store
                .kmip_object(uid)
                .await
                .map_err(|_| Failure::general("storage unavailable"))?
                .filter(|r| r.owner == self.actor.principal)
                .map(Managed::from_row)
                .transpose()?,
            None => None,
        };
        let common = Self::attributes(p, tag::COMMON_TEMPLATE_ATTRIBUTE, tag::COMMON_ATTRIBUTES)?;
        let with =
            |own: Vec<Attribute>| -> Vec<Attribute> { common.iter().cloned().chain(own).collect() };
        let private = with(Self::attributes(
            p,
            tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
            tag::PRIVATE_KEY_ATTRIBUTES,
        )?);
        let public = with(Self::attributes(
            p,
            tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
            tag::PUBLIC_KEY_ATTRIBUTES,
        )?);
        let offset = Self::offset(p)?;
        let (pkcs8, spki) = crypto::generate_pair(algorithm, length)?;
        let sk_object = key_object(
            tag::PRIVATE_KEY,
            key_format_type::PKCS_8,
            &pkcs8,
            algorithm,
            length,
        );
        let pk_object = key_object(
            tag::PUBLIC_KEY,
            key_format_type::X_509,
            &spki,
            algorithm,
            length,
        );
        let mut sk = self.successor(&mut old_sk, &sk_object, &private, offset)?;
        let mut pk = match old_pk.as_mut() {
            Some(old) => self.successor(old, &pk_object, &public, offset)?,
            None => {
                let mut pk = Managed::new(
                    &self.kmip.reg.keystore,
                    &self.actor.principal,
                    &pk_object,
                    object_type::PUBLIC_KEY,
                    public,
                    self.now(),
                )?
                .generated();
                if sk.state == state::ACTIVE {
                    pk.transition(state::ACTIVE, Some(tag::ACTIVATION_DATE), self.now());
                }
                pk
            }
        };
        sk.set(link(link_type::PUBLIC_KEY_LINK, &pk.uid));
        pk.set(link(link_type::PRIVATE_KEY_LINK, &sk.uid));
        sk.add(link(link_type::REPLACED_OBJECT_LINK, &old_sk.uid));
        old_sk.add(link(link_type::REPLACEMENT_OBJECT_LINK, &sk.uid));
        let mut changed = vec![&old_sk];
        if let Some(old) = old_pk.as_mut() {
            pk.add(link(link_type::REPLACED_OBJECT_LINK, &old.uid));
            old.add(link(link_type::REPLACEMENT_OBJECT_LINK, &pk.uid));
        }
        if let Some(old) = old_pk.as_ref() {
            changed.push(old);
        }
        self.store_replacement(&[&sk, &pk], &changed).await?;
        Ok(Out {
            payload: payload(vec![
                Ttlv::text(tag::PRIVATE_KEY_UNIQUE_IDENTIFIER, sk.uid.clone()),
                Ttlv::text(tag::PUBLIC_KEY_UNIQUE_IDENTIFIER, pk.uid.clone()),
            ]),
            target: Some(sk.uid),
        })
    }

    /// A destroyed or compromised key is not replaced.
    fn replaceable(&self, old: &Managed) -> Result<(), Failure> {
        match old.state {
            state::DESTROYED | state::DESTROYED_COMPROMISED => Err(self.destroyed()),
            state::COMPROMISED => Err(Failure::state("a compromised key is not re-keyed")),
            _ => Ok(()),
        }
    }

    fn length(m: &Managed) -> Result<i32, Failure> {
        m.attr(tag::CRYPTOGRAPHIC_LENGTH)
            .map(|l| l.as_int("Cryptographic Length"))
            .transpose()?
            .ok_or(Failure::new(
                result_reason::MISSING_DATA,
                "the key has no Cryptographic Length",
            ))
    }

    /// The request's Offset, seconds.
    fn offset(p: &Ttlv) -> Result<Option<i64>, Failure> {
        match p.child(tag::OFFSET).map(|o| &o.value) {
            None => Ok(None),
            Some(Value::Interval(s)) => Ok(Some(i64::from(*s))),
            Some(_) => Err(Failure::invalid("invalid Offset")),
        }
    }

    /// The object replacing `old`, holding `object`: `old`'s attributes (its names move over), then
    /// `requested`; Active from now + `offset` when `old` is Active.
    fn successor(
        &self,
        old: &mut Managed,
        object: &Ttlv,
        requested: &[Attribute],
        offset: Option<i64>,
    ) -> Result<Managed, Failure> {
        let now = self.now();
        let mut inherited: Vec<Attribute> = old
            .attributes
            .iter()
            .filter(|a| !SERVER_SET.contains(&a.value.tag) && !NOT_INHERITED.contains(&a.value.tag))
            .filter(|a| !requested.iter().any(|r| r.name == a.name))
            .cloned()
            .collect();
        inherited.extend(requested.iter().cloned());
        let activation = match (old.state, offset) {
            (state::ACTIVE, o) => Some(now + o.unwrap_or(0)),
            (_, Some(o)) => Some(now + o),
            _ => None,
        };
        if let Some(at) = activation {
            inherited.retain(|a| a.value.tag != tag::ACTIVATION_DATE);
            inherited.push(Attribute {
                name: "Activation Date".into(),
                index: 0,
                value: Ttlv::new(tag::ACTIVATION_DATE, Value::DateTime(at)),
            });
        }
        let new = Managed::new(
            &self.kmip.reg.keystore,
            &self.actor.principal,
            object,
            old.object_type,
            inherited,
            now,
        )?
        .generated();
        // The names now name the new object.
        old.attributes.retain(|a| a.value.tag != tag::NAME);
        old.set(Ttlv::new(tag::LAST_CHANGE_DATE, Value::DateTime(now)));
        old.updated_at = now;
        Ok(new)
    }

    /// Stores the new objects and the replaced ones in one transaction, with their events.
    async fn store_replacement(&self, new: &[&Managed], old: &[&Managed]) -> Result<(), Failure> {
        let new_rows: Vec<_> = new.iter().map(|m| m.to_row()).collect();
        let old_rows: Vec<_> = old
            .iter()
            .map(|m| (m.to_row(), i64::from(m.state)))
            .collect();
        let events: Vec<NewEvent> = new
            .iter()
            .map(|m| self.event(EventKind::KmipObjectCreated, m))
            .collect();
        let written = self
            .kmip
            .reg
            .store
            .write_kmip_objects(
                &new_rows.iter().collect::<Vec<_>>(),
                &old_rows.iter().map(|(r, s)| (r, *s)).collect::<Vec<_>>(),
                &events.iter().collect::<Vec<_>>(),
                &self.audited(),
            )
            .await
            .map_err(super::write_failure);
        let uids: Vec<&str> = old.iter().map(|m| m.uid.as_str()).collect();
        self.changed(&uids).await;
        written
    }
}

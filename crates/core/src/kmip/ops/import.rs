//! Import and Export (KMIP 2.1 §6.1.27, §6.1.21): an object moved in or out whole, with its attributes.
//!
//! - **Import** stores the object under the Unique Identifier the client gives, owned by the caller,
//!   with the request's attributes (those only the server sets are the server's, as for Register).
//!   An identifier already in use is `Object Already Exists`, unless Replace Existing is true and the
//!   caller owns that object and it is not destroyed: then its material and attributes are replaced
//!   (its state stays). The object comes under its type's tag, or under `Object` as Cosmian's client
//!   sends it. Key Wrap Type `As Registered` keeps a wrapped key as it comes; shedu unwraps nothing.
//! - **Export** answers what Get answers (the same grant, formats and key wrapping) plus every attribute
//!   of the object.

use shedu_kmip::{Attribute, Ttlv, result_reason, tag};

use super::{Batch, Ctx, Out, payload, uid_item, write_failure};
use crate::kmip::Failure;
use crate::kmip::object::Managed;

impl Ctx<'_> {
    pub(super) async fn import(&self, p: &Ttlv) -> Result<Out, Failure> {
        let uid = p
            .require(tag::UNIQUE_IDENTIFIER, "Unique Identifier")?
            .as_text("Unique Identifier")?
            .to_owned();
        if uid.is_empty() || uid.len() > 255 {
            return Err(Failure::invalid(
                "the Unique Identifier is 1 to 255 characters",
            ));
        }
        let (t, object) = Self::submitted(p, "imported")?;
        let replace = p
            .child(tag::REPLACE_EXISTING)
            .map(|r| r.as_bool("Replace Existing"))
            .transpose()?
            .unwrap_or(false);
        let attributes: Vec<Attribute> =
            Self::attributes(p, tag::TEMPLATE_ATTRIBUTE, tag::ATTRIBUTES)?;
        let store = &self.kmip.reg.store;
        let existing = store
            .kmip_object(&uid)
            .await
            .map_err(|_| Failure::general("storage unavailable"))?;
        let ks = &self.kmip.reg.keystore;
        let now = self.now();
        match existing {
            None => {
                let m =
                    Managed::new_as(uid, ks, &self.actor.principal, &object, t, attributes, now)?;
                self.store_new(&[&m]).await?;
                Ok(imported(m.uid))
            }
            Some(row) if replace && row.owner == self.actor.principal => {
                let old = Managed::from_row(row)?;
                if old.sealed.is_none() {
                    return Err(Failure::state("a destroyed object is not replaced"));
                }
                let mut m =
                    Managed::new_as(uid, ks, &self.actor.principal, &object, t, attributes, now)?;
                // The object keeps its state, dates and history; what it holds is new.
                for kept in [
                    tag::STATE,
                    tag::INITIAL_DATE,
                    tag::ACTIVATION_DATE,
                    tag::DEACTIVATION_DATE,
                    tag::COMPROMISE_DATE,
                    tag::REVOCATION_REASON,
                ] {
                    m.attributes.retain(|a| a.value.tag != kept);
                    if let Some(v) = old.attr(kept) {
                        m.set(v.clone());
                    }
                }
                m.state = old.state;
                m.created_at = old.created_at;
                let written = self
                    .kmip
                    .reg
                    .store
                    .update_kmip_objects(
                        &[(&m.to_row(), i64::from(old.state))],
                        &[],
                        &self.audited(),
                    )
                    .await
                    .map_err(write_failure);
                self.changed(&[&m.uid]).await;
                written?;
                Ok(imported(m.uid))
            }
            Some(_) => Err(Failure::new(
                result_reason::OBJECT_ALREADY_EXISTS,
                "an object with this Unique Identifier exists (Replace Existing replaces your own)",
            )),
        }
    }

    pub(super) async fn export(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let (m, object) = self.fetch(p, batch).await?;
        let all: Vec<&Attribute> = m.attributes.iter().collect();
        let mut items = vec![
            Ttlv::enumeration(tag::OBJECT_TYPE, m.object_type),
            uid_item(&m.uid),
        ];
        // Export is KMIP 2.x: its attributes are one Attributes structure.
        items.push(Ttlv::structure(
            tag::ATTRIBUTES,
            all.iter()
                .map(|a| shedu_kmip::answer_attribute(a, super::KMIP_VERSIONS[0]))
                .collect(),
        ));
        items.push(object);
        Ok(Out {
            payload: payload(items),
            target: Some(m.uid),
        })
    }
}

fn imported(uid: String) -> Out {
    Out {
        payload: payload(vec![uid_item(&uid)]),
        target: Some(uid),
    }
}

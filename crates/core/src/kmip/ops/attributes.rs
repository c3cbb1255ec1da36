//! Changing an object's attributes: Add, Set (KMIP 2.x), Modify and Delete Attribute, in both forms
//! (KMIP 1.x names an attribute and its index; KMIP 2.x sends the tagged value as New Attribute, and
//! names an instance by its Current Attribute value or an Attribute Reference). Only the owner changes
//! attributes. What the server keeps (identity, type, state and its dates, the key's algorithm and
//! length, links) is read-only.

use shedu_kmip::{Attribute, Ttlv, Value, answer_attribute, read_attributes, result_reason, tag};

use super::{Batch, Ctx, Out, answer};
use crate::kmip::Failure;
use crate::kmip::object::{Managed, SERVER_SET};

/// Picks the attribute instance a Delete Attribute names.
type Selector = Box<dyn Fn(&Attribute) -> bool + Send + Sync>;

/// Attributes a client may not add, change or delete (beyond [`SERVER_SET`]).
const READ_ONLY: &[u32] = &[
    tag::CRYPTOGRAPHIC_ALGORITHM,
    tag::CRYPTOGRAPHIC_LENGTH,
    tag::CERTIFICATE_TYPE,
    tag::ACTIVATION_DATE,
    tag::COMPROMISE_OCCURRENCE_DATE,
    tag::LINK,
    tag::OPERATION_POLICY_NAME,
];

/// Attributes an object may hold several instances of (KMIP 1.4 §3); custom attributes too.
const MULTI_VALUED: &[u32] = &[
    tag::NAME,
    tag::LINK,
    tag::OBJECT_GROUP,
    tag::APPLICATION_SPECIFIC_INFORMATION,
    tag::ALTERNATIVE_NAME,
];

fn multi_valued(a: &Attribute) -> bool {
    MULTI_VALUED.contains(&a.value.tag) || shedu_kmip::attribute_tag(&a.name).is_none()
}

fn writable(a: &Attribute) -> Result<(), Failure> {
    if SERVER_SET.contains(&a.value.tag) || READ_ONLY.contains(&a.value.tag) {
        return Err(Failure::new(
            result_reason::READ_ONLY_ATTRIBUTE,
            format!("{} is the server's to set", a.name),
        ));
    }
    Ok(())
}

fn not_found(what: &str) -> Failure {
    Failure::new(
        result_reason::ATTRIBUTE_NOT_FOUND,
        format!("the object has no {what}"),
    )
}

/// The one attribute a structure carries (a 1.x `Attribute`, or the tagged value inside a 2.x `New
/// Attribute` or `Current Attribute`), with the index it names (0 when it names none).
fn one_attribute(item: &Ttlv) -> Result<Attribute, Failure> {
    let carried = if item.tag == tag::ATTRIBUTE {
        vec![item.clone()]
    } else {
        item.items().to_vec()
    };
    let mut read = read_attributes(&Ttlv::structure(tag::ATTRIBUTES, carried))?;
    match (read.pop(), read.is_empty()) {
        (Some(a), true) => Ok(a),
        _ => Err(Failure::invalid("one attribute is expected")),
    }
}

impl Ctx<'_> {
    /// The attribute the request sets: the 1.x `Attribute` or the 2.x `New Attribute`.
    fn new_attribute(p: &Ttlv) -> Result<Attribute, Failure> {
        let item = p
            .child(tag::NEW_ATTRIBUTE)
            .or_else(|| p.child(tag::ATTRIBUTE))
            .ok_or(Failure::new(result_reason::MISSING_DATA, "no attribute"))?;
        one_attribute(item)
    }

    /// The answer of a change: the Unique Identifier, and in KMIP 1.x the attribute as it now stands.
    fn attribute_answer(&self, m: Managed, a: Option<&Attribute>) -> Out {
        let items = match a {
            Some(a) if !self.version.is_v2() => vec![answer_attribute(a, self.version)],
            _ => vec![],
        };
        answer(m.uid, items)
    }

    /// Stores an object whose attributes changed (its state did not: no event).
    async fn store_attributes(&self, m: &mut Managed) -> Result<(), Failure> {
        let now = self.now();
        m.set(Ttlv::new(tag::LAST_CHANGE_DATE, Value::DateTime(now)));
        m.updated_at = now;
        self.store_update(m, m.state, None).await
    }

    pub(super) async fn add_attribute(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let mut m = self.object(p, batch).await?;
        let mut a = Self::new_attribute(p)?;
        writable(&a)?;
        let count = m.attributes.iter().filter(|x| x.name == a.name).count();
        if count > 0 && !multi_valued(&a) {
            return Err(Failure::new(
                result_reason::ATTRIBUTE_SINGLE_VALUED,
                format!("the object already has a {}", a.name),
            ));
        }
        a.index = i32::try_from(count).unwrap_or(i32::MAX);
        m.attributes.push(a.clone());
        self.store_attributes(&mut m).await?;
        Ok(self.attribute_answer(m, Some(&a)))
    }

    pub(super) async fn set_attribute(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let mut m = self.object(p, batch).await?;
        let mut a = Self::new_attribute(p)?;
        writable(&a)?;
        if multi_valued(&a) {
            return Err(Failure::new(
                result_reason::MULTI_VALUED_ATTRIBUTE,
                format!(
                    "{} may have several values: use Add or Modify Attribute",
                    a.name
                ),
            ));
        }
        a.index = 0;
        match m.attributes.iter_mut().find(|x| x.name == a.name) {
            Some(x) => x.value = a.value,
            None => m.attributes.push(a),
        }
        self.store_attributes(&mut m).await?;
        Ok(self.attribute_answer(m, None))
    }

    pub(super) async fn modify_attribute(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let mut m = self.object(p, batch).await?;
        let new = Self::new_attribute(p)?;
        writable(&new)?;
        let current = p
            .child(tag::CURRENT_ATTRIBUTE)
            .map(one_attribute)
            .transpose()?;
        let at = m.attributes.iter().position(|x| {
            x.name == new.name
                && match &current {
                    // KMIP 2.x names the instance by its value, KMIP 1.x by its index.
                    Some(c) => x.value == c.value,
                    None => x.index == new.index,
                }
        });
        let Some(at) = at else {
            return Err(not_found(&format!("{} instance {}", new.name, new.index)));
        };
        m.attributes[at].value = new.value;
        let changed = m.attributes[at].clone();
        self.store_attributes(&mut m).await?;
        Ok(self.attribute_answer(m, Some(&changed)))
    }

    pub(super) async fn delete_attribute(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let mut m = self.object(p, batch).await?;
        // KMIP 1.x: Attribute Name (+ Attribute Index); 2.x: Current Attribute or Attribute Reference.
        let (name, wanted): (String, Selector) = if let Some(n) = p.child(tag::ATTRIBUTE_NAME) {
            let name = n.as_text("Attribute Name")?.to_owned();
            let index = p
                .child(tag::ATTRIBUTE_INDEX)
                .map(|i| i.as_int("Attribute Index"))
                .transpose()?
                .unwrap_or(0);
            let n2 = name.clone();
            (
                name,
                Box::new(move |x: &Attribute| x.name == n2 && x.index == index),
            )
        } else if let Some(c) = p.child(tag::CURRENT_ATTRIBUTE) {
            let c = one_attribute(c)?;
            (
                c.name.clone(),
                Box::new(move |x: &Attribute| x.name == c.name && x.value == c.value),
            )
        } else if let Some(r) = p.child(tag::ATTRIBUTE_REFERENCE) {
            let t = r.as_enum("Attribute Reference")?;
            let name = shedu_kmip::attribute_name(t)
                .map(str::to_owned)
                .or_else(|| shedu_kmip::tag_name(t).map(str::to_owned))
                .ok_or(Failure::invalid("unknown Attribute Reference"))?;
            (name, Box::new(move |x: &Attribute| x.value.tag == t))
        } else {
            return Err(Failure::new(
                result_reason::MISSING_DATA,
                "no attribute named",
            ));
        };
        let Some(at) = m.attributes.iter().position(&wanted) else {
            return Err(not_found(&name));
        };
        writable(&m.attributes[at])?;
        let deleted = m.attributes.remove(at);
        // The instances after it move up one index, as a list's would.
        for (i, x) in m
            .attributes
            .iter_mut()
            .filter(|x| x.name == deleted.name)
            .enumerate()
        {
            x.index = i32::try_from(i).unwrap_or(i32::MAX);
        }
        self.store_attributes(&mut m).await?;
        Ok(self.attribute_answer(m, Some(&deleted)))
    }
}

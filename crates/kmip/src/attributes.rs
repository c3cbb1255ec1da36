//! Object attributes in both of KMIP's forms. KMIP 1.x sends `Template-Attribute` structures holding
//! `Attribute { Attribute Name, Attribute Index?, Attribute Value }`; KMIP 2.x sends an `Attributes`
//! structure of items tagged with each attribute's own tag. [`Attribute`] is the common form: the 1.x
//! name and a value whose tag is the attribute's own tag.

use crate::message::ProtocolVersion;
use crate::names::tag;
use crate::ttlv::{Ttlv, Value};
use crate::{Error, tag_name, tag_value};

/// One attribute instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The KMIP 1.x attribute name (`Cryptographic Algorithm`, `x-custom`, …).
    pub name: String,
    /// The Attribute Index (0 for the first instance).
    pub index: i32,
    /// The value, tagged with the attribute's tag (`Attribute Value` for a custom attribute).
    pub value: Ttlv,
}

/// The KMIP 1.x names of the attributes whose name is not their tag's name with spaces inserted
/// before capitals.
const NAMES: &[(&str, u32)] = &[
    ("Unique Identifier", tag::UNIQUE_IDENTIFIER),
    ("Name", tag::NAME),
    ("Object Type", tag::OBJECT_TYPE),
    ("Cryptographic Algorithm", tag::CRYPTOGRAPHIC_ALGORITHM),
    ("Cryptographic Length", tag::CRYPTOGRAPHIC_LENGTH),
    ("Cryptographic Parameters", tag::CRYPTOGRAPHIC_PARAMETERS),
    (
        "Cryptographic Domain Parameters",
        tag::CRYPTOGRAPHIC_DOMAIN_PARAMETERS,
    ),
    ("Cryptographic Usage Mask", tag::CRYPTOGRAPHIC_USAGE_MASK),
    ("Certificate Type", tag::CERTIFICATE_TYPE),
    ("Certificate Length", tag::CERTIFICATE_LENGTH),
    (
        "Digital Signature Algorithm",
        tag::DIGITAL_SIGNATURE_ALGORITHM,
    ),
    ("Digest", tag::DIGEST),
    ("Operation Policy Name", tag::OPERATION_POLICY_NAME),
    ("Lease Time", tag::LEASE_TIME),
    ("State", tag::STATE),
    ("Initial Date", tag::INITIAL_DATE),
    ("Activation Date", tag::ACTIVATION_DATE),
    ("Process Start Date", tag::PROCESS_START_DATE),
    ("Protect Stop Date", tag::PROTECT_STOP_DATE),
    ("Deactivation Date", tag::DEACTIVATION_DATE),
    ("Destroy Date", tag::DESTROY_DATE),
    (
        "Compromise Occurrence Date",
        tag::COMPROMISE_OCCURRENCE_DATE,
    ),
    ("Compromise Date", tag::COMPROMISE_DATE),
    ("Revocation Reason", tag::REVOCATION_REASON),
    ("Archive Date", tag::ARCHIVE_DATE),
    ("Object Group", tag::OBJECT_GROUP),
    ("Fresh", tag::FRESH),
    ("Link", tag::LINK),
    (
        "Application Specific Information",
        tag::APPLICATION_SPECIFIC_INFORMATION,
    ),
    ("Contact Information", tag::CONTACT_INFORMATION),
    ("Last Change Date", tag::LAST_CHANGE_DATE),
    ("Original Creation Date", tag::ORIGINAL_CREATION_DATE),
    ("Sensitive", tag::SENSITIVE),
    ("Extractable", tag::EXTRACTABLE),
    ("Key Value Present", tag::KEY_VALUE_PRESENT),
    ("Alternative Name", tag::ALTERNATIVE_NAME),
    ("Random Number Generator", tag::RANDOM_NUMBER_GENERATOR),
];

/// The tag of the attribute named `name` (None for a custom `x-`/`y-` attribute or an unknown name).
pub fn attribute_tag(name: &str) -> Option<u32> {
    if let Some((_, t)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Some(*t);
    }
    let compact: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    tag_value(&compact)
}

/// The KMIP 1.x name of the attribute with tag `t`.
pub fn attribute_name(t: u32) -> Option<&'static str> {
    NAMES.iter().find(|(_, x)| *x == t).map(|(n, _)| *n)
}

/// The attributes of a KMIP 1.x `Template-Attribute` (or any structure holding `Attribute`s, Names
/// included) or a KMIP 2.x `Attributes` structure.
pub fn read_attributes(item: &Ttlv) -> Result<Vec<Attribute>, Error> {
    let mut out: Vec<Attribute> = Vec::new();
    for child in item.items() {
        let attribute = match child.tag {
            tag::ATTRIBUTE => {
                let name = child
                    .require(tag::ATTRIBUTE_NAME, "Attribute Name")?
                    .as_text("Attribute Name")?
                    .to_owned();
                let index = child
                    .child(tag::ATTRIBUTE_INDEX)
                    .map(|i| i.as_int("Attribute Index"))
                    .transpose()?;
                let mut value = child
                    .require(tag::ATTRIBUTE_VALUE, "Attribute Value")?
                    .clone();
                if let Some(t) = attribute_tag(&name) {
                    value.tag = t;
                }
                Attribute {
                    index: index.unwrap_or(-1),
                    name,
                    value,
                }
            }
            // A KMIP 1.x template may name a stored template; shedu keeps none.
            tag::NAME if item.tag == tag::TEMPLATE_ATTRIBUTE => {
                return Err(Error::Invalid { what: "Template" });
            }
            t => Attribute {
                name: attribute_name(t)
                    .map(str::to_owned)
                    .or_else(|| tag_name(t).map(spaced))
                    .ok_or(Error::Invalid { what: "Attribute" })?,
                index: -1,
                value: child.clone(),
            },
        };
        out.push(attribute);
    }
    // Number the instances of each name that came without an index.
    for i in 0..out.len() {
        if out[i].index < 0 {
            let n = out[..i].iter().filter(|a| a.name == out[i].name).count();
            out[i].index = i32::try_from(n).unwrap_or(i32::MAX);
        }
    }
    Ok(out)
}

/// One attribute in the form of `version`: an `Attribute` structure for KMIP 1.x, the tagged value for
/// KMIP 2.x (custom attributes are carried as 1.x structures in both).
pub fn write_attribute(a: &Attribute, version: ProtocolVersion) -> Ttlv {
    if version.is_v2() && attribute_tag(&a.name).is_some() {
        return a.value.clone();
    }
    let mut fields = vec![Ttlv::text(tag::ATTRIBUTE_NAME, a.name.clone())];
    if a.index > 0 {
        fields.push(Ttlv::integer(tag::ATTRIBUTE_INDEX, a.index));
    }
    fields.push(Ttlv::new(tag::ATTRIBUTE_VALUE, a.value.value.clone()));
    Ttlv::structure(tag::ATTRIBUTE, fields)
}

/// One attribute as a server answers it: [`write_attribute`], but the KMIP 1.x form names the Attribute
/// Index even when it is 0, as PyKMIP's server answers and its clients read.
pub fn answer_attribute(a: &Attribute, version: ProtocolVersion) -> Ttlv {
    let mut item = write_attribute(a, version);
    if item.tag == tag::ATTRIBUTE
        && a.index == 0
        && let Value::Structure(fields) = &mut item.value
    {
        fields.insert(1, Ttlv::integer(tag::ATTRIBUTE_INDEX, 0));
    }
    item
}

/// A Name attribute value (Name Value, Name Type).
pub fn name_value(text: &str, name_type: u32) -> Ttlv {
    Ttlv::structure(
        tag::NAME,
        vec![
            Ttlv::text(tag::NAME_VALUE, text),
            Ttlv::enumeration(tag::NAME_TYPE, name_type),
        ],
    )
}

/// The text of a Name attribute value.
pub fn name_text(value: &Ttlv) -> Option<&str> {
    match &value.child(tag::NAME_VALUE)?.value {
        Value::TextString(s) => Some(s),
        _ => None,
    }
}

/// `CryptographicAlgorithm` → `Cryptographic Algorithm`.
fn spaced(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.char_indices() {
        if i > 0 && c.is_ascii_uppercase() {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

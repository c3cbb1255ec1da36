//! Subject names: the API's structured form, and copying a CSR's subject.

use rcgen::DistinguishedName;
use x509_parser::x509::X509Name;

use crate::Error;
use crate::names::{AttrType, RequestedAttr, Subject};

/// A subject distinguished name as the API takes it. Empty fields are left out of the DN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectName {
    /// CN
    pub common_name: String,
    /// O
    pub organization: Option<String>,
    /// OU
    pub organizational_unit: Option<String>,
    /// C (two letters)
    pub country: Option<String>,
    /// ST
    pub state: Option<String>,
    /// L
    pub locality: Option<String>,
}

impl SubjectName {
    /// Builds the rcgen DN, in the conventional C, ST, L, O, OU, CN order. A CA's subject follows the
    /// rules of every subject ([`crate::names`]): no control characters, RFC 5280 upper bounds (CN at most
    /// 64 characters), a two-letter country; and a CA certificate needs a CN.
    pub fn to_dn(&self) -> Result<DistinguishedName, Error> {
        if self.common_name.trim().is_empty() {
            return Err(Error::InvalidName("common_name must not be empty".into()));
        }
        let fields = [
            (AttrType::Country, &self.country),
            (AttrType::State, &self.state),
            (AttrType::Locality, &self.locality),
            (AttrType::Organization, &self.organization),
            (AttrType::OrganizationalUnit, &self.organizational_unit),
        ];
        let mut attrs: Vec<(AttrType, String)> = fields
            .into_iter()
            .filter_map(|(ty, v)| v.clone().filter(|v| !v.is_empty()).map(|v| (ty, v)))
            .collect();
        attrs.push((AttrType::CommonName, self.common_name.clone()));
        Subject::new(attrs)?.to_dn()
    }
}

/// The attributes of an X.509 name, in order, as a request carries them (see [`crate::NamePolicy::subject_for`]).
pub(crate) fn requested_attrs(name: &X509Name<'_>) -> Result<Vec<RequestedAttr>, Error> {
    name.iter_attributes()
        .map(|attr| {
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .ok_or_else(|| Error::InvalidName("subject attribute OID too large".into()))?
                .collect();
            Ok(RequestedAttr {
                oid,
                value: attr.as_str().ok().map(str::to_string),
            })
        })
        .collect()
}

/// An RFC 4514-style one-line rendering of a name ("CN=x, O=y"), for display and the subject filter.
pub(crate) fn display_name(name: &X509Name<'_>) -> String {
    name.to_string()
}

/// The name's first common name, when it has one that is a string.
pub(crate) fn first_common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

//! Subject names: the API's structured form, and copying a CSR's subject.

use rcgen::{DistinguishedName, DnType};
use x509_parser::x509::X509Name;

use crate::Error;

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
    /// Builds the rcgen DN, in the conventional C, ST, L, O, OU, CN order.
    pub fn to_dn(&self) -> Result<DistinguishedName, Error> {
        if self.common_name.trim().is_empty() {
            return Err(Error::InvalidName("common_name must not be empty".into()));
        }
        if let Some(c) = &self.country
            && (c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic()))
        {
            return Err(Error::InvalidName(format!(
                "country must be two letters, got {c:?}"
            )));
        }
        let mut dn = DistinguishedName::new();
        let fields = [
            (DnType::CountryName, &self.country),
            (DnType::StateOrProvinceName, &self.state),
            (DnType::LocalityName, &self.locality),
            (DnType::OrganizationName, &self.organization),
            (DnType::OrganizationalUnitName, &self.organizational_unit),
        ];
        for (ty, value) in fields {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                dn.push(ty, v);
            }
        }
        dn.push(DnType::CommonName, self.common_name.as_str());
        Ok(dn)
    }
}

/// Copies the string attributes of an X.509 name into an rcgen DN, in order.
///
/// rcgen's own conversion is private, so shedu copies attribute by attribute. An attribute whose value is
/// not a string is refused rather than silently dropped: a certificate must not name less than was asked.
pub(crate) fn dn_from_x509(name: &X509Name<'_>) -> Result<DistinguishedName, Error> {
    let mut dn = DistinguishedName::new();
    for attr in name.iter_attributes() {
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| Error::InvalidName("subject attribute OID too large".into()))?
            .collect();
        let value = attr.as_str().map_err(|_| {
            Error::InvalidName(format!(
                "subject attribute {} is not a string",
                attr.attr_type()
            ))
        })?;
        dn.push(DnType::from_oid(&oid), value);
    }
    Ok(dn)
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

//! Validation of every name that enters a certificate: subject attributes, subject alternative names,
//! and the profile's name policy (which subject attributes a request may set, which are fixed, which are
//! dropped; how many SANs; which URI schemes).
//!
//! A CA vouches for what it signs: a name a relying party cannot parse the way the CA did (`DNS:a b`,
//! `CN=x\0y`, `DNS:f*o.example`) is an attack on someone's name matching, so names are checked here, once,
//! whether they come from a CSR, the API's `sans` field, an EST enrolment or a CA's own subject. Every
//! check is pure and total: bad input is an [`Error`], never a panic (fuzzed by `fuzz/fuzz_targets/names.rs`).

use std::fmt;
use std::str::FromStr;

use rcgen::string::{Ia5String, PrintableString};
use rcgen::{DistinguishedName, DnType, DnValue, SanType};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use crate::Error;

/// The default cap on the number of SANs in one certificate.
pub const DEFAULT_MAX_SANS: u32 = 100;
/// The largest `max_sans` a profile may set.
pub const MAX_SANS_LIMIT: u32 = 1000;
/// The URI schemes a profile allows when it names none.
pub const DEFAULT_URI_SCHEMES: [&str; 3] = ["https", "spiffe", "urn"];
/// The longest URI SAN accepted, in octets.
const MAX_URI_LEN: usize = 2048;
/// How many characters of an offending name an error message quotes.
const SHOWN_CHARS: usize = 80;

/// A subject attribute type a profile's policy can name (RFC 5280 §4.1.2.4 and Appendix A).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttrType {
    /// commonName, 2.5.4.3
    CommonName,
    /// organizationName, 2.5.4.10
    Organization,
    /// organizationalUnitName, 2.5.4.11
    OrganizationalUnit,
    /// countryName, 2.5.4.6
    Country,
    /// stateOrProvinceName, 2.5.4.8
    State,
    /// localityName, 2.5.4.7
    Locality,
    /// serialNumber, 2.5.4.5
    SerialNumber,
    /// domainComponent, 0.9.2342.19200300.100.1.25 (RFC 4519 §2.4)
    DomainComponent,
    /// emailAddress, 1.2.840.113549.1.9.1 (legacy; RFC 5280 §4.1.2.6 prefers an rfc822Name SAN)
    EmailAddress,
}

impl AttrType {
    /// Every attribute type, in the order fixed attributes are written (broadest first).
    pub const ALL: [AttrType; 9] = [
        AttrType::DomainComponent,
        AttrType::Country,
        AttrType::State,
        AttrType::Locality,
        AttrType::Organization,
        AttrType::OrganizationalUnit,
        AttrType::CommonName,
        AttrType::SerialNumber,
        AttrType::EmailAddress,
    ];

    /// The API name: the RFC 4514 short name (`CN`, `O`, …; `serialNumber`, `emailAddress`).
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::CommonName => "CN",
            AttrType::Organization => "O",
            AttrType::OrganizationalUnit => "OU",
            AttrType::Country => "C",
            AttrType::State => "ST",
            AttrType::Locality => "L",
            AttrType::SerialNumber => "serialNumber",
            AttrType::DomainComponent => "DC",
            AttrType::EmailAddress => "emailAddress",
        }
    }

    /// The attribute type's OID arcs.
    pub fn oid(self) -> &'static [u64] {
        match self {
            AttrType::CommonName => &[2, 5, 4, 3],
            AttrType::Organization => &[2, 5, 4, 10],
            AttrType::OrganizationalUnit => &[2, 5, 4, 11],
            AttrType::Country => &[2, 5, 4, 6],
            AttrType::State => &[2, 5, 4, 8],
            AttrType::Locality => &[2, 5, 4, 7],
            AttrType::SerialNumber => &[2, 5, 4, 5],
            AttrType::DomainComponent => &[0, 9, 2342, 19200300, 100, 1, 25],
            AttrType::EmailAddress => &[1, 2, 840, 113549, 1, 9, 1],
        }
    }

    /// The attribute type of an OID, if the policy knows it.
    pub fn from_oid(oid: &[u64]) -> Option<AttrType> {
        AttrType::ALL.into_iter().find(|t| t.oid() == oid)
    }

    /// The upper bound on the value's length in characters (RFC 5280 Appendix A: ub-common-name 64,
    /// ub-organization-name 64, ub-organizational-unit-name 64, ub-state-name 128, ub-locality-name 128,
    /// ub-serial-number 64, ub-emailaddress-length 255; countryName is exactly 2; a domainComponent is one
    /// DNS label, at most 63 octets, RFC 1035 §2.3.4).
    pub fn max_len(self) -> usize {
        match self {
            AttrType::CommonName
            | AttrType::Organization
            | AttrType::OrganizationalUnit
            | AttrType::SerialNumber => 64,
            AttrType::State | AttrType::Locality => 128,
            AttrType::Country => 2,
            AttrType::DomainComponent => 63,
            AttrType::EmailAddress => 255,
        }
    }

    /// Checks a value of this attribute: not blank, no control characters (C0, DEL, C1) anywhere, within
    /// the upper bound, and in the attribute's string type: countryName is two letters (PrintableString,
    /// ISO 3166), serialNumber a PrintableString (X.520), domainComponent an LDH label and emailAddress a
    /// mailbox (IA5String, RFC 5280 Appendix A).
    pub fn check(self, value: &str) -> Result<(), Error> {
        let bad = |why: &str| {
            Err(Error::InvalidName(format!(
                "subject {}={} {why}",
                self.as_str(),
                shown(value)
            )))
        };
        if value.trim().is_empty() {
            return bad("is empty");
        }
        if value.chars().any(char::is_control) {
            return bad("contains a control character");
        }
        if value.chars().count() > self.max_len() {
            return bad(&format!(
                "is longer than {} characters (RFC 5280 Appendix A)",
                self.max_len()
            ));
        }
        match self {
            AttrType::Country
                if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                bad("is not a two-letter country code")
            }
            AttrType::SerialNumber if PrintableString::try_from(value).is_err() => {
                bad("is not a PrintableString")
            }
            AttrType::DomainComponent if check_label(value).is_err() => {
                bad("is not a DNS label (letters, digits, inner hyphens)")
            }
            AttrType::EmailAddress if check_email(value).is_err() => {
                bad("is not a mailbox (RFC 5321 §4.1.2)")
            }
            _ => Ok(()),
        }
    }

    /// The value as rcgen encodes it: PrintableString for C and serialNumber, IA5String for DC and
    /// emailAddress, UTF8String otherwise (RFC 5280 §4.1.2.4, Appendix A). Call after [`AttrType::check`].
    fn value(self, value: &str) -> Result<DnValue, Error> {
        let not_encodable =
            || Error::InvalidName(format!("subject {}={}", self.as_str(), shown(value)));
        Ok(match self {
            AttrType::Country | AttrType::SerialNumber => DnValue::PrintableString(
                PrintableString::try_from(value).map_err(|_| not_encodable())?,
            ),
            AttrType::DomainComponent | AttrType::EmailAddress => {
                DnValue::Ia5String(Ia5String::try_from(value).map_err(|_| not_encodable())?)
            }
            _ => DnValue::Utf8String(value.to_string()),
        })
    }

    fn dn_type(self) -> DnType {
        match self {
            AttrType::CommonName => DnType::CommonName,
            AttrType::Organization => DnType::OrganizationName,
            AttrType::OrganizationalUnit => DnType::OrganizationalUnitName,
            AttrType::Country => DnType::CountryName,
            AttrType::State => DnType::StateOrProvinceName,
            AttrType::Locality => DnType::LocalityName,
            other => DnType::CustomDnType(other.oid().to_vec()),
        }
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AttrType {
    type Err = Error;

    fn from_str(s: &str) -> Result<AttrType, Error> {
        AttrType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::InvalidProfile(format!(
                    "unknown subject attribute {}; known: CN, O, OU, C, ST, L, serialNumber, DC, emailAddress",
                    shown(s)
                ))
            })
    }
}

/// What a profile does with one subject attribute of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrRule {
    /// Copied from the request, after [`AttrType::check`].
    Allow,
    /// Always this value, whatever the request says.
    Fixed(String),
    /// Left out of the certificate.
    Drop,
}

/// One subject attribute as a request carries it: its type OID and its value, `None` when the value is
/// not a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedAttr {
    /// The attribute type, dotted arcs.
    pub oid: Vec<u64>,
    /// The value, when it is a string.
    pub value: Option<String>,
}

/// A validated subject, in the order it is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    attrs: Vec<(AttrType, String)>,
}

impl Subject {
    /// A subject from attributes, each checked ([`AttrType::check`]) and present once. A repeated
    /// attribute is refused: a second CN, O or C is ambiguous (which one does a relying party read?), and
    /// rcgen's DN keeps one value per type, so a repeat could only be dropped silently.
    pub fn new(attrs: Vec<(AttrType, String)>) -> Result<Subject, Error> {
        for (i, (ty, value)) in attrs.iter().enumerate() {
            ty.check(value)?;
            if attrs[..i].iter().any(|(t, _)| t == ty) {
                return Err(repeated(*ty));
            }
        }
        Ok(Subject { attrs })
    }

    /// Whether the subject has no attribute.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// The attributes, in order.
    pub fn attrs(&self) -> &[(AttrType, String)] {
        &self.attrs
    }

    /// The rcgen DN, one attribute per RDN, in order.
    pub fn to_dn(&self) -> Result<DistinguishedName, Error> {
        let mut dn = DistinguishedName::new();
        for (ty, value) in &self.attrs {
            dn.push(ty.dn_type(), ty.value(value)?);
        }
        Ok(dn)
    }

    /// The subject as [`crate::CertInfo::subject`] renders a certificate's ("CN=x, O=y"), so a request can
    /// be compared with an issued certificate.
    pub fn display(&self) -> Result<String, Error> {
        let der = yasna::construct_der(|w| {
            w.write_sequence_of(|w| {
                for (ty, value) in &self.attrs {
                    w.next().write_set_of(|w| {
                        w.next().write_sequence(|w| {
                            w.next()
                                .write_oid(&yasna::models::ObjectIdentifier::from_slice(ty.oid()));
                            // The tags written by hand: yasna's string writers assert on their
                            // character sets, and this crate never panics on input.
                            let tag = match ty {
                                AttrType::Country | AttrType::SerialNumber => {
                                    yasna::tags::TAG_PRINTABLESTRING
                                }
                                AttrType::DomainComponent | AttrType::EmailAddress => {
                                    yasna::tags::TAG_IA5STRING
                                }
                                _ => yasna::tags::TAG_UTF8STRING,
                            };
                            w.next()
                                .write_tagged_implicit(tag, |w| w.write_bytes(value.as_bytes()));
                        })
                    })
                }
            })
        });
        let (_, name) = X509Name::from_der(&der).map_err(|e| Error::malformed("subject", e))?;
        Ok(crate::name::display_name(&name))
    }
}

/// A profile's rules for the names of the certificates it issues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePolicy {
    /// Per subject attribute: allowed, fixed or dropped. An attribute not listed is dropped.
    pub subject: Vec<(AttrType, AttrRule)>,
    /// The most SANs one certificate may carry (1..=[`MAX_SANS_LIMIT`]).
    pub max_sans: u32,
    /// The schemes a URI SAN may have, lowercase.
    pub uri_schemes: Vec<String>,
}

impl Default for NamePolicy {
    /// CN copied from the request, every other attribute dropped (a requester's O or emailAddress is a
    /// claim the CA has not checked); at most [`DEFAULT_MAX_SANS`] SANs; URIs of [`DEFAULT_URI_SCHEMES`].
    fn default() -> Self {
        NamePolicy {
            subject: vec![(AttrType::CommonName, AttrRule::Allow)],
            max_sans: DEFAULT_MAX_SANS,
            uri_schemes: DEFAULT_URI_SCHEMES.map(str::to_string).to_vec(),
        }
    }
}

impl NamePolicy {
    /// Checks the policy itself: each attribute named once, fixed values valid, `max_sans` within
    /// 1..=[`MAX_SANS_LIMIT`], schemes in RFC 3986 §3.1 syntax.
    pub fn check(&self) -> Result<(), Error> {
        for (i, (ty, rule)) in self.subject.iter().enumerate() {
            if self.subject[..i].iter().any(|(t, _)| t == ty) {
                return Err(Error::InvalidProfile(format!(
                    "subject policy names {ty} twice"
                )));
            }
            if let AttrRule::Fixed(value) = rule {
                ty.check(value)
                    .map_err(|e| Error::InvalidProfile(format!("fixed {e}")))?;
            }
        }
        if !(1..=MAX_SANS_LIMIT).contains(&self.max_sans) {
            return Err(Error::InvalidProfile(format!(
                "max_sans must be 1 to {MAX_SANS_LIMIT}"
            )));
        }
        if let Some(s) = self.uri_schemes.iter().find(|s| !is_scheme(s)) {
            return Err(Error::InvalidProfile(format!(
                "{} is not a URI scheme (RFC 3986 §3.1)",
                shown(s)
            )));
        }
        Ok(())
    }

    fn rule(&self, ty: AttrType) -> &AttrRule {
        self.subject
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, r)| r)
            .unwrap_or(&AttrRule::Drop)
    }

    /// The subject of a certificate for a request with these attributes: fixed attributes first (in
    /// [`AttrType::ALL`] order), then the allowed ones in the request's order; everything else dropped.
    /// An allowed attribute that is not a string, fails [`AttrType::check`], or repeats is refused: a certificate never names less, or otherwise, than was asked without the profile
    /// saying so.
    pub fn subject_for(&self, requested: &[RequestedAttr]) -> Result<Subject, Error> {
        let mut attrs: Vec<(AttrType, String)> = AttrType::ALL
            .into_iter()
            .filter_map(|ty| match self.rule(ty) {
                AttrRule::Fixed(v) => Some((ty, v.clone())),
                _ => None,
            })
            .collect();
        for attr in requested {
            let Some(ty) = AttrType::from_oid(&attr.oid) else {
                continue;
            };
            if *self.rule(ty) != AttrRule::Allow {
                continue;
            }
            let value = attr.value.as_ref().ok_or_else(|| {
                Error::InvalidName(format!("subject attribute {ty} is not a string"))
            })?;
            attrs.push((ty, value.clone()));
        }
        Subject::new(attrs)
    }

    /// Checks the SANs of one certificate: at most `max_sans`, each valid ([`check_san`]), URIs of an
    /// allowed scheme; and a certificate with an empty subject must have one (RFC 5280 §4.1.2.6).
    pub fn check_sans(&self, subject: &Subject, sans: &[SanType]) -> Result<(), Error> {
        if sans.len() > self.max_sans as usize {
            return Err(Error::TooManySans {
                count: sans.len(),
                max: self.max_sans,
            });
        }
        if subject.is_empty() && sans.is_empty() {
            return Err(Error::EmptySubject);
        }
        for san in sans {
            check_san(san)?;
            if let SanType::URI(uri) = san {
                let scheme = uri
                    .as_str()
                    .split_once(':')
                    .map(|(s, _)| s.to_ascii_lowercase())
                    .unwrap_or_default();
                if !self.uri_schemes.contains(&scheme) {
                    return Err(Error::InvalidName(format!(
                        "URI SAN {}: the profile allows the schemes {} only",
                        shown(uri.as_str()),
                        self.uri_schemes.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Checks one SAN (RFC 5280 §4.2.1.6): a DNS name ([`check_dns_name`]), a mailbox ([`check_email`]),
/// an absolute URI ([`check_uri`]) or an IP address (4 or 16 octets, typed). Other name forms are refused.
pub fn check_san(san: &SanType) -> Result<(), Error> {
    match san {
        SanType::DnsName(s) => check_dns_name(s.as_str()),
        SanType::Rfc822Name(s) => check_email(s.as_str()),
        SanType::URI(s) => check_uri(s.as_str()),
        SanType::IpAddress(_) => Ok(()),
        _ => Err(Error::InvalidName(
            "only DNS, IP, e-mail and URI SANs are issued".into(),
        )),
    }
}

/// Checks a dNSName SAN (RFC 5280 §4.2.1.6: the preferred name syntax of RFC 1034 §3.5 as relaxed by
/// RFC 1123 §2.1): at most 253 octets, no trailing dot; labels of 1 to 63 letters, digits and hyphens,
/// neither starting nor ending with a hyphen; a single label (`plc-7`) is allowed; a label starting with
/// `xn--` must be a valid A-label (RFC 5890 §2.3.2.1: it decodes, and encodes back to itself; checked with
/// the `idna` crate); a wildcard only as the whole left-most label of a name with at least two more
/// labels (RFC 9525 §6.3: `*.example.com`, never `*`, `*.com` or `f*o.example.com`).
pub fn check_dns_name(name: &str) -> Result<(), Error> {
    dns_name(name, true)
        .map_err(|why| Error::InvalidName(format!("DNS name {} {why}", shown(name))))
}

fn dns_name(name: &str, wildcard: bool) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > 253 {
        return Err("is longer than 253 octets (RFC 1035 §2.3.4)");
    }
    if name.ends_with('.') {
        return Err("ends with a dot");
    }
    let labels: Vec<&str> = name.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" {
            if !wildcard {
                return Err("has a wildcard");
            }
            if i != 0 || labels.len() < 3 {
                return Err(
                    "has a wildcard that is not the left-most label of a name with two more (RFC 9525 §6.3)",
                );
            }
            continue;
        }
        check_label(label)?;
    }
    Ok(())
}

/// One LDH label (RFC 1035 §2.3.1, RFC 1123 §2.1), and an A-label when it starts with `xn--`.
fn check_label(label: &str) -> Result<(), &'static str> {
    if label.is_empty() {
        return Err("has an empty label");
    }
    if label.len() > 63 {
        return Err("has a label longer than 63 octets");
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("has a character other than letters, digits, hyphens and dots");
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("has a label that starts or ends with a hyphen");
    }
    if label.len() >= 4 && label[..4].eq_ignore_ascii_case("xn--") {
        let (unicode, decoded) = idna::domain_to_unicode(label);
        let lower = label.to_ascii_lowercase();
        let canonical = decoded
            .ok()
            .and_then(|()| idna::domain_to_ascii_strict(&unicode).ok());
        if unicode.contains('.') || canonical.as_deref() != Some(lower.as_str()) {
            return Err("has an xn-- label that is not a valid A-label (RFC 5890 §2.3.2.1)");
        }
    }
    Ok(())
}

/// Checks an rfc822Name SAN or emailAddress (RFC 5280 §4.2.1.6: a Mailbox of RFC 5321 §4.1.2, in IA5):
/// `local@domain` with exactly one `@`; the local part a dot-atom of RFC 5322 §3.2.3 (letters, digits
/// and ``!#$%&'*+-/=?^_`{|}~``, dots only between them) of at most 64 octets (RFC 5321 §4.5.3.1.1) —
/// quoted local parts are not issued; the domain a DNS name without a wildcard ([`check_dns_name`]).
pub fn check_email(addr: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(Error::InvalidName(format!(
            "e-mail address {} {why}",
            shown(addr)
        )))
    };
    let Some((local, domain)) = addr.split_once('@') else {
        return bad("has no @");
    };
    if domain.contains('@') {
        return bad("has more than one @");
    }
    if local.is_empty() || local.len() > 64 {
        return bad("has a local part that is empty or longer than 64 octets");
    }
    const ATEXT: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    let atom = |a: &str| {
        !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || ATEXT.contains(&b))
    };
    if !local.split('.').all(atom) {
        return bad("has a local part that is not a dot-atom (RFC 5322 §3.2.3)");
    }
    if let Err(why) = dns_name(domain, false) {
        return bad(&format!("has a domain that {why}"));
    }
    Ok(())
}

/// Checks a uniformResourceIdentifier SAN (RFC 5280 §4.2.1.6): an absolute URI in RFC 3986 syntax — a
/// scheme (§3.1) and a non-empty rest of URI characters (§2: unreserved, reserved, and `%` with two hex
/// digits; no spaces or controls) — of at most 2048 octets; when it has an authority, its host is a DNS
/// name or an IP address. Which schemes are issued is the profile's [`NamePolicy::uri_schemes`].
pub fn check_uri(uri: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::InvalidName(format!("URI {} {why}", shown(uri))));
    if uri.len() > MAX_URI_LEN {
        return bad("is longer than 2048 octets");
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return bad("has no scheme (RFC 3986 §3.1)");
    };
    if !is_scheme(scheme) {
        return bad("has no valid scheme (RFC 3986 §3.1)");
    }
    if rest.is_empty() {
        return bad("has nothing after its scheme");
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return bad("has a % that is not followed by two hex digits (RFC 3986 §2.1)");
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b)) {
            return bad("has a character URIs do not allow (RFC 3986 §2)");
        }
        i += 1;
    }
    if let Some(after) = rest.strip_prefix("//") {
        let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if let Some(v6) = host_port.strip_prefix('[') {
            match v6.split_once(']') {
                Some((ip, _)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => return Ok(()),
                _ => return bad("has a bracketed host that is not an IPv6 address"),
            }
        } else {
            host_port.split(':').next().unwrap_or_default()
        };
        if host.parse::<std::net::Ipv4Addr>().is_err() && dns_name(host, false).is_err() {
            return bad("has a host that is not a DNS name or IP address (RFC 5280 §4.2.1.6)");
        }
    }
    Ok(())
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn repeated(ty: AttrType) -> Error {
    Error::InvalidName(format!(
        "the subject has more than one {ty}; a certificate carries each attribute once"
    ))
}

/// An offending name as an error message quotes it: escaped (no control character reaches a log or a
/// terminal raw) and cut to 80 characters.
pub(crate) fn shown(name: &str) -> String {
    let count = name.chars().count();
    if count <= SHOWN_CHARS {
        format!("{name:?}")
    } else {
        let head: String = name.chars().take(SHOWN_CHARS).collect();
        format!("{head:?} (… {count} characters)")
    }
}

#[cfg(test)]
mod tests;

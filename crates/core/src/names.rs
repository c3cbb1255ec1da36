//! A CA profile's name policy as the API gives it and as storage keeps it: one JSON document in the CA
//! row, read and written whole. The rules themselves are pure and live in `shedu_pki::NamePolicy`.
//!
//! A CA stored before name policies existed has no document; it reads as the default policy, and a
//! document missing a field takes that field's default, so older rows keep loading.

use serde::{Deserialize, Serialize};
use shedu_pki::{AttrRule, AttrType, NamePolicy};

use crate::Error;

/// Name policy settings of a new CA's profile; anything left out takes [`NamePolicy::default`].
#[derive(Clone, Debug, Default)]
pub struct NamePolicyInput {
    /// Per subject attribute (`CN`, `O`, `OU`, `C`, `ST`, `L`, `serialNumber`, `DC`, `emailAddress`):
    /// allowed, fixed or dropped. Attributes not listed are dropped. `None` keeps the default (CN allowed).
    pub subject: Option<Vec<(String, AttrRule)>>,
    /// The most SANs one certificate may carry (1 to 1000; default 100).
    pub max_sans: Option<u32>,
    /// The schemes a URI SAN may have (default `https`, `spiffe`, `urn`).
    pub uri_schemes: Option<Vec<String>>,
}

impl NamePolicyInput {
    /// The policy, checked ([`NamePolicy::check`]).
    pub(crate) fn resolve(&self) -> Result<NamePolicy, Error> {
        self.resolve_over(NamePolicy::default())
    }

    /// The policy `base` with the parts given here replaced, checked ([`NamePolicy::check`]).
    pub(crate) fn resolve_over(&self, d: NamePolicy) -> Result<NamePolicy, Error> {
        let policy = NamePolicy {
            subject: match &self.subject {
                Some(rules) => rules
                    .iter()
                    .map(|(name, rule)| Ok((name.parse::<AttrType>()?, rule.clone())))
                    .collect::<Result<_, shedu_pki::Error>>()?,
                None => d.subject,
            },
            max_sans: self.max_sans.unwrap_or(d.max_sans),
            uri_schemes: match &self.uri_schemes {
                Some(schemes) => schemes.iter().map(|s| s.to_ascii_lowercase()).collect(),
                None => d.uri_schemes,
            },
        };
        policy.check()?;
        Ok(policy)
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    subject: Option<Vec<(String, StoredRule)>>,
    #[serde(default)]
    max_sans: Option<u32>,
    #[serde(default)]
    uri_schemes: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredRule {
    Allow,
    Fixed(String),
    Drop,
}

/// The stored document of a policy.
pub(crate) fn encode(policy: &NamePolicy) -> String {
    let stored = Stored {
        subject: Some(
            policy
                .subject
                .iter()
                .map(|(ty, rule)| {
                    let rule = match rule {
                        AttrRule::Allow => StoredRule::Allow,
                        AttrRule::Fixed(v) => StoredRule::Fixed(v.clone()),
                        AttrRule::Drop => StoredRule::Drop,
                    };
                    (ty.as_str().to_string(), rule)
                })
                .collect(),
        ),
        max_sans: Some(policy.max_sans),
        uri_schemes: Some(policy.uri_schemes.clone()),
    };
    // Serializing strings, integers and enums to JSON cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The policy of a stored document; `None` (a CA from before name policies) is the default policy.
pub(crate) fn decode(doc: Option<&str>) -> Result<NamePolicy, Error> {
    let Some(doc) = doc else {
        return Ok(NamePolicy::default());
    };
    let corrupt = || Error::Internal("a stored name policy is invalid".into());
    let stored: Stored = serde_json::from_str(doc).map_err(|_| corrupt())?;
    NamePolicyInput {
        subject: stored.subject.map(|rules| {
            rules
                .into_iter()
                .map(|(name, rule)| {
                    let rule = match rule {
                        StoredRule::Allow => AttrRule::Allow,
                        StoredRule::Fixed(v) => AttrRule::Fixed(v),
                        StoredRule::Drop => AttrRule::Drop,
                    };
                    (name, rule)
                })
                .collect()
        }),
        max_sans: stored.max_sans,
        uri_schemes: stored.uri_schemes,
    }
    .resolve()
    .map_err(|_| corrupt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_policies_round_trip_and_old_rows_read_as_the_default() {
        let policy = NamePolicyInput {
            subject: Some(vec![
                ("cn".into(), AttrRule::Allow),
                ("O".into(), AttrRule::Fixed("Acme".into())),
                ("OU".into(), AttrRule::Drop),
            ]),
            max_sans: Some(7),
            uri_schemes: Some(vec!["HTTPS".into()]),
        }
        .resolve()
        .unwrap();
        assert_eq!(policy.uri_schemes, ["https"]);
        assert_eq!(decode(Some(&encode(&policy))).unwrap(), policy);
        assert_eq!(decode(None).unwrap(), NamePolicy::default());
        assert_eq!(decode(Some("{}")).unwrap(), NamePolicy::default());
        assert_eq!(decode(Some(r#"{"max_sans": 3}"#)).unwrap().max_sans, 3);
        assert!(matches!(decode(Some("[")), Err(Error::Internal(_))));
    }
}

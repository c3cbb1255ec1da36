//! ACL policies in Vault's path/capabilities form, written as JSON (Vault's HCL is a superset of JSON; the
//! HCL syntax itself is not parsed):
//!
//! ```json
//! {"path": {"secret/data/svc-a/*": {"capabilities": ["read", "list"]},
//!           "secret/data/svc-a/admin": {"capabilities": ["deny"]}}}
//! ```
//!
//! Matching follows Vault's rules for the forms supported here: a pattern is an exact path, or a prefix
//! ending in `*` (a glob); `+` stands for exactly one path segment. When several patterns of a policy match,
//! the most specific wins (an exact path over a glob; among globs, the longer prefix; fewer `+` first).
//! Across the token's policies the winning rules' capabilities are united, and `deny` anywhere wins.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Error;

/// What a rule grants on a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Write a path that does not exist yet.
    Create,
    /// Read.
    Read,
    /// Write a path that exists.
    Update,
    /// Merge into a path that exists (KV v2 PATCH).
    Patch,
    /// Delete.
    Delete,
    /// List the keys under a path.
    List,
    /// Root-protected paths.
    Sudo,
    /// Nothing, whatever other rules grant.
    Deny,
}

impl Capability {
    /// The capability named `word` in a policy.
    pub fn parse(word: &str) -> Option<Capability> {
        Some(match word {
            "create" => Capability::Create,
            "read" => Capability::Read,
            "update" => Capability::Update,
            "patch" => Capability::Patch,
            "delete" => Capability::Delete,
            "list" => Capability::List,
            "sudo" => Capability::Sudo,
            "deny" => Capability::Deny,
            _ => return None,
        })
    }
}

/// One parsed policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// The pattern without its trailing `*`.
    prefix: String,
    glob: bool,
    capabilities: Vec<Capability>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    path: BTreeMap<String, PathDoc>,
}

#[derive(Deserialize)]
struct PathDoc {
    capabilities: Vec<String>,
}

/// The longest policy document accepted.
pub const MAX_POLICY_LEN: usize = 64 * 1024;

impl Policy {
    /// Parses a JSON policy document; every pattern and capability is checked.
    pub fn parse(document: &str) -> Result<Policy, Error> {
        let invalid = |detail: String| Error::invalid("invalid-policy", detail);
        if document.len() > MAX_POLICY_LEN {
            return Err(invalid(format!(
                "a policy is at most {MAX_POLICY_LEN} bytes"
            )));
        }
        let doc: PolicyDoc = serde_json::from_str(document).map_err(|e| {
            invalid(format!(
                "a policy is JSON {{\"path\": {{\"<path>\": {{\"capabilities\": [...]}}}}}} \
                 (HCL syntax is not supported): {e}"
            ))
        })?;
        let mut rules = Vec::with_capacity(doc.path.len());
        for (pattern, p) in doc.path {
            if pattern.is_empty() || pattern.chars().any(char::is_control) {
                return Err(invalid(format!("invalid path pattern {pattern:?}")));
            }
            let (prefix, glob) = match pattern.strip_suffix('*') {
                Some(prefix) => (prefix.to_string(), true),
                None => (pattern.clone(), false),
            };
            if prefix.contains('*') {
                return Err(invalid(format!(
                    "{pattern:?}: '*' is allowed only at the end of a path"
                )));
            }
            let capabilities = p
                .capabilities
                .iter()
                .map(|c| {
                    Capability::parse(c)
                        .ok_or_else(|| invalid(format!("{pattern:?}: unknown capability {c:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(Rule {
                prefix: prefix.trim_start_matches('/').to_string(),
                glob,
                capabilities,
            });
        }
        Ok(Policy { rules })
    }

    /// The capabilities of the most specific rule matching `path`, if any rule matches.
    fn matching(&self, path: &str) -> Option<&[Capability]> {
        self.rules
            .iter()
            .filter(|r| r.matches(path))
            .max_by_key(|r| r.specificity())
            .map(|r| r.capabilities.as_slice())
    }
}

impl Rule {
    fn matches(&self, path: &str) -> bool {
        let mut pattern = self.prefix.split('/');
        let mut segments = path.split('/');
        loop {
            match (pattern.next(), segments.next()) {
                (None, None) => return true,
                (None, Some(_)) | (Some(_), None) => return false,
                (Some(p), Some(s)) => {
                    let last_pattern = pattern.clone().next().is_none();
                    if last_pattern && self.glob {
                        // The glob's last segment is a prefix of this segment and the rest is free.
                        return p == "+" || s.starts_with(p);
                    }
                    if p != "+" && p != s {
                        return false;
                    }
                }
            }
        }
    }

    /// Exact over glob, then the longer prefix, then fewer `+` segments.
    fn specificity(&self) -> (bool, usize, std::cmp::Reverse<usize>) {
        let plus = self.prefix.split('/').filter(|s| *s == "+").count();
        (!self.glob, self.prefix.len(), std::cmp::Reverse(plus))
    }
}

/// Whether `policies` together grant `capability` on `path`.
pub(crate) fn allows(policies: &[Policy], path: &str, capability: Capability) -> bool {
    let mut granted = false;
    for caps in policies.iter().filter_map(|p| p.matching(path)) {
        if caps.contains(&Capability::Deny) {
            return false;
        }
        granted |= caps.contains(&capability);
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(doc: &str) -> Policy {
        Policy::parse(doc).unwrap()
    }

    #[test]
    fn globs_exact_paths_and_deny() {
        let p = policy(
            r#"{"path": {
                "secret/data/svc-a/*": {"capabilities": ["read", "create", "update"]},
                "secret/data/svc-a/admin": {"capabilities": ["deny"]},
                "secret/metadata/+/list": {"capabilities": ["list"]}
            }}"#,
        );
        let ps = [p];
        assert!(allows(&ps, "secret/data/svc-a/db", Capability::Read));
        assert!(allows(&ps, "secret/data/svc-a/x/y", Capability::Update));
        assert!(!allows(&ps, "secret/data/svc-a/db", Capability::Delete));
        assert!(!allows(&ps, "secret/data/svc-a/admin", Capability::Read));
        assert!(!allows(&ps, "secret/data/svc-b/db", Capability::Read));
        assert!(allows(&ps, "secret/metadata/x/list", Capability::List));
        assert!(!allows(&ps, "secret/metadata/x/y/list", Capability::List));
        // A glob's last segment is a prefix: `svc-a/*` does not match `svc-ab`.
        assert!(!allows(&ps, "secret/data/svc-ab", Capability::Read));
    }

    #[test]
    fn the_most_specific_rule_of_a_policy_wins_and_policies_unite() {
        let broad = policy(r#"{"path": {"secret/*": {"capabilities": ["read"]}}}"#);
        let narrow = policy(
            r#"{"path": {"secret/data/*": {"capabilities": ["list"]}, "secret/*": {"capabilities": ["read"]}}}"#,
        );
        assert!(!allows(
            std::slice::from_ref(&narrow),
            "secret/data/a",
            Capability::Read
        ));
        assert!(allows(&[narrow, broad], "secret/data/a", Capability::Read));
    }

    #[test]
    fn bad_documents_are_refused_with_a_reason() {
        for doc in [
            "path \"secret/*\" { capabilities = [\"read\"] }",
            r#"{"path": {"secret/*": {"capabilities": ["fly"]}}}"#,
            r#"{"path": {"se*cret/": {"capabilities": ["read"]}}}"#,
            r#"{"paths": {}}"#,
        ] {
            assert!(
                matches!(
                    Policy::parse(doc),
                    Err(Error::Invalid {
                        code: "invalid-policy",
                        ..
                    })
                ),
                "{doc}"
            );
        }
    }
}

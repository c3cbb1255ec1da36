//! A replayer of OASIS KMIP test cases in their XML form (the KMIP Profiles' test cases, `oasis/*.xml`,
//! see `oasis/README.md`): each Request Message is read into TTLV, with the identifiers the server
//! gave earlier in the case put in place of `$UNIQUE_IDENTIFIER_n` and the time in place of `$NOW`, and
//! each answer is compared with the case's Response Message item by item. Only what a server chooses is
//! tolerated: `$UNIQUE_IDENTIFIER_n` (recorded at its first sight, then required), `$NOW` (any time
//! since the replay started), the Server Correlation Value and the Result Message (any, or none), the
//! order of a structure's items, an Attribute Index of 0 (the default), the Digest Value of a key the server generated (its bytes follow from
//! random material) and what the Random Number Generator attribute says (the server's own generator).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use shedu_kmip::{Ttlv, Value, attribute_tag, enum_value_loose, tag, tag_value, usage_mask_value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One element: `<Tag type="…" value="…"/>` or `<Tag>children</Tag>`.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) tag: String,
    kind: Option<String>,
    value: Option<String>,
    pub(crate) children: Vec<Node>,
}

/// The messages of a case: the elements inside `<KMIP>`, in order.
pub(crate) fn parse(xml: &str) -> Vec<Node> {
    let mut stack = vec![Node::element("", None, None)];
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->").expect("an unterminated comment") + 3..];
            continue;
        }
        let end = rest.find('>').expect("an unterminated element");
        let inner = &rest[1..end];
        rest = &rest[end + 1..];
        if inner.starts_with('?') {
            continue;
        }
        if let Some(name) = inner.strip_prefix('/') {
            let node = stack.pop().expect("a closing tag without an opening one");
            assert_eq!(node.tag, name.trim(), "mismatched closing tag");
            stack.last_mut().unwrap().children.push(node);
            continue;
        }
        let (body, closed) = match inner.strip_suffix('/') {
            Some(b) => (b, true),
            None => (inner, false),
        };
        let (name, attrs) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
        let attrs = format!(" {attrs}");
        let node = Node::element(name, attribute(&attrs, "type"), attribute(&attrs, "value"));
        if closed {
            stack.last_mut().unwrap().children.push(node);
        } else {
            stack.push(node);
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut root = stack.pop().unwrap();
    assert_eq!(root.children.len(), 1, "one <KMIP> element");
    let kmip = root.children.pop().unwrap();
    assert_eq!(kmip.tag, "KMIP");
    kmip.children
}

fn attribute(attrs: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = attrs.find(&key)? + key.len();
    let len = attrs[start..].find('"')?;
    Some(
        attrs[start..start + len]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// What a replay learnt from the server: the identifiers its answers gave each placeholder.
#[derive(Clone)]
pub(crate) struct Vars {
    ids: HashMap<String, String>,
    started: i64,
    /// Whether the case had the server generate a key (whose digest no case can know).
    generated: bool,
}

impl Vars {
    pub(crate) fn start() -> Self {
        Self {
            ids: HashMap::new(),
            started: now() - 1,
            generated: false,
        }
    }

    /// Notes a request about to be sent.
    pub(crate) fn note(&mut self, request: &Node) {
        if matches!(operation(request), Some("Create" | "CreateKeyPair")) {
            self.generated = true;
        }
    }
}

/// The operation of a message's first batch item.
pub(crate) fn operation(message: &Node) -> Option<&str> {
    Some(message.child("BatchItem")?.child("Operation")?.text())
}

fn now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

fn tag_of(name: &str) -> u32 {
    tag_value(name).unwrap_or_else(|| panic!("unknown tag {name}"))
}

/// The tag whose enumeration or mask a 1.x `Attribute`'s value carries (its Attribute Name's).
fn attribute_context(node: &Node) -> Option<u32> {
    let name = node.children.iter().find(|c| c.tag == "AttributeName")?;
    attribute_tag(name.value.as_deref()?)
}

impl Node {
    fn element(tag: &str, kind: Option<String>, value: Option<String>) -> Self {
        Self {
            tag: tag.to_owned(),
            kind,
            value,
            children: Vec::new(),
        }
    }

    pub(crate) fn child(&self, tag: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.tag == tag)
    }

    pub(crate) fn text(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }

    fn is_structure(&self) -> bool {
        self.kind.as_deref().is_none_or(|k| k == "Structure")
    }

    /// The request this element writes, placeholders replaced.
    pub(crate) fn to_ttlv(&self, vars: &Vars) -> Ttlv {
        self.ttlv(vars, None)
    }

    fn ttlv(&self, vars: &Vars, context: Option<u32>) -> Ttlv {
        let t = tag_of(&self.tag);
        if self.is_structure() {
            let inner = (t == tag::ATTRIBUTE)
                .then(|| attribute_context(self))
                .flatten();
            let items = self
                .children
                .iter()
                .map(|c| c.ttlv(vars, (c.tag == "AttributeValue").then_some(inner).flatten()))
                .collect();
            return Ttlv::structure(t, items);
        }
        let text = self.text();
        let value = match text {
            "$NOW" => Value::DateTime(now()),
            _ if text.starts_with("$UNIQUE_IDENTIFIER_") => Value::TextString(
                vars.ids
                    .get(text)
                    .unwrap_or_else(|| panic!("{text} before the server named it"))
                    .clone(),
            ),
            _ => self.scalar(context.unwrap_or(t)),
        };
        Ttlv::new(t, value)
    }

    /// The value of a scalar element whose enumeration or mask is tag `t`'s.
    fn scalar(&self, t: u32) -> Value {
        let text = self.text();
        let kind = self.kind.as_deref().unwrap_or("Structure");
        let hex = |s: &str| {
            s.strip_prefix("0x")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
        };
        match kind {
            "Integer" => Value::Integer(
                text.parse()
                    .ok()
                    .or_else(|| {
                        hex(text)
                            .and_then(|n| u32::try_from(n).ok())
                            .map(|n| n as i32)
                    })
                    .or_else(|| usage_mask_value(text))
                    .unwrap_or_else(|| unreadable(kind, text, &self.tag)),
            ),
            "LongInteger" => Value::LongInteger(
                text.parse()
                    .unwrap_or_else(|_| unreadable(kind, text, &self.tag)),
            ),
            "BigInteger" => Value::BigInteger(
                hex::decode(text.trim_start_matches("0x"))
                    .unwrap_or_else(|_| unreadable(kind, text, &self.tag)),
            ),
            "Enumeration" => Value::Enumeration(
                hex(text)
                    .and_then(|n| u32::try_from(n).ok())
                    .or_else(|| match t {
                        // An Attribute Reference names an attribute by its tag.
                        tag::ATTRIBUTE_REFERENCE => tag_value(text),
                        _ => enum_value_loose(t, text),
                    })
                    .unwrap_or_else(|| unreadable(kind, text, &self.tag)),
            ),
            "Boolean" => Value::Boolean(match text {
                "true" => true,
                "false" => false,
                _ => unreadable(kind, text, &self.tag),
            }),
            "TextString" => Value::TextString(text.to_owned()),
            "ByteString" => Value::ByteString(
                hex::decode(text).unwrap_or_else(|_| unreadable(kind, text, &self.tag)),
            ),
            "DateTime" => Value::DateTime(
                OffsetDateTime::parse(text, &Rfc3339)
                    .unwrap_or_else(|_| unreadable(kind, text, &self.tag))
                    .unix_timestamp(),
            ),
            "Interval" => Value::Interval(
                text.parse()
                    .unwrap_or_else(|_| unreadable(kind, text, &self.tag)),
            ),
            "DateTimeExtended" => Value::DateTimeExtended(
                text.parse()
                    .unwrap_or_else(|_| unreadable(kind, text, &self.tag)),
            ),
            _ => unreadable(kind, text, &self.tag),
        }
    }
}

fn unreadable<T>(kind: &str, text: &str, tag: &str) -> T {
    panic!("{kind} value {text:?} of {tag}")
}

/// Compares `got` with the expected element, recording the identifiers it names; answers the
/// differences, each with its path.
pub(crate) fn compare(expected: &Node, got: &Ttlv, vars: &mut Vars) -> Vec<String> {
    let mut out = Vec::new();
    diff(expected, got, vars, None, &expected.tag, &mut out);
    out
}

/// Items a server may leave out or fill in as it likes.
const SERVER_CHOSEN: &[&str] = &["ServerCorrelationValue", "ResultMessage"];

fn diff(
    exp: &Node,
    got: &Ttlv,
    vars: &mut Vars,
    context: Option<u32>,
    path: &str,
    out: &mut Vec<String>,
) {
    let t = tag_of(&exp.tag);
    if got.tag != t {
        out.push(format!("{path}: tag 0x{:06X}", got.tag));
        return;
    }
    let kind = exp.kind.as_deref().unwrap_or("Structure");
    if got.value.item_type().name() != kind {
        out.push(format!(
            "{path}: a {} not a {kind}",
            got.value.item_type().name()
        ));
        return;
    }
    if let Value::Structure(items) = &got.value {
        // The server's random number generator is its own to describe.
        if t == tag::RANDOM_NUMBER_GENERATOR || context == Some(tag::RANDOM_NUMBER_GENERATOR) {
            return;
        }
        let inner = (t == tag::ATTRIBUTE)
            .then(|| attribute_context(exp))
            .flatten();
        let mut used = vec![false; items.len()];
        for c in &exp.children {
            let context = (c.tag == "AttributeValue").then_some(inner).flatten();
            let at = format!("{path}/{}", c.tag);
            let same: Vec<usize> = (0..items.len())
                .filter(|&i| !used[i] && items[i].tag == tag_of(&c.tag))
                .collect();
            // The first unused item of that tag that matches, else the first of that tag.
            let matching = same.iter().copied().find(|&i| {
                let mut trial = Vec::new();
                diff(c, &items[i], &mut vars.clone(), context, &at, &mut trial);
                trial.is_empty()
            });
            match matching.or_else(|| same.first().copied()) {
                Some(i) => {
                    used[i] = true;
                    diff(c, &items[i], vars, context, &at, out);
                }
                None if SERVER_CHOSEN.contains(&c.tag.as_str()) => {}
                None => out.push(format!("{at}: missing")),
            }
        }
        for (item, used) in items.iter().zip(used) {
            // An Attribute Index of 0 is the default a 1.x answer may leave out.
            let default_index = item.tag == tag::ATTRIBUTE_INDEX && item.value == Value::Integer(0);
            if !used && !default_index {
                out.push(format!("{path}: unexpected {}", shedu_kmip::to_json(item)));
            }
        }
        return;
    }
    let text = exp.text();
    match (&got.value, text) {
        (Value::DateTime(v), "$NOW") => {
            if *v < vars.started || *v > now() + 1 {
                out.push(format!("{path}: {v} is not the time of the replay"));
            }
        }
        (Value::TextString(v), _) if text.starts_with("$UNIQUE_IDENTIFIER_") => {
            match vars.ids.get(text) {
                Some(known) if known != v => out.push(format!("{path}: {v}, not {text} = {known}")),
                Some(_) => {}
                None => {
                    vars.ids.insert(text.to_owned(), v.clone());
                }
            }
        }
        (Value::TextString(_), _) if SERVER_CHOSEN.contains(&exp.tag.as_str()) => {}
        (Value::ByteString(_), _) if exp.tag == "DigestValue" && vars.generated => {}
        (v, _) => {
            let want = exp.scalar(context.unwrap_or(t));
            if *v != want {
                out.push(format!("{path}: {v:?}, not {want:?}"));
            }
        }
    }
}

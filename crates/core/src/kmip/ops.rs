//! The operations: each reads its request payload, checks the caller's right and the object's state,
//! does its work, and builds its response payload.

mod attributes;
mod certify;
mod derive;
mod import;
mod rekey;

use shedu_kmip::{
    Attribute, ProtocolVersion, Ttlv, Value, answer_attribute, attribute_tag,
    cryptographic_algorithm, key_format_type, name_text, object_type, operation, query_function,
    read_attributes, result_reason, revocation_reason_code, state, tag,
};
use shedu_store::{Audited, NewEvent};

use super::cache::Cached;
use super::crypto::{self, Params};
use super::object::{Managed, key_material, key_object, object_tag};
use super::{Failure, KMIP_OPERATIONS, KMIP_VERSIONS, Kmip};
use crate::AuditContext;
use crate::events::{EventKind, event};

/// What a batch carries from one item to the next: the ID Placeholder (the uid the last item created
/// or named), used by items that name no object.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    placeholder: Option<String>,
}

/// An operation's answer: its payload and the uid it concerned (for the audit record).
pub(crate) struct Out {
    pub(crate) payload: Ttlv,
    pub(crate) target: Option<String>,
}

/// One operation being run.
pub(crate) struct Ctx<'a> {
    pub(crate) kmip: &'a Kmip,
    pub(crate) actor: &'a AuditContext,
    pub(crate) version: ProtocolVersion,
    pub(crate) op_name: &'static str,
    /// Whether objects may come from the cache (`cache.rs`): reads only; a change reads the database.
    pub(crate) cached: bool,
}

/// Whether `op` changes stored state (and so audits itself inside its transaction).
pub(crate) fn is_change(op: u32) -> bool {
    matches!(
        op,
        operation::CREATE
            | operation::REGISTER
            | operation::ACTIVATE
            | operation::REVOKE
            | operation::DESTROY
            | operation::CREATE_KEY_PAIR
            | operation::ADD_ATTRIBUTE
            | operation::SET_ATTRIBUTE
            | operation::MODIFY_ATTRIBUTE
            | operation::DELETE_ATTRIBUTE
            | operation::REKEY
            | operation::REKEY_KEY_PAIR
            | operation::CERTIFY
            | operation::DERIVE_KEY
            | operation::IMPORT
    )
}

/// The Unique Identifier a request payload names, if any.
pub(crate) fn uid_of(payload: &Ttlv) -> Option<String> {
    match &payload.child(tag::UNIQUE_IDENTIFIER)?.value {
        Value::TextString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The answer about object `uid`: its Unique Identifier first, then `items`.
fn answer(uid: String, items: Vec<Ttlv>) -> Out {
    let mut all = vec![uid_item(&uid)];
    all.extend(items);
    Out {
        payload: payload(all),
        target: Some(uid),
    }
}

/// The Cryptographic Algorithm and Length a request's attributes ask for; `default` gives the length
/// of an algorithm that has one.
fn key_spec(attributes: &[&Attribute], default: Option<(u32, i32)>) -> Result<(u32, i32), Failure> {
    let find = |t: u32| {
        attributes
            .iter()
            .find(|a| a.value.tag == t)
            .map(|a| &a.value)
    };
    let missing = |what: &str| Failure::new(result_reason::MISSING_DATA, format!("no {what}"));
    let algorithm = find(tag::CRYPTOGRAPHIC_ALGORITHM)
        .ok_or_else(|| missing("Cryptographic Algorithm"))?
        .as_enum("Cryptographic Algorithm")?;
    let length = match (find(tag::CRYPTOGRAPHIC_LENGTH), default) {
        (Some(l), _) => l.as_int("Cryptographic Length")?,
        (None, Some((alg, len))) if alg == algorithm => len,
        (None, _) => return Err(missing("Cryptographic Length")),
    };
    Ok((algorithm, length))
}

/// `Invalid Object Type` unless the object is a `t`.
fn expect_type(m: &Managed, t: u32, message: &'static str) -> Result<(), Failure> {
    if m.object_type == t {
        Ok(())
    } else {
        Err(Failure::new(result_reason::INVALID_OBJECT_TYPE, message))
    }
}

fn payload(items: Vec<Ttlv>) -> Ttlv {
    Ttlv::structure(tag::RESPONSE_PAYLOAD, items)
}

fn uid_item(uid: &str) -> Ttlv {
    Ttlv::text(tag::UNIQUE_IDENTIFIER, uid)
}

impl Ctx<'_> {
    pub(crate) async fn dispatch(
        &self,
        op: u32,
        p: &Ttlv,
        batch: &mut Batch,
    ) -> Result<Out, Failure> {
        let out = match op {
            operation::DISCOVER_VERSIONS => self.discover_versions(p),
            operation::QUERY => self.query(p),
            operation::CREATE => self.create(p).await,
            operation::REGISTER => self.register(p).await,
            operation::GET => self.get(p, batch).await,
            operation::GET_ATTRIBUTES => self.get_attributes(p, batch).await,
            operation::GET_ATTRIBUTE_LIST => self.get_attribute_list(p, batch).await,
            operation::LOCATE => self.locate(p).await,
            operation::ACTIVATE => self.activate(p, batch).await,
            operation::REVOKE => self.revoke(p, batch).await,
            operation::DESTROY => self.destroy(p, batch).await,
            operation::CREATE_KEY_PAIR => self.create_key_pair(p).await,
            operation::ENCRYPT => self.encrypt(p, batch).await,
            operation::DECRYPT => self.decrypt(p, batch).await,
            operation::SIGN => self.sign(p, batch).await,
            operation::SIGNATURE_VERIFY => self.signature_verify(p, batch).await,
            operation::MAC => self.mac(p, batch).await,
            operation::ADD_ATTRIBUTE => self.add_attribute(p, batch).await,
            operation::SET_ATTRIBUTE => self.set_attribute(p, batch).await,
            operation::MODIFY_ATTRIBUTE => self.modify_attribute(p, batch).await,
            operation::DELETE_ATTRIBUTE => self.delete_attribute(p, batch).await,
            operation::REKEY => self.rekey(p, batch).await,
            operation::REKEY_KEY_PAIR => self.rekey_key_pair(p, batch).await,
            operation::CERTIFY => self.certify(p, batch).await,
            operation::DERIVE_KEY => self.derive_key(p, batch).await,
            operation::IMPORT => self.import(p).await,
            operation::EXPORT => self.export(p, batch).await,
            _ => Err(Failure::new(
                result_reason::OPERATION_NOT_SUPPORTED,
                "operation not supported",
            )),
        }?;
        if let Some(uid) = &out.target {
            batch.placeholder = Some(uid.clone());
        }
        Ok(out)
    }

    fn now(&self) -> i64 {
        self.kmip.reg.now()
    }

    fn audited(&self) -> Audited<'_> {
        Audited {
            actor: self.actor,
            action: self.action(),
        }
    }

    fn action(&self) -> &'static str {
        // One static string per operation (the audit record's action).
        match self.op_name {
            "create" => "kmip.create",
            "register" => "kmip.register",
            "activate" => "kmip.activate",
            "revoke" => "kmip.revoke",
            "destroy" => "kmip.destroy",
            "create_key_pair" => "kmip.create_key_pair",
            "add_attribute" => "kmip.add_attribute",
            "set_attribute" => "kmip.set_attribute",
            "modify_attribute" => "kmip.modify_attribute",
            "delete_attribute" => "kmip.delete_attribute",
            "rekey" => "kmip.rekey",
            "rekey_key_pair" => "kmip.rekey_key_pair",
            "certify" => "kmip.certify",
            "derive_key" => "kmip.derive_key",
            "import" => "kmip.import",
            _ => "kmip.operation",
        }
    }

    /// The object the payload (or the batch's ID Placeholder) names, if the caller may run this
    /// operation on it; `Item Not Found` otherwise, exactly as for a missing object.
    async fn object(&self, p: &Ttlv, batch: &Batch) -> Result<Managed, Failure> {
        let uid = match p.child(tag::UNIQUE_IDENTIFIER) {
            Some(item) => item.as_text("Unique Identifier")?.to_owned(),
            None => batch.placeholder.clone().ok_or(Failure::new(
                result_reason::MISSING_DATA,
                "no Unique Identifier",
            ))?,
        };
        let wanted = match self.op_name {
            // Reading attributes comes with any read grant; exporting is getting.
            "get_attribute_list" => "get_attributes",
            "export" => "get",
            other => other,
        };
        self.object_for(&uid, wanted).await
    }

    /// Object `uid`, if the caller owns it or holds a grant for `wanted`; `Item Not Found` otherwise,
    /// exactly as for a missing object.
    async fn object_for(&self, uid: &str, wanted: &str) -> Result<Managed, Failure> {
        let reg = &self.kmip.reg;
        let user = self.actor.principal.as_str();
        if self.cached && reg.coherence.caches_usable() {
            let (hit, generation) = reg.kmip_objects.get(uid);
            let cached = match hit {
                Some(hit) => hit,
                None => {
                    let unavailable = |_| Failure::general("storage unavailable");
                    let row = reg
                        .store
                        .kmip_object(uid)
                        .await
                        .map_err(unavailable)?
                        .ok_or_else(|| Failure::not_found(uid))?;
                    let grants = reg
                        .store
                        .kmip_grants(uid, None)
                        .await
                        .map_err(unavailable)?
                        .into_iter()
                        .map(|g| (g.user_id, g.operation))
                        .collect();
                    let cached = Cached::new(Managed::from_row(row)?, grants);
                    if !cached.allows(user, wanted) {
                        return Err(Failure::not_found(uid));
                    }
                    let object = cached.object.clone();
                    reg.kmip_objects.put(cached, generation);
                    return Ok(object);
                }
            };
            return if cached.allows(user, wanted) {
                Ok(cached.object.clone())
            } else {
                Err(Failure::not_found(uid))
            };
        }
        let store = &reg.store;
        let row = store
            .kmip_object(uid)
            .await
            .map_err(|_| Failure::general("storage unavailable"))?
            .ok_or_else(|| Failure::not_found(uid))?;
        if row.owner != self.actor.principal {
            let grants = store
                .kmip_grants(uid, Some(&self.actor.principal))
                .await
                .map_err(|_| Failure::general("storage unavailable"))?;
            if !grants.iter().any(|g| g.operation == wanted) {
                return Err(Failure::not_found(uid));
            }
        }
        Managed::from_row(row)
    }

    /// The request's attributes: a KMIP 1.x Template-Attribute or a KMIP 2.x Attributes structure.
    fn attributes(p: &Ttlv, v1: u32, v2: u32) -> Result<Vec<Attribute>, Failure> {
        match p.child(v2).or_else(|| p.child(v1)) {
            Some(item) => Ok(read_attributes(item)?),
            None => Ok(Vec::new()),
        }
    }

    /// The attributes in the response form of this request's version: KMIP 1.x `Attribute`s, or one
    /// KMIP 2.x `Attributes` structure.
    fn attributes_out(&self, attributes: &[&Attribute]) -> Vec<Ttlv> {
        let items = attributes
            .iter()
            .map(|a| answer_attribute(a, self.version))
            .collect();
        if self.version.is_v2() {
            vec![Ttlv::structure(tag::ATTRIBUTES, items)]
        } else {
            items
        }
    }

    async fn store_new(&self, objects: &[&Managed]) -> Result<(), Failure> {
        let rows: Vec<_> = objects.iter().map(|m| m.to_row()).collect();
        let events: Vec<NewEvent> = objects
            .iter()
            .map(|m| self.event(EventKind::KmipObjectCreated, m))
            .collect();
        self.kmip
            .reg
            .store
            .insert_kmip_objects(
                &rows.iter().collect::<Vec<_>>(),
                &events.iter().collect::<Vec<_>>(),
                &self.audited(),
            )
            .await
            .map_err(|_| Failure::general("storage unavailable"))
    }

    async fn store_change(&self, m: &Managed, was: u32) -> Result<(), Failure> {
        self.store_update(m, was, Some(EventKind::KmipObjectStateChanged))
            .await
    }

    /// Stores a changed object (its state was `was`), with an event of `kind` if any.
    async fn store_update(
        &self,
        m: &Managed,
        was: u32,
        kind: Option<EventKind>,
    ) -> Result<(), Failure> {
        let row = m.to_row();
        let ev = kind.map(|k| self.event(k, m));
        let written = self
            .kmip
            .reg
            .store
            .update_kmip_objects(
                &[(&row, i64::from(was))],
                &ev.iter().collect::<Vec<_>>(),
                &self.audited(),
            )
            .await
            .map_err(write_failure);
        self.changed(&[&m.uid]).await;
        written
    }

    /// After a change of objects `uids` was committed (or failed): no read anywhere answers from what was
    /// cached before (`cache.rs`).
    async fn changed(&self, uids: &[&str]) {
        self.kmip.reg.on_kmip_changed(uids).await;
    }

    fn event(&self, kind: EventKind, m: &Managed) -> NewEvent {
        let name = |t, v| shedu_kmip::enum_name(t, v).unwrap_or("Unknown");
        event(
            kind,
            format!("kmip/{}", m.uid),
            self.now(),
            serde_json::json!({
                "uid": m.uid,
                "owner": m.owner,
                "object_type": name(tag::OBJECT_TYPE, m.object_type),
                "state": name(tag::STATE, m.state),
                "operation": self.op_name,
            }),
        )
    }

    fn discover_versions(&self, p: &Ttlv) -> Result<Out, Failure> {
        let asked: Vec<ProtocolVersion> = p
            .children(tag::PROTOCOL_VERSION)
            .map(ProtocolVersion::from_ttlv)
            .collect::<Result<_, _>>()?;
        let items = KMIP_VERSIONS
            .iter()
            .filter(|v| asked.is_empty() || asked.contains(v))
            .map(|v| v.to_ttlv())
            .collect();
        Ok(Out {
            payload: payload(items),
            target: None,
        })
    }

    fn query(&self, p: &Ttlv) -> Result<Out, Failure> {
        let mut items = Vec::new();
        for f in p.children(tag::QUERY_FUNCTION) {
            match f.as_enum("Query Function")? {
                query_function::QUERY_OPERATIONS => items.extend(
                    KMIP_OPERATIONS
                        .iter()
                        .map(|(op, _)| Ttlv::enumeration(tag::OPERATION, *op)),
                ),
                query_function::QUERY_OBJECTS => items.extend(
                    [
                        object_type::CERTIFICATE,
                        object_type::SYMMETRIC_KEY,
                        object_type::PUBLIC_KEY,
                        object_type::PRIVATE_KEY,
                        object_type::SECRET_DATA,
                        object_type::OPAQUE_OBJECT,
                        object_type::SPLIT_KEY,
                    ]
                    .map(|t| Ttlv::enumeration(tag::OBJECT_TYPE, t)),
                ),
                query_function::QUERY_SERVER_INFORMATION => {
                    items.push(Ttlv::text(tag::VENDOR_IDENTIFICATION, "shedu"));
                }
                _ => {}
            }
        }
        Ok(Out {
            payload: payload(items),
            target: None,
        })
    }

    async fn create(&self, p: &Ttlv) -> Result<Out, Failure> {
        let t = p
            .require(tag::OBJECT_TYPE, "Object Type")?
            .as_enum("Object Type")?;
        if t != object_type::SYMMETRIC_KEY {
            return Err(Failure::new(
                result_reason::INVALID_OBJECT_TYPE,
                "Create makes symmetric keys; use Create Key Pair or Register",
            ));
        }
        let attributes = Self::attributes(p, tag::TEMPLATE_ATTRIBUTE, tag::ATTRIBUTES)?;
        let all: Vec<&Attribute> = attributes.iter().collect();
        let (algorithm, length) = key_spec(&all, None)?;
        let object = symmetric_key(algorithm, length)?;
        let m = self.new_object(&object, t, attributes)?.generated();
        self.store_new(&[&m]).await?;
        Ok(Out {
            payload: payload(vec![
                Ttlv::enumeration(tag::OBJECT_TYPE, t),
                uid_item(&m.uid),
            ]),
            target: Some(m.uid),
        })
    }

    async fn register(&self, p: &Ttlv) -> Result<Out, Failure> {
        let (t, object) = Self::submitted(p, "registered")?;
        let attributes = Self::attributes(p, tag::TEMPLATE_ATTRIBUTE, tag::ATTRIBUTES)?;
        let m = self.new_object(&object, t, attributes)?;
        self.store_new(&[&m]).await?;
        Ok(answer(m.uid, vec![]))
    }

    /// The object a Register or Import carries and its Object Type: under its type's tag, or (Cosmian's
    /// JSON form of Import) under `Object`; answered under its type's tag.
    fn submitted(p: &Ttlv, verb: &str) -> Result<(u32, Ttlv), Failure> {
        let t = p
            .require(tag::OBJECT_TYPE, "Object Type")?
            .as_enum("Object Type")?;
        let wanted = object_tag(t).ok_or_else(|| {
            Failure::new(
                result_reason::INVALID_OBJECT_TYPE,
                format!("this object type cannot be {verb}"),
            )
        })?;
        let mut object = p
            .child(wanted)
            .or_else(|| p.child(tag::OBJECT))
            .ok_or(Failure::new(
                result_reason::MISSING_DATA,
                "the object is missing or not of its Object Type",
            ))?
            .clone();
        if !matches!(object.value, Value::Structure(_)) {
            return Err(Failure::invalid("the object is not a structure"));
        }
        object.tag = wanted;
        Ok((t, object))
    }

    /// A new object of the caller's, made now.
    fn new_object(
        &self,
        object: &Ttlv,
        t: u32,
        attributes: Vec<Attribute>,
    ) -> Result<Managed, Failure> {
        Managed::new(
            &self.kmip.reg.keystore,
            &self.actor.principal,
            object,
            t,
            attributes,
            self.now(),
        )
    }

    async fn get(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let (m, object) = self.fetch(p, batch).await?;
        Ok(Out {
            payload: payload(vec![
                Ttlv::enumeration(tag::OBJECT_TYPE, m.object_type),
                uid_item(&m.uid),
                object,
            ]),
            target: Some(m.uid),
        })
    }

    /// The object a Get or Export names and its material, in the Key Format Type asked (the stored
    /// one) and wrapped as its Key Wrapping Specification asks.
    async fn fetch(&self, p: &Ttlv, batch: &Batch) -> Result<(Managed, Ttlv), Failure> {
        let m = self.object(p, batch).await?;
        let object = m
            .open(&self.kmip.reg.keystore)?
            .ok_or_else(|| self.destroyed())?;
        if let Some(format) = p.child(tag::KEY_FORMAT_TYPE) {
            let format = format.as_enum("Key Format Type")?;
            let stored = object
                .child(tag::KEY_BLOCK)
                .and_then(|b| b.child(tag::KEY_FORMAT_TYPE))
                .map(|f| f.as_enum("Key Format Type"))
                .transpose()?;
            if stored != Some(format) {
                return Err(Failure::new(
                    result_reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                    "the key is kept in another format",
                ));
            }
        }
        let object = match p.child(tag::KEY_WRAPPING_SPECIFICATION) {
            Some(spec) => self.wrapped(object, spec).await?,
            None => object,
        };
        Ok((m, object))
    }

    /// `object` with its Key Value wrapped as the Key Wrapping Specification asks (KMIP 1.4 §2.1.5):
    /// method Encrypt under an Active AES key (128 or 256 bits) the caller owns or holds an `encrypt`
    /// grant on, whose usage mask (when set) has Wrap Key, with NIST key wrap (RFC 3394, the default) or
    /// AES key wrap with padding (RFC 5649). With Encoding Option `NoEncoding` the Key Material bytes are
    /// wrapped and the Key Value holds the wrapped bytes as its Key Material (as PyKMIP's server answers);
    /// otherwise (TTLV encoding, the specification's default) the TTLV-encoded Key Value is wrapped and
    /// becomes a Byte String. The Key Block gains Key Wrapping Data naming the wrapping key.
    async fn wrapped(&self, object: Ttlv, spec: &Ttlv) -> Result<Ttlv, Failure> {
        use shedu_kmip::{block_cipher_mode, encoding_option, wrapping_method};
        let unsupported = |what: &str| Failure::new(result_reason::FEATURE_NOT_SUPPORTED, what);
        let method = spec
            .require(tag::WRAPPING_METHOD, "Wrapping Method")?
            .as_enum("Wrapping Method")?;
        if method != wrapping_method::ENCRYPT {
            return Err(unsupported("the only Wrapping Method is Encrypt"));
        }
        if spec.child(tag::MAC_SIGNATURE_KEY_INFORMATION).is_some() {
            return Err(unsupported("wrapping with a MAC or signature key"));
        }
        if spec.child(tag::ATTRIBUTE_NAME).is_some() {
            return Err(unsupported("wrapping attributes with the key"));
        }
        let info = spec.require(
            tag::ENCRYPTION_KEY_INFORMATION,
            "Encryption Key Information",
        )?;
        let kek_uid = info
            .require(tag::UNIQUE_IDENTIFIER, "Unique Identifier")?
            .as_text("Unique Identifier")?;
        let mode = info
            .child(tag::CRYPTOGRAPHIC_PARAMETERS)
            .and_then(|c| c.child(tag::BLOCK_CIPHER_MODE))
            .map(|m| m.as_enum("Block Cipher Mode"))
            .transpose()?
            .unwrap_or(block_cipher_mode::NIST_KEY_WRAP);
        let padded = match mode {
            block_cipher_mode::NIST_KEY_WRAP => false,
            block_cipher_mode::AES_KEY_WRAP_PADDING => true,
            _ => {
                return Err(Failure::new(
                    result_reason::BAD_CRYPTOGRAPHIC_PARAMETERS,
                    "key wrapping is NISTKeyWrap or AESKeyWrapPadding",
                ));
            }
        };
        let encoding = spec
            .child(tag::ENCODING_OPTION)
            .map(|e| e.as_enum("Encoding Option"))
            .transpose()?
            .unwrap_or(encoding_option::TTLV_ENCODING);
        // Wrapping is encrypting under the wrapping key: its owner, or a holder of an `encrypt` grant.
        let kek = self.object_for(kek_uid, "encrypt").await?;
        expect_type(
            &kek,
            object_type::SYMMETRIC_KEY,
            "the wrapping key must be a symmetric key",
        )?;
        if Self::algorithm(&kek) != cryptographic_algorithm::AES {
            return Err(Failure::new(
                result_reason::BAD_CRYPTOGRAPHIC_PARAMETERS,
                "the wrapping key must be an AES key",
            ));
        }
        if kek.state != state::ACTIVE {
            return Err(Failure::state("the wrapping key must be Active"));
        }
        Self::check_mask(&kek, usage::WRAP_KEY)?;
        let kek_object = kek
            .open(&self.kmip.reg.keystore)?
            .ok_or_else(|| self.destroyed())?;
        let kek_bytes = Self::material(&kek_object)?;

        let Value::Structure(mut outer) = object.value else {
            return Err(Failure::general("a stored object is not a structure"));
        };
        let Some(Value::Structure(block)) = outer
            .iter_mut()
            .find(|i| i.tag == tag::KEY_BLOCK)
            .map(|b| &mut b.value)
        else {
            return Err(Failure::new(
                result_reason::INVALID_OBJECT_TYPE,
                "only keys and secret data (objects with a Key Block) can be wrapped",
            ));
        };
        let Some(value) = block.iter_mut().find(|i| i.tag == tag::KEY_VALUE) else {
            return Err(Failure::new(
                result_reason::KEY_VALUE_NOT_PRESENT,
                "the object holds no key value",
            ));
        };
        *value = match encoding {
            encoding_option::NO_ENCODING => {
                let material = match value.child(tag::KEY_MATERIAL).map(|m| &m.value) {
                    Some(Value::ByteString(b)) => b,
                    _ => {
                        return Err(Failure::new(
                            result_reason::ENCODING_OPTION_ERROR,
                            "NoEncoding wraps Key Material bytes; this key's material is a structure",
                        ));
                    }
                };
                let wrapped = crypto::aes_key_wrap(kek_bytes, material, padded)?;
                Ttlv::structure(
                    tag::KEY_VALUE,
                    vec![Ttlv::bytes(tag::KEY_MATERIAL, wrapped)],
                )
            }
            encoding_option::TTLV_ENCODING => {
                let encoded = zeroize::Zeroizing::new(
                    shedu_kmip::encode(value)
                        .map_err(|_| Failure::general("the key value does not encode"))?,
                );
                Ttlv::bytes(
                    tag::KEY_VALUE,
                    crypto::aes_key_wrap(kek_bytes, &encoded, padded)?,
                )
            }
            _ => {
                return Err(Failure::new(
                    result_reason::ENCODING_OPTION_ERROR,
                    "unknown Encoding Option",
                ));
            }
        };
        let mut data = vec![
            Ttlv::enumeration(tag::WRAPPING_METHOD, method),
            info.clone(),
        ];
        if let Some(e) = spec.child(tag::ENCODING_OPTION) {
            data.push(e.clone());
        }
        block.push(Ttlv::structure(tag::KEY_WRAPPING_DATA, data));
        Ok(Ttlv::structure(object.tag, outer))
    }

    fn destroyed(&self) -> Failure {
        if self.version >= (ProtocolVersion { major: 2, minor: 0 }) {
            Failure::new(result_reason::OBJECT_DESTROYED, "the object is destroyed")
        } else {
            Failure::new(result_reason::ITEM_NOT_FOUND, "the object is destroyed")
        }
    }

    async fn get_attributes(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let m = self.object(p, batch).await?;
        let mut wanted: Vec<u32> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for n in p.children(tag::ATTRIBUTE_NAME) {
            names.push(n.as_text("Attribute Name")?);
        }
        for r in p.children(tag::ATTRIBUTE_REFERENCE) {
            match &r.value {
                Value::Enumeration(t) => wanted.push(*t),
                _ => {
                    if let Some(n) = r.child(tag::ATTRIBUTE_NAME) {
                        names.push(n.as_text("Attribute Name")?);
                    }
                }
            }
        }
        let selected: Vec<&Attribute> = m
            .attributes
            .iter()
            .filter(|a| {
                (wanted.is_empty() && names.is_empty())
                    || wanted.contains(&a.value.tag)
                    || names.contains(&a.name.as_str())
            })
            .collect();
        let mut items = vec![uid_item(&m.uid)];
        items.extend(self.attributes_out(&selected));
        Ok(Out {
            payload: payload(items),
            target: Some(m.uid.clone()),
        })
    }

    async fn get_attribute_list(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let m = self.object(p, batch).await?;
        let mut items = vec![uid_item(&m.uid)];
        let mut seen: Vec<&str> = Vec::new();
        for a in &m.attributes {
            if seen.contains(&a.name.as_str()) {
                continue;
            }
            seen.push(&a.name);
            if self.version.is_v2() {
                if attribute_tag(&a.name).is_some() {
                    items.push(Ttlv::enumeration(tag::ATTRIBUTE_REFERENCE, a.value.tag));
                }
            } else {
                items.push(Ttlv::text(tag::ATTRIBUTE_NAME, a.name.clone()));
            }
        }
        Ok(Out {
            payload: payload(items),
            target: Some(m.uid.clone()),
        })
    }

    async fn locate(&self, p: &Ttlv) -> Result<Out, Failure> {
        let filters = match p.child(tag::ATTRIBUTES) {
            Some(a) => read_attributes(a)?,
            None => read_attributes(&Ttlv::structure(
                tag::ATTRIBUTES,
                p.children(tag::ATTRIBUTE).cloned().collect(),
            ))?,
        };
        let max = p
            .child(tag::MAXIMUM_ITEMS)
            .map(|i| i.as_int("Maximum Items"))
            .transpose()?;
        let offset = p
            .child(tag::OFFSET_ITEMS)
            .map(|i| i.as_int("Offset Items"))
            .transpose()?
            .unwrap_or(0);
        let rows = self
            .kmip
            .reg
            .store
            .kmip_objects_visible(&self.actor.principal)
            .await
            .map_err(|_| Failure::general("storage unavailable"))?;
        let grants = self
            .kmip
            .reg
            .store
            .kmip_grants_of(&self.actor.principal)
            .await
            .map_err(|_| Failure::general("storage unavailable"))?;
        let asks_state = filters.iter().any(|f| f.value.tag == tag::STATE);
        let mut found = Vec::new();
        for row in rows {
            if row.owner != self.actor.principal
                && !grants
                    .iter()
                    .any(|g| g.uid == row.uid && g.operation == "locate")
            {
                continue;
            }
            let m = Managed::from_row(row)?;
            if !asks_state && matches!(m.state, state::DESTROYED | state::DESTROYED_COMPROMISED) {
                continue;
            }
            if located(&m, &filters) {
                found.push(m.uid);
            }
        }
        let located = found.len();
        let start = usize::try_from(offset.max(0)).unwrap_or(0).min(found.len());
        let end = match max {
            Some(n) => start
                .saturating_add(usize::try_from(n.max(0)).unwrap_or(0))
                .min(found.len()),
            None => found.len(),
        };
        let mut items = Vec::new();
        if self.version >= (ProtocolVersion { major: 1, minor: 3 }) {
            items.push(Ttlv::integer(
                tag::LOCATED_ITEMS,
                i32::try_from(located).unwrap_or(i32::MAX),
            ));
        }
        items.extend(found[start..end].iter().map(|u| uid_item(u)));
        Ok(Out {
            payload: payload(items),
            target: None,
        })
    }

    async fn activate(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let mut m = self.object(p, batch).await?;
        if m.state != state::PRE_ACTIVE {
            return Err(Failure::state("only a Pre-Active object can be activated"));
        }
        let was = m.state;
        m.transition(state::ACTIVE, Some(tag::ACTIVATION_DATE), self.now());
        self.store_change(&m, was).await?;
        Ok(answer(m.uid, vec![]))
    }

    async fn revoke(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let mut m = self.object(p, batch).await?;
        let reason = p.require(tag::REVOCATION_REASON, "Revocation Reason")?;
        let code = reason
            .require(tag::REVOCATION_REASON_CODE, "Revocation Reason Code")?
            .as_enum("Revocation Reason Code")?;
        let compromise = matches!(
            code,
            revocation_reason_code::KEY_COMPROMISE | revocation_reason_code::CA_COMPROMISE
        );
        let now = self.now();
        let was = m.state;
        match (was, compromise) {
            (state::DESTROYED | state::DESTROYED_COMPROMISED, _) => {
                return Err(Failure::state("the object is destroyed"));
            }
            (state::COMPROMISED, _) => {
                return Err(Failure::state("the object is already compromised"));
            }
            (_, true) => {
                let occurred = p
                    .child(tag::COMPROMISE_OCCURRENCE_DATE)
                    .map(|d| d.as_date("Compromise Occurrence Date"))
                    .transpose()?
                    .unwrap_or(now);
                m.set(Ttlv::new(
                    tag::COMPROMISE_OCCURRENCE_DATE,
                    Value::DateTime(occurred),
                ));
                m.transition(state::COMPROMISED, Some(tag::COMPROMISE_DATE), now);
            }
            (state::DEACTIVATED, false) => {
                return Err(Failure::state("the object is already deactivated"));
            }
            (_, false) => m.transition(state::DEACTIVATED, Some(tag::DEACTIVATION_DATE), now),
        }
        let mut stored_reason = vec![Ttlv::enumeration(tag::REVOCATION_REASON_CODE, code)];
        if let Some(text) = reason.child(tag::REVOCATION_MESSAGE) {
            stored_reason.push(text.clone());
        }
        m.set(Ttlv::structure(tag::REVOCATION_REASON, stored_reason));
        self.store_change(&m, was).await?;
        Ok(answer(m.uid, vec![]))
    }

    async fn destroy(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let mut m = self.object(p, batch).await?;
        let was = m.state;
        let next = match was {
            state::ACTIVE => {
                return Err(Failure::state(
                    "an Active object cannot be destroyed; revoke it first",
                ));
            }
            state::COMPROMISED => state::DESTROYED_COMPROMISED,
            state::DESTROYED | state::DESTROYED_COMPROMISED => return Err(self.destroyed()),
            _ => state::DESTROYED,
        };
        m.sealed = None;
        m.transition(next, Some(tag::DESTROY_DATE), self.now());
        self.store_change(&m, was).await?;
        Ok(answer(m.uid, vec![]))
    }

    /// The object, if its state allows the operation, and its material.
    async fn usable(
        &self,
        p: &Ttlv,
        batch: &Batch,
        states: &[u32],
    ) -> Result<(Managed, Ttlv), Failure> {
        let m = self.object(p, batch).await?;
        if !states.contains(&m.state) {
            let name = shedu_kmip::enum_name(tag::STATE, m.state).unwrap_or("this state");
            return Err(Failure::state(format!(
                "{} is not allowed on a {name} object",
                self.op_name
            )));
        }
        let object = m
            .open(&self.kmip.reg.keystore)?
            .ok_or_else(|| self.destroyed())?;
        Ok((m, object))
    }

    /// The key for a cryptographic operation: the object, if its state allows the operation and its
    /// usage mask (when set) has `bit`, its material, and the request's Data.
    async fn prepare<'p>(
        &self,
        p: &'p Ttlv,
        batch: &Batch,
        states: &[u32],
        bit: i32,
    ) -> Result<Use<'p>, Failure> {
        let (m, object) = self.usable(p, batch, states).await?;
        Self::check_mask(&m, bit)?;
        let data = Self::bytes(p, tag::DATA, "Data")?
            .ok_or(Failure::new(result_reason::MISSING_DATA, "no Data"))?;
        Ok(Use { m, object, data })
    }

    /// The inputs of Encrypt and Decrypt.
    fn aes<'a>(p: &'a Ttlv, object: &'a Ttlv, data: &'a [u8]) -> Result<crypto::Aes<'a>, Failure> {
        Ok(crypto::Aes {
            key: Self::material(object)?,
            params: Self::params(p)?,
            data,
            iv: Self::bytes(p, tag::IV_COUNTER_NONCE, "IV/Counter/Nonce")?,
            aad: Self::bytes(
                p,
                tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                "Authenticated Encryption Additional Data",
            )?
            .unwrap_or(&[]),
        })
    }

    /// Refuses a key whose Cryptographic Usage Mask (when set) lacks `bit`.
    fn check_mask(m: &Managed, bit: i32) -> Result<(), Failure> {
        match m.attr(tag::CRYPTOGRAPHIC_USAGE_MASK).map(|v| &v.value) {
            Some(Value::Integer(mask)) if mask & bit == 0 => Err(Failure::new(
                result_reason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
                "the key's usage mask does not allow this",
            )),
            _ => Ok(()),
        }
    }

    fn algorithm(m: &Managed) -> u32 {
        m.attr(tag::CRYPTOGRAPHIC_ALGORITHM)
            .and_then(|a| a.as_enum("Cryptographic Algorithm").ok())
            .unwrap_or(0)
    }

    fn params(p: &Ttlv) -> Result<Params, Failure> {
        let Some(c) = p.child(tag::CRYPTOGRAPHIC_PARAMETERS) else {
            return Ok(Params::default());
        };
        let e = |t: u32, what: &'static str| c.child(t).map(|i| i.as_enum(what)).transpose();
        Ok(Params {
            mode: e(tag::BLOCK_CIPHER_MODE, "Block Cipher Mode")?,
            padding: e(tag::PADDING_METHOD, "Padding Method")?,
            hashing: e(tag::HASHING_ALGORITHM, "Hashing Algorithm")?,
            signature: e(
                tag::DIGITAL_SIGNATURE_ALGORITHM,
                "Digital Signature Algorithm",
            )?,
        })
    }

    fn bytes<'p>(p: &'p Ttlv, t: u32, what: &'static str) -> Result<Option<&'p [u8]>, Failure> {
        Ok(p.child(t).map(|i| i.as_bytes(what)).transpose()?)
    }

    fn material(object: &Ttlv) -> Result<&[u8], Failure> {
        key_material(object).ok_or(Failure::new(
            result_reason::KEY_VALUE_NOT_PRESENT,
            "the object holds no key material",
        ))
    }

    async fn create_key_pair(&self, p: &Ttlv) -> Result<Out, Failure> {
        let mut common =
            Self::attributes(p, tag::COMMON_TEMPLATE_ATTRIBUTE, tag::COMMON_ATTRIBUTES)?;
        let private = Self::attributes(
            p,
            tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
            tag::PRIVATE_KEY_ATTRIBUTES,
        )?;
        let public = Self::attributes(
            p,
            tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
            tag::PUBLIC_KEY_ATTRIBUTES,
        )?;
        let all: Vec<&Attribute> = common.iter().chain(&private).chain(&public).collect();
        // Ed25519 has one length; clients may leave it out.
        let (algorithm, length) = key_spec(&all, Some((cryptographic_algorithm::ED25519, 256)))?;
        let (pkcs8, spki) = crypto::generate_pair(algorithm, length)?;
        let now = self.now();
        // A template's Name names the pair: keep it on the private key only, as names are unique.
        common.retain(|a| a.value.tag != tag::NAME);
        let with =
            |own: &[Attribute]| -> Vec<Attribute> { common.iter().chain(own).cloned().collect() };
        let ks = &self.kmip.reg.keystore;
        let private_object = key_object(
            tag::PRIVATE_KEY,
            key_format_type::PKCS_8,
            &pkcs8,
            algorithm,
            length,
        );
        let public_object = key_object(
            tag::PUBLIC_KEY,
            key_format_type::X_509,
            &spki,
            algorithm,
            length,
        );
        let mut sk = Managed::new(
            ks,
            &self.actor.principal,
            &private_object,
            object_type::PRIVATE_KEY,
            with(&private),
            now,
        )?
        .generated();
        let mut pk = Managed::new(
            ks,
            &self.actor.principal,
            &public_object,
            object_type::PUBLIC_KEY,
            with(&public),
            now,
        )?
        .generated();
        sk.set(link(shedu_kmip::link_type::PUBLIC_KEY_LINK, &pk.uid));
        pk.set(link(shedu_kmip::link_type::PRIVATE_KEY_LINK, &sk.uid));
        self.store_new(&[&sk, &pk]).await?;
        Ok(Out {
            payload: payload(vec![
                Ttlv::text(tag::PRIVATE_KEY_UNIQUE_IDENTIFIER, sk.uid.clone()),
                Ttlv::text(tag::PUBLIC_KEY_UNIQUE_IDENTIFIER, pk.uid.clone()),
            ]),
            target: Some(sk.uid),
        })
    }

    async fn encrypt(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let Use { m, object, data } = self
            .prepare(p, batch, &[state::ACTIVE], usage::ENCRYPT)
            .await?;
        let sealed = crypto::aes_encrypt(&Self::aes(p, &object, data)?)?;
        let mut items = vec![Ttlv::bytes(tag::DATA, sealed.data)];
        if p.child(tag::IV_COUNTER_NONCE).is_none() {
            items.push(Ttlv::bytes(tag::IV_COUNTER_NONCE, sealed.iv));
        }
        if let Some(t) = sealed.tag {
            items.push(Ttlv::bytes(tag::AUTHENTICATED_ENCRYPTION_TAG, t));
        }
        Ok(answer(m.uid, items))
    }

    async fn decrypt(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let Use { m, object, data } = self
            .prepare(p, batch, USABLE_AFTER_REVOKE, usage::DECRYPT)
            .await?;
        let plain = crypto::aes_decrypt(
            &Self::aes(p, &object, data)?,
            Self::bytes(
                p,
                tag::AUTHENTICATED_ENCRYPTION_TAG,
                "Authenticated Encryption Tag",
            )?,
        )?;
        Ok(answer(m.uid, vec![Ttlv::bytes(tag::DATA, plain)]))
    }

    async fn sign(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let Use { m, object, data } = self
            .prepare(p, batch, &[state::ACTIVE], usage::SIGN)
            .await?;
        expect_type(&m, object_type::PRIVATE_KEY, "Sign needs a private key")?;
        let sig = crypto::sign(
            Self::material(&object)?,
            Self::algorithm(&m),
            Self::params(p)?,
            data,
        )?;
        Ok(answer(m.uid, vec![Ttlv::bytes(tag::SIGNATURE_DATA, sig)]))
    }

    async fn signature_verify(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let Use { m, object, data } = self
            .prepare(p, batch, USABLE_AFTER_REVOKE, usage::VERIFY)
            .await?;
        expect_type(
            &m,
            object_type::PUBLIC_KEY,
            "Signature Verify needs a public key",
        )?;
        let sig = Self::bytes(p, tag::SIGNATURE_DATA, "Signature Data")?.ok_or(Failure::new(
            result_reason::MISSING_DATA,
            "no Signature Data",
        ))?;
        let valid = crypto::verify(
            Self::material(&object)?,
            Self::algorithm(&m),
            Self::params(p)?,
            data,
            sig,
        )?;
        let indicator = if valid {
            shedu_kmip::validity_indicator::VALID
        } else {
            shedu_kmip::validity_indicator::INVALID
        };
        Ok(answer(
            m.uid,
            vec![Ttlv::enumeration(tag::VALIDITY_INDICATOR, indicator)],
        ))
    }

    async fn mac(&self, p: &Ttlv, batch: &Batch) -> Result<Out, Failure> {
        let Use { m, object, data } = self
            .prepare(p, batch, &[state::ACTIVE], usage::MAC_GENERATE)
            .await?;
        let asked = p
            .child(tag::CRYPTOGRAPHIC_PARAMETERS)
            .and_then(|c| c.child(tag::CRYPTOGRAPHIC_ALGORITHM))
            .map(|a| a.as_enum("Cryptographic Algorithm"))
            .transpose()?;
        if asked.unwrap_or(cryptographic_algorithm::HMAC_SHA256)
            != cryptographic_algorithm::HMAC_SHA256
        {
            return Err(Failure::new(
                result_reason::BAD_CRYPTOGRAPHIC_PARAMETERS,
                "MAC is HMAC-SHA256",
            ));
        }
        expect_type(&m, object_type::SYMMETRIC_KEY, "MAC needs a symmetric key")?;
        let mac = crypto::hmac_sha256(Self::material(&object)?, data);
        Ok(answer(m.uid, vec![Ttlv::bytes(tag::MAC_DATA, mac)]))
    }
}

/// A new random symmetric key object of `algorithm` and `length` bits. AES keys have their three
/// lengths; other symmetric algorithms (HMAC keys, and ciphers shedu stores but does not run, such as
/// 3DES or IDEA) get random bytes of the asked length.
fn symmetric_key(algorithm: u32, length: i32) -> Result<Ttlv, Failure> {
    use cryptographic_algorithm as alg;
    let valid = match algorithm {
        alg::AES => matches!(length, 128 | 192 | 256),
        alg::RSA | alg::DSA | alg::ECDSA | alg::EC | alg::DH | alg::ECDH | alg::ECMQV => false,
        alg::ED25519 | alg::ED448 => false,
        _ => (64..=4096).contains(&length) && length % 8 == 0,
    };
    if !valid {
        return Err(Failure::invalid(format!(
            "cannot create a {}-bit {} key",
            length,
            shedu_kmip::enum_name(tag::CRYPTOGRAPHIC_ALGORITHM, algorithm).unwrap_or("?")
        )));
    }
    let mut key = zeroize::Zeroizing::new(vec![0u8; usize::try_from(length / 8).unwrap_or(0)]);
    aws_lc_rs::rand::fill(&mut key).map_err(|_| Failure::general("no randomness"))?;
    Ok(key_object(
        tag::SYMMETRIC_KEY,
        key_format_type::RAW,
        &key,
        algorithm,
        length,
    ))
}

/// Whether the object matches every Locate filter. Two instances of a date attribute are a range, both
/// ends included (KMIP 1.4 §4.9).
fn located(m: &Managed, filters: &[Attribute]) -> bool {
    filters.iter().enumerate().all(|(i, f)| {
        let same: Vec<&Attribute> = filters
            .iter()
            .filter(|g| g.value.tag == f.value.tag)
            .collect();
        match (&f.value.value, same.as_slice()) {
            (Value::DateTime(_), [a, b]) => {
                let (Ok(x), Ok(y)) = (a.value.as_date(""), b.value.as_date("")) else {
                    return false;
                };
                // Judge the pair once, at its first instance.
                if filters.iter().position(|g| g.value.tag == f.value.tag) != Some(i) {
                    return true;
                }
                m.attr(f.value.tag)
                    .and_then(|v| v.as_date("").ok())
                    .is_some_and(|d| x.min(y) <= d && d <= x.max(y))
            }
            _ => matches(m, f),
        }
    })
}

/// Whether the object has an attribute equal to the filter (a Name by its text, a custom attribute by
/// its name and value, Cosmian's tags as a subset: see [`cosmian_tags`]).
fn matches(m: &Managed, filter: &Attribute) -> bool {
    if filter.value.tag == tag::VENDOR_ATTRIBUTES {
        return vendor_attributes_match(m, &filter.value);
    }
    m.attributes.iter().any(|a| {
        a.value.tag == filter.value.tag
            && if a.value.tag == tag::ATTRIBUTE_VALUE {
                // A KMIP 1.x custom attribute (`x-…`): the same name and value.
                a.name == filter.name && a.value.value == filter.value.value
            } else if a.value.tag == tag::NAME {
                name_text(&a.value) == name_text(&filter.value)
            } else if a.value.tag == tag::CRYPTOGRAPHIC_USAGE_MASK {
                match (&a.value.value, &filter.value.value) {
                    (Value::Integer(have), Value::Integer(want)) => have & want == *want,
                    _ => false,
                }
            } else {
                a.value.value == filter.value.value
            }
    })
}

/// Whether every vendor attribute of a Locate filter's `VendorAttributes` list is the object's: Cosmian's
/// tags (vendor `cosmian`, name `tag`, a JSON array of strings) when the object carries each of them,
/// its system tags included (`_kk` symmetric keys, `_sk` private keys, `_pk` public keys, `_cert`
/// certificates, as Cosmian's KMS tags them); any other vendor attribute when the object has it, equal.
fn vendor_attributes_match(m: &Managed, filter: &Ttlv) -> bool {
    let have: Vec<&Ttlv> = m
        .attributes
        .iter()
        .filter(|a| a.value.tag == tag::VENDOR_ATTRIBUTES)
        .flat_map(|a| a.value.items())
        .collect();
    let owned = cosmian_tags(m);
    filter.items().iter().all(|wanted| match tags_of(wanted) {
        Some(tags) => tags.iter().all(|t| owned.contains(t)),
        None => have.contains(&wanted),
    })
}

/// The Cosmian tags of an object: its system tag and those of its `tag` vendor attributes.
fn cosmian_tags(m: &Managed) -> Vec<String> {
    let system = match m.object_type {
        object_type::SYMMETRIC_KEY => Some("_kk"),
        object_type::PRIVATE_KEY => Some("_sk"),
        object_type::PUBLIC_KEY => Some("_pk"),
        object_type::CERTIFICATE => Some("_cert"),
        _ => None,
    };
    m.attributes
        .iter()
        .filter(|a| a.value.tag == tag::VENDOR_ATTRIBUTES)
        .flat_map(|a| a.value.items())
        .filter_map(tags_of)
        .flatten()
        .chain(system.map(str::to_owned))
        .collect()
}

/// The tags a vendor attribute carries, if it is Cosmian's `tag` attribute: its value (bytes or text)
/// is a JSON array of strings.
fn tags_of(vendor_attribute: &Ttlv) -> Option<Vec<String>> {
    let text = |t: u32| match &vendor_attribute.child(t)?.value {
        Value::TextString(s) => Some(s.as_str()),
        _ => None,
    };
    if !text(tag::VENDOR_IDENTIFICATION)?.eq_ignore_ascii_case("cosmian")
        || text(tag::ATTRIBUTE_NAME)? != "tag"
    {
        return None;
    }
    let json: &[u8] = match &vendor_attribute.child(tag::ATTRIBUTE_VALUE)?.value {
        Value::ByteString(b) => b,
        Value::TextString(s) => s.as_bytes(),
        _ => return None,
    };
    serde_json::from_slice(json).ok()
}

/// A key ready for a cryptographic operation.
struct Use<'p> {
    m: Managed,
    object: Ttlv,
    data: &'p [u8],
}

/// States in which Decrypt and Signature Verify still work (old data must stay readable).
const USABLE_AFTER_REVOKE: &[u32] = &[state::ACTIVE, state::DEACTIVATED, state::COMPROMISED];

/// Cryptographic Usage Mask bits.
use shedu_kmip::cryptographic_usage_mask as usage;

/// A Link attribute value.
fn link(link_type: u32, uid: &str) -> Ttlv {
    Ttlv::structure(
        tag::LINK,
        vec![
            Ttlv::enumeration(tag::LINK_TYPE, link_type),
            Ttlv::text(tag::LINKED_OBJECT_IDENTIFIER, uid),
        ],
    )
}

/// What a client hears when writing objects failed: another request changed them first (retry), or the
/// database is unavailable.
pub(super) fn write_failure(e: shedu_store::Error) -> Failure {
    match e {
        shedu_store::Error::Conflict { .. } => {
            Failure::state("the object changed meanwhile; retry")
        }
        _ => Failure::general("storage unavailable"),
    }
}

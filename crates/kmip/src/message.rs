//! Request and response messages (KMIP 1.4 §7, KMIP 2.1 §8): a header and batch items. Payloads stay
//! [`Ttlv`] structures; what each operation's payload holds is read by the server's operations.

use crate::Error;
use crate::names::{result_status, tag};
use crate::ttlv::{Ttlv, Value};

/// A protocol version (major, minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProtocolVersion {
    /// Protocol Version Major.
    pub major: i32,
    /// Protocol Version Minor.
    pub minor: i32,
}

impl ProtocolVersion {
    /// KMIP 1.0, the version answered when a request's own cannot be read.
    pub const V1_0: Self = Self { major: 1, minor: 0 };

    /// Whether attributes travel in KMIP 2's form (tagged items in an `Attributes` structure) rather
    /// than KMIP 1's (`Attribute` structures with a name).
    pub fn is_v2(self) -> bool {
        self.major >= 2
    }

    /// Reads a Protocol Version structure.
    pub fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        Ok(Self {
            major: item
                .require(tag::PROTOCOL_VERSION_MAJOR, "Protocol Version Major")?
                .as_int("Protocol Version Major")?,
            minor: item
                .require(tag::PROTOCOL_VERSION_MINOR, "Protocol Version Minor")?
                .as_int("Protocol Version Minor")?,
        })
    }

    /// The Protocol Version structure.
    pub fn to_ttlv(self) -> Ttlv {
        Ttlv::structure(
            tag::PROTOCOL_VERSION,
            vec![
                Ttlv::integer(tag::PROTOCOL_VERSION_MAJOR, self.major),
                Ttlv::integer(tag::PROTOCOL_VERSION_MINOR, self.minor),
            ],
        )
    }
}

/// A Request Message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMessage {
    /// The request's protocol version; the response answers in it.
    pub protocol_version: ProtocolVersion,
    /// Maximum Response Size, if the client set one.
    pub maximum_response_size: Option<i32>,
    /// Batch Error Continuation Option (Stop when absent).
    pub batch_error_continuation: Option<u32>,
    /// The batch items, in order.
    pub batch_items: Vec<RequestBatchItem>,
}

/// One operation of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBatchItem {
    /// The Operation enumeration (see [`crate::operation`]).
    pub operation: u32,
    /// Unique Batch Item ID, echoed in the response.
    pub unique_batch_item_id: Option<Vec<u8>>,
    /// The Request Payload structure (an empty one when absent).
    pub payload: Ttlv,
}

impl RequestMessage {
    /// The protocol version of whatever request header can be found in `item`, to answer a malformed
    /// message in its own version when possible.
    pub fn version_hint(item: &Ttlv) -> Option<ProtocolVersion> {
        let header = item.child(tag::REQUEST_HEADER)?;
        ProtocolVersion::from_ttlv(header.child(tag::PROTOCOL_VERSION)?).ok()
    }

    /// Reads a Request Message.
    pub fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        if item.tag != tag::REQUEST_MESSAGE || !matches!(item.value, Value::Structure(_)) {
            return Err(Error::Invalid {
                what: "Request Message",
            });
        }
        let header = item.require(tag::REQUEST_HEADER, "Request Header")?;
        let protocol_version =
            ProtocolVersion::from_ttlv(header.require(tag::PROTOCOL_VERSION, "Protocol Version")?)?;
        let batch_count = header
            .require(tag::BATCH_COUNT, "Batch Count")?
            .as_int("Batch Count")?;
        let maximum_response_size = header
            .child(tag::MAXIMUM_RESPONSE_SIZE)
            .map(|i| i.as_int("Maximum Response Size"))
            .transpose()?;
        let batch_error_continuation = header
            .child(tag::BATCH_ERROR_CONTINUATION_OPTION)
            .map(|i| i.as_enum("Batch Error Continuation Option"))
            .transpose()?;
        let batch_items = item
            .children(tag::BATCH_ITEM)
            .map(|b| {
                Ok(RequestBatchItem {
                    operation: b
                        .require(tag::OPERATION, "Operation")?
                        .as_enum("Operation")?,
                    unique_batch_item_id: b
                        .child(tag::UNIQUE_BATCH_ITEM_ID)
                        .map(|i| i.as_bytes("Unique Batch Item ID").map(<[u8]>::to_vec))
                        .transpose()?,
                    payload: b
                        .child(tag::REQUEST_PAYLOAD)
                        .cloned()
                        .unwrap_or_else(|| Ttlv::structure(tag::REQUEST_PAYLOAD, vec![])),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if batch_items.is_empty() || usize::try_from(batch_count).ok() != Some(batch_items.len()) {
            return Err(Error::Invalid {
                what: "Batch Count",
            });
        }
        Ok(Self {
            protocol_version,
            maximum_response_size,
            batch_error_continuation,
            batch_items,
        })
    }

    /// The Request Message structure.
    pub fn to_ttlv(&self) -> Ttlv {
        let mut header = vec![self.protocol_version.to_ttlv()];
        if let Some(size) = self.maximum_response_size {
            header.push(Ttlv::integer(tag::MAXIMUM_RESPONSE_SIZE, size));
        }
        if let Some(option) = self.batch_error_continuation {
            header.push(Ttlv::enumeration(
                tag::BATCH_ERROR_CONTINUATION_OPTION,
                option,
            ));
        }
        header.push(Ttlv::integer(
            tag::BATCH_COUNT,
            count(self.batch_items.len()),
        ));
        let mut items = vec![Ttlv::structure(tag::REQUEST_HEADER, header)];
        for b in &self.batch_items {
            let mut fields = vec![Ttlv::enumeration(tag::OPERATION, b.operation)];
            if let Some(id) = &b.unique_batch_item_id {
                fields.push(Ttlv::bytes(tag::UNIQUE_BATCH_ITEM_ID, id.clone()));
            }
            fields.push(b.payload.clone());
            items.push(Ttlv::structure(tag::BATCH_ITEM, fields));
        }
        Ttlv::structure(tag::REQUEST_MESSAGE, items)
    }
}

/// A Response Message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMessage {
    /// The version answered in (the request's).
    pub protocol_version: ProtocolVersion,
    /// Time Stamp, seconds since the epoch.
    pub time_stamp: i64,
    /// The batch items, in the request's order.
    pub batch_items: Vec<ResponseBatchItem>,
}

/// The result of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBatchItem {
    /// The request's Operation (absent when the request could not be read).
    pub operation: Option<u32>,
    /// The request's Unique Batch Item ID.
    pub unique_batch_item_id: Option<Vec<u8>>,
    /// Result Status (see [`crate::result_status`]).
    pub result_status: u32,
    /// Result Reason, on failure (see [`crate::result_reason`]).
    pub result_reason: Option<u32>,
    /// Result Message, on failure: for a human.
    pub result_message: Option<String>,
    /// The Response Payload, on success.
    pub payload: Option<Ttlv>,
}

impl ResponseBatchItem {
    /// A success with `payload` (whose tag is set to Response Payload).
    pub fn success(operation: u32, id: Option<Vec<u8>>, mut payload: Ttlv) -> Self {
        payload.tag = tag::RESPONSE_PAYLOAD;
        Self {
            operation: Some(operation),
            unique_batch_item_id: id,
            result_status: result_status::SUCCESS,
            result_reason: None,
            result_message: None,
            payload: Some(payload),
        }
    }

    /// An Operation Failed result with `reason` (see [`crate::result_reason`]) and a message.
    pub fn failure(
        operation: Option<u32>,
        id: Option<Vec<u8>>,
        reason: u32,
        message: impl Into<String>,
    ) -> Self {
        Self {
            operation,
            unique_batch_item_id: id,
            result_status: result_status::OPERATION_FAILED,
            result_reason: Some(reason),
            result_message: Some(message.into()),
            payload: None,
        }
    }
}

impl ResponseMessage {
    /// The Response Message structure.
    pub fn to_ttlv(&self) -> Ttlv {
        let header = Ttlv::structure(
            tag::RESPONSE_HEADER,
            vec![
                self.protocol_version.to_ttlv(),
                Ttlv::new(tag::TIME_STAMP, Value::DateTime(self.time_stamp)),
                Ttlv::integer(tag::BATCH_COUNT, count(self.batch_items.len())),
            ],
        );
        let mut items = vec![header];
        for b in &self.batch_items {
            let mut fields = Vec::new();
            if let Some(op) = b.operation {
                fields.push(Ttlv::enumeration(tag::OPERATION, op));
            }
            if let Some(id) = &b.unique_batch_item_id {
                fields.push(Ttlv::bytes(tag::UNIQUE_BATCH_ITEM_ID, id.clone()));
            }
            fields.push(Ttlv::enumeration(tag::RESULT_STATUS, b.result_status));
            if let Some(reason) = b.result_reason {
                fields.push(Ttlv::enumeration(tag::RESULT_REASON, reason));
            }
            if let Some(message) = &b.result_message {
                fields.push(Ttlv::text(tag::RESULT_MESSAGE, message.clone()));
            }
            if let Some(payload) = &b.payload {
                fields.push(payload.clone());
            }
            items.push(Ttlv::structure(tag::BATCH_ITEM, fields));
        }
        Ttlv::structure(tag::RESPONSE_MESSAGE, items)
    }

    /// Reads a Response Message (what a client does; used by tests and the JSON front-end).
    pub fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        if item.tag != tag::RESPONSE_MESSAGE {
            return Err(Error::Invalid {
                what: "Response Message",
            });
        }
        let header = item.require(tag::RESPONSE_HEADER, "Response Header")?;
        let batch_items = item
            .children(tag::BATCH_ITEM)
            .map(|b| {
                Ok(ResponseBatchItem {
                    operation: b
                        .child(tag::OPERATION)
                        .map(|i| i.as_enum("Operation"))
                        .transpose()?,
                    unique_batch_item_id: b
                        .child(tag::UNIQUE_BATCH_ITEM_ID)
                        .map(|i| i.as_bytes("Unique Batch Item ID").map(<[u8]>::to_vec))
                        .transpose()?,
                    result_status: b
                        .require(tag::RESULT_STATUS, "Result Status")?
                        .as_enum("Result Status")?,
                    result_reason: b
                        .child(tag::RESULT_REASON)
                        .map(|i| i.as_enum("Result Reason"))
                        .transpose()?,
                    result_message: b
                        .child(tag::RESULT_MESSAGE)
                        .map(|i| i.as_text("Result Message").map(str::to_owned))
                        .transpose()?,
                    payload: b.child(tag::RESPONSE_PAYLOAD).cloned(),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self {
            protocol_version: ProtocolVersion::from_ttlv(
                header.require(tag::PROTOCOL_VERSION, "Protocol Version")?,
            )?,
            time_stamp: header
                .require(tag::TIME_STAMP, "Time Stamp")?
                .as_date("Time Stamp")?,
            batch_items,
        })
    }
}

/// A batch count: messages are bounded far below `i32::MAX` items by their size limit.
fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

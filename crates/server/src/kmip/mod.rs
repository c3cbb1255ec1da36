//! KMIP: the binary TTLV listener over TLS ([`listener`]) and the JSON and binary TTLV routes of the
//! HTTPS listener ([`http`]).

pub(crate) mod http;
mod listener;

pub(crate) use listener::{serve, tls_config};

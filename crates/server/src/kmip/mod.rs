//! KMIP: the binary TTLV listener over TLS ([`listener`]).

mod listener;

pub(crate) use listener::{serve, tls_config};

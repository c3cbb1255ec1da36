//! NATS JetStream sink: each event becomes one message on `<prefix>.<type>` in a stream the sink ensures,
//! with `Nats-Msg-Id` = the event id so JetStream drops redeliveries inside its duplicate window.
//!
//! The connection is made lazily on the first batch (and again after an error), so a bus that is down at
//! startup delays delivery instead of failing the server. Publishes of a batch are pipelined and the
//! acknowledgements awaited afterwards: a batch counts as delivered only when every message is stored.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::dispatcher::{Sink, SinkError};
use crate::{CLOUDEVENTS_JSON, CloudEvent, Error};

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// JetStream stream to ensure (created if missing; an existing stream is used as it is).
    pub stream: String,
    /// Subject prefix: events go to `<prefix>.<type>`; the stream captures `<prefix>.>`.
    pub subject_prefix: String,
    /// Duplicate-detection window of a stream this sink creates.
    pub duplicate_window: Duration,
    /// Connect and acknowledgement timeout.
    pub timeout: Duration,
}

impl NatsOptions {
    /// Options for `url` with the defaults (`SHEDU`, `shedu`). The URL may carry `?stream=…&subject_prefix=…`.
    pub fn from_url(url: &str) -> Result<NatsOptions, Error> {
        let (base, params) = crate::split_query(url);
        let mut o = NatsOptions {
            url: base.to_string(),
            stream: "SHEDU".into(),
            subject_prefix: "shedu".into(),
            duplicate_window: Duration::from_secs(120),
            timeout: Duration::from_secs(5),
        };
        for (k, v) in params {
            match k.as_str() {
                "stream" => o.stream = v,
                "subject_prefix" => o.subject_prefix = v,
                _ => {
                    return Err(Error::Config(format!(
                        "unknown NATS URL parameter {k:?} (known: stream, subject_prefix)"
                    )));
                }
            }
        }
        if o.stream.is_empty() || o.stream.contains(['.', ' ', '*', '>']) {
            return Err(Error::Config(format!(
                "invalid NATS stream name {:?}",
                o.stream
            )));
        }
        if o.subject_prefix.is_empty() || o.subject_prefix.contains([' ', '*', '>']) {
            return Err(Error::Config(format!(
                "invalid NATS subject prefix {:?}",
                o.subject_prefix
            )));
        }
        Ok(o)
    }
}

/// Publishes events to NATS JetStream.
#[derive(Debug)]
pub struct NatsSink {
    name: String,
    opts: NatsOptions,
    state: Mutex<Option<jetstream::Context>>,
    /// The readiness probe's own connection (made on the first probe, dropped after a failed one).
    probe: Mutex<Option<async_nats::Client>>,
}

impl NatsSink {
    /// A sink named `nats:<stream>`. Does not connect yet.
    pub fn new(opts: NatsOptions) -> NatsSink {
        NatsSink {
            name: format!("nats:{}", opts.stream),
            opts,
            state: Mutex::new(None),
            probe: Mutex::new(None),
        }
    }

    /// The subject an event type is published on.
    pub fn subject_for(&self, ty: &str) -> String {
        let t: String = ty
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}.{}", self.opts.subject_prefix, t.trim_matches('.'))
    }

    async fn connect(&self) -> Result<jetstream::Context, SinkError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(self.opts.timeout)
            .connect(self.opts.url.as_str())
            .await
            .map_err(|e| SinkError(format!("NATS connect to {}: {e}", self.opts.url)))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(self.opts.timeout)
            .backpressure_on_inflight(true)
            .build(client);
        js.get_or_create_stream(jetstream::stream::Config {
            name: self.opts.stream.clone(),
            subjects: vec![format!("{}.>", self.opts.subject_prefix)],
            duplicate_window: self.opts.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|e| SinkError(format!("NATS stream {}: {e}", self.opts.stream)))?;
        Ok(js)
    }
}

#[async_trait]
impl Sink for NatsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn probes(&self) -> bool {
        true
    }

    /// A JetStream API request (`$JS.API.INFO`): the server answers and JetStream runs (any answer will
    /// do: the stream itself is ensured by whichever replica dispatches).
    async fn probe(&self) -> Result<(), SinkError> {
        let mut probe = self.probe.lock().await;
        // A client that lost its server reconnects on its own schedule (with back-off): start afresh
        // instead, so a bus that is back is seen at the next probe.
        if probe
            .as_ref()
            .is_some_and(|c| c.connection_state() != async_nats::connection::State::Connected)
        {
            *probe = None;
        }
        let client = match probe.as_ref() {
            Some(c) => c.clone(),
            None => {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(self.opts.timeout)
                    .request_timeout(Some(self.opts.timeout))
                    .connect(self.opts.url.as_str())
                    .await
                    .map_err(|e| SinkError(format!("NATS connect to {}: {e}", self.opts.url)))?;
                *probe = Some(client.clone());
                client
            }
        };
        if let Err(e) = client.request("$JS.API.INFO", "".into()).await {
            *probe = None;
            return Err(SinkError(format!("NATS JetStream: {e}")));
        }
        Ok(())
    }

    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), SinkError> {
        let mut state = self.state.lock().await;
        let js = match state.as_ref() {
            Some(js) => js.clone(),
            None => {
                let js = self.connect().await?;
                *state = Some(js.clone());
                js
            }
        };
        let result = async {
            let mut acks = Vec::with_capacity(events.len());
            for e in events {
                let msg = PublishMessage::build()
                    .payload(e.to_json().into())
                    .message_id(&e.id)
                    .header("Content-Type", CLOUDEVENTS_JSON);
                let ack = js
                    .send_publish(self.subject_for(&e.ty), msg)
                    .await
                    .map_err(|err| SinkError(format!("NATS publish: {err}")))?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await
                    .map_err(|err| SinkError(format!("NATS publish ack: {err}")))?;
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            // Reconnect and re-ensure the stream next time (it may have been deleted).
            *state = None;
        }
        result
    }
}

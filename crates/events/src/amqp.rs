//! RabbitMQ (AMQP 0-9-1) sink: each event is a persistent message on a durable topic exchange, routed by
//! event type, with `message_id` = the event id and content type `application/cloudevents+json`.
//!
//! Publisher confirms make "delivered" mean "the broker took responsibility": a batch is published
//! pipelined and counts as delivered only when every confirm is an ack. The connection is made lazily and
//! dropped after any error, so the next attempt starts from a clean channel.

use async_trait::async_trait;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;

use crate::dispatcher::{Sink, SinkError};
use crate::{CLOUDEVENTS_JSON, CloudEvent, Error};

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct AmqpOptions {
    /// Broker URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f` (lapin's own query parameters pass through).
    pub url: String,
    /// The durable topic exchange to declare and publish to.
    pub exchange: String,
}

impl AmqpOptions {
    /// Options for `url`; `?exchange=…` overrides the default `shedu.events`.
    pub fn from_url(url: &str) -> Result<AmqpOptions, Error> {
        let (base, params) = crate::split_query(url);
        let mut exchange = "shedu.events".to_string();
        let mut rest = Vec::new();
        for (k, v) in params {
            if k == "exchange" {
                exchange = v;
            } else {
                rest.push(format!("{k}={v}"));
            }
        }
        if exchange.is_empty() {
            return Err(Error::Config("empty AMQP exchange name".into()));
        }
        let url = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok(AmqpOptions { url, exchange })
    }
}

/// Publishes events to a RabbitMQ topic exchange.
pub struct AmqpSink {
    name: String,
    opts: AmqpOptions,
    state: Mutex<Option<(Connection, Channel)>>,
    /// The readiness probe's own connection (made on the first probe, dropped after a failed one).
    probe: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for AmqpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSink")
            .field("name", &self.name)
            .field("exchange", &self.opts.exchange)
            .finish()
    }
}

impl AmqpSink {
    /// A sink named `amqp:<exchange>`. Does not connect yet.
    pub fn new(opts: AmqpOptions) -> AmqpSink {
        AmqpSink {
            name: format!("amqp:{}", opts.exchange),
            opts,
            state: Mutex::new(None),
            probe: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<(Connection, Channel), SinkError> {
        let redacted = shedu_store::redact_url(&self.opts.url);
        let conn = Connection::connect(&self.opts.url, ConnectionProperties::default())
            .await
            .map_err(|e| SinkError(format!("AMQP connect to {redacted}: {e}")))?;
        let ch = conn
            .create_channel()
            .await
            .map_err(|e| SinkError(format!("AMQP channel: {e}")))?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| SinkError(format!("AMQP confirm.select: {e}")))?;
        ch.exchange_declare(
            self.opts.exchange.clone().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| SinkError(format!("AMQP exchange {}: {e}", self.opts.exchange)))?;
        Ok((conn, ch))
    }
}

#[async_trait]
impl Sink for AmqpSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn probes(&self) -> bool {
        true
    }

    /// Opens and closes a channel: a round trip the broker must answer.
    async fn probe(&self) -> Result<(), SinkError> {
        let mut probe = self.probe.lock().await;
        if !probe.as_ref().is_some_and(|c| c.status().connected()) {
            let redacted = shedu_store::redact_url(&self.opts.url);
            let conn = Connection::connect(&self.opts.url, ConnectionProperties::default())
                .await
                .map_err(|e| SinkError(format!("AMQP connect to {redacted}: {e}")))?;
            *probe = Some(conn);
        }
        let Some(conn) = probe.as_ref() else {
            return Err(SinkError::new("AMQP not connected"));
        };
        let round_trip = async {
            let ch = conn.create_channel().await?;
            ch.close(200, "probe".into()).await
        }
        .await;
        if let Err(e) = round_trip {
            *probe = None;
            return Err(SinkError(format!("AMQP: {e}")));
        }
        Ok(())
    }

    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), SinkError> {
        let mut state = self.state.lock().await;
        if state.is_none() {
            *state = Some(self.connect().await?);
        }
        let Some((_, ch)) = state.as_ref() else {
            return Err(SinkError::new("AMQP not connected"));
        };
        let result = async {
            let mut confirms = Vec::with_capacity(events.len());
            for e in events {
                let props = BasicProperties::default()
                    .with_message_id(e.id.clone().into())
                    .with_content_type(CLOUDEVENTS_JSON.into())
                    .with_type(e.ty.clone().into())
                    .with_delivery_mode(2);
                let confirm = ch
                    .basic_publish(
                        self.opts.exchange.clone().into(),
                        e.ty.clone().into(),
                        BasicPublishOptions::default(),
                        &e.to_json(),
                        props,
                    )
                    .await
                    .map_err(|err| SinkError(format!("AMQP publish: {err}")))?;
                confirms.push(confirm);
            }
            for c in confirms {
                let conf = c
                    .await
                    .map_err(|err| SinkError(format!("AMQP confirm: {err}")))?;
                if !conf.is_ack() {
                    return Err(SinkError::new("AMQP broker nacked a message"));
                }
            }
            Ok(())
        }
        .await;
        if result.is_err()
            && let Some((conn, _)) = state.take()
        {
            let _ = conn.close(200, "reconnecting".into()).await;
        }
        result
    }
}

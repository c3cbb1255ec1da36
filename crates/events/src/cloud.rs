//! The `cloud` sink: hands certificate events to the cloud connectors ([`shedu_core::Cloud::enqueue`]),
//! which queue one sync item per bound connector, idempotently (an event offered twice queues nothing new),
//! so the cursor can move right after; the connectors' worker does the slow part, with its own retries.

use std::sync::Arc;

use async_trait::async_trait;
use shedu_core::{CLOUD_SINK, Cloud};

use crate::CloudEvent;
use crate::dispatcher::{Sink, SinkError};

pub(crate) struct CloudSink {
    pub(crate) cloud: Arc<Cloud>,
}

#[async_trait]
impl Sink for CloudSink {
    fn name(&self) -> &str {
        CLOUD_SINK
    }

    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), SinkError> {
        let batch: Vec<(&str, &serde_json::Value)> =
            events.iter().map(|e| (e.ty.as_str(), &e.data)).collect();
        self.cloud
            .enqueue(&batch)
            .await
            .map(|_| ())
            .map_err(SinkError::new)
    }
}

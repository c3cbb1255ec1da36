//! Is the event bus reachable from this replica? A task probes every configured bus (one round trip over a
//! connection of its own, apart from the one the sink publishes on: only one replica at a time dispatches a
//! sink) and keeps the last answer, so `/ready` reads a remembered state instead of dialling the bus at every
//! health check of the balancer.
//!
//! The outbox makes a bus outage lose nothing (events wait in the database), so whether an unreachable bus
//! makes a replica unready is the operator's choice (`--ready-bus`), and the state is always shown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::dispatcher::Sink;

/// How often each bus is probed, and how long a probe may take. A bus that goes away is seen within
/// `PROBE_INTERVAL + PROBE_TIMEOUT`; one that comes back, within `PROBE_INTERVAL` plus its connect time.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// See [`PROBE_INTERVAL`].
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the last probe of one bus found (as `/ready` lists it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BusState {
    /// The sink's name (`nats:SHEDU`, `amqp:shedu.events`): no URL, so no credentials.
    pub sink: String,
    /// The last probe answered in time.
    pub reachable: bool,
    /// Why the last probe failed; `None` when reachable or not probed yet.
    pub error: Option<String>,
    /// Milliseconds since the last probe ended; `None` before the first one.
    pub checked_ms_ago: Option<u64>,
}

#[derive(Debug)]
struct Entry {
    sink: String,
    last: Option<(Instant, Result<(), String>)>,
}

/// The remembered reachability of every configured bus (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct BusHealth {
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl BusHealth {
    fn new(sinks: &[Arc<dyn Sink>]) -> BusHealth {
        BusHealth {
            entries: Arc::new(Mutex::new(
                sinks
                    .iter()
                    .map(|s| Entry {
                        sink: s.name().to_string(),
                        last: None,
                    })
                    .collect(),
            )),
        }
    }

    fn record(&self, index: usize, result: Result<(), String>) {
        let up = result.is_ok();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = entries.get_mut(index) {
            metrics::gauge!("shedu_bus_up", "sink" => e.sink.clone()).set(if up {
                1.0
            } else {
                0.0
            });
            e.last = Some((Instant::now(), result));
        }
    }

    /// Every configured bus, in configuration order (empty without buses).
    pub fn states(&self) -> Vec<BusState> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .map(|e| {
                let fresh = e
                    .last
                    .as_ref()
                    .map(|(at, _)| at.elapsed() <= PROBE_INTERVAL + PROBE_TIMEOUT * 2);
                let (reachable, error) = match (&e.last, fresh) {
                    (Some((_, Ok(()))), Some(true)) => (true, None),
                    (Some((_, Ok(()))), _) => (false, Some("the probe stopped answering".into())),
                    (Some((_, Err(err))), _) => (false, Some(err.clone())),
                    (None, _) => (false, None),
                };
                BusState {
                    sink: e.sink.clone(),
                    reachable,
                    error,
                    checked_ms_ago: e
                        .last
                        .as_ref()
                        .map(|(at, _)| u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)),
                }
            })
            .collect()
    }

    /// `Ok` when every bus answered its last probe (in time); else why not, naming the first bus that did
    /// not (by sink name: never a URL).
    pub fn ready(&self) -> Result<(), String> {
        BusHealth::verdict(&self.states())
    }

    /// [`BusHealth::ready`] over states already read.
    pub fn verdict(states: &[BusState]) -> Result<(), String> {
        match states.iter().find(|s| !s.reachable) {
            None => Ok(()),
            Some(s) => Err(match &s.error {
                Some(e) => format!("the event bus {} is unreachable: {e}", s.sink),
                None => format!("the event bus {} has not been reached yet", s.sink),
            }),
        }
    }
}

/// Starts probing `sinks` (those with [`Sink::probe`]: the buses); ends when `shutdown` turns true.
pub(crate) fn spawn_probes(
    sinks: Vec<Arc<dyn Sink>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> (BusHealth, Option<tokio::task::JoinHandle<()>>) {
    let health = BusHealth::new(&sinks);
    if sinks.is_empty() {
        return (health, None);
    }
    let h = health.clone();
    let task = tokio::spawn(async move {
        loop {
            for (i, sink) in sinks.iter().enumerate() {
                let result = match tokio::time::timeout(PROBE_TIMEOUT, sink.probe()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.0),
                    Err(_) => Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
                };
                if let Err(e) = &result {
                    tracing::debug!(sink = sink.name(), error = %e, "event bus probe failed");
                }
                h.record(i, result);
            }
            tokio::select! {
                _ = tokio::time::sleep(PROBE_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
    (health, Some(task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CloudEvent;
    use crate::dispatcher::SinkError;
    use async_trait::async_trait;

    struct Flaky {
        up: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Sink for Flaky {
        fn name(&self) -> &str {
            "flaky:bus"
        }
        async fn deliver(&self, _: &[CloudEvent]) -> Result<(), SinkError> {
            Ok(())
        }
        async fn probe(&self) -> Result<(), SinkError> {
            if self.up.load(std::sync::atomic::Ordering::SeqCst) {
                Ok(())
            } else {
                Err(SinkError::new("connection refused"))
            }
        }
    }

    #[test]
    fn a_bus_is_ready_only_after_a_fresh_successful_probe() {
        let sink: Arc<dyn Sink> = Arc::new(Flaky { up: true.into() });
        let h = BusHealth::new(&[sink]);
        let e = h.ready().unwrap_err();
        assert!(
            e.contains("flaky:bus") && e.contains("not been reached"),
            "{e}"
        );
        h.record(0, Ok(()));
        assert_eq!(h.ready(), Ok(()));
        assert!(h.states()[0].reachable);
        h.record(0, Err("connection refused".into()));
        let e = h.ready().unwrap_err();
        assert!(e.contains("unreachable: connection refused"), "{e}");
        // A success that is too old (the probe task hung) is not believed.
        {
            let mut entries = h.entries.lock().unwrap();
            let stale = Instant::now()
                .checked_sub(PROBE_INTERVAL + PROBE_TIMEOUT * 3)
                .unwrap();
            entries[0].last = Some((stale, Ok(())));
        }
        let e = h.ready().unwrap_err();
        assert!(e.contains("stopped answering"), "{e}");
        assert!(BusHealth::default().ready().is_ok(), "no bus: ready");
    }

    #[tokio::test]
    async fn the_probe_task_follows_the_bus() {
        let flaky = Arc::new(Flaky { up: false.into() });
        let (tx, rx) = tokio::sync::watch::channel(false);
        let (h, task) = spawn_probes(vec![flaky.clone() as Arc<dyn Sink>], rx);
        let wait = |want: bool| {
            let h = h.clone();
            async move {
                let deadline = Instant::now() + PROBE_INTERVAL * 5;
                while h.states()[0].checked_ms_ago.is_none() || h.ready().is_ok() != want {
                    assert!(Instant::now() < deadline, "ready() never became {want}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        wait(false).await;
        assert_eq!(h.states()[0].error.as_deref(), Some("connection refused"));
        flaky.up.store(true, std::sync::atomic::Ordering::SeqCst);
        wait(true).await;
        tx.send(true).unwrap();
        task.unwrap().await.unwrap();
    }
}

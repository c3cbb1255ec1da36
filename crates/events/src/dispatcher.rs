//! The outbox dispatcher: one task per sink reads the `events` table in `seq` order from the sink's cursor,
//! hands batches to the sink, and moves the cursor only after the sink acknowledged them.
//!
//! Why it is shaped this way:
//! - **At-least-once.** A crash between the acknowledgement and the cursor update redelivers that batch;
//!   the CloudEvents `id` is stable, so consumers (and JetStream's `Nats-Msg-Id` window) de-duplicate.
//! - **Outages.** A failing sink is retried with capped exponential backoff on the *same* batch; the backlog
//!   stays in the outbox and drains in order when the sink comes back. Restarts resume from the cursor.
//! - **Replicas.** A durable sink is dispatched by one replica at a time: the task first takes the sink's
//!   lock ([`shedu_store::Store::try_lock_sink`], a PostgreSQL session advisory lock on a dedicated
//!   connection, so a crashed replica's lock dies with its connection — no lease expiry to tune). The others
//!   retry every few seconds and take over when it goes. Non-durable sinks (the in-process broadcast) run on
//!   every replica from the outbox head, without a stored cursor.
//! - **Outbox gaps on PostgreSQL.** Identity values are taken at insert but rows become visible at commit, so
//!   `seq` 11 can be visible while `seq` 10 is still being committed. The dispatcher never steps over a gap
//!   until every writing transaction of this database that was running when it saw the gap has finished
//!   ([`shedu_store::Store::outbox_writers`]); only then is the gap a rolled-back insert and skipped. There is no time limit: a
//!   transaction held open for an hour holds delivery back for an hour (and says so in the log every
//!   minute) rather than lose its event. SQLite has one writer, so its commit order is `seq` order.
//! - **Wake-ups.** Each task polls every `poll_interval` (200 ms) and also wakes on [`DispatcherHandle::notify`],
//!   which the server can call after each commit. A read that came back short of `batch_size` reached the
//!   outbox head: once its events are delivered the task waits for the next wake-up instead of reading again
//!   at once, so a steady trickle of commits costs a read per poll, not one per commit.
//! - **Cursor writes.** While events keep coming, a durable sink's cursor is stored at most once every
//!   `cursor_every` (1 s); it is also stored as soon as a read finds nothing to deliver, and when the task
//!   stops or loses its lock: a replica that dies under load redelivers up to a second of events more
//!   (at-least-once, as before), and a busy outbox costs one cursor commit a second instead of one per batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use shedu_store::{EventRow, SinkLock, Store};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;

use crate::CloudEvent;

/// Why a sink could not take a batch. Every error is retried (the batch is not skipped), with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl SinkError {
    /// An error from anything displayable.
    pub fn new(e: impl std::fmt::Display) -> SinkError {
        SinkError(e.to_string())
    }
}

/// A destination for outbox events.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Stable name: the cursor key and lock name (`nats:SHEDU`, `amqp:shedu.events`, `alerts`).
    fn name(&self) -> &str;

    /// `true` (the default): the position is stored in `event_cursors` and one replica at a time dispatches
    /// the sink; a new sink starts at the beginning of the outbox. `false`: every replica dispatches it from
    /// the outbox head at startup, keeping the position in memory (live, in-process consumers).
    fn durable(&self) -> bool {
        true
    }

    /// Delivers `events` (in `seq` order, never empty). `Ok` means every event is acknowledged; on `Err` the
    /// same batch is offered again later, so a sink may see an event more than once.
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), SinkError>;

    /// One round trip to what the sink delivers to, over a connection of the probe's own, for `/ready`
    /// (`crate::BusHealth`). Sinks inside this process or the database have nothing to reach: `Ok`.
    async fn probe(&self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Whether [`Sink::probe`] reaches something outside the process (a message bus) worth probing.
    fn probes(&self) -> bool {
        false
    }
}

/// Dispatcher tuning. The defaults suit production; tests shorten the delays.
#[derive(Clone, Debug)]
pub struct DispatchOptions {
    /// How often an idle sink task looks for new events (besides notifications).
    pub poll_interval: Duration,
    /// Most events handed to a sink at once.
    pub batch_size: i64,
    /// First retry delay after a sink error; doubles up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// A sink call that takes longer fails (and is retried).
    pub deliver_timeout: Duration,
    /// How often a replica that does not hold a sink's lock tries again: a sink whose dispatcher died is
    /// taken over within about this long (one cheap `pg_try_advisory_lock` per sink and interval).
    pub lock_retry: Duration,
    /// How often the holder checks that its lock connection is alive.
    pub lock_check: Duration,
    /// How long a gap in the outbox is waited for before its transactions are checked (PostgreSQL).
    pub gap_grace: Duration,
    /// How often a gap that stays open is reported in the log (a long-running transaction of this
    /// database may still fill it, and delivery waits for it: never skipped on time alone).
    pub gap_warn_every: Duration,
    /// Capacity of the in-process broadcast; slower receivers see `Lagged`.
    pub live_capacity: usize,
    /// Least time between two writes of a durable sink's cursor while events keep coming (a delivered position
    /// is also stored when a read finds nothing to deliver, and when the task stops or loses its lock).
    pub cursor_every: Duration,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            poll_interval: Duration::from_millis(200),
            batch_size: 256,
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            deliver_timeout: Duration::from_secs(30),
            lock_retry: Duration::from_secs(1),
            lock_check: Duration::from_secs(5),
            gap_grace: Duration::from_millis(500),
            gap_warn_every: Duration::from_secs(60),
            live_capacity: 1024,
            cursor_every: Duration::from_secs(1),
        }
    }
}

/// The in-process sink: a broadcast of every event for SSE and other live consumers on this replica.
struct LiveSink {
    tx: broadcast::Sender<CloudEvent>,
}

#[async_trait]
impl Sink for LiveSink {
    fn name(&self) -> &str {
        "live"
    }

    fn durable(&self) -> bool {
        false
    }

    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), SinkError> {
        for e in events {
            // No receiver is not an error: nobody is listening right now.
            let _ = self.tx.send(e.clone());
        }
        Ok(())
    }
}

/// Builds and starts the dispatch tasks. The in-process broadcast sink is always included.
pub struct Dispatcher {
    store: Store,
    sinks: Vec<Arc<dyn Sink>>,
    options: DispatchOptions,
    live: broadcast::Sender<CloudEvent>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.sinks.iter().map(|s| s.name()).collect();
        f.debug_struct("Dispatcher").field("sinks", &names).finish()
    }
}

impl Dispatcher {
    /// A dispatcher over `store`'s outbox with default options and only the in-process sink.
    pub fn new(store: Store) -> Dispatcher {
        Dispatcher::with_options(store, DispatchOptions::default())
    }

    /// A dispatcher with explicit options.
    pub fn with_options(store: Store, options: DispatchOptions) -> Dispatcher {
        let (live, _) = broadcast::channel(options.live_capacity.max(1));
        let sinks: Vec<Arc<dyn Sink>> = vec![Arc::new(LiveSink { tx: live.clone() })];
        Dispatcher {
            store,
            sinks,
            options,
            live,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Adds a sink.
    pub fn sink(mut self, sink: impl Sink) -> Dispatcher {
        self.sinks.push(Arc::new(sink));
        self
    }

    /// Adds a shared sink.
    pub fn sink_arc(mut self, sink: Arc<dyn Sink>) -> Dispatcher {
        self.sinks.push(sink);
        self
    }

    /// A receiver of every event dispatched from now on (in-process, this replica).
    pub fn subscribe(&self) -> broadcast::Receiver<CloudEvent> {
        self.live.subscribe()
    }

    /// The wake-up handle: `notify_one()` after a commit makes every sink look at the outbox now.
    pub fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Spawns one task per sink (plus a wake-up fan-out task) on the current Tokio runtime.
    pub fn start(self) -> DispatcherHandle {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (tick_tx, tick_rx) = watch::channel(0u64);
        let mut tasks = Vec::with_capacity(self.sinks.len() + 1);
        let wake = self.wake.clone();
        let mut fan_shutdown = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = wake.notified() => tick_tx.send_modify(|v| *v = v.wrapping_add(1)),
                    _ = fan_shutdown.changed() => return,
                }
            }
        }));
        for sink in self.sinks {
            let task = SinkTask {
                store: self.store.clone(),
                name: sink.name().to_string(),
                sink,
                opts: self.options.clone(),
                wake: tick_rx.clone(),
                shutdown: shutdown_rx.clone(),
                gap: None,
            };
            tasks.push(tokio::spawn(task.run()));
        }
        DispatcherHandle {
            tasks,
            shutdown: shutdown_tx,
            live: self.live,
            wake: self.wake,
        }
    }
}

/// The running dispatcher. Dropping it aborts the tasks (a batch in flight is redelivered after restart);
/// [`DispatcherHandle::shutdown`] lets batches in flight finish first.
#[derive(Debug)]
pub struct DispatcherHandle {
    tasks: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    live: broadcast::Sender<CloudEvent>,
    wake: Arc<Notify>,
}

impl DispatcherHandle {
    /// A receiver of every event dispatched from now on (in-process, this replica).
    pub fn subscribe(&self) -> broadcast::Receiver<CloudEvent> {
        self.live.subscribe()
    }

    /// Wakes every sink now (call after committing a change).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// The wake-up handle, for code that should not depend on this crate (`notify_one()` = [`Self::notify`]).
    pub fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Stops the tasks, letting a batch in flight finish (up to `grace`), then aborts what is left.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(&mut self.tasks);
        let deadline = tokio::time::Instant::now() + grace;
        for mut t in tasks {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                t.abort();
            }
        }
    }
}

impl Drop for DispatcherHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A gap after the cursor that has not been explained yet (PostgreSQL only).
struct Gap {
    after: i64,
    since: Instant,
    /// The writing transactions of this database running after the grace period: the one that could still
    /// fill the gap is among them.
    horizon: Option<Vec<String>>,
    /// All of them have finished; if the next read still shows the gap, it is permanent.
    settled: bool,
    /// When the open gap was last reported.
    warned: Instant,
}

enum Exit {
    Shutdown,
    LockLost,
}

/// A sink's delivered position and the part of it that is stored.
struct Position {
    delivered: i64,
    stored: i64,
    stored_at: Instant,
}

struct SinkTask {
    store: Store,
    name: String,
    sink: Arc<dyn Sink>,
    opts: DispatchOptions,
    wake: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    gap: Option<Gap>,
}

impl SinkTask {
    async fn run(mut self) {
        loop {
            let lock = if self.sink.durable() {
                match self.acquire().await {
                    Some(l) => Some(l),
                    None => return,
                }
            } else {
                None
            };
            let Some(cursor) = self.position().await else {
                return;
            };
            tracing::info!(sink = %self.name, cursor, "event sink dispatching");
            // Which replica dispatches each sink (durable sinks run on one at a time).
            let leader = metrics::gauge!("shedu_event_sink_leader", "sink" => self.name.clone());
            leader.set(1.0);
            let exit = self.pump(lock, cursor).await;
            leader.set(0.0);
            match exit {
                Exit::Shutdown => return,
                Exit::LockLost => {
                    tracing::warn!(sink = %self.name, "event sink lock lost; re-acquiring");
                    self.gap = None;
                }
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Sleeps, waking early only for shutdown (`true`).
    async fn pause(&mut self, d: Duration) -> bool {
        if self.stopping() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = self.shutdown.changed() => true,
        }
    }

    /// Waits for new events: a notification, the poll interval, or shutdown (`true`).
    async fn idle(&mut self) -> bool {
        if self.stopping() {
            return true;
        }
        let d = self.opts.poll_interval;
        tokio::select! {
            r = self.wake.changed() => {
                if r.is_err() {
                    // The fan-out task is gone (shutting down): fall back to polling.
                    return self.pause(d).await;
                }
                false
            }
            _ = tokio::time::sleep(d) => false,
            _ = self.shutdown.changed() => true,
        }
    }

    async fn acquire(&mut self) -> Option<SinkLock> {
        let mut logged = false;
        loop {
            match self.store.try_lock_sink(&self.name).await {
                Ok(Some(l)) => return Some(l),
                Ok(None) => {
                    if !logged {
                        tracing::info!(sink = %self.name, "another replica dispatches this sink; standing by");
                        logged = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(sink = %self.name, error = %e, "event sink lock unavailable")
                }
            }
            if self.pause(self.opts.lock_retry).await {
                return None;
            }
        }
    }

    async fn position(&mut self) -> Option<i64> {
        let mut delay = self.opts.retry_initial;
        loop {
            let r = if self.sink.durable() {
                self.store.init_sink_cursor(&self.name, 0).await
            } else {
                self.store.max_event_seq().await
            };
            match r {
                Ok(c) => return Some(c),
                Err(e) => tracing::warn!(sink = %self.name, error = %e, "cannot read event cursor"),
            }
            if self.pause(delay).await {
                return None;
            }
            delay = (delay * 2).min(self.opts.retry_max);
        }
    }

    async fn lock_ok(
        lock: &mut Option<SinkLock>,
        last_check: &mut Instant,
        every: Duration,
    ) -> bool {
        match lock.as_mut() {
            Some(l) if last_check.elapsed() >= every => {
                *last_check = Instant::now();
                l.is_held().await
            }
            _ => true,
        }
    }

    /// Delivers from `cursor` until shutdown or the lock is lost, then stores what was delivered.
    async fn pump(&mut self, lock: Option<SinkLock>, cursor: i64) -> Exit {
        let mut pos = Position {
            delivered: cursor,
            stored: cursor,
            stored_at: Instant::now(),
        };
        let exit = self.deliver_from(lock, &mut pos).await;
        self.store_position(&mut pos).await;
        exit
    }

    /// Stores the delivered position of a durable sink if it is ahead of the stored one. A failed write is
    /// only logged: a restart would redeliver from the old cursor (at-least-once).
    async fn store_position(&self, pos: &mut Position) {
        if !self.sink.durable() || pos.stored >= pos.delivered {
            return;
        }
        match self
            .store
            .advance_sink_cursor(&self.name, pos.delivered)
            .await
        {
            Ok(()) => pos.stored = pos.delivered,
            Err(e) => tracing::warn!(sink = %self.name, error = %e, "cannot store event cursor"),
        }
        pos.stored_at = Instant::now();
    }

    async fn deliver_from(&mut self, mut lock: Option<SinkLock>, pos: &mut Position) -> Exit {
        let mut last_check = Instant::now();
        let mut db_delay = self.opts.retry_initial;
        // The last read reached the outbox head: wait for a wake-up before reading again.
        let mut caught_up = false;
        loop {
            if self.stopping() {
                return Exit::Shutdown;
            }
            if pos.stored_at.elapsed() >= self.opts.cursor_every {
                self.store_position(pos).await;
            }
            if std::mem::take(&mut caught_up) && self.idle().await {
                return Exit::Shutdown;
            }
            let cursor = pos.delivered;
            if !Self::lock_ok(&mut lock, &mut last_check, self.opts.lock_check).await {
                return Exit::LockLost;
            }
            let rows = match self
                .store
                .list_events(cursor, None, None, self.opts.batch_size)
                .await
            {
                Ok(r) => {
                    db_delay = self.opts.retry_initial;
                    r
                }
                Err(e) => {
                    tracing::warn!(sink = %self.name, error = %e, "cannot read the outbox");
                    if self.pause(db_delay).await {
                        return Exit::Shutdown;
                    }
                    db_delay = (db_delay * 2).min(self.opts.retry_max);
                    continue;
                }
            };
            let take = self.deliverable(&rows, cursor).await;
            if take == 0 {
                // Nothing to deliver: a good time to store the position.
                self.store_position(pos).await;
                if self.idle().await {
                    return Exit::Shutdown;
                }
                continue;
            }
            let events: Vec<CloudEvent> = rows[..take].iter().map(CloudEvent::from_row).collect();
            let last = events.last().map(|e| e.seq).unwrap_or(cursor);
            let mut delay = self.opts.retry_initial;
            let mut failures = 0u32;
            loop {
                // A panicking sink is a failing sink, not a dead dispatch task.
                let call = std::panic::AssertUnwindSafe(self.sink.deliver(&events)).catch_unwind();
                let r = match tokio::time::timeout(self.opts.deliver_timeout, call).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(_)) => Err(SinkError::new("the sink panicked")),
                    Err(_) => Err(SinkError::new("timed out")),
                };
                match r {
                    Ok(()) => break,
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(sink = %self.name, error = %e, first_seq = events[0].seq, batch = events.len(),
                            failures, retry_in_ms = delay.as_millis() as u64, "event sink failed; will retry");
                        if self.pause(delay).await {
                            return Exit::Shutdown;
                        }
                        delay = (delay * 2).min(self.opts.retry_max);
                        if !Self::lock_ok(&mut lock, &mut last_check, self.opts.lock_check).await {
                            return Exit::LockLost;
                        }
                    }
                }
            }
            if failures > 0 {
                tracing::info!(sink = %self.name, failures, "event sink recovered");
            }
            // Delivered; stored after `cursor_every` or once nothing is left (a crash before that redelivers).
            pos.delivered = last;
            caught_up = take == rows.len() && (rows.len() as i64) < self.opts.batch_size;
        }
    }

    /// How many of `rows` (read after `cursor`) may be delivered now without stepping over a gap that a
    /// running transaction could still fill.
    async fn deliverable(&mut self, rows: &[EventRow], cursor: i64) -> usize {
        let Some(first) = rows.first() else {
            self.gap = None;
            return 0;
        };
        let run_from = |start: i64| {
            rows.iter()
                .enumerate()
                .take_while(|(i, r)| r.seq == start + *i as i64)
                .count()
        };
        if self.store.backend() != shedu_store::Backend::Postgres {
            return rows.len();
        }
        let n = run_from(cursor + 1);
        if n > 0 {
            self.gap = None;
            return n;
        }
        let now = Instant::now();
        let gap = match self.gap.as_mut() {
            Some(g) if g.after == cursor => g,
            _ => {
                self.gap = Some(Gap {
                    after: cursor,
                    since: now,
                    horizon: None,
                    settled: false,
                    warned: now,
                });
                return 0;
            }
        };
        let waited = now.duration_since(gap.since);
        if gap.settled {
            tracing::debug!(sink = %self.name, after = cursor, next = first.seq, "skipping a rolled-back outbox gap");
            self.gap = None;
            return run_from(first.seq);
        }
        if waited < self.opts.gap_grace {
            return 0;
        }
        if now.duration_since(gap.warned) >= self.opts.gap_warn_every {
            gap.warned = now;
            tracing::warn!(sink = %self.name, after = cursor, next = first.seq, waited_s = waited.as_secs(),
                "outbox gap still open: a transaction that may fill it is still running; delivery waits for it");
        }
        let running = match self.store.outbox_writers().await {
            Ok(Some(running)) => running,
            Ok(None) => {
                self.gap = None;
                return run_from(first.seq);
            }
            Err(e) => {
                tracing::warn!(sink = %self.name, error = %e, "cannot list the running transactions");
                return 0;
            }
        };
        // Settled once every writer that was running at the horizon has finished.
        match gap
            .horizon
            .as_ref()
            .map(|h| !h.iter().any(|x| running.contains(x)))
        {
            Some(settled) => gap.settled = settled,
            None => gap.horizon = Some(running),
        }
        0
    }
}

//! A closed-loop load run: N workers, each sending its next operation as soon as the previous one
//! answered, for a warm-up then a measured window; an operation counts when it began and ended inside the
//! window. (`loadbench`, `estbench` and `connectorbench` have their own loops, shaped by their connection
//! patterns; a new HTTP tool with one operation per request uses this one.)

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::stats::{Summary, micros};

/// When the load starts counting and when it stops.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Operations that begin earlier are warm-up.
    pub measure_from: Instant,
    /// No operation begins after it; one that ends after it is not counted.
    pub end: Instant,
}

impl Window {
    /// `warmup` seconds from now, then `duration` measured seconds.
    pub fn from_now(warmup: f64, duration: f64) -> Window {
        let measure_from = Instant::now() + Duration::from_secs_f64(warmup);
        Window {
            measure_from,
            end: measure_from + Duration::from_secs_f64(duration),
        }
    }
}

/// What the workers saw: latencies of the counted operations and the errors, by status.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Microseconds of each counted operation.
    pub latencies_us: Vec<u64>,
    /// Failed operations by status (an HTTP status, or `transport`).
    pub error_statuses: BTreeMap<String, usize>,
    /// The first failure's detail (at most 300 characters).
    pub first_error: Option<String>,
}

impl Outcome {
    /// Records a failed operation.
    pub fn error(&mut self, status: String, detail: String) {
        *self.error_statuses.entry(status).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(detail.chars().take(300).collect());
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.latencies_us.extend(other.latencies_us);
        for (status, n) in other.error_statuses {
            *self.error_statuses.entry(status).or_default() += n;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// The latency summary (sorts the samples).
    pub fn summary(&mut self) -> Summary {
        Summary::from_micros(&mut self.latencies_us)
    }

    /// The number of failed operations.
    pub fn errors(&self) -> usize {
        self.error_statuses.values().sum()
    }
}

/// Runs `concurrency` workers over `window`; `op(worker, n)` is the worker's `n`-th operation, returning
/// `Err((status, detail))` when it failed.
pub async fn closed_loop<F, Fut>(
    window: Window,
    concurrency: usize,
    op: F,
) -> anyhow::Result<Outcome>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), (String, String)>> + Send,
{
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut n = 0u64;
            loop {
                let began = Instant::now();
                if began >= window.end {
                    return out;
                }
                let result = op(worker, n).await;
                n += 1;
                let done = Instant::now();
                match result {
                    Ok(()) if began >= window.measure_from && done <= window.end => {
                        out.latencies_us.push(micros(done - began));
                    }
                    Ok(()) => {}
                    Err((status, detail)) => out.error(status, detail),
                }
            }
        }));
    }
    let mut all = Outcome::default();
    for w in workers {
        all.merge(w.await?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_operations_inside_the_window_and_errors_by_status() {
        let window = Window::from_now(0.05, 0.3);
        let mut out = closed_loop(window, 4, |worker, n| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if worker == 0 && n % 5 == 4 {
                Err(("503".to_string(), format!("worker {worker} op {n}")))
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
        let summary = out.summary();
        // At most 30 operations of 10 ms per worker fit in the measured 0.3 s (fewer on a loaded machine).
        assert!(
            (10..=120).contains(&summary.count),
            "{} counted",
            summary.count
        );
        assert!(summary.p50_ms >= 10.0, "{summary:?}");
        assert!(out.errors() >= 1, "{:?}", out.error_statuses);
        assert_eq!(out.error_statuses.keys().collect::<Vec<_>>(), ["503"]);
        assert!(out.first_error.unwrap().starts_with("worker 0 op "));
    }
}

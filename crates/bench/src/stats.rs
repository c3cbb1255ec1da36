//! Latency summaries. A benchmark run records at most a few hundred thousand samples, so a sorted `Vec`
//! of microseconds gives exact percentiles without a histogram dependency.

use std::time::Duration;

use serde::Serialize;

/// Exact percentiles of a set of latencies, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

impl Summary {
    /// Summarises `samples` (microseconds); sorts them in place.
    pub fn from_micros(samples: &mut [u64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        samples.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Summary {
            count: samples.len(),
            p50_ms: ms(percentile(samples, 50.0)),
            p90_ms: ms(percentile(samples, 90.0)),
            p99_ms: ms(percentile(samples, 99.0)),
            max_ms: ms(samples[samples.len() - 1]),
            mean_ms: sum as f64 / samples.len() as f64 / 1000.0,
        }
    }
}

/// The nearest-rank percentile of sorted, non-empty `sorted`.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in whole microseconds, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
    }

    #[test]
    fn summary_in_ms() {
        let mut v = vec![3000, 1000, 2000];
        let s = Summary::from_micros(&mut v);
        assert_eq!(s.count, 3);
        assert_eq!(s.p50_ms, 2.0);
        assert_eq!(s.max_ms, 3.0);
        assert_eq!(s.mean_ms, 2.0);
    }
}

//! One upstream (a colour): its address, traffic counters, latency histogram, passive
//! health (consecutive failures), requests in flight (for draining) and the abort signal
//! that ends what is still running when a drain times out.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

use crate::state::Colour;

/// Upper bounds of the latency histogram, in seconds.
pub const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A Prometheus-style cumulative histogram over fixed upper bounds, lock-free. The count is
/// the sum of the buckets read in one snapshot (one more bucket holds what is above the last
/// bound), so a snapshot taken while a value is being observed is still consistent.
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then the overflow.
    buckets: Box<[AtomicU64]>,
    /// The sum, as `f64` bits.
    sum: AtomicU64,
}

/// Counts per bucket (cumulative), the count (with what fell above the last bound) and the sum.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl Snapshot {
    /// What was observed between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let cumulative = self
            .cumulative
            .iter()
            .enumerate()
            .map(|(i, c)| c.saturating_sub(earlier.cumulative.get(i).copied().unwrap_or(0)))
            .collect();
        Snapshot { cumulative, count: self.count.saturating_sub(earlier.count), sum: self.sum - earlier.sum }
    }

    /// The `q` quantile as Prometheus's `histogram_quantile` estimates it: linear within the
    /// bucket holding the rank, the highest bound when the rank is above it; `None` when empty.
    pub fn quantile(&self, bounds: &[f64], q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = q * self.count as f64;
        let mut below = 0u64;
        for (i, (&upper, &c)) in bounds.iter().zip(&self.cumulative).enumerate() {
            if c as f64 >= rank && c > below {
                let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
                return Some(lower + (upper - lower) * (rank - below as f64) / (c - below) as f64);
            }
            below = c;
        }
        bounds.last().copied()
    }
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    pub fn observe(&self, v: f64) {
        let i = self.bounds.iter().position(|b| v <= *b).unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let _ =
            self.sum.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| Some((f64::from_bits(s) + v).to_bits()));
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut acc = 0;
        let mut cumulative: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect();
        let count = cumulative.pop().unwrap_or(0);
        Snapshot { cumulative, count, sum: f64::from_bits(self.sum.load(Ordering::Relaxed)) }
    }
}

/// A colour's upstream and what the gateway knows about it.
pub struct Upstream {
    pub colour: Colour,
    /// `host:port`, HTTP and gRPC on one port.
    pub address: String,
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub consecutive_failures: AtomicU32,
    healthy: AtomicBool,
    pub latency: Histogram,
    in_flight: AtomicU64,
    abort: watch::Sender<u64>,
    /// The version its `/health` reported last.
    pub model_version: Mutex<Option<String>>,
    failure_threshold: u32,
}

/// What one finished request did to passive health.
#[derive(Debug, PartialEq, Eq)]
pub enum HealthChange {
    None,
    BecameUnhealthy,
    Recovered,
}

impl Upstream {
    pub fn new(colour: Colour, address: String, failure_threshold: u32) -> Upstream {
        Upstream {
            colour,
            address,
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            healthy: AtomicBool::new(true),
            latency: Histogram::new(&BUCKETS),
            in_flight: AtomicU64::new(0),
            abort: watch::channel(0).0,
            model_version: Mutex::new(None),
            failure_threshold: failure_threshold.max(1),
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn model_version(&self) -> Option<String> {
        self.model_version.lock().expect("version lock").clone()
    }

    pub fn set_model_version(&self, v: Option<String>) {
        *self.model_version.lock().expect("version lock") = v;
    }

    /// A request answered (below 500): resets the failure streak.
    pub fn record_success(&self, took: Duration) -> HealthChange {
        self.latency.observe(took.as_secs_f64());
        self.consecutive_failures.store(0, Ordering::Relaxed);
        if self.healthy.swap(true, Ordering::Relaxed) {
            HealthChange::None
        } else {
            HealthChange::Recovered
        }
    }

    /// A request failed (transport error or 5xx).
    pub fn record_failure(&self, took: Duration) -> HealthChange {
        self.latency.observe(took.as_secs_f64());
        self.errors.fetch_add(1, Ordering::Relaxed);
        let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.failure_threshold && self.healthy.swap(false, Ordering::Relaxed) {
            HealthChange::BecameUnhealthy
        } else {
            HealthChange::None
        }
    }

    /// The health gate passed: the upstream is healthy again, whatever passive health said.
    pub fn mark_healthy(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.healthy.store(true, Ordering::Relaxed);
    }

    /// Counts a request as in flight until the guard drops (with the response body).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Completes when [`Upstream::abort_in_flight`] is called after this point.
    pub fn aborted(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut rx = self.abort.subscribe();
        let generation = *rx.borrow_and_update();
        Box::pin(async move {
            if rx.wait_for(|g| *g != generation).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }

    /// Ends every request still in flight (a drain timed out).
    pub fn abort_in_flight(&self) {
        self.abort.send_modify(|g| *g += 1);
    }

    /// Waits until nothing is in flight or `timeout` passes; returns whether it drained.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A request in flight on an upstream.
pub struct InFlight(Arc<Upstream>);

impl InFlight {
    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passive_health_needs_n_failures_in_a_row() {
        let u = Upstream::new(Colour::Blue, "127.0.0.1:1".into(), 3);
        let ms = Duration::from_millis(1);
        assert_eq!(u.record_failure(ms), HealthChange::None);
        assert_eq!(u.record_failure(ms), HealthChange::None);
        assert_eq!(u.record_success(ms), HealthChange::None);
        assert_eq!(u.record_failure(ms), HealthChange::None);
        assert_eq!(u.record_failure(ms), HealthChange::None);
        assert_eq!(u.record_failure(ms), HealthChange::BecameUnhealthy);
        assert!(!u.is_healthy());
        assert_eq!(u.record_failure(ms), HealthChange::None);
        assert_eq!(u.record_success(ms), HealthChange::Recovered);
        assert_eq!(u.errors.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::new(&BUCKETS);
        h.observe(0.0003);
        h.observe(0.003);
        h.observe(60.0);
        let s = h.snapshot();
        let b = &s.cumulative;
        assert_eq!((b[0], b[3], *b.last().unwrap(), s.count), (1, 2, 2, 3));
    }

    /// The figures `histogram_quantile` gives for the same buckets.
    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let bounds = [1.0, 2.0, 4.0];
        let s = Snapshot { cumulative: vec![10, 30, 40], count: 40, sum: 0.0 };
        assert_eq!(s.quantile(&bounds, 0.25), Some(1.0));
        assert_eq!(s.quantile(&bounds, 0.5), Some(1.5));
        assert_eq!(s.quantile(&bounds, 0.875), Some(3.0));
        let above = Snapshot { cumulative: vec![0, 0, 1], count: 5, sum: 0.0 };
        assert_eq!(above.quantile(&bounds, 0.99), Some(4.0), "ranks above the last bound get the last bound");
        assert_eq!(Snapshot::default().quantile(&bounds, 0.99), None);
        let later = Snapshot { cumulative: vec![12, 40, 50], count: 51, sum: 2.0 };
        assert_eq!(later.since(&s), Snapshot { cumulative: vec![2, 10, 10], count: 11, sum: 2.0 });
    }

    #[tokio::test]
    async fn drain_waits_for_in_flight_and_abort_signals() {
        let u = Arc::new(Upstream::new(Colour::Green, "127.0.0.1:1".into(), 3));
        let guard = u.begin();
        assert!(!u.drain(Duration::from_millis(20)).await);
        let aborted = u.aborted();
        u.abort_in_flight();
        tokio::time::timeout(Duration::from_secs(1), aborted).await.unwrap();
        drop(guard);
        assert!(u.drain(Duration::from_millis(20)).await);
    }
}

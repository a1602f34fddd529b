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

/// A Prometheus-style cumulative histogram of seconds, lock-free.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// (cumulative count per bucket, count, sum in seconds).
    pub fn snapshot(&self) -> (Vec<u64>, u64, f64) {
        let mut acc = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect();
        (cumulative, self.count.load(Ordering::Relaxed), self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9)
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
            latency: Histogram::default(),
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
        self.latency.observe(took);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        if self.healthy.swap(true, Ordering::Relaxed) {
            HealthChange::None
        } else {
            HealthChange::Recovered
        }
    }

    /// A request failed (transport error or 5xx).
    pub fn record_failure(&self, took: Duration) -> HealthChange {
        self.latency.observe(took);
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
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let (b, count, _) = h.snapshot();
        assert_eq!((b[0], b[3], *b.last().unwrap(), count), (1, 2, 2, 3));
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

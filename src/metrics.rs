//! Prometheus metrics: what operators watch to know Kisee is healthy.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a login count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// The backend's name.
    pub backend: &'static str,
    /// `success`, `refused`, `throttled`, `unavailable` or `error`.
    pub outcome: &'static str,
}

/// Labels naming what was throttled.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThrottleLabels {
    /// `login` or `registration`.
    pub kind: &'static str,
}

/// Labels naming a backend operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    /// The backend's name.
    pub backend: &'static str,
}

/// Labels of the build information.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: String,
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    /// Login attempts by backend and outcome.
    pub logins: Family<LoginLabels, Counter>,
    /// Credential checks the backend was asked to make.
    pub backend_checks: Family<BackendLabels, Counter>,
    /// Time the backend took to answer a credential check.
    pub backend_seconds: Histogram,
    /// Time signing a token took.
    pub signing_seconds: Histogram,
    /// Requests refused by the throttle.
    pub throttled: Family<ThrottleLabels, Counter>,
    /// 1 when the last health check of the backend succeeded.
    pub backend_up: Gauge,
    /// Connections open now.
    pub open_connections: Gauge,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: Counter,
    /// 1 while the shared throttle store answers (always 1 without one).
    pub throttle_store_up: Gauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kisee");
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "logins",
            "Login attempts by backend and outcome",
            logins.clone(),
        );
        let backend_checks = Family::<BackendLabels, Counter>::default();
        registry.register(
            "backend_checks",
            "Credential checks sent to the backend",
            backend_checks.clone(),
        );
        let backend_seconds = Histogram::new(exponential_buckets(0.000_5, 2.0, 16));
        registry.register(
            "login_backend_seconds",
            "Backend time of a login",
            backend_seconds.clone(),
        );
        let signing_seconds = Histogram::new(exponential_buckets(0.000_01, 2.0, 14));
        registry.register(
            "login_signing_seconds",
            "Token signing time of a login",
            signing_seconds.clone(),
        );
        let throttled = Family::<ThrottleLabels, Counter>::default();
        registry.register(
            "throttled",
            "Requests refused by the throttle",
            throttled.clone(),
        );
        let backend_up = Gauge::default();
        registry.register(
            "backend_up",
            "1 when the backend answered its last health check",
            backend_up.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open now",
            open_connections.clone(),
        );
        let tls_handshake_failures = Counter::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            tls_handshake_failures.clone(),
        );
        let throttle_store_up = Gauge::default();
        registry.register(
            "throttle_store_up",
            "1 while the shared throttle store answers; 0 while local counts decide",
            throttle_store_up.clone(),
        );
        throttle_store_up.set(1);
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        registry.register("build_info", "The running version", build);
        backend_up.set(1);
        Self {
            registry,
            logins,
            backend_checks,
            backend_seconds,
            signing_seconds,
            throttled,
            backend_up,
            open_connections,
            tls_handshake_failures,
            throttle_store_up,
        }
    }

    /// Counts one login attempt.
    pub fn login(&self, backend: &'static str, outcome: &'static str) {
        let labels = LoginLabels { backend, outcome };
        self.logins.get_or_create(&labels).inc();
    }

    /// Counts one question put to the backend.
    pub fn backend_check(&self, backend: &'static str) {
        self.backend_checks
            .get_or_create(&BackendLabels { backend })
            .inc();
    }

    /// Counts one throttled request.
    pub fn throttled(&self, kind: &'static str) {
        self.throttled.get_or_create(&ThrottleLabels { kind }).inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

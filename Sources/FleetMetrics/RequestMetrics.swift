import CoreMetrics
import Prometheus

/// Hummingbird's request metrics (`MetricsMiddleware`: `hb_requests_total`,
/// `hb_request_errors_total`, `http_server_request_duration_seconds`,
/// `http_server_active_requests`, labelled by route template, method and
/// status) in a registry of the process.
///
/// The middleware records through swift-metrics' global `MetricsSystem`, the
/// only factory it takes, and `MetricsSystem.bootstrap` may run once per
/// process: `bootstrap()` does that once, with a `PrometheusMetricsFactory`
/// over this registry only. The fleet's own families never go through the
/// global system (see `BisMetrics`), so coordinators in one process (tests)
/// count apart; only request metrics are shared by the servers of a process.
public enum RequestMetrics {
    public static let registry = PrometheusCollectorRegistry()

    private static let bootstrapped: Bool = {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Counters end in _total (Prometheus' convention, and what parsers expect).
        factory.nameAndLabelSanitizer = { name, labels in
            switch name {
            case "hb.requests": ("hb_requests_total", labels)
            case "hb.request.errors": ("hb_request_errors_total", labels)
            // A Timer in seconds: the unit in the name, as Prometheus' convention has it.
            case "http.server.request.duration": ("http_server_request_duration_seconds", labels)
            default: (name, labels)
            }
        }
        MetricsSystem.bootstrap(factory)
        return true
    }()

    /// Points swift-metrics' global factory at `registry`; later calls do nothing.
    public static func bootstrap() {
        _ = bootstrapped
    }
}

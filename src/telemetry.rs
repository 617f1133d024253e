//! Logging: human-readable lines by default, JSON lines with `SBM_LOG_FORMAT=json`; the level
//! comes from `RUST_LOG` (default `info`). Errors to Sentry when a DSN is set
//! (`sentry_reporting`), and spans over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! (`otlp`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub mod otlp;

/// What must live as long as the process: dropped, it sends what Sentry and the span
/// exporter still hold.
pub struct Telemetry {
    _sentry: Option<sentry::ClientInitGuard>,
    _traces: Option<otlp::Exporting>,
}

pub fn init() -> Telemetry {
    // Sentry first, so that the panic hook and the layer see a bound client.
    let sentry = crate::sentry_reporting::dsn_from_env().and_then(|dsn| {
        crate::sentry_reporting::init(&dsn)
            .map_err(|err| eprintln!("Sentry is not set up: {err:#}"))
            .ok()
    });
    let traces = otlp::from_env()
        .map_err(|err| eprintln!("span export is not set up: {err:#}"))
        .ok()
        .flatten();
    init_layers(sentry.is_some(), traces.as_ref());
    Telemetry {
        _sentry: sentry,
        _traces: traces,
    }
}

/// Logging, with the Sentry layer when `sentry` (a client must be bound already).
pub fn init_with(sentry: bool) {
    init_layers(sentry, None);
}

fn init_layers(sentry: bool, traces: Option<&otlp::Exporting>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let json = std::env::var("SBM_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(!json && std::io::stderr().is_terminal());
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(sentry.then(crate::sentry_reporting::layer))
        .with(traces.map(|t| tracing_opentelemetry::layer().with_tracer(t.tracer())))
        .try_init();
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = result;
}

/// The Prometheus recorder behind `/metrics`, installed on first use (once per process).
pub fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let seconds = [
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&seconds)
            .expect("the bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        // Histogram samples wait in the recorder until a scrape or an upkeep folds them into
        // buckets; without a scrape they would pile up with every send. A plain thread keeps
        // this independent of any runtime.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("prometheus-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            })
            .expect("a thread can be started");
        handle
    })
}

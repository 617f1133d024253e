//! Spans over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set, with
//! the W3C trace context (`traceparent`) sent on every call to a peer, so that one send can be
//! followed across services. The exporter reads the standard `OTEL_*` variables itself
//! (headers, timeout, batch delay); `OTEL_SERVICE_NAME` defaults to `sbm`. Off when unset: no
//! layer is installed and no header is written.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The running exporter; dropped, it sends the spans it still holds.
pub struct Exporting {
    provider: SdkTracerProvider,
}

impl Exporting {
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("sbm")
    }
}

impl Drop for Exporting {
    fn drop(&mut self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("the last spans were not exported: {err}");
        }
    }
}

/// The exporter the environment asks for, if any.
pub fn from_env() -> anyhow::Result<Option<Exporting>> {
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
    if !configured {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("sbm");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    EXPORTING.store(true, Ordering::Relaxed);
    Ok(Some(Exporting { provider }))
}

/// The trace-context headers of the current span, for a call to a peer; none when spans are
/// not exported.
pub fn trace_headers() -> Vec<(&'static str, String)> {
    if !EXPORTING.load(Ordering::Relaxed) {
        return Vec::new();
    }
    let context = tracing::Span::current().context();
    let mut headers = Headers(Vec::new());
    TraceContextPropagator::new().inject_context(&context, &mut headers);
    headers.0
}

struct Headers(Vec<(&'static str, String)>);

impl Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        // The W3C propagator writes only these two.
        let name = match key {
            "traceparent" => "traceparent",
            "tracestate" => "tracestate",
            _ => return,
        };
        self.0.push((name, value));
    }
}

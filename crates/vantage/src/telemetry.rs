//! Structured logs through tracing, and OpenTelemetry trace export (OTLP over HTTP) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the exporter alive; flushes spans when dropped.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: flushing traces failed: {error}");
        }
    }
}

/// Logs go to stderr (stdout is for command output), as text or JSON lines.
pub fn init(json: bool) -> Result<Telemetry, String> {
    let filter = EnvFilter::try_from_env("VANTAGE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        // KurrentDB's client logs every failed connection attempt as an error of its own; the
        // store reports each error it returns (the CLI's one sentence, the server's warnings).
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,kurrentdb=off"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
                .map_err(|e| format!("cannot set up OTLP export to {endpoint}: {e}"))?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name("vantage")
                .build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        }
        _ => None,
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("vantage")));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| format!("cannot initialise logging: {e}"))?;
    Ok(Telemetry { provider })
}

//! Process telemetry: the global `tracing` subscriber (logs as JSON or pretty text), an
//! OpenTelemetry layer that gives every span a W3C trace id and optionally exports spans
//! over OTLP, and Prometheus metrics through the `metrics` facade.
//!
//! It must not set the global text-map propagator (trace context crosses process boundaries
//! only through [`propagation`], explicitly), and a missing trace endpoint must not fail
//! anything: spans then still get ids, but nothing is sent.

pub mod metrics;
pub mod propagation;

mod json_log;

use std::io::IsTerminal;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use self::metrics::Metrics;

/// The path an OTLP/HTTP collector receives spans on.
const TRACES_PATH: &str = "/v1/traces";

/// How log lines are written to standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, with `trace_id` and `span_id` when inside a span; for
    /// production, where logs are collected and searched.
    Json,
    /// Human-readable lines, coloured on a terminal; for development.
    #[default]
    Pretty,
}

/// Telemetry settings, usually the `telemetry` section of a service's configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// How log lines are written.
    pub log_format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `info,sqlx=warn`; it filters spans as well
    /// as log events, so it also decides what is exported.
    pub log_filter: String,
    /// The OTLP/HTTP collector, such as `http://127.0.0.1:4318`; `/v1/traces` is appended
    /// when missing. `None` exports nothing.
    pub otlp_endpoint: Option<String>,
    /// The share of new traces sampled, from 0.0 to 1.0; traces continued from a remote
    /// parent follow the parent's decision.
    pub sample_ratio: f64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::default(),
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
            sample_ratio: 1.0,
        }
    }
}

/// Keeps the tracer provider alive; dropping it flushes the spans still buffered and shuts
/// the provider down. Drop it last, after every other component has stopped.
#[derive(Debug)]
#[must_use = "dropping the guard shuts tracing export down"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // A collector that is down at exit must not turn a clean stop into a crash, so the
        // failure is only reported.
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "flushing and shutting down the tracer provider failed");
        }
    }
}

/// Installs the global `tracing` subscriber for `service_name`: an `EnvFilter`, the log
/// format of `settings`, and an OpenTelemetry layer over a tracer provider that exports to
/// `settings.otlp_endpoint` in batches, or nowhere when it is `None`.
///
/// # Errors
///
/// When the filter directive, the sample ratio or the endpoint is invalid, or when a global
/// subscriber is already installed (so a second call fails rather than panicking).
pub fn init(service_name: &str, settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    if !(0.0..=1.0).contains(&settings.sample_ratio) {
        anyhow::bail!(
            "telemetry.sample_ratio must be between 0.0 and 1.0, not {}",
            settings.sample_ratio
        );
    }
    let filter = EnvFilter::try_new(&settings.log_filter)
        .with_context(|| format!("invalid telemetry.log_filter {:?}", settings.log_filter))?;
    let provider = tracer_provider(service_name, settings)?;
    let otel_layer =
        tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name.to_owned()));
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);

    let installed = match settings.log_format {
        LogFormat::Json => registry.with(json_log::layer(std::io::stdout)).try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stdout().is_terminal())
                    .with_writer(std::io::stdout),
            )
            .try_init(),
    };
    if let Err(error) = installed {
        // The provider exports nothing yet; shutting it down only stops its worker.
        let _ = provider.shutdown();
        return Err(anyhow::anyhow!(error).context("cannot install the tracing subscriber"));
    }
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(
    service_name: &str,
    settings: &TelemetrySettings,
) -> anyhow::Result<SdkTracerProvider> {
    let builder = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        );
    let Some(endpoint) = settings.otlp_endpoint.as_deref() else {
        // Without an exporter spans are still created and sampled, so they carry valid
        // trace ids for propagation, but they are dropped when they end.
        return Ok(builder.build());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .build()
        .with_context(|| format!("invalid telemetry.otlp_endpoint {endpoint:?}"))?;
    Ok(builder.with_batch_exporter(exporter).build())
}

/// The collector's traces URL: the endpoint as given when it already ends with the traces
/// path, otherwise the endpoint with the path appended (as OTLP's base-endpoint rule says).
fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with(TRACES_PATH) {
        endpoint.to_owned()
    } else {
        format!("{endpoint}{TRACES_PATH}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn traces_path_is_appended_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://127.0.0.1:4318/"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector/v1/traces"),
            "http://collector/v1/traces"
        );
    }

    #[test]
    fn settings_default_to_pretty_info_and_no_export() {
        let settings = TelemetrySettings::default();
        assert_eq!(settings.log_format, LogFormat::Pretty);
        assert_eq!(settings.log_filter, "info");
        assert!(settings.otlp_endpoint.is_none());
        assert!((settings.sample_ratio - 1.0).abs() < f64::EPSILON);
    }
}

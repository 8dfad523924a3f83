//! W3C trace-context propagation over plain name/value carriers: Kafka headers, HTTP headers
//! and outbox rows all go through here, so one format crosses every hop.
//!
//! It uses its own `TraceContextPropagator` rather than a process-global one: nothing here
//! is ambient. It must not decide sampling or create spans.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Header names this module reads and writes.
pub const TRACEPARENT: &str = "traceparent";
/// The vendor part of the W3C trace context.
pub const TRACESTATE: &str = "tracestate";

#[derive(Default)]
struct Pairs(Vec<(String, String)>);

impl Injector for Pairs {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

struct Lookup<'a>(HashMap<String, &'a str>);

impl Extractor for Lookup<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).copied()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The W3C headers (`traceparent`, and `tracestate` when set) of `span`'s OpenTelemetry
/// context. Empty when the span is not recorded by an OpenTelemetry layer.
pub fn inject(span: &tracing::Span) -> Vec<(String, String)> {
    inject_context(&span.context())
}

/// The W3C headers of an OpenTelemetry context.
pub fn inject_context(cx: &Context) -> Vec<(String, String)> {
    let mut pairs = Pairs::default();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(cx, &mut pairs);
    }
    // An empty `tracestate` says nothing; leave it out rather than send an empty header.
    pairs.0.retain(|(_, value)| !value.is_empty());
    pairs.0
}

/// Reads a W3C context from name/value pairs. Names are matched case-insensitively; values
/// that are not valid trace contexts yield an empty context (never an error: a bad header
/// from outside must not fail the message or request that carries it).
pub fn extract<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Context {
    let lookup = Lookup(
        pairs
            .into_iter()
            .filter(|(name, _)| {
                name.eq_ignore_ascii_case(TRACEPARENT) || name.eq_ignore_ascii_case(TRACESTATE)
            })
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect(),
    );
    TraceContextPropagator::new().extract(&lookup)
}

/// Makes the remote context found in `pairs` the parent of `span`. Returns whether a valid
/// remote parent was found.
pub fn set_parent_from<'a>(
    span: &tracing::Span,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> bool {
    let cx = extract(pairs);
    if !cx.span().span_context().is_valid() {
        return false;
    }
    span.set_parent(cx).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_reads_a_valid_traceparent_case_insensitively() {
        let cx = extract([(
            "TraceParent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )]);
        let span_context = cx.span().span_context().clone();
        assert!(span_context.is_valid());
        assert_eq!(
            span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(span_context.is_remote());
    }

    #[test]
    fn extract_ignores_garbage() {
        let cx = extract([("traceparent", "<script>")]);
        assert!(!cx.span().span_context().is_valid());
    }

    #[test]
    fn inject_round_trips_through_extract() {
        let remote = extract([(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )]);
        let headers = inject_context(&remote);
        assert_eq!(
            headers,
            vec![(
                TRACEPARENT.to_owned(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()
            )]
        );
    }

    #[test]
    fn inject_without_a_context_is_empty() {
        assert!(inject_context(&Context::new()).is_empty());
    }
}

//! JSON log lines that carry the OpenTelemetry `trace_id` and `span_id` of the span they were
//! written in, so a log search leads to the trace and back.
//!
//! It only decorates `tracing-subscriber`'s own JSON format; it must not change which events
//! are written or start spans of its own.

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt as _;
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// A JSON log layer writing to `writer`, with trace and span ids.
pub(crate) fn layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let dispatch = Arc::new(OnceLock::new());
    let fmt = tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(WithTraceIds {
            inner: tracing_subscriber::fmt::format()
                .json()
                .with_current_span(true)
                .with_span_list(false),
            dispatch: Arc::clone(&dispatch),
        })
        .with_writer(writer);
    fmt.and_then(CaptureDispatch { dispatch })
}

/// Remembers the dispatcher the subscriber is registered with. Reading a span's
/// OpenTelemetry context needs it, and the formatter cannot ask `tracing` for the current
/// dispatcher while an event is being dispatched (nested look-ups get a no-op one).
struct CaptureDispatch {
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl<S: Subscriber> Layer<S> for CaptureDispatch {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        // Only the first registration counts: a subscriber is registered once.
        let _ = self.dispatch.set(subscriber.downgrade());
    }
}

struct WithTraceIds {
    inner: Format<Json>,
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl WithTraceIds {
    /// The hex trace and span ids of the span `event` belongs to, when it has a valid
    /// OpenTelemetry context.
    fn ids<S, N>(&self, ctx: &FmtContext<'_, S, N>, event: &Event<'_>) -> Option<(String, String)>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        // The OpenTelemetry SDK's own diagnostics may be emitted while it holds a span's
        // data; looking that span up again from here could deadlock, and those lines need
        // no trace id.
        if event.metadata().target().starts_with("opentelemetry") {
            return None;
        }
        let id = match event.parent() {
            Some(id) => id.clone(),
            None => ctx.lookup_current()?.id(),
        };
        let dispatch = self.dispatch.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(&id, &dispatch)?;
        let span = cx.span();
        let span_context = span.span_context();
        span_context.is_valid().then(|| {
            (
                span_context.trace_id().to_string(),
                span_context.span_id().to_string(),
            )
        })
    }
}

impl<S, N> FormatEvent<S, N> for WithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let ids = self.ids(ctx, event);
        // The inner format writes exactly one object and a newline; the ids are hex, so
        // they can be spliced in before the closing brace without escaping.
        match (ids, line.strip_suffix("}\n")) {
            (Some((trace_id, span_id)), Some(object)) => {
                writer.write_str(object)?;
                writeln!(
                    writer,
                    r#","trace_id":"{trace_id}","span_id":"{span_id}"}}"#
                )
            }
            _ => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io;
    use std::sync::Mutex;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn lines(buffer: &Buffer) -> Vec<serde_json::Value> {
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn lines_inside_a_span_carry_its_trace_and_span_ids() {
        let provider = SdkTracerProvider::builder().build();
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(layer(buffer.clone()));

        let expected = tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let span = tracing::info_span!("work", order = 7);
            let _entered = span.enter();
            tracing::info!(answer = 42, "inside");
            crate::telemetry::propagation::inject(&span)
        });

        let lines = lines(&buffer);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
        let inside = &lines[1];
        assert_eq!(inside["fields"]["answer"], 42);
        assert_eq!(inside["span"]["name"], "work");
        let trace_id = inside["trace_id"].as_str().unwrap();
        let span_id = inside["span_id"].as_str().unwrap();
        assert_eq!(trace_id.len(), 32);
        assert_eq!(span_id.len(), 16);
        // The ids in the log are the ones propagated to other processes.
        let traceparent = &expected[0].1;
        assert!(
            traceparent.contains(&format!("{trace_id}-{span_id}")),
            "{traceparent}"
        );
    }
}

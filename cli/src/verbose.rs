//! `--verbose`: the core's decisions (its `tracing` events under the
//! target `tokenkeeper`: cache hit, refresh started and why, nonce retry,
//! claim conflict, …) printed on standard error, one line each. The core
//! never puts a secret in these fields; events of other crates are not
//! shown.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Prints the core's decisions.
struct Decisions {
    next_span: AtomicU64,
}

/// The fields of one event as `name=value` pairs.
struct Fields(String);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Subscriber for Decisions {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("tokenkeeper")
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        eprintln!("tokenkeeper: decision:{}", fields.0);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// Shows the core's decisions on standard error from now on.
pub fn show_decisions() {
    let _ = tracing::subscriber::set_global_default(Decisions {
        next_span: AtomicU64::new(1),
    });
}

//! The `tracing` feature: every decision of one refresh is recorded, and no
//! recorded field holds a secret (issue 19, part 4).
#![cfg(feature = "tracing")]

mod support;

use std::sync::{Arc, Mutex};

use support::{FakeServer, builder, expired_session, get, manager};
use tokenkeeper::TokenRequest;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// One event's `(field, value)` pairs.
type Recorded = Vec<(String, String)>;

/// Every event as its `field=value` pairs (spans as events named after
/// the span, with `span=<name>`).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>, Arc<Mutex<Vec<Recorded>>>);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "tokenkeeper"
    }
    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut fields = Fields(vec![(
            "span".to_string(),
            attributes.metadata().name().to_string(),
        )]);
        attributes.record(&mut fields);
        self.1.lock().unwrap().push(fields.0);
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Recorder {
    fn events(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|fields| {
                fields
                    .iter()
                    .find(|(name, _)| name == "event")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect()
    }
    fn field(&self, event: &str, name: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|fields| fields.iter().any(|(n, v)| n == "event" && v == event))
            .and_then(|fields| fields.iter().find(|(n, _)| n == name))
            .map(|(_, v)| v.clone())
    }
}

#[test]
fn one_refresh_records_its_decisions_without_secrets() {
    let recorder = Recorder::default();
    let dispatch = tracing::Dispatch::new(recorder.clone());
    tracing::dispatcher::with_default(&dispatch, || {
        let mut m = manager(builder(), expired_session(1000));
        let mut server = FakeServer::default();
        let request = TokenRequest::new();
        get(&mut m, &mut server, &request, 2000).unwrap();
        get(&mut m, &mut server, &request, 2001).unwrap();
        get(&mut m, &mut server, &request.force_refresh(), 2002).unwrap();
        // A dead refresh token: invalid_grant, then login required.
        server.current_refresh_token = Some("someone-else".into());
        let forced = request.force_refresh();
        assert!(get(&mut m, &mut server, &forced, 2003).is_err());
        assert!(get(&mut m, &mut server, &forced, 2004).is_err());
    });
    assert_eq!(
        recorder.events(),
        [
            "refresh_started",
            "refresh_finished",
            "request_finished",
            "cache_hit",
            "refresh_started",
            "refresh_finished",
            "request_finished",
            "refresh_started",
            "invalid_grant",
            "request_finished",
            "login_required",
        ]
    );
    assert_eq!(
        recorder.field("refresh_started", "reason").as_deref(),
        Some("expired")
    );
    assert_eq!(
        recorder.field("refresh_finished", "rotated").as_deref(),
        Some("true")
    );
    let all = recorder.0.lock().unwrap();
    let forced_reason = all
        .iter()
        .filter(|f| {
            f.iter()
                .any(|(n, v)| n == "event" && v == "refresh_started")
        })
        .nth(1)
        .and_then(|f| {
            f.iter()
                .find(|(n, _)| n == "reason")
                .map(|(_, v)| v.clone())
        });
    assert_eq!(forced_reason.as_deref(), Some("forced"));
    // Each answer is handled in a `response` span with its request id.
    let spans = recorder.1.lock().unwrap().clone();
    let responses: Vec<_> = spans
        .iter()
        .filter(|f| f.iter().any(|(n, v)| n == "span" && v == "response"))
        .collect();
    assert_eq!(responses.len(), 3, "three answers: {spans:?}");
    assert!(
        responses
            .iter()
            .all(|f| f.iter().any(|(n, _)| n == "request_id"))
    );
    // No secret in any field: the refresh tokens, access tokens and the
    // client secret the run handled.
    let secrets = [
        "rt-0", "rt-1", "rt-2", "at-1-", "at-2-", "at-login", "secret-1",
    ];
    for fields in all.iter().chain(spans.iter()) {
        for (name, value) in fields {
            for secret in secrets {
                assert!(!value.contains(secret), "{name}={value} holds {secret}");
            }
        }
    }
}

//! A scripted token endpoint on 127.0.0.1, over HTTPS with a throwaway CA
//! (rcgen) served by rustls, or over plain HTTP: each connection gets the
//! next scripted answer, after that answer's delay, on its own thread.
//! (It serves the ureq and the reqwest adapter's TLS tests.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// One scripted answer: a full HTTP response, sent after `delay`.
#[derive(Clone)]
pub struct Answer {
    /// The whole HTTP response, status line to body.
    pub response: String,
    /// How long to wait before answering.
    pub delay: Duration,
}

/// A `200 OK` token response rotating to `refresh_token`.
pub fn tokens(access_token: &str, refresh_token: &str) -> Answer {
    let body = format!(
        r#"{{"access_token":"{access_token}","refresh_token":"{refresh_token}","expires_in":3600,"token_type":"Bearer"}}"#
    );
    Answer {
        response: format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
        delay: Duration::ZERO,
    }
}

/// A discovery document for the server at `base` (its issuer), with its
/// token endpoint at `{base}/token`.
pub fn discovery(base: &str) -> Answer {
    let body = format!(r#"{{"issuer":"{base}","token_endpoint":"{base}/token"}}"#);
    Answer {
        response: format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
        delay: Duration::ZERO,
    }
}

/// A redirect to `location` with `status` (302, 307, …).
pub fn redirect(status: u16, location: &str) -> Answer {
    Answer {
        response: format!(
            "HTTP/1.1 {status} Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ),
        delay: Duration::ZERO,
    }
}

impl Answer {
    /// This answer, sent `delay` after the request arrived.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A running server.
pub struct Server {
    /// The token endpoint's URL (`https://127.0.0.1:port/token` or `http://…`).
    pub url: String,
    /// The server's base URL (`https://127.0.0.1:port`), its issuer.
    pub base: String,
    /// The CA that signed the server's certificate (PEM), for HTTPS.
    pub ca_pem: String,
    /// Requests read in full (a TLS handshake that failed is not one).
    requests: Arc<AtomicUsize>,
    /// Connections the client closed before its answer was due.
    hung_up: Arc<AtomicUsize>,
}

impl Server {
    /// How many requests arrived (read in full, after the handshake).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// How many clients closed their connection before the answer was
    /// due (a delayed answer nobody waits for any more).
    pub fn hung_up(&self) -> usize {
        self.hung_up.load(Ordering::SeqCst)
    }
}

/// An HTTPS server answering with `answers`, one per connection, in order
/// (the last one repeats).
pub fn https(answers: Vec<Answer>) -> Server {
    https_with(|_| answers)
}

/// An HTTPS server whose answers depend on its base URL
/// (`https://127.0.0.1:port`).
pub fn https_with(answers: impl FnOnce(&str) -> Vec<Answer>) -> Server {
    let (ca_pem, config) = throwaway_ca();
    start("https", answers, ca_pem, Some(Arc::new(config)))
}

/// A plain HTTP server answering with `answers` (see [`https`]).
pub fn http(answers: Vec<Answer>) -> Server {
    start("http", |_| answers, String::new(), None)
}

fn start(
    scheme: &str,
    answers: impl FnOnce(&str) -> Vec<Answer>,
    ca_pem: String,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("{scheme}://{}", listener.local_addr().unwrap());
    let answers = answers(&base);
    let url = format!("{base}/token");
    let requests = Arc::new(AtomicUsize::new(0));
    let hung_up = Arc::new(AtomicUsize::new(0));
    let script = Arc::new(Mutex::new((0usize, answers)));
    let (counted, closed) = (Arc::clone(&requests), Arc::clone(&hung_up));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let (tls, script) = (tls.clone(), Arc::clone(&script));
            let (counted, closed) = (Arc::clone(&counted), Arc::clone(&closed));
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(tcp) = stream.try_clone() else { return };
                let counters = Counters {
                    tcp,
                    requests: &counted,
                    hung_up: &closed,
                };
                match tls {
                    Some(config) => {
                        let Ok(connection) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        let mut stream = rustls::StreamOwned::new(connection, stream);
                        serve(&mut stream, &script, &counters);
                    }
                    None => {
                        let mut stream: TcpStream = stream;
                        serve(&mut stream, &script, &counters);
                    }
                }
            });
        }
    });
    Server {
        url,
        base,
        ca_pem,
        requests,
        hung_up,
    }
}

type Script = Mutex<(usize, Vec<Answer>)>;

struct Counters<'a> {
    /// The connection's socket, for its read timeout.
    tcp: TcpStream,
    requests: &'a AtomicUsize,
    hung_up: &'a AtomicUsize,
}

fn serve(stream: &mut (impl Read + Write), script: &Script, counters: &Counters<'_>) {
    let request = crate::util::read_http_request(stream);
    if !request.windows(4).any(|w| w == b"\r\n\r\n") {
        return; // the handshake failed, or the client went away
    }
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let answer = {
        let mut script = script.lock().unwrap();
        let (next, answers) = &mut *script;
        let answer = answers[(*next).min(answers.len() - 1)].clone();
        *next += 1;
        answer
    };
    if !answer.delay.is_zero() {
        std::thread::sleep(answer.delay);
        // A client still waiting sends nothing more; one that gave up has
        // closed the connection (end of stream).
        let _ = counters
            .tcp
            .set_read_timeout(Some(Duration::from_millis(100)));
        if matches!(stream.read(&mut [0u8; 1]), Ok(0)) {
            counters.hung_up.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
    let _ = stream.write_all(answer.response.as_bytes());
    let _ = stream.flush();
}

/// A CA (its PEM) and a server configuration with a certificate it signed
/// for `127.0.0.1` and `localhost`.
fn throwaway_ca() -> (String, rustls::ServerConfig) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tokenkeeper test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "tokenkeeper test server");
    let leaf = leaf.signed_by(&key, &ca).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (ca.pem(), config)
}

/// The displayed source chain of `error`, one cause a line.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut lines = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        lines.push(cause.to_string());
        next = cause.source();
    }
    lines.join("\n")
}

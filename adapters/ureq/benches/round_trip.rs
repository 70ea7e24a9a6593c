//! One refresh round trip through the ureq adapter
//! (`TokenKeeper::get_access_token` with a forced refresh: core request
//! building, store check, the POST, response parsing, session save) against
//! the same POST — same URL, headers and body bytes — made with a bare
//! `ureq::Agent`, in the same run, to the same tiny local server (a std
//! `TcpListener` thread answering a canned, rotation-free token response), so
//! the figures measure the adapter and not an authorization server.
//!
//! After criterion's figures, an interleaved A/B run prints the ratio
//! (target: at most 1.05).

use std::hint::black_box;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::{Action, ClientSecret, Config, Session, TokenManager, TokenRequest, UnixTime};
use tokenkeeper_ureq::TokenKeeper;

const TOKEN_RESPONSE: &str = r#"{"access_token":"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln","token_type":"Bearer","expires_in":3600,"scope":"openid profile email offline_access","refresh_token":"rt-bench"}"#;

/// Serves keep-alive connections, one thread each: every request gets the
/// canned token response (the same refresh token back: no rotation).
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || connection(stream));
        }
    });
    url
}

fn connection(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {}\r\n\r\n{TOKEN_RESPONSE}",
        TOKEN_RESPONSE.len()
    );
    let mut line = String::new();
    loop {
        let mut length = 0usize;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() || writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn session() -> Session {
    let json = br#"{"tokenSet":{"accessToken":"at-0","refreshToken":"rt-bench","expiresAt":1}}"#;
    Session::from_json(json, &Default::default()).unwrap()
}

fn config(url: &str) -> Config {
    Config::builder(url, "bench-client")
        .client_auth(ClientAuth::SecretPost(ClientSecret::new("bench-secret")))
        .build()
        .unwrap()
}

struct Bare {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Bare {
    /// The exact request the core builds for this refresh.
    fn new(url: &str, agent: ureq::Agent) -> Self {
        let mut manager = TokenManager::new(config(url), tokenkeeper_ureq::OsEntropy);
        manager.set_session(session());
        let now = UnixTime::from_system_time(std::time::SystemTime::now());
        let Action::Send(out) = manager.get_access_token(&TokenRequest::new(), now) else {
            panic!("expected a refresh")
        };
        Bare {
            agent,
            url: out.request.url.clone(),
            headers: out
                .request
                .headers
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            body: out.request.body.clone(),
        }
    }

    /// The same request as a core description.
    fn core_request(&self) -> tokenkeeper::HttpRequest {
        tokenkeeper::HttpRequest {
            method: tokenkeeper::Method::POST,
            url: self.url.clone(),
            headers: self.headers.iter().cloned().collect(),
            body: self.body.clone(),
        }
    }

    fn round_trip(&self) -> Vec<u8> {
        let mut request = self.agent.post(&self.url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request.send(&self.body[..]).unwrap();
        response.into_body().read_to_vec().unwrap()
    }
}

fn setup() -> (Bare, TokenKeeper) {
    let url = serve();
    let agent = tokenkeeper_ureq::agent(tokenkeeper_ureq::DEFAULT_TIMEOUT);
    let bare = Bare::new(&url, agent.clone());
    let keeper = TokenKeeper::builder(config(&url))
        .agent(agent)
        .session(session())
        .build()
        .unwrap();
    (bare, keeper)
}

fn refresh(keeper: &TokenKeeper) -> usize {
    let token = keeper
        .get_access_token(&TokenRequest::new().force_refresh())
        .unwrap();
    token.token.secret().len()
}

fn bench(c: &mut Criterion) {
    let (bare, keeper) = setup();
    let mut group = c.benchmark_group("refresh_round_trip");
    group.bench_function("bare_ureq_post", |b| {
        b.iter(|| black_box(bare.round_trip()))
    });
    group.bench_function("tokenkeeper_ureq", |b| {
        b.iter(|| black_box(refresh(&keeper)))
    });
    group.finish();
}

/// Both, alternating call by call (so load from elsewhere hits both
/// alike), plus the adapter's HTTP conversion alone (`send_request` of the
/// same core request, no token logic); the median of each.
fn interleaved() {
    let (bare, keeper) = setup();
    let request = bare.core_request();
    for _ in 0..500 {
        black_box(bare.round_trip());
        black_box(refresh(&keeper));
    }
    const CALLS: usize = 20_000;
    let mut times = [(); 3].map(|()| Vec::with_capacity(CALLS));
    for _ in 0..CALLS {
        let started = Instant::now();
        black_box(bare.round_trip());
        times[0].push(started.elapsed());
        let started = Instant::now();
        black_box(keeper.send_request(request.clone()).unwrap());
        times[1].push(started.elapsed());
        let started = Instant::now();
        black_box(refresh(&keeper));
        times[2].push(started.elapsed());
    }
    let [a, s, b] = times.map(|mut v| {
        v.sort();
        v[v.len() / 2]
    });
    // The overhead is about constant; the ratio moves with the base (a
    // quiet machine's faster loopback makes it larger).
    println!(
        "interleaved medians of {CALLS} calls each: bare ureq POST {a:?}, \
         adapter send_request {s:?}, tokenkeeper-ureq refresh {b:?}, \
         overhead {:?}, ratio {:.3}",
        b.saturating_sub(a),
        b.as_secs_f64() / a.as_secs_f64()
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` runs each once.
    if std::env::args().any(|a| a == "--bench") {
        interleaved();
    }
}

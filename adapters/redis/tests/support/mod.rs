//! Test support: a `redis-server` of the test's own on a free loopback
//! port (never the system's instance), stopped on drop; the harness
//! client's configuration for a fleet; child processes of the test binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::{ClientSecret, Config, Session};
use tokenkeeper_integration::adapter_support::LOGIN_SCOPE;
use tokenkeeper_integration::{API1, CONFIDENTIAL_POST};

#[allow(unused_imports)]
pub use tokenkeeper_integration::adapter_support::{authorization, refresh_token};

/// A `redis-server` started for one test.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    dir: PathBuf,
    /// TLS only (`--port 0 --tls-port`): the CA's PEM.
    ca_pem: Option<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// A server without a password.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// A server that requires `password` (`--requirepass`).
    pub fn with_password(password: &str) -> Self {
        Self::launch(Some(password.to_owned()))
    }

    /// A server that speaks only TLS, with a certificate for `localhost`
    /// and `127.0.0.1` from a throwaway CA ([`ca_pem`](Self::ca_pem)).
    pub fn with_tls() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "tokenkeeper-redis test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "tokenkeeper-redis test server");
        let leaf = leaf.signed_by(&key, &ca).unwrap();

        let port = free_port();
        let dir = std::env::temp_dir().join(format!("tk-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        let mut server = RedisServer {
            child: None,
            port,
            password: None,
            dir,
            ca_pem: Some(ca.pem()),
        };
        server.restart();
        server
    }

    /// The CA of a [`with_tls`](Self::with_tls) server.
    pub fn ca_pem(&self) -> &str {
        self.ca_pem.as_deref().unwrap()
    }

    fn launch(password: Option<String>) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("tk-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            child: None,
            port,
            password,
            dir,
            ca_pem: None,
        };
        server.restart();
        server
    }

    /// `redis://[:password@]127.0.0.1:port`, or `rediss://localhost:port`.
    pub fn url(&self) -> String {
        if self.ca_pem.is_some() {
            return format!("rediss://localhost:{}", self.port);
        }
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new("redis-server");
        let port = self.port.to_string();
        if self.ca_pem.is_some() {
            let file = |name: &str| self.dir.join(name);
            command
                .args(["--port", "0", "--tls-port", &port])
                .arg("--tls-cert-file")
                .arg(file("server.pem"))
                .arg("--tls-key-file")
                .arg(file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(file("ca.pem"))
                .args(["--tls-auth-clients", "no"]);
        } else {
            command.args(["--port", &port]);
        }
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = &self.password {
            command.args(["--requirepass", p]);
        }
        self.child = Some(
            command
                .spawn()
                .expect("redis-server (apt-get install -y redis-server)"),
        );
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Pauses (`SIGSTOP`) or resumes (`SIGCONT`) the server: it keeps its
    /// data but answers nothing meanwhile.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A plain connection for the test's own checks.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A session from JSON.
pub fn session(json: &Value) -> Session {
    Session::from_json(json.to_string().as_bytes(), &Default::default()).unwrap()
}

/// `session` with its access token expired and its generation raised by
/// one (a save over it with compare-and-swap).
pub fn expired_next(session: &Session) -> Session {
    let mut json: Value = serde_json::from_str(&session.to_json()).unwrap();
    json["tokenSet"]["expiresAt"] = json!(now() - 10);
    json["tokenkeeper"]["generation"] = json!(session.generation() + 1);
    self::session(&json)
}

/// The harness client's configuration for a session shared by a fleet.
pub fn fleet_config(token_endpoint: &str, issuer: &str, lease: Duration) -> Config {
    Config::builder(token_endpoint, CONFIDENTIAL_POST.id)
        .client_auth(ClientAuth::SecretPost(ClientSecret::new(
            CONFIDENTIAL_POST.secret.unwrap(),
        )))
        .issuer(issuer)
        .audience(API1)
        .scope(LOGIN_SCOPE)
        .target_parameter(TargetParameter::Resource)
        .shared_store(true)
        .lease(lease)
        .build()
        .unwrap()
}

/// A child process: this test binary, running only `entry` with `env`.
pub struct Worker {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Worker {
    pub fn spawn(entry: &str, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([entry, "--exact", "--nocapture", "--test-threads", "1"])
            .env("TK_FLEET_CHILD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, line)) = line.split_once("TK ") {
                    let _ = tx.send(line.to_owned());
                }
            }
        });
        Worker { child, lines }
    }

    /// The next line the child reported (`TK …` on its stdout).
    pub fn line(&self, timeout: Duration) -> String {
        let line = self
            .lines
            .recv_timeout(timeout)
            .expect("the child reported in time");
        eprintln!(
            "child {}: {}",
            self.child.id(),
            &line[..line.len().min(200)]
        );
        line
    }

    pub fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }

    pub fn wait(&mut self) -> bool {
        self.child.wait().unwrap().success()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In a child: whether this process is one, and the environment it got.
pub fn child_env(name: &str) -> Option<String> {
    std::env::var("TK_FLEET_CHILD").ok()?;
    std::env::var(name).ok()
}

/// In a child: reports a line to the parent.
pub fn report(line: &str) {
    println!("TK {line}");
}

/// In a child: waits for the parent's `go`.
pub fn wait_for_go() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
}

//! The Wasm driver: the scenarios through `tokenkeeper-wasm`, compiled for
//! wasm32 and run in Node 20 (global `fetch`, Web Crypto) by the bridge
//! (`tests/wasm-bridge`).
//!
//! One Node host per test process, started at the first use (after the
//! bridge is built, see [`bridge_module`]); every test's keepers live in
//! it, each call a task of its one event loop. The stores stay here: a
//! keeper's store in the module is a proxy whose every operation comes back
//! through a FIFO to a thread that runs it on the scenario's
//! [`SharedStore`] (history, compare-and-swap and sharing as for the
//! native adapters).
//!
//! ```text
//! Wasm::get ─> Host::call([Command]) ── stdin line ──> host.cjs ─> bridge
//!   <─ reply by id <── reader thread <── stdout line ──┘   │ store op
//!      store thread: FIFO in ─> SharedStore ─> FIFO out ───┘ (blocking)
//! ```
//!
//! Building: `cargo build --target wasm32-unknown-unknown -p
//! tokenkeeper-wasm-bridge --target-dir target/wasm-bridge` (its own target
//! directory: the outer `cargo test` holds the lock on `target/`), then
//! `wasm-bindgen --target nodejs` into `target/wasm-bridge/pkg-<stamp>`,
//! written to a temporary directory and renamed into place, so test
//! processes building at once never see half a module. When it cannot be
//! built, every wasm test fails with the reason.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use tokenkeeper::{SessionStore, StoreError};
use tokenkeeper_integration::adapter_support::SharedStore;
use tokenkeeper_wasm_bridge::protocol::{
    Answer, Command, Reply, Request, StoreAnswer, StoreOp, StoreReply, StoreRequest, WireFailure,
    WireStoreError, intern, session_from_json,
};

use super::Failure;

/// How long one call may take before the test fails (the harness answers
/// in milliseconds; the slowest scenarios wait on purpose for seconds).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The workspace root (this crate is `tests/`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn run(what: &str, command: &mut Process) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("{what}: cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The bridge's JavaScript module (`tokenkeeper_wasm_bridge.js`), built
/// (or found up to date).
///
/// # Errors
/// Why it could not be built.
pub fn bridge_module() -> Result<PathBuf, String> {
    let root = workspace_root();
    let target_dir = root.join("target").join("wasm-bridge");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    run(
        "building the wasm bridge",
        Process::new(cargo)
            .current_dir(&root)
            .args([
                "build",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                "tokenkeeper-wasm-bridge",
                "--target-dir",
            ])
            .arg(&target_dir),
    )?;
    let wasm = target_dir.join("wasm32-unknown-unknown/debug/tokenkeeper_wasm_bridge.wasm");
    let meta = fs::metadata(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    // The output directory is named after the module it came from: found,
    // it is complete (it only appears by a rename).
    let pkg = target_dir.join(format!("pkg-{}-{}", meta.len(), modified.as_nanos()));
    let module = pkg.join("tokenkeeper_wasm_bridge.js");
    if module.exists() {
        return Ok(module);
    }
    let staging = target_dir.join(format!("pkg-staging-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    run(
        "wasm-bindgen (install it with `scripts/wasm-tests.sh install`)",
        Process::new("wasm-bindgen")
            .args(["--target", "nodejs", "--out-dir"])
            .arg(&staging)
            .arg(&wasm),
    )?;
    if fs::rename(&staging, &pkg).is_err() {
        // Another test process got there first with the same module.
        let _ = fs::remove_dir_all(&staging);
    }
    remove_stale_modules(&target_dir, &pkg);
    if module.exists() {
        Ok(module)
    } else {
        Err(format!(
            "{} is missing after wasm-bindgen",
            module.display()
        ))
    }
}

/// Removes the bindgen output of earlier modules, once an hour old (a
/// test process loads its module at its start: none still needs one that
/// old).
fn remove_stale_modules(target_dir: &Path, current: &Path) {
    let Ok(entries) = fs::read_dir(target_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        let is_module = entry.file_name().to_string_lossy().starts_with("pkg-");
        if is_module && stale && path != current {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// The callers waiting for a reply, by request id; `None` once the host
/// has exited.
type Waiting = Option<HashMap<u64, mpsc::Sender<Reply>>>;

/// The Node host: its stdin, the callers waiting for replies, the stores
/// its keepers use.
struct Host {
    stdin: Mutex<ChildStdin>,
    waiting: Arc<Mutex<Waiting>>,
    stores: Arc<Mutex<HashMap<u64, SharedStore>>>,
    next_id: AtomicU64,
    _child: Mutex<Child>,
}

fn host() -> &'static Host {
    static HOST: OnceLock<Result<Host, String>> = OnceLock::new();
    match HOST.get_or_init(Host::start) {
        Ok(host) => host,
        Err(why) => panic!("the wasm driver cannot run: {why}"),
    }
}

impl Host {
    fn start() -> Result<Host, String> {
        let module = bridge_module()?;
        let fifos =
            std::env::temp_dir().join(format!("tokenkeeper-wasm-host-{}", std::process::id()));
        let _ = fs::remove_dir_all(&fifos);
        fs::create_dir_all(&fifos).map_err(|e| format!("{}: {e}", fifos.display()))?;
        let (requests, replies) = (fifos.join("store-requests"), fifos.join("store-replies"));
        for fifo in [&requests, &replies] {
            run("mkfifo", Process::new("mkfifo").arg(fifo))?;
        }
        let mut child = Process::new("node")
            .arg(workspace_root().join("tests/wasm-bridge/host.cjs"))
            .arg(&module)
            .arg(&requests)
            .arg(&replies)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start node: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        let stores: Arc<Mutex<HashMap<u64, SharedStore>>> = Arc::default();
        let served = Arc::clone(&stores);
        std::thread::Builder::new()
            .name("wasm-store".into())
            .spawn(move || serve_stores(&requests, &replies, &fifos, &served))
            .map_err(|e| e.to_string())?;

        let waiting: Arc<Mutex<Waiting>> = Arc::new(Mutex::new(Some(HashMap::new())));
        let answered = Arc::clone(&waiting);
        std::thread::Builder::new()
            .name("wasm-replies".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<Reply>(&line) {
                        Ok(reply) => {
                            let caller = lock(&answered)
                                .as_mut()
                                .and_then(|waiting| waiting.remove(&reply.id));
                            if let Some(caller) = caller {
                                let _ = caller.send(reply);
                            }
                        }
                        Err(e) => eprintln!("[wasm driver] unreadable reply {line:?}: {e}"),
                    }
                }
                // The host ended: every caller still waiting learns it (its
                // sender drops), and so does every later one.
                lock(&answered).take();
            })
            .map_err(|e| e.to_string())?;

        Ok(Host {
            stdin: Mutex::new(stdin),
            waiting,
            stores,
            next_id: AtomicU64::new(1),
            _child: Mutex::new(child),
        })
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends every command at once (one line: the host starts them in the
    /// same tick) and waits for all their outcomes, in order.
    fn call(&self, commands: Vec<Command>) -> Vec<Result<Answer, WireFailure>> {
        let (tx, rx) = mpsc::channel();
        let requests: Vec<Request> = commands
            .into_iter()
            .map(|command| Request {
                id: self.next_id(),
                command,
            })
            .collect();
        {
            let mut waiting = lock(&self.waiting);
            let Some(waiting) = waiting.as_mut() else {
                panic!("the wasm host (node) has exited; its stderr is above")
            };
            for request in &requests {
                waiting.insert(request.id, tx.clone());
            }
        }
        drop(tx);
        let line = serde_json::to_string(&requests).expect("commands as JSON");
        {
            let mut stdin = lock(&self.stdin);
            writeln!(stdin, "{line}")
                .and_then(|()| stdin.flush())
                .expect("the wasm host's stdin (did node exit?)");
        }
        let mut outcomes: HashMap<u64, Result<Answer, WireFailure>> = HashMap::new();
        while outcomes.len() < requests.len() {
            let reply = rx
                .recv_timeout(CALL_TIMEOUT)
                .expect("a reply from the wasm host (it exited, or a call hangs)");
            outcomes.insert(reply.id, reply.outcome);
        }
        requests
            .iter()
            .map(|r| outcomes.remove(&r.id).expect("each reply"))
            .collect()
    }

    /// Sends `command` and does not wait for its reply.
    fn send(&self, command: Command) {
        let line = serde_json::to_string(&[Request {
            id: self.next_id(),
            command,
        }])
        .expect("command as JSON");
        let mut stdin = lock(&self.stdin);
        let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
    }
}

/// The store thread: opens its FIFO ends (in the order the host opens
/// theirs), removes them from the file system, then runs every store
/// operation the keepers ask for.
fn serve_stores(
    requests: &Path,
    replies: &Path,
    dir: &Path,
    stores: &Mutex<HashMap<u64, SharedStore>>,
) {
    let (Ok(input), Ok(mut output)) = (
        File::open(requests),
        OpenOptions::new().write(true).open(replies),
    ) else {
        eprintln!(
            "[wasm driver] cannot open the store FIFOs in {}",
            dir.display()
        );
        return;
    };
    let _ = fs::remove_dir_all(dir);
    for line in BufReader::new(input).lines() {
        let Ok(line) = line else { break };
        let reply: StoreReply = match serde_json::from_str::<StoreRequest>(&line) {
            Ok(request) => {
                let store = lock(stores).get(&request.store).cloned();
                match store {
                    Some(mut store) => run_store_op(&mut store, &request.key, request.op),
                    None => Err(WireStoreError::Backend(format!(
                        "no store {}",
                        request.store
                    ))),
                }
            }
            Err(e) => Err(WireStoreError::Backend(format!(
                "unreadable store request: {e}"
            ))),
        };
        let line = serde_json::to_string(&reply).expect("store reply as JSON");
        if writeln!(output, "{line}")
            .and_then(|()| output.flush())
            .is_err()
        {
            break;
        }
    }
}

fn run_store_op(store: &mut SharedStore, key: &str, op: StoreOp) -> StoreReply {
    let done = match op {
        StoreOp::Load => store
            .load(key)
            .map(|s| StoreAnswer::Session(s.map(|s| s.to_json()))),
        StoreOp::Save { session, expected } => match session_from_json(&session) {
            Ok(session) => store
                .save(key, &session, expected)
                .map(|()| StoreAnswer::Done),
            Err(e) => Err(StoreError::backend(e)),
        },
        StoreOp::Generation => store.generation(key).map(StoreAnswer::Generation),
        StoreOp::Clear => store.clear(key).map(|()| StoreAnswer::Done),
        StoreOp::Floor => store.floor(key).map(StoreAnswer::Floor),
    };
    done.map_err(|e| WireStoreError::new(&e))
}

/// A keeper in the host; forgotten there (and its store here) when the
/// last clone of its [`Wasm`] handle drops.
struct Keeper {
    id: u64,
    store: u64,
}

impl Drop for Keeper {
    fn drop(&mut self) {
        let host = host();
        host.send(Command::Drop { keeper: self.id });
        lock(&host.stores).remove(&self.store);
    }
}

/// `tokenkeeper_wasm::TokenKeeper` in the Node host.
#[derive(Clone)]
pub struct Wasm(Arc<Keeper>);

impl From<WireFailure> for Failure {
    fn from(failure: WireFailure) -> Self {
        Failure {
            code: intern(&failure.code),
            core: failure.core.map(|core| Box::new(core.get())),
            requires_login: failure.requires_login,
            message: failure.message,
        }
    }
}

impl Wasm {
    /// A keeper on `config`'s description, its store `store`, with DPoP on
    /// `dpop_jwk` (a private JWK).
    pub fn build(
        config: &super::Config,
        store: SharedStore,
        dpop_jwk: Option<String>,
    ) -> Result<Self, Failure> {
        let host = host();
        let (id, store_id) = (host.next_id(), host.next_id());
        lock(&host.stores).insert(store_id, store);
        let keeper = Keeper {
            id,
            store: store_id,
        };
        let command = Command::Build {
            keeper: id,
            store: store_id,
            config: config.description.clone(),
            dpop_jwk,
        };
        // `keeper` drops (forgotten on both sides) if the build failed.
        Self::one(command)?;
        Ok(Wasm(Arc::new(keeper)))
    }

    /// This keeper's id in the host.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// One command's outcome.
    pub fn one(command: Command) -> Result<Answer, Failure> {
        Self::all(vec![command]).pop().expect("one outcome")
    }

    /// Every command started at once (tasks in one event loop); the
    /// outcomes in order.
    pub fn all(commands: Vec<Command>) -> Vec<Result<Answer, Failure>> {
        host()
            .call(commands)
            .into_iter()
            .map(|outcome| outcome.map_err(Failure::from))
            .collect()
    }
}

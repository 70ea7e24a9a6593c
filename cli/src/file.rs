//! The session file: what `login` learned about the server and the client
//! (never the client secret), and the session in the Auth0 Next.js SDK's
//! JSON shape. Written with owner-only permissions (0600 on Unix),
//! atomically (a temporary file in the same folder, then a rename), and
//! compared-and-swapped under a lock file, so two `tokenkeeper` processes
//! sharing it never spend one refresh token twice.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::{Session, SessionStore, StoreError};

/// The version of the file format written.
const FORMAT: u32 = 1;

/// The largest session file read (a session with many cached tokens stays
/// far below it).
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// What later commands need to talk to the server again without discovery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    /// The issuer the session came from.
    pub issuer: String,
    /// Its token endpoint.
    pub token_endpoint: String,
    /// Its revocation endpoint (RFC 7009), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The client id.
    pub client_id: String,
    /// `none`, `client_secret_basic` or `client_secret_post`; the secret
    /// itself is never stored.
    pub client_auth: String,
    /// The scope logged in with (the default scope of later requests).
    pub scope: String,
    /// The default audience / resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// `audience` or `resource` (RFC 8707).
    pub target_parameter: String,
    /// The DPoP key file, when tokens are DPoP-bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<PathBuf>,
}

impl Profile {
    /// The target parameter as the core names it.
    pub fn target(&self) -> TargetParameter {
        target_from_name(&self.target_parameter)
    }
}

/// `resource` or `audience` (anything else).
pub fn target_from_name(name: &str) -> TargetParameter {
    match name {
        "resource" => TargetParameter::Resource,
        "both" => TargetParameter::Both,
        _ => TargetParameter::Audience,
    }
}

/// The file as written.
#[derive(Debug, Serialize, Deserialize)]
struct Contents {
    /// [`FORMAT`].
    tokenkeeper_cli: u32,
    #[serde(flatten)]
    profile: Profile,
    /// The SDK-shaped session.
    session: serde_json::Value,
}

/// A session file read back.
pub struct Loaded {
    /// The server and client.
    pub profile: Profile,
    /// The session.
    pub session: Session,
}

/// Reads `path`: `Ok(None)` when it does not exist.
///
/// # Errors
/// An I/O error, or `InvalidData` for a file that is not a session file.
pub fn read(path: &Path) -> io::Result<Option<Loaded>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, MAX_FILE_BYTES), &mut bytes)?;
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let contents: Contents = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("not a tokenkeeper session file ({e})")))?;
    if contents.tokenkeeper_cli != FORMAT {
        return Err(invalid(format!(
            "session file format {} is not supported (this tool writes {FORMAT})",
            contents.tokenkeeper_cli
        )));
    }
    let session = Session::from_json(contents.session.to_string().as_bytes(), &Default::default())
        .map_err(|e| invalid(format!("invalid session ({e})")))?;
    Ok(Some(Loaded {
        profile: contents.profile,
        session,
    }))
}

/// Writes `bytes` to `path` atomically with owner-only permissions: a new
/// temporary file (mode 0600) in the same folder, synced, then renamed
/// over `path` — a reader sees the old file or the new one, never half.
///
/// # Errors
/// The I/O error; the temporary file is removed then.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tokenkeeper".into());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let temp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let written = (|| {
        let mut file = private_options().create_new(true).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    // Make the rename itself durable (best effort; not possible everywhere).
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Open options for a file only its owner may read or write.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// The folder of `path` (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Creates `dir` and its parents, the new ones owner-only (0700 on Unix).
///
/// # Errors
/// The I/O error.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The default session file: `$XDG_CONFIG_HOME/tokenkeeper/session.json`,
/// `~/.config/tokenkeeper/session.json` (`%APPDATA%\tokenkeeper\…` on
/// Windows), or `./tokenkeeper-session.json` without a home folder.
pub fn default_session_path() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let config = if cfg!(windows) {
        var("APPDATA").map(PathBuf::from)
    } else {
        var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".config")))
    };
    match config {
        Some(dir) => dir.join("tokenkeeper").join("session.json"),
        None => PathBuf::from("tokenkeeper-session.json"),
    }
}

/// A [`SessionStore`] on the session file, with compare-and-swap on the
/// session's generation under an exclusive lock on `<file>.lock`.
pub struct FileStore {
    path: PathBuf,
    profile: Profile,
    /// A login replacing whatever the file holds: nothing is loaded, and a
    /// file that cannot be read counts as no session.
    replace: bool,
}

impl FileStore {
    /// The store for `path`, writing `profile` beside the session.
    pub fn new(path: PathBuf, profile: Profile) -> Self {
        FileStore {
            path,
            profile,
            replace: false,
        }
    }

    /// The store for a login: the file's current session (if any) is not
    /// loaded and is replaced at the first save.
    pub fn replacing(path: PathBuf, profile: Profile) -> Self {
        FileStore {
            path,
            profile,
            replace: true,
        }
    }

    /// Holds the lock file while `f` runs.
    fn locked<R>(&self, f: impl FnOnce() -> Result<R, StoreError>) -> Result<R, StoreError> {
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock = private_options()
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| backend("cannot open the lock file", &e))?;
        lock.lock()
            .map_err(|e| backend("cannot lock the session file", &e))?;
        let result = f();
        let _ = lock.unlock();
        result
    }

    /// The generation stored now (`None`: no session).
    fn stored_generation(&self) -> Result<Option<u64>, StoreError> {
        match read(&self.path) {
            Ok(loaded) => Ok(loaded.map(|l| l.session.generation())),
            Err(_) if self.replace => Ok(None),
            Err(e) => Err(backend("cannot read the session file", &e)),
        }
    }
}

fn backend(what: &str, error: &io::Error) -> StoreError {
    StoreError::backend(format!("{what}: {error}"))
}

impl SessionStore for FileStore {
    fn load(&mut self, _key: &str) -> Result<Option<Session>, StoreError> {
        if self.replace {
            return Ok(None);
        }
        read(&self.path)
            .map(|loaded| loaded.map(|l| l.session))
            .map_err(|e| backend("cannot read the session file", &e))
    }

    fn save(
        &mut self,
        _key: &str,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        self.locked(|| {
            let found = self.stored_generation()?;
            if found != expected {
                return Err(StoreError::Conflict { found });
            }
            let session = serde_json::from_str(&session.to_json())
                .map_err(|e| StoreError::backend(format!("cannot write the session: {e}")))?;
            let contents = Contents {
                tokenkeeper_cli: FORMAT,
                profile: self.profile.clone(),
                session,
            };
            let mut json = serde_json::to_vec_pretty(&contents)
                .map_err(|e| StoreError::backend(format!("cannot write the session: {e}")))?;
            json.push(b'\n');
            write_private(&self.path, &json)
                .map_err(|e| backend("cannot write the session file", &e))
        })?;
        self.replace = false;
        Ok(())
    }

    fn generation(&mut self, _key: &str) -> Result<Option<u64>, StoreError> {
        self.stored_generation()
    }

    fn clear(&mut self, _key: &str) -> Result<(), StoreError> {
        self.locked(|| match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend("cannot remove the session file", &e)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenkeeper::{SeededEntropy, UnixTime};

    fn profile() -> Profile {
        Profile {
            issuer: "https://as.example".into(),
            token_endpoint: "https://as.example/token".into(),
            revocation_endpoint: None,
            client_id: "cli".into(),
            client_auth: "none".into(),
            scope: "openid offline_access".into(),
            audience: Some("https://api.example".into()),
            target_parameter: "resource".into(),
            dpop_key: None,
        }
    }

    fn session(refresh_token: &str) -> Session {
        Session::from_refresh_token(
            tokenkeeper::RefreshToken::new(refresh_token),
            UnixTime::from_secs(1_000),
            &mut SeededEntropy::new(7),
        )
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tokenkeeper-cli-unit-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("session.json")
    }

    #[test]
    fn saves_compare_generations_and_round_trip() {
        let path = temp("cas");
        let mut store = FileStore::new(path.clone(), profile());
        assert!(store.load("default").unwrap().is_none());
        let first = session("rt-1");
        store.save("default", &first, None).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let loaded = read(&path).unwrap().unwrap();
        assert_eq!(loaded.profile, profile());
        assert_eq!(loaded.session.to_json(), first.to_json());
        // A writer that started from another generation loses.
        let stale = Some(first.generation() + 1);
        assert_eq!(
            store.save("default", &session("rt-2"), stale),
            Err(StoreError::Conflict {
                found: Some(first.generation())
            })
        );
        assert_eq!(
            store.generation("default").unwrap(),
            Some(first.generation())
        );
        store.clear("default").unwrap();
        assert!(!path.exists());
        assert!(store.load("default").unwrap().is_none());
        fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_login_replaces_an_unreadable_file_and_others_refuse_it() {
        let path = temp("replace");
        fs::write(&path, "not json").unwrap();
        let mut reader = FileStore::new(path.clone(), profile());
        assert!(matches!(
            reader.load("default"),
            Err(StoreError::Backend(_))
        ));
        let mut login = FileStore::replacing(path.clone(), profile());
        assert!(login.load("default").unwrap().is_none());
        login.save("default", &session("rt-1"), None).unwrap();
        assert!(read(&path).unwrap().is_some());
        fs::remove_dir_all(path.parent().unwrap()).ok();
    }
}

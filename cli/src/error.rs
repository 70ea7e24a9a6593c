//! The tool's error: what went wrong, a stable code, and the exit status.

use std::fmt;
use std::path::PathBuf;

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: an error (the server refused, the network failed, …).
pub const EXIT_ERROR: u8 = 1;
/// Exit status: the command line is unusable (as clap's own usage errors).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: nobody is logged in, or the session is over: run `login`.
pub const EXIT_LOGIN_REQUIRED: u8 = 3;

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// The adapter's error (the core's, transport, store, signing).
    Keeper(tokenkeeper_ureq::Error),
    /// The core's error, from a call made without the adapter.
    Core(tokenkeeper::Error),
    /// A file could not be read or written.
    Io {
        /// What was being done, with the path.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The command line asks for something impossible (exit 2).
    Usage {
        /// Stable code.
        code: &'static str,
        /// What to do about it.
        message: String,
    },
    /// There is no session to work with (exit 3).
    NoSession(PathBuf),
    /// Anything else, with a stable code.
    Other {
        /// Stable code.
        code: &'static str,
        /// What happened.
        message: String,
    },
}

impl CliError {
    /// A usage error.
    pub fn usage(code: &'static str, message: impl Into<String>) -> Self {
        CliError::Usage {
            code,
            message: message.into(),
        }
    }

    /// Another error.
    pub fn other(code: &'static str, message: impl Into<String>) -> Self {
        CliError::Other {
            code,
            message: message.into(),
        }
    }

    /// An I/O error while doing `context`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }

    /// A stable, machine-readable code (the library's where it has one).
    pub fn code(&self) -> &'static str {
        match self {
            CliError::Keeper(e) => e.code(),
            CliError::Core(e) => e.code(),
            CliError::Io { .. } => "io_error",
            CliError::Usage { code, .. } | CliError::Other { code, .. } => code,
            CliError::NoSession(_) => "missing_session",
        }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        let login_required = match self {
            CliError::Keeper(e) => e.requires_login(),
            CliError::Core(e) => e.requires_login(),
            CliError::NoSession(_) => true,
            _ => false,
        };
        if login_required {
            EXIT_LOGIN_REQUIRED
        } else if matches!(self, CliError::Usage { .. }) {
            EXIT_USAGE
        } else {
            EXIT_ERROR
        }
    }

    /// The error and its sources on one line, each cause once (a message
    /// that already quotes its source does not repeat it), with the code
    /// and, when only a login helps, what to run.
    pub fn report(&self) -> String {
        let mut line = format!("error[{}]: {self}", self.code());
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !text.is_empty() && !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = cause.source();
        }
        if self.exit_code() == EXIT_LOGIN_REQUIRED {
            line.push_str("\n  run `tokenkeeper login` to log in");
        }
        line
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Keeper(e) => write!(f, "{e}"),
            CliError::Core(e) => write!(f, "{e}"),
            CliError::Io { context, .. } => write!(f, "{context}"),
            CliError::Usage { message, .. } | CliError::Other { message, .. } => {
                write!(f, "{message}")
            }
            CliError::NoSession(path) => {
                write!(f, "not logged in: no session in {}", path.display())
            }
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The adapter's and the core's own `source`s: their Display is
            // printed by `report` already.
            CliError::Keeper(e) => e.source(),
            CliError::Core(e) => e.source(),
            CliError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<tokenkeeper_ureq::Error> for CliError {
    fn from(error: tokenkeeper_ureq::Error) -> Self {
        CliError::Keeper(error)
    }
}

impl From<tokenkeeper::Error> for CliError {
    fn from(error: tokenkeeper::Error) -> Self {
        CliError::Core(error)
    }
}

impl From<tokenkeeper::login::LoginError> for CliError {
    fn from(error: tokenkeeper::login::LoginError) -> Self {
        CliError::Core(tokenkeeper::Error::Login(error))
    }
}

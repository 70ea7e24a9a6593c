//! `tokenkeeper`: log in to an OAuth 2.0 / OpenID Connect server and get
//! access tokens from the command line, for developers testing their
//! authorization server (in the way of `oauth2c`), on the
//! [`tokenkeeper_ureq`] adapter.
//!
//! See `tokenkeeper --help` and the crate's README.
#![forbid(unsafe_code)]

mod commands;
mod device;
mod dpop;
mod error;
mod file;
mod loopback;
mod verbose;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{EXIT_OK, EXIT_USAGE};

/// What `tokenkeeper --help` shows after the options.
const EXAMPLES: &str = "\
Examples:
  # Log in through the browser (a public client, PKCE); the session is saved
  tokenkeeper login --issuer https://tenant.example.com/ --client-id my-cli \\
      --audience https://api.example.com

  # Or with a code to enter in a browser anywhere (RFC 8628 device flow)
  tokenkeeper login --device --issuer https://tenant.example.com/ --client-id my-cli

  # The access token for the API, refreshed when due
  curl -H \"Authorization: Bearer $(tokenkeeper token)\" https://api.example.com/me

  # The same token as JSON (type, expiry, scope, audience), or forced fresh
  tokenkeeper token --json
  tokenkeeper token --force

  # A machine token (client credentials) for a confidential client
  TOKENKEEPER_CLIENT_SECRET=... tokenkeeper client-credentials \\
      --issuer https://tenant.example.com/ --client-id my-service --audience https://api.example.com

Exit status: 0 ok, 1 error, 2 usage, 3 login required.";

/// Log in to an OAuth 2.0 / OpenID Connect server and get access tokens.
///
/// `login` opens an authorization code + PKCE login with a loopback
/// redirect (RFC 8252), or a device code login (RFC 8628), and saves the
/// session in a file only you can read;
/// `token` prints an access token from it, refreshed when due (rotated
/// refresh tokens are saved back). DPoP (RFC 9449) with a key kept on disk,
/// RFC 8707 resource indicators, client credentials and revocation on
/// logout are supported. Nothing secret is ever printed but the token you
/// ask for, on standard output.
#[derive(Debug, Parser)]
#[command(name = "tokenkeeper", version, after_help = EXAMPLES)]
struct Cli {
    /// The session file [default: $XDG_CONFIG_HOME/tokenkeeper/session.json,
    /// ~/.config/tokenkeeper/session.json, or ./tokenkeeper-session.json].
    #[arg(
        long,
        global = true,
        env = "TOKENKEEPER_SESSION",
        value_name = "FILE",
        help_heading = "Global options"
    )]
    session: Option<PathBuf>,

    /// Tell on standard error what is done (endpoints, files, and the
    /// library's decisions: cache hit, refresh started and why, DPoP nonce
    /// retry, …); never a secret.
    #[arg(short, long, global = true, help_heading = "Global options")]
    verbose: bool,

    /// Timeout of each HTTP request, in seconds.
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        default_value_t = 30,
        help_heading = "Global options"
    )]
    timeout: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in through the browser (authorization code + PKCE, loopback
    /// redirect) and save the session.
    ///
    /// The authorization URL is printed on standard error; open it (or pass
    /// --open). The server's redirect to http://127.0.0.1:<port>/callback
    /// comes back to this process, which exchanges the code, checks the ID
    /// token and saves the session. The client must allow that redirect
    /// URI: for a "native" client, RFC 8252 §7.3 has servers accept any
    /// port on a registered loopback URI. With --device, the device
    /// authorization grant (RFC 8628) is used instead: no redirect.
    Login(LoginArgs),
    /// Print the access token (from the cache, refreshed when due).
    Token(TokenArgs),
    /// Refresh now and save the rotated session; prints what was granted,
    /// not the token.
    Refresh(RefreshArgs),
    /// Revoke the refresh token (when the server has a revocation
    /// endpoint) and delete the session file.
    Logout(LogoutArgs),
    /// Get a machine token with the client credentials grant (nothing is
    /// saved).
    ClientCredentials(ClientCredentialsArgs),
}

/// The client secret, for confidential clients.
#[derive(Debug, Args)]
struct SecretArgs {
    /// The client secret of a confidential client. Prefer the environment
    /// variable: other local users can see a process's arguments. Never
    /// saved.
    #[arg(
        long,
        env = "TOKENKEEPER_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    client_secret: Option<String>,
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthMethod {
    /// A public client (no secret).
    #[value(name = "none")]
    None,
    /// HTTP Basic with the client id and secret.
    #[value(name = "client_secret_basic")]
    SecretBasic,
    /// The client id and secret in the form.
    #[value(name = "client_secret_post")]
    SecretPost,
}

/// The server and client, for commands that discover them.
#[derive(Debug, Args)]
struct ServerArgs {
    /// The issuer (its /.well-known/openid-configuration is fetched).
    #[arg(long, env = "TOKENKEEPER_ISSUER", value_name = "URL")]
    issuer: String,

    /// The client id.
    #[arg(long, env = "TOKENKEEPER_CLIENT_ID", value_name = "ID")]
    client_id: String,

    #[command(flatten)]
    secret: SecretArgs,

    /// How the client authenticates [default: none without a secret;
    /// with one, client_secret_basic unless the server lists only
    /// client_secret_post].
    #[arg(long, value_enum, value_name = "METHOD")]
    auth_method: Option<AuthMethod>,

    /// The scope to ask for [default: for `login`, "openid profile email
    /// offline_access"; for `client-credentials`, none].
    #[arg(long)]
    scope: Option<String>,

    /// The API the tokens are for, sent as `audience` (or as `resource`
    /// when the server announces resource indicators).
    #[arg(long, value_name = "URI", conflicts_with = "resource")]
    audience: Option<String>,

    /// The API the tokens are for, sent as an RFC 8707 `resource`; repeat it
    /// to log in for several (the first is the default).
    #[arg(long, value_name = "URI")]
    resource: Vec<String>,

    /// Bind tokens to a DPoP key (RFC 9449), created on first use.
    #[arg(long)]
    dpop: bool,

    /// The DPoP key file: PKCS#8 PEM, or a private JWK for a .json/.jwk
    /// file; implies --dpop [default: <session file stem>-dpop-key.pem
    /// beside the session file].
    #[arg(long, value_name = "FILE")]
    dpop_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LoginArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// The loopback port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,

    /// Open the authorization URL in the default browser.
    #[arg(long)]
    open: bool,

    /// The `prompt` parameter [default: consent when the scope has
    /// offline_access, as OpenID Connect asks; "" sends none].
    #[arg(long)]
    prompt: Option<String>,

    /// Another authorization request parameter (login_hint=alice,
    /// organization=…); repeatable.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_param)]
    param: Vec<(String, String)>,

    /// How long to wait for the browser to come back, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    wait: u64,

    /// Log in with the device authorization grant (RFC 8628) instead: a
    /// code to enter on any device's browser, no redirect. Needs a server
    /// that announces a device_authorization_endpoint; not with DPoP.
    #[arg(long, conflicts_with_all = ["dpop", "dpop_key", "port", "open", "prompt", "param"])]
    device: bool,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The API [default: the one logged in for].
    #[arg(long, visible_alias = "resource", value_name = "URI")]
    audience: Option<String>,

    /// Extra scopes wanted (merged with the login's scope).
    #[arg(long)]
    scope: Option<String>,

    /// Refresh even when the cached token is fresh.
    #[arg(long)]
    force: bool,

    /// Print the token as JSON: token, type, expires_at, expires_in,
    /// scope, audience.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Args)]
struct RefreshArgs {
    /// The API [default: the one logged in for].
    #[arg(long, visible_alias = "resource", value_name = "URI")]
    audience: Option<String>,

    /// Extra scopes wanted (merged with the login's scope).
    #[arg(long)]
    scope: Option<String>,

    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Args)]
struct LogoutArgs {
    #[command(flatten)]
    secret: SecretArgs,
}

#[derive(Debug, Args)]
struct ClientCredentialsArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// Print the token as JSON: token, type, expires_at, expires_in,
    /// scope, audience.
    #[arg(long)]
    json: bool,
}

/// `NAME=VALUE`.
fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.into(), value.into())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// What every command gets.
pub struct Context {
    /// The session file.
    pub session: PathBuf,
    /// Whether to tell what is done.
    pub verbose: bool,
    /// The HTTP timeout.
    pub timeout: std::time::Duration,
}

impl Context {
    /// Tells `message` on standard error when `--verbose`.
    pub fn say(&self, message: impl std::fmt::Display) {
        if self.verbose {
            eprintln!("tokenkeeper: {message}");
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version print to stdout and exit 0; usage
            // errors print to stderr and exit 2.
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            });
        }
    };
    if cli.verbose {
        verbose::show_decisions();
    }
    let context = Context {
        session: cli.session.unwrap_or_else(file::default_session_path),
        verbose: cli.verbose,
        timeout: std::time::Duration::from_secs(cli.timeout.max(1)),
    };
    let result = match cli.command {
        Command::Login(args) => commands::login(&context, args),
        Command::Token(args) => commands::token(&context, args),
        Command::Refresh(args) => commands::refresh(&context, args),
        Command::Logout(args) => commands::logout(&context, args),
        Command::ClientCredentials(args) => commands::client_credentials(&context, args),
    };
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(error) => {
            eprintln!("{}", error.report());
            ExitCode::from(error.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn params_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_param("login_hint=a=b"),
            Ok(("login_hint".into(), "a=b".into()))
        );
        assert!(parse_param("=x").is_err());
        assert!(parse_param("novalue").is_err());
    }
}

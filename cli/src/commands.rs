//! The commands, each a few calls into the ureq adapter.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokenkeeper::discovery::AuthorizationServerMetadata;
use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::login::{LoginError, LoginRequest};
use tokenkeeper::{AccessTokenInfo, ClientSecret, Config, ConfigBuilder, TokenRequest};
use tokenkeeper_ureq::{OsEntropy, TokenKeeper};

use crate::device::DeviceLogin;
use crate::error::CliError;
use crate::file::{self, FileStore, Profile};
use crate::loopback::Loopback;
use crate::{
    AuthMethod, ClientCredentialsArgs, Context, LoginArgs, LogoutArgs, RefreshArgs, SecretArgs,
    ServerArgs, TokenArgs, dpop,
};

/// The scope of a login without --scope (the Auth0 SDK's default).
const LOGIN_SCOPE: &str = "openid profile email offline_access";

/// The seconds since the epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The client authentication `method` with `secret`.
fn client_auth(method: &str, secret: &SecretArgs) -> Result<ClientAuth, CliError> {
    let secret = || {
        secret
            .client_secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(ClientSecret::new)
            .ok_or_else(|| {
                CliError::usage(
                    "missing_client_secret",
                    format!(
                        "the client authenticates with {method}: give its secret in \
                         TOKENKEEPER_CLIENT_SECRET or --client-secret"
                    ),
                )
            })
    };
    Ok(match method {
        "none" => ClientAuth::None,
        "client_secret_basic" => ClientAuth::SecretBasic(secret()?),
        "client_secret_post" => ClientAuth::SecretPost(secret()?),
        other => {
            return Err(CliError::usage(
                "unsupported_auth_method",
                format!("client authentication {other:?} is not supported by this tool"),
            ));
        }
    })
}

/// The method's registered name.
fn method_name(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::None => "none",
        AuthMethod::SecretBasic => "client_secret_basic",
        AuthMethod::SecretPost => "client_secret_post",
    }
}

/// The method asked for, or the default: `none` without a secret;
/// `client_secret_basic` with one, unless the server lists only `post`.
fn choose_method(args: &ServerArgs, metadata: &AuthorizationServerMetadata) -> &'static str {
    if let Some(method) = args.auth_method {
        return method_name(method);
    }
    if args
        .secret
        .client_secret
        .as_deref()
        .is_none_or(str::is_empty)
    {
        return "none";
    }
    let listed = |name: &str| {
        metadata
            .token_endpoint_auth_methods_supported
            .as_ref()
            .is_some_and(|methods| methods.iter().any(|m| m == name))
    };
    if !listed("client_secret_basic") && listed("client_secret_post") {
        "client_secret_post"
    } else {
        "client_secret_basic"
    }
}

/// Discovers `issuer`.
fn discover(context: &Context, issuer: &str) -> Result<AuthorizationServerMetadata, CliError> {
    let agent = tokenkeeper_ureq::agent(context.timeout);
    context.say(format_args!("discovering {issuer}"));
    let metadata = tokenkeeper_ureq::discover(&agent, issuer)?;
    context.say(format_args!("token endpoint {}", metadata.token_endpoint));
    if let Some(revocation) = &metadata.revocation_endpoint {
        context.say(format_args!("revocation endpoint {revocation}"));
    }
    Ok(metadata)
}

/// `resource` when asked for with --resource or announced by the server,
/// otherwise `audience`.
fn target_parameter(args: &ServerArgs, metadata: &AuthorizationServerMetadata) -> &'static str {
    let announced = metadata
        .extra
        .get("resource_indicators_supported")
        .and_then(serde_json::Value::as_bool)
        == Some(true);
    if !args.resource.is_empty() || announced {
        "resource"
    } else {
        "audience"
    }
}

/// The absolute form of `path` (files named in the session file stay
/// valid from another working directory).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The DPoP key file asked for, if any.
fn dpop_key_path(context: &Context, args: &ServerArgs) -> Option<PathBuf> {
    match &args.dpop_key {
        Some(path) => Some(absolute(path)),
        None if args.dpop => Some(absolute(&dpop::default_key_path(&context.session))),
        None => None,
    }
}

/// Loads or creates the DPoP key, telling which.
fn dpop_key(context: &Context, path: &Path) -> Result<DpopKey, CliError> {
    let (key, created) = dpop::load_or_create(path)?;
    context.say(format_args!(
        "DPoP key {} {} (thumbprint {})",
        path.display(),
        if created { "created" } else { "loaded" },
        key.thumbprint()
    ));
    Ok(key)
}

/// The configuration for `profile`.
fn config(profile: &Profile, auth: ClientAuth) -> ConfigBuilder {
    let mut builder = Config::builder(profile.token_endpoint.clone(), profile.client_id.clone())
        .issuer(profile.issuer.clone())
        .client_auth(auth)
        .scope(profile.scope.clone())
        .target_parameter(profile.target())
        // Several `tokenkeeper` processes may share the file: a refresh
        // token is claimed in it (compare-and-swap) before it is spent.
        .shared_store(true);
    if let Some(revocation) = &profile.revocation_endpoint {
        builder = builder.revocation_endpoint(revocation.clone());
    }
    if let Some(audience) = &profile.audience {
        builder = builder.audience(audience.clone());
    }
    builder
}

/// A handle on the session file (which must exist), and what the file
/// says about the server and client.
fn open(context: &Context, secret: &SecretArgs) -> Result<(TokenKeeper, Profile), CliError> {
    let path = &context.session;
    let loaded = file::read(path)
        .map_err(|e| {
            CliError::io(
                format!("cannot read the session file {}", path.display()),
                e,
            )
        })?
        .ok_or_else(|| CliError::NoSession(path.clone()))?;
    let profile = loaded.profile;
    warn_if_readable_by_others(path);
    context.say(format_args!(
        "session {} (issuer {}, client {}, generation {})",
        path.display(),
        profile.issuer,
        profile.client_id,
        loaded.session.generation()
    ));
    let auth = client_auth(&profile.client_auth, secret)?;
    let config = config(&profile, auth).build()?;
    let dpop = match &profile.dpop_key {
        Some(key) => Some(dpop::load(key)?),
        None => None,
    };
    let mut builder = TokenKeeper::builder(config)
        .agent(tokenkeeper_ureq::agent(context.timeout))
        .store(FileStore::new(path.clone(), profile.clone()));
    if let Some(key) = dpop {
        context.say(format_args!("DPoP key thumbprint {}", key.thumbprint()));
        builder = builder.dpop(P256Signer::new(key));
    }
    Ok((builder.build()?, profile))
}

/// Warns when others may read the session file (it holds refresh tokens;
/// this tool writes it 0600, so someone changed that).
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    if let Ok(metadata) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "tokenkeeper: warning: {} is accessible to others (mode {mode:o}); \
                 it holds refresh tokens: chmod 600 it",
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The session's generation now (changes when it was refreshed or saved).
fn generation(keeper: &TokenKeeper) -> Option<u64> {
    keeper.session().map(|s| s.generation())
}

/// The token and what it is for, as JSON.
fn token_json(token: &AccessTokenInfo) -> serde_json::Value {
    let expires_at = token.expires_at.as_secs();
    json!({
        "token": token.token.secret(),
        "type": token.token_type.as_str(),
        "expires_at": expires_at,
        "expires_in": expires_at.saturating_sub(now()),
        "scope": token.scope,
        "audience": token.audience,
    })
}

/// One line about a token, without the token.
fn describe(token: &AccessTokenInfo) -> String {
    let expires_at = token.expires_at.as_secs();
    format!(
        "{} token{}{}, expires in {} s (at {expires_at})",
        token.token_type.as_str(),
        token
            .audience
            .as_deref()
            .map(|a| format!(" for {a}"))
            .unwrap_or_default(),
        token
            .scope
            .as_deref()
            .map(|s| format!(", scope \"{s}\""))
            .unwrap_or_default(),
        expires_at.saturating_sub(now()),
    )
}

/// `tokenkeeper login`.
pub fn login(context: &Context, args: LoginArgs) -> Result<(), CliError> {
    let server = &args.server;
    let metadata = discover(context, &server.issuer)?;
    // Where the user approves: the authorization endpoint (a browser
    // login), or with --device the device authorization endpoint.
    let (endpoint, name) = if args.device {
        let endpoint = metadata
            .extra
            .get("device_authorization_endpoint")
            .and_then(serde_json::Value::as_str);
        (endpoint, "device_authorization_endpoint (RFC 8628)")
    } else {
        let endpoint = metadata.authorization_endpoint.as_deref();
        (endpoint, "authorization_endpoint")
    };
    let endpoint = endpoint.map(String::from).ok_or_else(|| {
        CliError::other(
            if args.device {
                "device_flow_unsupported"
            } else {
                "missing_authorization_endpoint"
            },
            format!("{} announces no {name}", metadata.issuer),
        )
    })?;
    let method = choose_method(server, &metadata);
    let auth = client_auth(method, &server.secret)?;
    let target = target_parameter(server, &metadata);
    let scope = server.scope.as_deref().unwrap_or(LOGIN_SCOPE);
    let audience = server
        .audience
        .clone()
        .or_else(|| server.resource.first().cloned());
    let dpop_path = dpop_key_path(context, server);
    let profile = Profile {
        issuer: metadata.issuer.clone(),
        token_endpoint: metadata.token_endpoint.clone(),
        revocation_endpoint: metadata.revocation_endpoint.clone(),
        client_id: server.client_id.clone(),
        client_auth: method.into(),
        scope: scope.into(),
        audience: audience.clone(),
        target_parameter: target.into(),
        dpop_key: dpop_path.clone(),
    };
    context.say(format_args!(
        "client {} ({method}), scope \"{}\"{}",
        server.client_id,
        scope,
        audience
            .as_deref()
            .map(|a| format!(", {target} {a}"))
            .unwrap_or_default()
    ));

    if let Some(dir) = context
        .session
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        file::create_private_dir(dir)
            .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
    }
    let dpop = match &dpop_path {
        Some(path) => Some(dpop_key(context, path)?),
        None => None,
    };
    // The configuration from discovery: endpoints, issuer, the RFC 9207
    // `iss` check on the callback, the advertised client authentications.
    let mut builder = config(&profile, auth).metadata(&metadata);
    builder = builder.target_parameter(profile.target());
    let store = FileStore::replacing(context.session.clone(), profile);
    let mut keeper = TokenKeeper::builder(builder.build()?)
        .agent(tokenkeeper_ureq::agent(context.timeout))
        .store(store);
    let thumbprint = dpop.as_ref().map(|key| key.thumbprint().to_owned());
    if let Some(key) = dpop {
        keeper = keeper.dpop(P256Signer::new(key));
    }
    let keeper = keeper.build()?;

    let token = if args.device {
        let mut targets: Vec<&str> = server.audience.iter().map(String::as_str).collect();
        targets.extend(server.resource.iter().map(String::as_str));
        let auth = client_auth(method, &server.secret)?;
        let device = DeviceLogin {
            endpoint: &endpoint,
            token_endpoint: &metadata.token_endpoint,
            issuer: &metadata.issuer,
            client_id: &server.client_id,
            auth: &auth,
            scope,
            targets,
            target_parameter: file::target_from_name(target),
        };
        keeper.set_session(device.run(context, &keeper)?)?;
        let mut request = TokenRequest::new();
        request.audience = audience.as_deref();
        keeper.get_access_token(&request)?
    } else {
        browser_login(
            context,
            &args,
            &keeper,
            &endpoint,
            scope,
            target,
            thumbprint.as_deref(),
        )?
    };
    let user = keeper
        .session()
        .and_then(|s| s.user().cloned())
        .and_then(|user| {
            ["email", "name", "sub"]
                .iter()
                .find_map(|claim| user.get(*claim).and_then(|v| v.as_str()).map(String::from))
        });
    eprintln!(
        "Logged in{}: {}. Session saved to {}",
        user.map(|u| format!(" as {u}")).unwrap_or_default(),
        describe(&token),
        context.session.display()
    );
    Ok(())
}

/// The authorization code login through the browser and the loopback
/// listener; the session is saved by the handle.
fn browser_login(
    context: &Context,
    args: &LoginArgs,
    keeper: &TokenKeeper,
    authorization_endpoint: &str,
    scope: &str,
    target: &str,
    thumbprint: Option<&str>,
) -> Result<AccessTokenInfo, CliError> {
    let server = &args.server;
    let listener = Loopback::bind(args.port)?;
    let redirect_uri = listener.redirect_uri();
    let prompt = match &args.prompt {
        Some(prompt) => Some(prompt.as_str()).filter(|p| !p.is_empty()),
        None => tokenkeeper::__private::scope::tokens(scope)
            .any(|s| s == "offline_access")
            .then_some("consent"),
    };
    let mut request =
        LoginRequest::new(authorization_endpoint, &server.client_id, &redirect_uri).scope(scope);
    if let Some(audience) = &server.audience {
        request = if target == "resource" {
            request.resource(audience)
        } else {
            request.audience(audience)
        };
    }
    for resource in &server.resource {
        request = request.resource(resource);
    }
    if let Some(thumbprint) = thumbprint {
        request = request.dpop_jkt(thumbprint);
    }
    if let Some(prompt) = prompt {
        request = request.param("prompt", prompt);
    }
    for (name, value) in &args.param {
        request = request.param(name, value);
    }
    let (url, transaction) = request.start(&mut OsEntropy)?;

    eprintln!("Open this URL in a browser to log in:\n\n    {url}\n");
    eprintln!("Waiting for the redirect to {redirect_uri} …");
    if args.open {
        open_browser(context, &url);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.wait.max(1));
    let callback = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let callback = listener.wait(left)?;
        // A request without this login's `state` (another tab, another
        // local program) is turned away; the real redirect may still come.
        match transaction.validate_callback(&callback.url, None, false) {
            Err(LoginError::StateMismatch | LoginError::MissingState) => {
                context.say("a request to the callback without this login's state: ignored");
                callback.finish(false, "This is not the login tokenkeeper is waiting for.");
            }
            _ => break callback,
        }
    };
    context.say("the browser came back; exchanging the code");
    let result = keeper.login(&transaction, &callback.url);
    match &result {
        Ok(_) => callback.finish(true, "Logged in. You can close this window."),
        Err(error) => callback.finish(false, &format!("Login failed: {error}")),
    }
    result.map_err(CliError::from)
}

/// Starts the platform's URL opener; a failure is only told.
fn open_browser(context: &Context, url: &str) {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut command = std::process::Command::new("rundll32");
        command.arg("url.dll,FileProtocolHandler");
        command
    } else {
        std::process::Command::new("xdg-open")
    };
    let started = command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match started {
        Ok(_) => context.say("asked the system to open a browser"),
        Err(e) => eprintln!("tokenkeeper: could not open a browser ({e}); open the URL above"),
    }
}

/// `tokenkeeper token`.
pub fn token(context: &Context, args: TokenArgs) -> Result<(), CliError> {
    let (keeper, profile) = open(context, &args.secret)?;
    let before = generation(&keeper);
    let mut request = TokenRequest::new();
    // Always named: a refresh then says which API it is for, also to a
    // server that would otherwise pick one (or none) itself.
    request.audience = args.audience.as_deref().or(profile.audience.as_deref());
    request.scope = args.scope.as_deref();
    request.force_refresh = args.force;
    let token = keeper.get_access_token(&request)?;
    let after = generation(&keeper);
    if before == after {
        context.say(format_args!("from the cache: {}", describe(&token)));
    } else {
        context.say(format_args!(
            "refreshed: {}; session saved (generation {})",
            describe(&token),
            after.unwrap_or_default()
        ));
    }
    if args.json {
        println!("{}", token_json(&token));
    } else {
        println!("{}", token.token.secret());
    }
    Ok(())
}

/// `tokenkeeper refresh`.
pub fn refresh(context: &Context, args: RefreshArgs) -> Result<(), CliError> {
    let (keeper, profile) = open(context, &args.secret)?;
    let mut request = TokenRequest::new().force_refresh();
    request.audience = args.audience.as_deref().or(profile.audience.as_deref());
    request.scope = args.scope.as_deref();
    let token = keeper.get_access_token(&request)?;
    println!(
        "refreshed: {}; session saved to {}",
        describe(&token),
        context.session.display()
    );
    Ok(())
}

/// `tokenkeeper logout`.
pub fn logout(context: &Context, args: LogoutArgs) -> Result<(), CliError> {
    let path = &context.session;
    if file::read(path)
        .map_err(|e| {
            CliError::io(
                format!("cannot read the session file {}", path.display()),
                e,
            )
        })?
        .is_none()
    {
        eprintln!("Not logged in (no session in {}).", path.display());
        return Ok(());
    }
    let (keeper, _) = open(context, &args.secret)?;
    // Marked logged out and saved first, then the refresh token revoked
    // (when the server has a revocation endpoint); the file goes either way.
    let revoked = keeper.logout();
    keeper.clear_session()?;
    if revoked.is_err() {
        eprintln!(
            "{} deleted, but the server did not confirm the revocation:",
            path.display()
        );
    }
    revoked?;
    eprintln!("Logged out; {} deleted.", path.display());
    Ok(())
}

/// `tokenkeeper client-credentials`.
pub fn client_credentials(context: &Context, args: ClientCredentialsArgs) -> Result<(), CliError> {
    let server = &args.server;
    let metadata = discover(context, &server.issuer)?;
    let method = choose_method(server, &metadata);
    if method == "none" {
        return Err(CliError::usage(
            "missing_client_secret",
            "client credentials need a confidential client: give its secret in \
             TOKENKEEPER_CLIENT_SECRET or --client-secret",
        ));
    }
    let auth = client_auth(method, &server.secret)?;
    let audience = server
        .audience
        .clone()
        .or_else(|| server.resource.first().cloned());
    let target = target_parameter(server, &metadata);
    let mut builder = Config::builder(metadata.token_endpoint.clone(), server.client_id.clone())
        .metadata(&metadata)
        .client_auth(auth)
        .target_parameter(file::target_from_name(target));
    if let Some(audience) = &audience {
        builder = builder.audience(audience.clone());
    }
    let mut keeper =
        TokenKeeper::builder(builder.build()?).agent(tokenkeeper_ureq::agent(context.timeout));
    if let Some(path) = dpop_key_path(context, server) {
        keeper = keeper.dpop(P256Signer::new(dpop_key(context, &path)?));
    }
    let keeper = keeper.build()?;
    let mut request = TokenRequest::new();
    request.audience = audience.as_deref();
    request.scope = server.scope.as_deref();
    let token = keeper.get_client_credentials_token(&request)?;
    context.say(format_args!("granted: {}", describe(&token)));
    if args.json {
        println!("{}", token_json(&token));
    } else {
        println!("{}", token.token.secret());
    }
    Ok(())
}

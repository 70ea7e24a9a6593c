//! The bridge's side in the Node host (wasm32 only): [`command`] runs one
//! [`Request`] on a `tokenkeeper_wasm::TokenKeeper` and answers its
//! [`Reply`]; every keeper's store is a [`ProxyStore`], whose operations
//! the test process runs on its own store (through the host's synchronous
//! `tokenkeeperStoreOp`).
//!
//! ```text
//! host.cjs: command(line) ─> Request ─> Build: replay the config, import
//!                                        the DPoP JWK, build on ProxyStore
//!                                   └─> other: the keeper's call, awaited
//!           <─ Reply (id, Answer | WireFailure)
//! ```
//!
//! Keepers live in a thread-local table (the host is one JavaScript
//! thread); a call clones its keeper out of the table before its first
//! `.await`, so several calls run at once as tasks in one event loop.

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::{Array, Object, Reflect};
use tokenkeeper::{Headers, HttpRequest, Method, Session, SessionStore, StoreError};
use tokenkeeper_wasm::{DEFAULT_TIMEOUT, Error, TokenKeeper, WebCryptoKey};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::CryptoKey;

use crate::protocol::{
    Answer, Command, Reply, Request, StoreAnswer, StoreOp, StoreReply, StoreRequest, WireCoreError,
    WireFailure, WireToken, metadata_to_json, session_from_json, token_response_to_json,
};

#[wasm_bindgen]
extern "C" {
    /// The host's `globalThis.tokenkeeperStoreOp(json)`: a
    /// [`StoreRequest`] in, its [`StoreReply`] out, synchronously.
    #[wasm_bindgen(js_name = tokenkeeperStoreOp)]
    fn store_op(request: &str) -> String;
}

thread_local! {
    /// Each keeper, with the DPoP key it was built with (the keeper does
    /// not show it; the scenarios compare its thumbprint).
    static KEEPERS: RefCell<HashMap<u64, (TokenKeeper, Option<WebCryptoKey>)>> =
        RefCell::new(HashMap::new());
}

/// Runs one command (a [`Request`] as JSON) and answers its [`Reply`] as
/// JSON.
#[wasm_bindgen]
pub async fn command(line: String) -> String {
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(request) => Reply {
            id: request.id,
            outcome: run(request.command).await,
        },
        Err(e) => Reply {
            id: 0,
            outcome: Err(WireFailure::bridge(format!("unreadable command: {e}"))),
        },
    };
    serde_json::to_string(&reply).unwrap_or_default()
}

fn failure(error: &Error) -> WireFailure {
    WireFailure {
        code: error.code().to_owned(),
        requires_login: error.requires_login(),
        message: error.to_string(),
        core: error.core().and_then(WireCoreError::new).map(Box::new),
    }
}

fn keeper(id: u64) -> Result<TokenKeeper, WireFailure> {
    entry(id).map(|(keeper, _)| keeper)
}

fn entry(id: u64) -> Result<(TokenKeeper, Option<WebCryptoKey>), WireFailure> {
    KEEPERS
        .with(|k| k.borrow().get(&id).cloned())
        .ok_or_else(|| WireFailure::bridge(format!("no keeper {id}")))
}

async fn run(command: Command) -> Result<Answer, WireFailure> {
    let failed = |e: Error| failure(&e);
    Ok(match command {
        Command::Build {
            keeper,
            store,
            config,
            dpop_jwk,
        } => {
            let config = config.build().map_err(WireFailure::bridge)?;
            let mut builder = TokenKeeper::builder(config).store(ProxyStore { id: store });
            let key = match dpop_jwk {
                Some(jwk) => Some(import_dpop_key(&jwk).await.map_err(failed)?),
                None => None,
            };
            if let Some(key) = &key {
                builder = builder.dpop(key.clone());
            }
            let built = builder.build().map_err(failed)?;
            KEEPERS.with(|k| k.borrow_mut().insert(keeper, (built, key)));
            Answer::Done
        }
        Command::Drop { keeper } => {
            KEEPERS.with(|k| k.borrow_mut().remove(&keeper));
            Answer::Done
        }
        Command::Discover { issuer } => {
            let metadata = tokenkeeper_wasm::discover(&issuer, DEFAULT_TIMEOUT)
                .await
                .map_err(failed)?;
            Answer::Metadata {
                json: metadata_to_json(&metadata),
            }
        }
        Command::Get {
            keeper: id,
            request,
        } => {
            let token = keeper(id)?
                .get_access_token(&request.get())
                .await
                .map_err(failed)?;
            Answer::Token(WireToken::new(&token))
        }
        Command::Machine {
            keeper: id,
            request,
        } => {
            let token = keeper(id)?
                .get_client_credentials_token(&request.get())
                .await
                .map_err(failed)?;
            Answer::Token(WireToken::new(&token))
        }
        Command::Connection {
            keeper: id,
            request,
        } => {
            let token = keeper(id)?
                .get_connection_token(&request.get())
                .await
                .map_err(failed)?;
            Answer::Token(WireToken::new(&token))
        }
        Command::Login {
            keeper: id,
            transaction,
            callback,
        } => {
            let token = keeper(id)?
                .login(&transaction, &callback)
                .await
                .map_err(failed)?;
            Answer::Token(WireToken::new(&token))
        }
        Command::Logout { keeper: id } => {
            keeper(id)?.logout().await.map_err(failed)?;
            Answer::Done
        }
        Command::Exchange {
            keeper: id,
            request,
        } => {
            let auth = request.client_auth.get().map_err(WireFailure::bridge)?;
            let response = keeper(id)?
                .exchange_token(&request.get(&auth))
                .await
                .map_err(failed)?;
            Answer::Exchanged {
                json: token_response_to_json(&response),
            }
        }
        Command::CallApi {
            keeper: id,
            request,
            url,
        } => {
            let mut headers = Headers::new();
            headers.append("accept", "application/json");
            let http = HttpRequest {
                method: Method::GET,
                url,
                headers,
                body: Vec::new(),
            };
            let response = keeper(id)?
                .send_authorized(&request.get(), http)
                .await
                .map_err(failed)?;
            Answer::Api {
                status: response.status,
                body: String::from_utf8_lossy(&response.body).into_owned(),
                www_authenticate: response.headers.get("www-authenticate").map(String::from),
            }
        }
        Command::Session { keeper: id } => Answer::Session {
            json: keeper(id)?.session().map(|s| s.to_json()),
        },
        Command::DpopThumbprint { keeper: id } => Answer::Thumbprint {
            jkt: entry(id)?.1.map(|key| key.thumbprint().to_owned()),
        },
    })
}

/// The private JWK `jwk` as a Web Crypto key pair (the private key
/// non-extractable, as `WebCryptoKey::generate` makes it).
async fn import_dpop_key(jwk: &str) -> Result<WebCryptoKey, Error> {
    let crypto_failed =
        |what: &'static str| move |e: JsValue| Error::Crypto(format!("{what}: {e:?}"));
    let private_jwk: Object = js_sys::JSON::parse(jwk)
        .map_err(crypto_failed("the DPoP JWK"))?
        .unchecked_into();
    let public_jwk: Object = Object::assign(&Object::new(), &private_jwk);
    Reflect::delete_property(&public_jwk, &JsValue::from_str("d"))
        .map_err(crypto_failed("the public JWK"))?;
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"ECDSA".into())
        .map_err(crypto_failed("the algorithm"))?;
    Reflect::set(&algorithm, &"namedCurve".into(), &"P-256".into())
        .map_err(crypto_failed("the algorithm"))?;
    let crypto: web_sys::Crypto = Reflect::get(&js_sys::global(), &"crypto".into())
        .map_err(crypto_failed("globalThis.crypto"))?
        .unchecked_into();
    let subtle = crypto.subtle();
    // The public key is exported again by `from_keys` (its JWK goes into
    // every proof); the private one stays inside Web Crypto.
    let import = |jwk: &Object, usage: &str, extractable: bool| {
        let usages = Array::of1(&usage.into());
        subtle.import_key_with_object("jwk", jwk, &algorithm, extractable, &usages)
    };
    let private_key: CryptoKey = JsFuture::from(
        import(&private_jwk, "sign", false).map_err(crypto_failed("importKey (private)"))?,
    )
    .await
    .map_err(crypto_failed("importKey (private)"))?
    .unchecked_into();
    let public_key: CryptoKey = JsFuture::from(
        import(&public_jwk, "verify", true).map_err(crypto_failed("importKey (public)"))?,
    )
    .await
    .map_err(crypto_failed("importKey (public)"))?
    .unchecked_into();
    WebCryptoKey::from_keys(private_key, public_key).await
}

/// A `SessionStore` whose every operation runs on the test process's store
/// `id` (a `SharedStore`), synchronously through the host.
struct ProxyStore {
    id: u64,
}

impl ProxyStore {
    fn ask(&self, key: &str, op: StoreOp) -> Result<StoreAnswer, StoreError> {
        let request = StoreRequest {
            store: self.id,
            key: key.to_owned(),
            op,
        };
        let line = serde_json::to_string(&request).map_err(StoreError::backend)?;
        let reply: StoreReply = serde_json::from_str(&store_op(&line))
            .map_err(|e| StoreError::backend(format!("the store's answer: {e}")))?;
        reply.map_err(|e| e.get())
    }
}

fn unexpected(answer: &StoreAnswer) -> StoreError {
    StoreError::backend(format!("unexpected store answer {answer:?}"))
}

impl SessionStore for ProxyStore {
    fn load(&mut self, key: &str) -> Result<Option<Session>, StoreError> {
        match self.ask(key, StoreOp::Load)? {
            StoreAnswer::Session(json) => json
                .map(|json| session_from_json(&json).map_err(StoreError::backend))
                .transpose(),
            other => Err(unexpected(&other)),
        }
    }

    fn save(
        &mut self,
        key: &str,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let op = StoreOp::Save {
            session: session.to_json(),
            expected,
        };
        match self.ask(key, op)? {
            StoreAnswer::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn generation(&mut self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.ask(key, StoreOp::Generation)? {
            StoreAnswer::Generation(generation) => Ok(generation),
            other => Err(unexpected(&other)),
        }
    }

    fn clear(&mut self, key: &str) -> Result<(), StoreError> {
        match self.ask(key, StoreOp::Clear)? {
            StoreAnswer::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn floor(&mut self, key: &str) -> Result<u64, StoreError> {
        match self.ask(key, StoreOp::Floor)? {
            StoreAnswer::Floor(floor) => Ok(floor),
            other => Err(unexpected(&other)),
        }
    }
}

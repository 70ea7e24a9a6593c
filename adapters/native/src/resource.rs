//! A request to a resource server sent with the handle's token: the core's
//! `Authorization` (and `DPoP`) headers for each attempt, the response
//! shown to the core, and whether to send once more (a `use_dpop_nonce`
//! challenge: a fresh proof; an `invalid_token` rejection: a refreshed
//! token). The adapter sends each attempt with its own request type.
//!
//! ```text
//! handle.resource(token request, method, url)          ──> ResourceCall
//! sessions.resource(id, token request, method, url)     ──> ResourceCall
//!   loop: authorization() -> headers; adapter sends;
//!         handle_response(status, headers) -> true: again | false: done
//! ```

use tokenkeeper::{
    AccessTokenInfo, Authorization, Headers, HttpResponse, Method, ResourceRetries,
    ResourceVerdict, TokenRequest,
};

use crate::platform::now;
use crate::{Error, Handle, Sessions, Transport};

/// One resource request in progress: [`authorization`](Self::authorization)
/// for each attempt, [`handle_response`](Self::handle_response) after it,
/// until that answers `false`.
#[must_use]
pub struct ResourceCall<'h, 'r, 'a, T: Transport> {
    owner: Owner<'h, T>,
    token_request: &'r TokenRequest<'a>,
    method: Method,
    url: String,
    token: AccessTokenInfo,
    retries: ResourceRetries,
    /// The resource server rejected the token: get a new one before the
    /// next attempt (not before: an adapter that cannot resend a request
    /// whose body is gone does not refresh for nothing).
    rejected: bool,
}

impl<T: Transport> Handle<T> {
    /// Starts a resource request: gets the token for `token_request`.
    ///
    /// # Errors
    /// As [`Handle::get_access_token`].
    pub async fn resource<'h, 'r, 'a>(
        &'h self,
        token_request: &'r TokenRequest<'a>,
        method: &str,
        url: String,
    ) -> Result<ResourceCall<'h, 'r, 'a, T>, Error<T::Error>> {
        let token = self.get_access_token(token_request).await?;
        Ok(ResourceCall {
            owner: Owner::Handle(self),
            token_request,
            method: Method::new(method),
            url,
            token,
            retries: ResourceRetries::new(),
            rejected: false,
        })
    }
}

impl<T: Transport> Sessions<T> {
    /// Starts a resource request with session `id`'s token for
    /// `token_request`.
    ///
    /// # Errors
    /// As [`Sessions::get_access_token`].
    pub async fn resource<'h, 'r, 'a>(
        &'h self,
        id: &'h str,
        token_request: &'r TokenRequest<'a>,
        method: &str,
        url: String,
    ) -> Result<ResourceCall<'h, 'r, 'a, T>, Error<T::Error>> {
        let token = self.get_access_token(id, token_request).await?;
        Ok(ResourceCall {
            owner: Owner::Session(self, id),
            token_request,
            method: Method::new(method),
            url,
            token,
            retries: ResourceRetries::new(),
            rejected: false,
        })
    }
}

/// Whose token a resource request carries: a handle's one session, or one
/// session of an application-wide [`Sessions`].
enum Owner<'h, T: Transport> {
    Handle(&'h Handle<T>),
    Session(&'h Sessions<T>, &'h str),
}

impl<T: Transport> Owner<'_, T> {
    async fn get_access_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error<T::Error>> {
        match self {
            Owner::Handle(handle) => handle.get_access_token(request).await,
            Owner::Session(sessions, id) => sessions.get_access_token(id, request).await,
        }
    }

    async fn with_manager<R>(
        &self,
        f: impl FnOnce(&mut tokenkeeper::TokenManager) -> R,
    ) -> Result<R, Error<T::Error>> {
        match self {
            Owner::Handle(handle) => handle.with_manager(f).await,
            Owner::Session(sessions, id) => sessions.with_session(id, f).await,
        }
    }

    async fn sign(
        &self,
        signing_input: String,
    ) -> Result<tokenkeeper::dpop::EcdsaSignature, Error<T::Error>> {
        match self {
            Owner::Handle(handle) => handle.sign(signing_input).await,
            Owner::Session(sessions, _) => sessions.sign(signing_input).await,
        }
    }
}

impl<T: Transport> ResourceCall<'_, '_, '_, T> {
    /// The headers to set on the next attempt (replacing any of the same
    /// name): `Authorization`, and `DPoP` with a fresh proof.
    ///
    /// # Errors
    /// Getting a new token, authorizing it ([`Error::Core`]), signing
    /// ([`Error::Signing`]), saving ([`Error::Store`]).
    pub async fn authorization(&mut self) -> Result<Headers, Error<T::Error>> {
        if self.rejected {
            self.token = self.owner.get_access_token(self.token_request).await?;
            self.rejected = false;
        }
        let (method, url, token) = (&self.method, &self.url, &self.token);
        let authorization = self
            .owner
            .with_manager(|m| m.authorize(method, url, token, now()))
            .await??;
        match authorization {
            Authorization::Ready(headers) => Ok(headers),
            Authorization::Sign(pending) => {
                let signature = self.owner.sign(pending.signing_input().to_owned()).await?;
                Ok(pending.finish(&signature))
            }
            other => Err(Error::Unsupported(format!("{other:?}"))),
        }
    }

    /// Shows the core the response's status and headers (nonces are
    /// learned); `true` when the request should be sent once more.
    ///
    /// # Errors
    /// [`Error::Store`] when a change could not be saved.
    pub async fn handle_response(
        &mut self,
        status: u16,
        headers: Headers,
    ) -> Result<bool, Error<T::Error>> {
        let seen = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        let (url, token) = (&self.url, &self.token);
        let verdict = self
            .owner
            .with_manager(|m| m.handle_resource_response(url, token, &seen, now()))
            .await?;
        Ok(match self.retries.admit(verdict) {
            Some(ResourceVerdict::TokenRejected) => {
                self.rejected = true;
                true
            }
            Some(_) => true,
            None => false,
        })
    }
}

/// Sets `headers` on `map`, each replacing any of its name.
///
/// # Errors
/// When a name or value is not valid in HTTP.
pub fn apply_headers(headers: &Headers, map: &mut http::HeaderMap) -> Result<(), http::Error> {
    for (name, _) in headers.iter() {
        map.remove(name);
    }
    for (name, value) in headers.iter() {
        let name = http::HeaderName::try_from(name)?;
        let value = http::HeaderValue::try_from(value)?;
        map.append(name, value);
    }
    Ok(())
}

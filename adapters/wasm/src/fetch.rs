//! A core [`HttpRequest`] sent with the global `fetch`, and the response
//! read back into an [`HttpResponse`] with every header and any status.

use core::time::Duration;

use js_sys::Uint8Array;
use tokenkeeper::{HttpRequest, HttpResponse};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, RequestRedirect, Response};

use crate::Error;
use crate::js::{AbortTimer, fetch_request, message};

/// Sends `request` with the global `fetch` and reads the whole response.
///
/// - Redirects are not followed (`redirect: "manual"`): a token endpoint
///   never redirects, and following one could carry a refresh token
///   elsewhere. Node hands the 3xx back as it is; a browser gives an
///   opaque-redirect response, seen here as status 0 (a failure for the
///   core, never a transport error).
/// - Any status is a response (a 400 or 401 is data for the core); only a
///   rejected `fetch` promise is an error.
/// - The whole exchange, body included, is aborted after `timeout`
///   (`AbortController` + `setTimeout`); so is a request whose future is
///   dropped.
///
/// # Errors
/// [`Error::Timeout`], or [`Error::Transport`] with JavaScript's message
/// (network failure, CORS refusal, an invalid URL or header).
pub async fn fetch(request: &HttpRequest, timeout: Duration) -> Result<HttpResponse, Error> {
    let timer = AbortTimer::new(timeout)?;
    let failed = |e: JsValue| {
        if timer.aborted() {
            Error::Timeout
        } else {
            Error::Transport(message(&e))
        }
    };
    let js_request = to_js(request, &timer.signal()).map_err(&failed)?;
    let promise = fetch_request(&js_request).map_err(&failed)?;
    let response: Response = JsFuture::from(promise)
        .await
        .map_err(&failed)?
        .unchecked_into();
    let status = response.status();
    let headers = headers_of(&response.headers());
    let buffer = JsFuture::from(response.array_buffer().map_err(&failed)?)
        .await
        .map_err(&failed)?;
    let body = Uint8Array::new(&buffer).to_vec();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// The `Request` for `request`: its method, every header in order, the
/// body (when not empty), `redirect: "manual"`, and the abort signal.
fn to_js(
    request: &HttpRequest,
    signal: &web_sys::AbortSignal,
) -> Result<web_sys::Request, JsValue> {
    let init = RequestInit::new();
    init.set_method(request.method.as_str());
    init.set_redirect(RequestRedirect::Manual);
    init.set_signal(Some(signal));
    let headers = web_sys::Headers::new()?;
    for (name, value) in request.headers.iter() {
        headers.append(name, value)?;
    }
    init.set_headers(&headers);
    if !request.body.is_empty() {
        init.set_body(&Uint8Array::from(request.body.as_slice()));
    }
    web_sys::Request::new_with_str_and_init(&request.url, &init)
}

/// Every header field of a fetch `Headers`, in its iteration order (names
/// lower-case, repeated fields joined with `, ` as fetch does).
fn headers_of(headers: &web_sys::Headers) -> tokenkeeper::Headers {
    let mut out = tokenkeeper::Headers::new();
    let Ok(Some(entries)) = js_sys::try_iter(headers) else {
        return out;
    };
    for entry in entries.flatten() {
        let pair: js_sys::Array = entry.unchecked_into();
        if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
            out.append(name, value);
        }
    }
    out
}

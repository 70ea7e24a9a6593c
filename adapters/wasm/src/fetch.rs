//! A core [`HttpRequest`] sent with the global `fetch`, and the response
//! read back into an [`HttpResponse`] with every header and any status,
//! its body read as a stream and bounded.

use core::time::Duration;

use js_sys::Uint8Array;
use tokenkeeper::Limits;
use tokenkeeper::{HttpRequest, HttpResponse};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    ReadableStreamDefaultReader, ReadableStreamReadResult, RequestInit, RequestRedirect, Response,
};

use crate::Error;
use crate::js::{AbortTimer, fetch_request, message};

/// Sends `request` with the global `fetch` and reads the response, its
/// body bounded by the core's default limit ([`Limits::default`]'s
/// `max_body_bytes`, 1 MiB). See [`fetch_with_limit`].
///
/// # Errors
/// As [`fetch_with_limit`].
pub async fn fetch(request: &HttpRequest, timeout: Duration) -> Result<HttpResponse, Error> {
    fetch_with_limit(request, timeout, Limits::default().max_body_bytes).await
}

/// Sends `request` with the global `fetch` and reads the response, its
/// body at most `max_body` bytes.
///
/// - The body is read chunk by chunk from its `ReadableStream`; a chunk
///   that would take it past `max_body` ends the read with
///   [`Error::TooLarge`] and the request is aborted, so the rest is never
///   downloaded (nor held in memory). A `Content-Length` above the limit
///   is refused before anything is read.
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
/// [`Error::Timeout`], [`Error::TooLarge`], or [`Error::Transport`] with
/// JavaScript's message (network failure, CORS refusal, an invalid URL or
/// header).
pub async fn fetch_with_limit(
    request: &HttpRequest,
    timeout: Duration,
    max_body: usize,
) -> Result<HttpResponse, Error> {
    // Dropped on return, it aborts the request: a body refused half read
    // stops downloading.
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
    let body = read_body(&response, headers.get("content-length"), max_body, &failed).await?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Reads `response`'s body from its `ReadableStream`, stopping with
/// [`Error::TooLarge`] before it exceeds `max_body` bytes (at once when
/// `content_length` announces more). A response without a body (`null`
/// stream: a 204, an opaque redirect) has an empty one.
async fn read_body(
    response: &Response,
    content_length: Option<&str>,
    max_body: usize,
    failed: &impl Fn(JsValue) -> Error,
) -> Result<Vec<u8>, Error> {
    let too_large = || Error::TooLarge { limit: max_body };
    let announced = content_length.and_then(|n| n.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > max_body as u64) {
        return Err(too_large());
    }
    let Some(stream) = response.body() else {
        return Ok(Vec::new());
    };
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let expected = announced.map_or(0, |n| usize::try_from(n).unwrap_or(max_body));
    let mut body = Vec::with_capacity(expected.min(max_body));
    loop {
        let read: ReadableStreamReadResult = JsFuture::from(reader.read())
            .await
            .map_err(failed)?
            .unchecked_into();
        if read.get_done() == Some(true) {
            return Ok(body);
        }
        let chunk: Uint8Array = read.get_value().dyn_into().map_err(|_| {
            Error::Transport(String::from("a response body chunk is not a Uint8Array"))
        })?;
        let length = chunk.length() as usize;
        if length > max_body - body.len() {
            return Err(too_large());
        }
        let start = body.len();
        body.resize(start + length, 0);
        chunk.copy_to(&mut body[start..]);
    }
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

//! The loopback redirect (RFC 8252 §7.3): a one-shot HTTP listener on
//! `127.0.0.1` that receives the browser's return to `/callback`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::error::CliError;

/// The path the redirect URI names.
pub const CALLBACK_PATH: &str = "/callback";

/// The longest request line or header line read from the browser.
const MAX_LINE: usize = 16 * 1024;

/// The most header lines read from the browser.
const MAX_HEADERS: usize = 100;

/// A listener waiting for the browser.
pub struct Loopback {
    listener: TcpListener,
    port: u16,
}

/// The browser's request to the callback, waiting for its answer.
pub struct Callback {
    stream: TcpStream,
    /// The full callback URL (`http://127.0.0.1:<port>/callback?code=…`).
    pub url: String,
}

impl Loopback {
    /// Listens on `127.0.0.1:port` (`0`: a port the system picks).
    ///
    /// # Errors
    /// The port cannot be bound.
    pub fn bind(port: u16) -> Result<Self, CliError> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| CliError::io(format!("cannot listen on 127.0.0.1:{port}"), e))?;
        let port = listener
            .local_addr()
            .map_err(|e| CliError::io("cannot read the listening port", e))?
            .port();
        Ok(Loopback { listener, port })
    }

    /// The redirect URI to register with the login.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// Waits up to `timeout` for a request to the callback path; other
    /// requests (a browser's `/favicon.ico`) get a 404 and are skipped.
    ///
    /// # Errors
    /// `login_timeout` when nothing came in time, or an I/O error.
    pub fn wait(&self, timeout: Duration) -> Result<Callback, CliError> {
        let deadline = Instant::now() + timeout;
        self.listener
            .set_nonblocking(true)
            .map_err(|e| CliError::io("cannot poll the listener", e))?;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Some(callback) = self.read_request(stream) {
                        return Ok(callback);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(CliError::other(
                            "login_timeout",
                            format!(
                                "no redirect to {} before the wait (--wait) ran out",
                                self.redirect_uri()
                            ),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(CliError::io("cannot accept a connection", e)),
            }
        }
    }

    /// Reads one request; the callback when it is one.
    fn read_request(&self, stream: TcpStream) -> Option<Callback> {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let request_line = read_line(&mut reader)?;
        // Drain the headers (the callback carries everything in its URL).
        for _ in 0..=MAX_HEADERS {
            if read_line(&mut reader)?.is_empty() {
                break;
            }
        }
        let mut parts = request_line.split(' ');
        let (method, target) = (parts.next()?, parts.next()?);
        let path = target.split('?').next().unwrap_or_default();
        if method != "GET" || path != CALLBACK_PATH {
            let mut stream = stream;
            respond(&mut stream, "404 Not Found", "Not found.");
            return None;
        }
        Some(Callback {
            stream,
            url: format!("http://127.0.0.1:{}{target}", self.port),
        })
    }
}

/// One line without its CRLF; `None` at the end, on an error or when too long.
fn read_line(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    let read = std::io::Read::take(&mut *reader, MAX_LINE as u64).read_line(&mut line);
    match read {
        Ok(0) | Err(_) => None,
        Ok(_) if !line.ends_with('\n') => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}

impl Callback {
    /// Answers the browser: the login's outcome, as a small page.
    pub fn finish(mut self, ok: bool, message: &str) {
        let status = if ok { "200 OK" } else { "400 Bad Request" };
        respond(&mut self.stream, status, message);
    }
}

/// Writes a small HTML answer and closes the connection.
fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>tokenkeeper</title></head>\
         <body><h1>tokenkeeper</h1><p>{escaped}</p></body></html>\n"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\n\
         content-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

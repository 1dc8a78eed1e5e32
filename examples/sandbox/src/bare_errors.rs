//! The answers hyper writes by itself, rewritten as envelopes.
//!
//! When a request head cannot be parsed (a bad request line or header: 400),
//! is larger than the read buffer (431) or has a target hyper refuses (414),
//! hyper never calls the router: it writes a bare head
//! (`HTTP/1.1 400 Bad Request`, `content-length: 0`, `date`) and closes the
//! connection. It has no hook to change that answer, so [`Enveloped`] wraps
//! the connection's byte stream and swaps that head for the JSON envelope
//! every other error carries (`MALFORMED_REQUEST`, `HEADERS_TOO_LARGE`,
//! `URI_TOO_LONG`), with `connection: close`.
//!
//! How the head is recognised, and why nothing else is:
//! - The wrapper says it cannot write vectored, so hyper flattens what it
//!   writes: each `poll_write` gets hyper's whole pending output in one slice.
//!   Hyper encodes a head completely before writing any of it, so the first
//!   write holding any byte of its own error head holds all of it, at the end.
//! - A slice is rewritten only if it *ends with* exactly such a head: a status
//!   line with 400, 414 or 431, then only `content-length: 0`, `date` or
//!   `connection` lines, then the blank line. Every answer of the router has a
//!   `content-type` and a body, so it never matches; JSON and event-stream
//!   bodies cannot contain a raw CRLF. Only a report file whose last bytes are
//!   such a head could match, and then only its own download is changed.
//! - The bytes before the head (the tail of an earlier pipelined answer) are
//!   written unchanged before the envelope.
//!
//! Contract with hyper: a rewritten write reports the whole slice written;
//! the replacement is kept and drained before any later write, flush or
//! shutdown completes, so nothing is lost or reordered.
//!
//! A head that does not arrive within the header timeout still gets no
//! answer: hyper closes without writing, and the client is, by then, not
//! sending a request anyone can answer.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use yilian_core::{Error, ErrorCode};

/// A connection whose bare hyper error heads become envelopes.
pub struct Enveloped<IO> {
    io: IO,
    /// Replacement bytes still to be written (and how far).
    pending: Vec<u8>,
    written: usize,
}

impl<IO> Enveloped<IO> {
    pub fn new(io: IO) -> Self {
        Enveloped { io, pending: Vec::new(), written: 0 }
    }
}

impl<IO: AsyncWrite + Unpin> Enveloped<IO> {
    /// Writes what is left of a replacement; ready once it is all out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Enveloped<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Enveloped<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some((start, status)) = bare_error_head(buf) {
            let mut out = buf[..start].to_vec();
            out.extend_from_slice(&envelope_bytes(status));
            self.pending = out;
            self.written = 0;
            // Whatever the socket takes now; the rest drains later.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// If `buf` ends with a head hyper writes for a parse error, where it starts
/// and its status.
fn bare_error_head(buf: &[u8]) -> Option<(usize, u16)> {
    const START: &[u8] = b"HTTP/1.1 ";
    // Hyper's error head is short: status line, content-length, date.
    let from = buf.len().saturating_sub(256);
    let at = buf[from..].windows(START.len()).rposition(|w| w == START)? + from;
    let head = std::str::from_utf8(&buf[at..]).ok()?;
    let lines = head.strip_suffix("\r\n\r\n")?;
    let mut lines = lines.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    if !matches!(status, 400 | 414 | 431) {
        return None;
    }
    let mut zero_length = false;
    for line in lines {
        let (name, value) = line.split_once(": ")?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" if value == "0" => zero_length = true,
            "date" | "connection" => {}
            _ => return None,
        }
    }
    zero_length.then_some((at, status))
}

/// The whole answer written in place of hyper's bare head.
fn envelope_bytes(status: u16) -> Vec<u8> {
    let (err, reason) = match status {
        431 => (
            Error::with(
                ErrorCode::HeadersTooLarge,
                format!("the request head is larger than {} bytes", crate::net::MAX_HEAD_BYTES),
                format!("请求头超过 {} 字节", crate::net::MAX_HEAD_BYTES),
            ),
            "Request Header Fields Too Large",
        ),
        414 => (Error::with(ErrorCode::UriTooLong, "the request URI is too long", "请求地址过长"), "URI Too Long"),
        _ => (
            Error::with(
                ErrorCode::MalformedRequest,
                "the request line or a header could not be parsed as HTTP/1.1",
                "请求行或请求头不符合 HTTP/1.1 格式，无法解析",
            ),
            "Bad Request",
        ),
    };
    let body = err.to_envelope().to_string();
    format!("HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_s_bare_heads_are_recognised_with_what_came_before_them() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 03:10:00 GMT\r\n\r\n";
        assert_eq!(bare_error_head(bare), Some((0, 400)));
        let mut piped = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        let tail_at = piped.len();
        piped.extend_from_slice(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(bare_error_head(&piped), Some((tail_at, 431)));
    }

    #[test]
    fn the_router_s_own_answers_are_never_taken_for_hyper_s() {
        for own in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"{\"status\":\"error\"}",
        ] {
            assert_eq!(bare_error_head(own), None, "{}", String::from_utf8_lossy(own));
        }
    }

    #[test]
    fn the_replacement_is_a_whole_envelope_in_both_languages() {
        let text = String::from_utf8(envelope_bytes(400)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n") && head.contains("connection: close"), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "MALFORMED_REQUEST");
        assert!(v["message_zh"].as_str().is_some_and(|m| !m.is_ascii()), "{v}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }
}

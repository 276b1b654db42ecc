//! HTTP/1.1 requests and replies, just enough for a hello-world server, with no I/O:
//! the server hands it the bytes it has read, and it says what to send back.
//!
//! It is kept apart from the sockets so that the three servers compared with `wrk`
//! (ours here, tokio's and smol's in `crates/bench/examples`) parse with this one file
//! and differ only in their runtime, and so that it can be tested without a socket.
//!
//! A request's head (request line and headers, up to the empty line) must fit in
//! [`MAX_HEAD`] bytes: a server that buffers without a bound can be made to buffer
//! without end. What comes after a head stays buffered: it is the next request
//! (pipelining), which keep-alive serves in order.
//!
//! *Teaching shortcuts*, each of which a real server handles:
//! - request bodies are not read: a request that announces one is answered, and then
//!   the connection closed, since where its body ends is not tracked;
//! - lines must end in `\r\n` (RFC 9112 allows a server to accept a bare `\n`);
//! - only `GET` is served (`HEAD` too gets `405`), and only the target `/`;
//! - after an error the connection is simply closed; bytes the client sent that were
//!   never read make the kernel reset it, and a client may then miss the reply (a
//!   real server half-closes and drains a little first).

/// The most bytes a request's head may take: the 8 KiB that nginx's default header
/// buffer holds (`large_client_header_buffers` aside), ample for any real browser.
pub const MAX_HEAD: usize = 8 * 1024;

/// What the head ends with: an empty line.
const END_OF_HEAD: &[u8] = b"\r\n\r\n";

/// The body of `GET /`.
const HELLO: &str = "hello\n";

/// What the server should do with the bytes it has buffered so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// The head has not all arrived: read more, and ask again.
    ReadMore,
    /// Send this reply.
    Reply(Reply),
}

/// A reply, and what sending it does to the connection.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Reply {
    /// The status, which also chooses the body.
    pub status: Status,
    /// How many buffered bytes the request took: drop them, and what is left is the
    /// start of the next request.
    pub consumed: usize,
    /// Whether to close the connection after the reply (the reply then says so).
    pub close: bool,
}

/// The statuses this server sends.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Status {
    /// `200`: `GET /`.
    Ok,
    /// `400`: the request line or a header line is malformed.
    BadRequest,
    /// `404`: a `GET` of anything but `/`.
    NotFound,
    /// `405`: any method but `GET`.
    MethodNotAllowed,
    /// `431`: the head did not end within [`MAX_HEAD`] bytes.
    HeadTooLarge,
}

impl Status {
    /// The status line's code and reason phrase.
    fn code_and_reason(self) -> (u16, &'static str) {
        match self {
            Status::Ok => (200, "OK"),
            Status::BadRequest => (400, "Bad Request"),
            Status::NotFound => (404, "Not Found"),
            Status::MethodNotAllowed => (405, "Method Not Allowed"),
            Status::HeadTooLarge => (431, "Request Header Fields Too Large"),
        }
    }
}

/// What the server should do with `buffered`, the bytes read and not yet consumed.
pub fn next(buffered: &[u8]) -> Next {
    let searched = &buffered[..buffered.len().min(MAX_HEAD)];
    let Some(end) = find(searched, END_OF_HEAD) else {
        return if buffered.len() >= MAX_HEAD {
            Next::Reply(fatal(Status::HeadTooLarge, buffered.len()))
        } else {
            Next::ReadMore
        };
    };
    let consumed = end + END_OF_HEAD.len();
    Next::Reply(match std::str::from_utf8(&buffered[..end]) {
        Ok(head) => answer(head, consumed),
        Err(_) => fatal(Status::BadRequest, consumed), // request lines are ASCII
    })
}

/// An error after which the request's end is not known: reply, and close.
fn fatal(status: Status, consumed: usize) -> Reply {
    Reply {
        status,
        consumed,
        close: true,
    }
}

/// The reply to a complete head (without its final empty line), `consumed` bytes long.
fn answer(head: &str, consumed: usize) -> Reply {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let Some((method, target, version)) = parse_request_line(request_line) else {
        return fatal(Status::BadRequest, consumed);
    };
    let Some(headers) = lines.map(parse_header).collect::<Option<Vec<_>>>() else {
        return fatal(Status::BadRequest, consumed);
    };
    let status = match (method, target) {
        ("GET", "/") => Status::Ok,
        ("GET", _) => Status::NotFound,
        _ => Status::MethodNotAllowed,
    };
    Reply {
        status,
        consumed,
        close: wants_close(version, &headers) || announces_body(&headers),
    }
}

/// `GET / HTTP/1.1` as its method, target and version: exactly three parts, one space
/// apart, the method an upper-case word, the target a path, the version HTTP/1.x.
fn parse_request_line(line: &str) -> Option<(&str, &str, &str)> {
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let well_formed = parts.next().is_none()
        && !method.is_empty()
        && method.bytes().all(|byte| byte.is_ascii_uppercase())
        && target.starts_with('/')
        && matches!(version, "HTTP/1.1" | "HTTP/1.0");
    well_formed.then_some((method, target, version))
}

/// `Name: value` as its name and trimmed value; `None` if there is no colon, the name
/// is empty or holds a space (RFC 9112 forbids whitespace before the colon), or the
/// line is an obsolete continuation (it starts with whitespace).
fn parse_header(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let valid_name = !name.is_empty() && !name.contains([' ', '\t']);
    valid_name.then_some((name, value.trim_matches([' ', '\t'])))
}

/// The value of header `name` (names are case-insensitive), if present.
fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
        .map(|&(_, value)| value)
}

/// Whether the connection ends after this request: `Connection: close`, or HTTP/1.0
/// without `Connection: keep-alive` (1.1 keeps connections open by default; 1.0 did
/// not).
fn wants_close(version: &str, headers: &[(&str, &str)]) -> bool {
    let connection = header(headers, "Connection").unwrap_or_default();
    let has_option = |option: &str| {
        connection
            .split(',')
            .any(|token| token.trim().eq_ignore_ascii_case(option))
    };
    has_option("close") || (version == "HTTP/1.0" && !has_option("keep-alive"))
}

/// Whether a body follows the head (which this server does not read).
fn announces_body(headers: &[(&str, &str)]) -> bool {
    header(headers, "Transfer-Encoding").is_some()
        || header(headers, "Content-Length").is_some_and(|length| length != "0")
}

/// Where `needle` first starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

impl Reply {
    /// Writes the whole reply, status line, headers and body, into `out`, which is
    /// cleared first (so a connection can reuse one buffer for all its replies).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (code, reason) = self.status.code_and_reason();
        let body = match self.status {
            Status::Ok => HELLO.to_string(),
            _ => format!("{}\n", reason.to_ascii_lowercase()),
        };
        out.clear();
        out.extend_from_slice(format!("HTTP/1.1 {code} {reason}\r\n").as_bytes());
        out.extend_from_slice(b"Content-Type: text/plain\r\n");
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        if self.status == Status::MethodNotAllowed {
            out.extend_from_slice(b"Allow: GET\r\n");
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply to `bytes`, which must hold a complete request.
    fn reply(bytes: &[u8]) -> Reply {
        match next(bytes) {
            Next::Reply(reply) => reply,
            Next::ReadMore => panic!("{:?} asked for more", String::from_utf8_lossy(bytes)),
        }
    }

    /// `GET /` gets the greeting and keeps the connection; the request's bytes, and
    /// only those, are consumed, so a pipelined second request stays buffered.
    #[test]
    fn get_root_keeps_the_connection() {
        let first = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let pipelined = [&first[..], b"GET /other HTTP/1.1\r\n\r\n"].concat();
        let answered = reply(&pipelined);
        assert_eq!(
            answered,
            Reply {
                status: Status::Ok,
                consumed: first.len(),
                close: false
            }
        );
        assert_eq!(reply(&pipelined[first.len()..]).status, Status::NotFound);
    }

    /// A head is not answered before its empty line has arrived.
    #[test]
    fn a_partial_head_asks_for_more() {
        assert_eq!(next(b""), Next::ReadMore);
        assert_eq!(next(b"GET / HTTP/1.1\r\nHost: x\r\n"), Next::ReadMore);
    }

    /// Malformed request lines and header lines get 400 and a closed connection.
    #[test]
    fn malformed_requests_are_refused() {
        let malformed: [&[u8]; 7] = [
            b"GET /\r\n\r\n",                           // no version
            b"GET  / HTTP/1.1\r\n\r\n",                 // two spaces
            b"get / HTTP/1.1\r\n\r\n",                  // lower-case method
            b"GET index.html HTTP/1.1\r\n\r\n",         // not a path
            b"GET / HTTP/2.0\r\n\r\n",                  // not HTTP/1.x
            b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", // header without a colon
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",      // space before the colon
        ];
        for request in malformed {
            let refused = reply(request);
            let text = String::from_utf8_lossy(request);
            assert_eq!(refused.status, Status::BadRequest, "{text:?}");
            assert!(refused.close, "{text:?}");
        }
    }

    /// A head longer than `MAX_HEAD` is refused with 431 as soon as the bound is
    /// reached, without waiting for its end; one just under it is served.
    #[test]
    fn heads_are_bounded() {
        let mut endless = b"GET / HTTP/1.1\r\nX: ".to_vec();
        endless.resize(MAX_HEAD - 1, b'a');
        assert_eq!(next(&endless), Next::ReadMore);
        endless.push(b'a');
        assert_eq!(reply(&endless).status, Status::HeadTooLarge);
        assert!(reply(&endless).close);

        let mut fits = b"GET / HTTP/1.1\r\nX: ".to_vec();
        fits.resize(MAX_HEAD - END_OF_HEAD.len(), b'a');
        fits.extend_from_slice(END_OF_HEAD);
        assert_eq!(reply(&fits).status, Status::Ok);
    }

    /// `Connection: close` (any case, among other options) and HTTP/1.0 without
    /// keep-alive close the connection; a request with a body too.
    #[test]
    fn when_the_connection_closes() {
        let cases: [(&[u8], bool); 6] = [
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", true),
            (
                b"GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n",
                true,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false),
            (b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", false),
        ];
        for (request, close) in cases {
            let text = String::from_utf8_lossy(request);
            assert_eq!(reply(request).close, close, "{text:?}");
        }
    }

    /// The encoded reply has its status line, a `Content-Length` equal to the body's
    /// length, and `Connection: close` exactly when it closes.
    #[test]
    fn replies_are_encoded_with_their_length() {
        let mut out = Vec::new();
        let hello = Reply {
            status: Status::Ok,
            consumed: 0,
            close: false,
        };
        hello.encode(&mut out);
        let expected =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n";
        assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);

        let too_large = Reply {
            status: Status::HeadTooLarge,
            consumed: 0,
            close: true,
        };
        too_large.encode(&mut out); // the buffer is reused, not appended to
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(head.contains("Connection: close"));
    }
}

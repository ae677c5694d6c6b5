//! A bare HTTP/1.1 client for the benchmark's load and query processes: one request at a time
//! on a kept-alive connection, each answer read into a buffer kept between requests and never
//! copied. A client library allocates per request, per header and per chunk of an answer; on two
//! cores the client's CPU is taken from the server it measures, so the benchmark's clients do as
//! little as `wrk` and `curl` do.

use std::io::{Error, ErrorKind, Result};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the client keeps of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Bytes of the body (after chunked transfer encoding is taken off).
    pub body_bytes: usize,
}

/// One kept-alive connection to `host:port`.
pub struct Connection {
    stream: TcpStream,
    host: String,
    /// The `Authorization` header line sent with every request, if any.
    credential: Option<String>,
    request: Vec<u8>,
    answer: Vec<u8>,
}

/// The `host:port` and the path (with its query) of an `http://` URL.
pub fn split_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("{url}: only http:// URLs are supported")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

impl Connection {
    pub async fn open(host: &str) -> Result<Self> {
        let stream = TcpStream::connect(host).await?;
        // Requests are small and each waits for its answer: Nagle's delay would be all loss.
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host: host.to_string(),
            credential: None,
            request: Vec::with_capacity(512),
            answer: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends `token` as a bearer token with every request, if given.
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.credential = token.map(|t| format!("\r\nAuthorization: Bearer {t}"));
        self
    }

    pub async fn get(&mut self, path: &str) -> Result<Answer> {
        self.start_request("GET", path);
        self.request.extend_from_slice(b"\r\n\r\n");
        self.exchange().await
    }

    pub async fn post_json(&mut self, path: &str, body: &[u8]) -> Result<Answer> {
        self.start_request("POST", path);
        self.request
            .extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
        self.request
            .extend_from_slice(body.len().to_string().as_bytes());
        self.request.extend_from_slice(b"\r\n\r\n");
        self.request.extend_from_slice(body);
        self.exchange().await
    }

    /// The request line, the `Host` header and the credential, without their line's end.
    fn start_request(&mut self, method: &str, path: &str) {
        self.request.clear();
        for part in [method, " ", path, " HTTP/1.1\r\nHost: ", &self.host] {
            self.request.extend_from_slice(part.as_bytes());
        }
        if let Some(credential) = &self.credential {
            self.request.extend_from_slice(credential.as_bytes());
        }
    }

    async fn exchange(&mut self) -> Result<Answer> {
        self.stream.write_all(&self.request).await?;
        self.answer.clear();
        let mut reading = Reading::default();
        loop {
            if let Some(answer) = reading.advance(&self.answer)? {
                if self.answer.len() > reading.end {
                    return Err(invalid("bytes after the answer".into()));
                }
                return Ok(answer);
            }
            // A large answer doubles the buffer a few times once; later answers reuse it.
            if self.answer.capacity() - self.answer.len() < 16 * 1024 {
                self.answer.reserve(self.answer.capacity());
            }
            if self.stream.read_buf(&mut self.answer).await? == 0 {
                return Err(Error::new(
                    ErrorKind::UnexpectedEof,
                    "connection closed mid-answer",
                ));
            }
        }
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidData, message)
}

/// How far an answer has been parsed: only the bytes that arrived since the last look are
/// parsed again, so a large chunked answer costs one pass.
#[derive(Debug, Default)]
struct Reading {
    head: Option<(u16, Body)>,
    /// Where the answer ends, once known (for [`Connection::exchange`]'s check).
    end: usize,
}

#[derive(Debug)]
enum Body {
    Length {
        from: usize,
        bytes: usize,
    },
    /// `next`: where the next chunk's size line starts; `bytes`: the chunks' bytes so far.
    Chunked {
        next: usize,
        bytes: usize,
    },
}

impl Reading {
    /// The answer, once `buf` holds all of it.
    fn advance(&mut self, buf: &[u8]) -> Result<Option<Answer>> {
        if self.head.is_none() {
            let Some(end) = find(buf, b"\r\n\r\n", 0) else {
                return Ok(None);
            };
            self.head = Some(parse_head(&buf[..end], end + 4)?);
        }
        let Some((status, body)) = &mut self.head else {
            return Ok(None);
        };
        let status = *status;
        match body {
            Body::Length { from, bytes } => {
                self.end = *from + *bytes;
                Ok((buf.len() >= self.end).then_some(Answer {
                    status,
                    body_bytes: *bytes,
                }))
            }
            Body::Chunked { next, bytes } => loop {
                let Some(line_end) = find(buf, b"\r\n", *next) else {
                    return Ok(None);
                };
                let line = &buf[*next..line_end];
                let digits = line.split(|&b| b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| usize::from_str_radix(d.trim(), 16).ok())
                    .ok_or_else(|| invalid("bad chunk size".into()))?;
                if size == 0 {
                    // The last chunk, then (no trailers are sent) an empty line.
                    if buf.len() < line_end + 4 {
                        return Ok(None);
                    }
                    if &buf[line_end + 2..line_end + 4] != b"\r\n" {
                        return Err(invalid("trailers are not expected".into()));
                    }
                    self.end = line_end + 4;
                    return Ok(Some(Answer {
                        status,
                        body_bytes: *bytes,
                    }));
                }
                let chunk_end = line_end + 2 + size;
                if buf.len() < chunk_end + 2 {
                    return Ok(None);
                }
                if &buf[chunk_end..chunk_end + 2] != b"\r\n" {
                    return Err(invalid("chunk not followed by CRLF".into()));
                }
                *bytes += size;
                *next = chunk_end + 2;
            },
        }
    }
}

fn find(buf: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The status and the body's framing, from the head (status line and headers, without the empty
/// line); `body_from` is where the body starts in the buffer.
fn parse_head(head: &[u8], body_from: usize) -> Result<(u16, Body)> {
    let head = std::str::from_utf8(head).map_err(|_| invalid("head is not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line in {head:?}")))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(format!("bad header line {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse()
                    .map_err(|_| invalid(format!("bad content-length {value:?}")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = match (chunked, length) {
        (true, _) => Body::Chunked {
            next: body_from,
            bytes: 0,
        },
        (false, Some(bytes)) => Body::Length {
            from: body_from,
            bytes,
        },
        // 204 and 304 have no body; anything else must say how long it is.
        (false, None) if status == 204 || status == 304 => Body::Length {
            from: body_from,
            bytes: 0,
        },
        (false, None) => return Err(invalid("answer without a length".into())),
    };
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `raw` in pieces of `step` bytes, as reads would bring it.
    fn read_in_steps(raw: &[u8], step: usize) -> Result<Option<(Answer, usize)>> {
        let mut reading = Reading::default();
        let mut buf = Vec::new();
        for piece in raw.chunks(step) {
            buf.extend_from_slice(piece);
            if let Some(a) = reading.advance(&buf)? {
                return Ok(Some((a, reading.end)));
            }
        }
        Ok(None)
    }

    /// `raw` read in pieces of each of `steps` gives the answer `(status, body_bytes)`, ending
    /// where `raw` ends; its first `incomplete` bytes are not an answer yet.
    fn assert_read_whole(raw: &[u8], steps: &[usize], answer: (u16, usize), incomplete: usize) {
        let (status, body_bytes) = answer;
        let answer = Answer { status, body_bytes };
        for &step in steps {
            let (a, end) = read_in_steps(raw, step).unwrap().unwrap();
            assert_eq!(a, answer, "in pieces of {step}");
            assert_eq!(end, raw.len(), "in pieces of {step}");
        }
        assert!(read_in_steps(&raw[..incomplete], 1).unwrap().is_none());
    }

    #[test]
    fn content_length_answers_end_at_their_length() {
        let raw = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nContent-Length: 5\r\n\r\n{\"a\":";
        assert_read_whole(raw, &[1, 3, raw.len()], (201, 5), raw.len() - 1);
    }

    #[test]
    fn chunked_answers_are_counted_without_their_framing() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n[1,\r\na;x=1\r\n2,3,4,5,6]\r\n0\r\n\r\n";
        // Without the final empty line the answer is not complete.
        assert_read_whole(raw, &[1, 2, 7, raw.len()], (200, 13), raw.len() - 2);
    }

    #[test]
    fn malformed_answers_are_errors() {
        let bad: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nabc\r\n",
        ];
        for raw in bad {
            assert!(read_in_steps(raw, raw.len()).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn urls_split_into_host_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:3000/api/x?start=1").unwrap(),
            ("127.0.0.1:3000".into(), "/api/x?start=1".into())
        );
        assert_eq!(
            split_url("http://localhost").unwrap(),
            ("localhost:80".into(), "/".into())
        );
        assert!(split_url("https://localhost/").is_err());
    }
}

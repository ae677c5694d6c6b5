//! A real SMTP server over TCP for tests: it speaks enough of RFC 5321 for a real client
//! (lettre) to send through it (EHLO, MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT),
//! keeps what it accepted, and answers the end of DATA as the test says: accept, or a 4xx or
//! 5xx reply. It can be started on a port chosen before (a server that comes up late).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the server answers the end of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Accept,
    /// This code (4xx or 5xx) and text instead of 250.
    Refuse(u16, String),
}

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-stuffing undone, lines ending CRLF.
    pub data: String,
}

impl Received {
    /// The value of header `name` (unfolded), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = value.as_mut() {
                    v.push_str(line.trim_start());
                }
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.eq_ignore_ascii_case(name) {
                    value = Some(v.trim().to_string());
                }
            }
        }
        value
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    refuse: Option<(u16, String)>,
    /// Ends of DATA answered, accepted or not.
    attempts: usize,
    /// How long the server thinks before answering the end of a message.
    delay: std::time::Duration,
}

/// A running test SMTP server; it stops when dropped, open connections and all.
pub struct SmtpServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl SmtpServer {
    /// On a free port of 127.0.0.1.
    pub async fn start() -> SmtpServer {
        Self::start_at("127.0.0.1:0".parse().expect("address")).await
    }

    /// On `addr` (a port found free before, for a server that comes up late).
    pub async fn start_at(addr: SocketAddr) -> SmtpServer {
        let listener = TcpListener::bind(addr).await.expect("bind the SMTP server");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            // Sessions end with the server: dropping the set aborts them.
            let mut sessions = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                sessions.spawn(async move {
                    let _ = session(stream, state).await;
                });
                while sessions.try_join_next().is_some() {}
            }
        });
        SmtpServer { addr, state, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL the mailer takes (`--smtp`): plain SMTP, no TLS.
    pub fn url(&self) -> String {
        format!("smtp://{}?tls=none", self.addr)
    }

    /// Answers the end of every message from now on with `reply`.
    pub fn reply(&self, reply: Reply) {
        self.state.lock().expect("state").refuse = match reply {
            Reply::Accept => None,
            Reply::Refuse(code, text) => Some((code, text)),
        };
    }

    /// Thinks `delay` before answering the end of each message; a client that goes away
    /// meanwhile has sent nothing (as with a server that commits a message when it answers).
    pub fn delay(&self, delay: std::time::Duration) {
        self.state.lock().expect("state").delay = delay;
    }

    /// What the server accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.inbox().received()
    }

    /// A handle on what the server accepts, to hand to code that does not own the server.
    pub fn inbox(&self) -> Inbox {
        Inbox(self.state.clone())
    }

    /// Messages offered so far (ends of DATA), accepted or refused.
    pub fn attempts(&self) -> usize {
        self.state.lock().expect("state").attempts
    }
}

/// What a [`SmtpServer`] accepted, readable while it runs.
#[derive(Clone)]
pub struct Inbox(Arc<Mutex<State>>);

impl Inbox {
    pub fn received(&self) -> Vec<Received> {
        self.0.lock().expect("state").received.clone()
    }

    /// The messages to `address` (in any case), in the order they came.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// Waits up to `patience` until `address` has received `n` messages; they, or `None`.
    pub async fn wait_for(
        &self,
        address: &str,
        n: usize,
        patience: std::time::Duration,
    ) -> Option<Vec<Received>> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let got = self.to(address);
            if got.len() >= n {
                return Some(got);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Received {
    /// The body as text: quoted-printable (what a client uses for lines over 76 characters)
    /// decoded.
    pub fn body_text(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let qp = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        if !qp {
            return body.to_string();
        }
        let joined = body.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'=', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The token of the first sign-in link in the message (`uc_` and 43 characters).
    pub fn sign_in_token(&self) -> Option<String> {
        self.link_token("/auth/confirm")
    }

    /// The token of the first address verification link in the message.
    pub fn verify_token(&self) -> Option<String> {
        self.link_token("/auth/verify-email")
    }

    /// The token of the first link to `path` in the message.
    fn link_token(&self, path: &str) -> Option<String> {
        let text = self.body_text();
        let opening = format!("{path}?token=");
        let at = text.find(&opening)? + opening.len();
        let token: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        (token.len() == 46).then_some(token)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn address_of(arg: &str) -> String {
    let a = arg.split_once(':').map(|(_, a)| a).unwrap_or(arg).trim();
    let a = a.split_whitespace().next().unwrap_or("");
    a.trim_start_matches('<').trim_end_matches('>').to_string()
}

async fn session(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 test.invalid ESMTP\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-test.invalid\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 test.invalid\r\n",
            "MAIL" => {
                from = address_of(&command);
                to.clear();
                b"250 2.1.0 ok\r\n"
            }
            "RCPT" => {
                to.push(address_of(&command));
                b"250 2.1.5 ok\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    let l = line.trim_end_matches(['\r', '\n']);
                    if l == "." {
                        break;
                    }
                    data.push_str(
                        l.strip_prefix('.')
                            .filter(|_| l.starts_with(".."))
                            .unwrap_or(l),
                    );
                    data.push_str("\r\n");
                }
                let delay = state.lock().expect("state").delay;
                if !delay.is_zero() {
                    line.clear();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        // The client went away before the answer: nothing was sent.
                        _ = lines.read_line(&mut line) => return Ok(()),
                    }
                }
                let reply = {
                    let mut s = state.lock().expect("state");
                    s.attempts += 1;
                    match s.refuse.clone() {
                        None => {
                            s.received.push(Received {
                                from: from.clone(),
                                to: std::mem::take(&mut to),
                                data,
                            });
                            "250 2.0.0 queued\r\n".to_string()
                        }
                        Some((code, text)) => format!("{code} {text}\r\n"),
                    }
                };
                write.write_all(reply.as_bytes()).await?;
                continue;
            }
            "RSET" => {
                to.clear();
                b"250 ok\r\n"
            }
            "NOOP" => b"250 ok\r\n",
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 not implemented\r\n",
        };
        write.write_all(answer).await?;
    }
}

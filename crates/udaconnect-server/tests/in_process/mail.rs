//! The mailer against a real SMTP server over TCP (the test kit's), in both modes: the
//! embedded log with the sent keys in SQLite, and Kafka (the shared broker) with them in
//! PostgreSQL. Each test reads topics and a group of its own, so they share the broker.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use udaconnect_core::mail::{DynMailSender, DynSentMail, MailKind, MailRequest};
use udaconnect_core::ports::{Consumed, DynKeyStore, DynLog, StartFrom};
use udaconnect_core::record::{self, LogRecord, DLQ_REASON_HEADER};
use udaconnect_server::consume::poll::{self, Commit};
use udaconnect_server::keys::Keyring;
use udaconnect_server::mail::files::FileSender;
use udaconnect_server::mail::mailer::{self, Mailer};
use udaconnect_server::mail::smtp::SmtpSender;
use udaconnect_server::mail::{MailLog, MailSettings};
use udaconnect_server::metrics::Metrics;
use udaconnect_testkit::log_suite::collect;
use udaconnect_testkit::smtp::{Reply, SmtpServer};
use udaconnect_testkit::{eventually, unique};

const PATIENCE: Duration = Duration::from_secs(60);

/// One mode's log and sent-mail record, and what keeps them.
struct Backends {
    log: DynLog,
    sent: DynSentMail,
    keys: Arc<Keyring>,
    requests: &'static str,
    dead_letters: &'static str,
    group: String,
    _dir: tempfile::TempDir,
    _db: Option<udaconnect_testkit::postgres::TestDb>,
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// The embedded log, sent keys in SQLite.
    Embedded,
    /// Kafka, sent keys in PostgreSQL.
    Distributed,
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

async fn open(mode: Mode) -> Backends {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, sent, keys, db): (DynLog, DynSentMail, DynKeyStore, _) = match mode {
        Mode::Embedded => (
            Arc::new(
                udaconnect_log::EmbeddedLog::open(dir.path().join("log"), Default::default())
                    .expect("embedded log"),
            ),
            Arc::new(
                udaconnect_store::SqliteSentMail::open(dir.path().join("mail.sqlite3"))
                    .expect("sent mail"),
            ),
            Arc::new(
                udaconnect_store::SqliteKeyStore::open(dir.path().join("keys.sqlite3"))
                    .expect("key store"),
            ),
            None,
        ),
        #[cfg(not(all(feature = "kafka", feature = "postgres")))]
        Mode::Distributed => unreachable!("built without kafka and postgres"),
        #[cfg(all(feature = "kafka", feature = "postgres"))]
        Mode::Distributed => {
            let db = udaconnect_testkit::postgres::TestDb::new().await;
            let pg = udaconnect_store::Postgres::connect(&db.url)
                .await
                .expect("postgres");
            let log = udaconnect_log::KafkaLog::connect(
                &udaconnect_testkit::kafka::shared_broker(),
                udaconnect_log::KafkaOptions {
                    client_config: udaconnect_testkit::kafka::client_debug(),
                    ..Default::default()
                },
            )
            .expect("kafka log");
            (
                Arc::new(log),
                Arc::new(udaconnect_store::PostgresSentMail::new(&pg)),
                Arc::new(udaconnect_store::PostgresKeyStore::new(&pg)),
                Some(db),
            )
        }
    };
    Backends {
        log,
        sent,
        keys: Arc::new(Keyring::new(keys)),
        requests: leak(unique("notification")),
        dead_letters: leak(unique("notification.dlq")),
        group: unique("mailer"),
        _dir: dir,
        _db: db,
    }
}

fn settings(max_attempts: u32) -> MailSettings {
    MailSettings {
        max_attempts,
        retry_delay: Duration::from_millis(200),
        ..MailSettings::default()
    }
}

/// A running mailer: its stop signal and task.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<udaconnect_core::Result<()>>,
    metrics: Arc<Metrics>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.expect("mailer task").expect("mailer");
    }
}

/// A mailer committing its position after every request, giving up on a mail after
/// `max_attempts`.
fn start(b: &Backends, sender: DynMailSender, max_attempts: u32) -> Running {
    spawn(
        b,
        sender,
        settings(max_attempts),
        Commit::Every(Duration::ZERO),
    )
}

/// A mailer writing mail as files under the test's directory: the directory, the sender.
fn start_files(b: &Backends) -> (PathBuf, Arc<FileSender>, Running) {
    let dir = b._dir.path().join("mail");
    let files = Arc::new(FileSender::new(dir.clone(), "noreply@test.invalid").expect("files"));
    let running = start(b, files.clone(), 3);
    (dir, files, running)
}

fn spawn(b: &Backends, sender: DynMailSender, settings: MailSettings, commit: Commit) -> Running {
    let (stop, stop_rx) = watch::channel(false);
    let metrics = Arc::new(Metrics::new());
    let mut worker = Mailer {
        log: b.log.clone(),
        requests: b.requests,
        keys: b.keys.clone(),
        dead_letters: b.dead_letters,
        sender,
        sent: b.sent.clone(),
        settings,
        metrics: metrics.clone(),
        health: None,
        stop: stop_rx.clone(),
    };
    let mut reader = mailer::reader(b.requests, &b.group);
    reader.commit = commit;
    let log = b.log.clone();
    let task = tokio::spawn(async move { poll::read(&log, &reader, &mut worker, stop_rx).await });
    Running {
        stop,
        task,
        metrics,
    }
}

fn smtp(server: &SmtpServer) -> DynMailSender {
    Arc::new(
        SmtpSender::new(
            &server.url().parse().expect("url"),
            "UdaConnect <noreply@test.invalid>",
        )
        .expect("sender"),
    )
}

fn sign_in(key: &str, to: &str) -> MailRequest {
    MailRequest::new(
        key,
        to,
        &format!("Sign in ({key})"),
        &format!("Follow https://connect.test.invalid/sign-in#{key}\n"),
        None,
        MailKind::SignIn,
    )
    .expect("request")
}

/// Runs `append` until it succeeds, retrying while the log is unavailable (a shared broker
/// slow to create a new topic), as a role's caller retries a 503.
async fn appended<F: Future<Output = udaconnect_core::Result<()>>>(mut append: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        match append().await {
            Ok(()) => return,
            Err(udaconnect_core::Error::Unavailable(why))
                if std::time::Instant::now() < deadline =>
            {
                eprintln!("append unavailable ({why}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("append: {e}"),
        }
    }
}

/// Appends `mails` as a role would.
async fn enqueue(b: &Backends, mails: &[MailRequest]) {
    let records: Vec<_> = mails.iter().map(|m| m.encode(1_700_000_000_000)).collect();
    appended(|| b.log.append(b.requests, records.clone())).await;
}

/// Waits until the server holds `n` messages, then a moment more to see no extra comes.
async fn received_exactly(
    server: &SmtpServer,
    n: usize,
) -> Vec<udaconnect_testkit::smtp::Received> {
    eventually(&format!("{n} mails received"), PATIENCE, || async {
        (server.received().len() >= n).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got = server.received();
    assert_eq!(got.len(), n, "mails received: {got:#?}");
    got
}

const SENT: &str = "udaconnect_mail_sent_total";
const SKIPPED: &str = "udaconnect_mail_duplicates_skipped_total";
const DEAD_LETTERED: &str = "udaconnect_mail_dlq_total";
const FAILED_TRANSIENT: &str = "udaconnect_mail_failed_total{reason=\"transient\"}";
const FAILED_PERMANENT: &str = "udaconnect_mail_failed_total{reason=\"permanent\"}";

fn metric(m: &Metrics, line_start: &str) -> f64 {
    m.render()
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn a_mail_enqueued_is_received_once(mode: Mode) {
    let b = open(mode).await;
    let server = SmtpServer::start().await;
    let running = start(&b, smtp(&server), 3);
    // The same key twice (a caller that retried its append) and another key.
    let first = sign_in("sign-in-1", "ada@example.org");
    enqueue(
        &b,
        &[
            first.clone(),
            first.clone(),
            sign_in("welcome-2", "bob@example.org"),
        ],
    )
    .await;
    let got = received_exactly(&server, 2).await;
    let to: Vec<&str> = got.iter().map(|r| r.to[0].as_str()).collect();
    assert!(
        to.contains(&"ada@example.org") && to.contains(&"bob@example.org"),
        "{to:?}"
    );
    let ada = got.iter().find(|r| r.to[0] == "ada@example.org").unwrap();
    assert_eq!(ada.from, "noreply@test.invalid");
    assert_eq!(
        ada.header("Subject").as_deref(),
        Some("Sign in (sign-in-1)")
    );
    assert!(
        ada.data
            .contains("https://connect.test.invalid/sign-in#sign-in-1"),
        "{}",
        ada.data
    );
    assert_eq!(metric(&running.metrics, SENT), 2.0);
    assert_eq!(metric(&running.metrics, SKIPPED), 1.0);
    running.stop().await;
}

async fn smtp_down_is_retried_until_it_comes_up_and_nothing_is_lost(mode: Mode) {
    let b = open(mode).await;
    // A port with nothing listening on it yet.
    let addr: std::net::SocketAddr =
        format!("127.0.0.1:{}", udaconnect_testkit::local::free_port())
            .parse()
            .expect("address");
    let sender: DynMailSender = Arc::new(
        SmtpSender::new(
            &format!("smtp://{addr}?tls=none").parse().expect("url"),
            "noreply@test.invalid",
        )
        .expect("sender"),
    );
    let running = start(&b, sender, 30);
    let mails: Vec<MailRequest> = (0..5)
        .map(|i| sign_in(&format!("down-{i}"), &format!("p{i}@example.org")))
        .collect();
    enqueue(&b, &mails).await;
    eventually("tries against a server that is down", PATIENCE, || async {
        (metric(&running.metrics, FAILED_TRANSIENT) >= 2.0).then_some(())
    })
    .await;
    let server = SmtpServer::start_at(addr).await;
    let got = received_exactly(&server, 5).await;
    let mut to: Vec<String> = got.iter().map(|r| r.to[0].clone()).collect();
    to.sort();
    assert_eq!(
        to,
        (0..5)
            .map(|i| format!("p{i}@example.org"))
            .collect::<Vec<_>>()
    );
    assert_eq!(metric(&running.metrics, DEAD_LETTERED), 0.0);
    running.stop().await;
}

/// Up to `n` records of `topic`, read from its start by a group of their own.
async fn read_from_start(b: &Backends, topic: &str, n: usize) -> Vec<Consumed> {
    let group = unique("test-reader");
    let mut reader = b
        .log
        .consumer(topic, &group, StartFrom::Earliest)
        .await
        .expect("reader");
    collect(reader.as_mut(), n, PATIENCE).await
}

async fn dead_letters(b: &Backends, n: usize) -> Vec<Consumed> {
    let got = read_from_start(b, b.dead_letters, n).await;
    assert_eq!(got.len(), n, "{n} dead letters: {got:?}");
    got
}

/// The reason of the dead letter keyed `key` (dead letters of several partitions come in no
/// order between partitions).
fn reason_of(dead: &[Consumed], key: &str) -> String {
    let d = dead
        .iter()
        .find(|d| d.record.key.as_deref() == Some(key.as_bytes()))
        .unwrap_or_else(|| panic!("no dead letter keyed {key}: {dead:?}"));
    d.record
        .header_str(DLQ_REASON_HEADER)
        .expect("reason")
        .to_string()
}

async fn a_permanent_refusal_is_dead_lettered_with_its_reason(mode: Mode) {
    let b = open(mode).await;
    let server = SmtpServer::start().await;
    server.reply(Reply::Refuse(550, "5.1.1 no such mailbox".into()));
    let running = start(&b, smtp(&server), 5);
    enqueue(&b, &[sign_in("refused-1", "gone@example.org")]).await;
    let dead = dead_letters(&b, 1).await;
    let reason = dead[0]
        .record
        .header_str(DLQ_REASON_HEADER)
        .expect("reason");
    assert!(
        reason.contains("550") && reason.contains("no such mailbox"),
        "{reason}"
    );
    assert_eq!(
        MailRequest::decode(&dead[0].record)
            .expect("request kept")
            .key(),
        "refused-1"
    );
    // Refused for good: tried once, not five times.
    assert_eq!(server.attempts(), 1);
    assert_eq!(metric(&running.metrics, DEAD_LETTERED), 1.0);
    assert_eq!(metric(&running.metrics, FAILED_PERMANENT), 1.0);
    // A 4xx to the last attempt: dead-lettered after them, with the count in the reason.
    server.reply(Reply::Refuse(451, "4.3.0 try later".into()));
    enqueue(&b, &[sign_in("later-1", "busy@example.org")]).await;
    let dead = dead_letters(&b, 2).await;
    let reason = reason_of(&dead, "later-1");
    assert!(
        reason.starts_with("not sent after 5 attempts") && reason.contains("451"),
        "{reason}"
    );
    assert_eq!(server.attempts(), 6);
    // An unreadable request goes at once, with why.
    b.log
        .append(b.requests, vec![udaconnect_core::record::LogRecord {
            key: Some(b"x".to_vec()),
            value: br#"{"key":"x","to":"a@example.org","subject":"a\r\nBcc: b@evil.test","text":"t","kind":"welcome"}"#.to_vec(),
            ..Default::default()
        }])
        .await
        .expect("append");
    let dead = dead_letters(&b, 3).await;
    let reason = reason_of(&dead, "x");
    assert!(
        reason.starts_with("invalid request") && reason.contains("subject"),
        "{reason}"
    );
    assert!(server.received().is_empty());
    running.stop().await;
}

async fn a_restart_after_a_send_does_not_send_the_key_again(mode: Mode) {
    let b = open(mode).await;
    let server = SmtpServer::start().await;
    // A mailer that dies after sending but before committing its position: it never commits.
    let crashed = spawn(&b, smtp(&server), settings(3), Commit::Never);
    enqueue(
        &b,
        &[
            sign_in("once-1", "ada@example.org"),
            sign_in("once-2", "bob@example.org"),
        ],
    )
    .await;
    received_exactly(&server, 2).await;
    crashed.task.abort();
    // The next start reads both requests again, and sends neither.
    let restarted = start(&b, smtp(&server), 3);
    eventually("the requests read again", PATIENCE, || async {
        (metric(&restarted.metrics, SKIPPED) >= 2.0).then_some(())
    })
    .await;
    enqueue(&b, &[sign_in("once-3", "cy@example.org")]).await;
    received_exactly(&server, 3).await;
    assert_eq!(metric(&restarted.metrics, SENT), 1.0);
    restarted.stop().await;
}

async fn without_smtp_mail_is_written_as_files(mode: Mode) {
    let b = open(mode).await;
    let (dir, files, running) = start_files(&b);
    let mail = MailRequest::new(
        "welcome:7/../x",
        "ada@example.org",
        "Welcome to UdaConnect",
        "Sign in: https://connect.test.invalid/s#t\n",
        Some("<p>Sign in</p>"),
        MailKind::Welcome,
    )
    .expect("request");
    enqueue(&b, &[mail.clone(), mail.clone()]).await;
    let path = files.path_of(mail.key());
    let text = eventually("the .eml file", PATIENCE, || async {
        std::fs::read_to_string(&path).ok()
    })
    .await;
    assert_eq!(
        path.parent(),
        Some(dir.as_path()),
        "the key cannot leave the directory"
    );
    assert!(text.contains("Subject: Welcome to UdaConnect"), "{text}");
    assert!(text.contains("To: ada@example.org"), "{text}");
    assert!(text.contains("https://connect.test.invalid/s#t"), "{text}");
    assert!(text.contains("multipart/alternative"), "{text}");
    eventually("the duplicate skipped", PATIENCE, || async {
        (metric(&running.metrics, SKIPPED) >= 1.0).then_some(())
    })
    .await;
    let eml = std::fs::read_dir(&dir).expect("dir").count();
    assert_eq!(eml, 1);
    running.stop().await;
}

/// Every record of the test's requests topic, read raw.
async fn raw_requests(b: &Backends, n: usize) -> Vec<LogRecord> {
    let got = read_from_start(b, b.requests, n).await;
    got.into_iter().map(|c| c.record).collect()
}

fn holds(record: &LogRecord, text: &str) -> bool {
    let needle = text.as_bytes();
    std::iter::once(&record.value)
        .chain(record.key.iter())
        .chain(record.headers.iter().map(|(_, v)| v))
        .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}

async fn a_persons_mail_is_sealed_and_goes_with_them(mode: Mode) {
    let b = open(mode).await;
    let (dir, files, running) = start_files(&b);
    let queue = MailLog {
        log: b.log.clone(),
        keys: b.keys.clone(),
    };
    let (gone, stays) = (4_242, 4_243);
    let mail_to = |key: &str, to: &str, person| sign_in(key, to).for_person(Some(person));
    let theirs = mail_to("sign-in-gone", "gone.person@example.org", gone);
    let kept = mail_to("sign-in-stays", "stays.person@example.org", stays);
    for m in [&theirs, &kept] {
        appended(|| queue.enqueue_on(b.requests, m)).await;
    }
    // A request of theirs the mailer cannot read goes to the dead letters as it is: sealed.
    let unreadable = LogRecord {
        key: Some(gone.to_string().into_bytes()),
        value: br#"{"to":"gone.person@example.org"}"#.to_vec(),
        headers: Vec::new(),
        timestamp_ms: 1_700_000_000_000,
    };
    let unreadable = b
        .keys
        .seal_record(b.requests, gone, unreadable)
        .await
        .expect("seal")
        .expect("a live key");
    b.log
        .append(b.requests, vec![unreadable])
        .await
        .expect("append");
    let (their_file, kept_file) = (files.path_for(&theirs), files.path_for(&kept));
    for path in [&their_file, &kept_file] {
        eventually("the .eml file", PATIENCE, || async {
            std::fs::read_to_string(path).ok()
        })
        .await;
    }
    assert!(std::fs::read_to_string(&their_file)
        .unwrap()
        .contains("To: gone.person@example.org"));
    let dead = dead_letters(&b, 1).await;
    assert!(
        reason_of(&dead, &gone.to_string()).starts_with("invalid request"),
        "{dead:?}"
    );
    assert!(!holds(&dead[0].record, "gone.person@example.org"), "sealed");
    for r in raw_requests(&b, 3).await {
        assert!(
            !holds(&r, "gone.person@example.org") && !holds(&r, "stays.person@example.org"),
            "a person's mail is sealed on the topic: {r:?}"
        );
        assert!(r.header("key_version").is_some(), "{r:?}");
    }

    // A request sealed before the erasure and appended after it (a process that had not yet
    // seen the key go), then the erasure as person-api tells it.
    let late = b
        .keys
        .seal_record(
            b.requests,
            gone,
            mail_to("sign-in-late", "gone.person@example.org", gone).encode(0),
        )
        .await
        .expect("seal")
        .expect("a live key");
    assert!(b.keys.destroy(gone).await.expect("destroy"));
    let erasure = record::erasure(gone, chrono::Utc::now());
    b.log
        .append(b.requests, vec![erasure, late])
        .await
        .expect("append");
    eventually("their mail file deleted", PATIENCE, || async {
        (!their_file.exists()).then_some(())
    })
    .await;
    eventually("the late request skipped", PATIENCE, || async {
        (metric(&running.metrics, "udaconnect_mail_shredded_total") >= 1.0).then_some(())
    })
    .await;
    assert_eq!(
        metric(&running.metrics, "udaconnect_mail_forgotten_total"),
        1.0
    );
    assert!(kept_file.exists(), "the other person's mail stays");
    // Nothing of theirs is queued any more.
    queue
        .enqueue_on(
            b.requests,
            &mail_to("sign-in-after", "gone.person@example.org", gone),
        )
        .await
        .expect("refused quietly");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(metric(&running.metrics, SENT), 2.0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_fails_once_smtp_stays_unreachable_past_the_grace() {
    let server = SmtpServer::start().await;
    let addr = server.addr();
    let sender = smtp(&server);
    let health = mailer::SmtpHealth::new(Duration::from_millis(500));
    health
        .check(&sender)
        .await
        .expect("ready while the server answers");
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    health
        .check(&sender)
        .await
        .expect("still ready within the grace");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let e = health
        .check(&sender)
        .await
        .expect_err("not ready past the grace");
    assert!(e.to_string().contains("smtp server unreachable"), "{e}");
    let _back = SmtpServer::start_at(addr).await;
    health
        .check(&sender)
        .await
        .expect("ready again once it answers");
}

macro_rules! both_modes {
    ($($body:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(super::Mode::Embedded).await;
                }
            )*
        }
        #[cfg(all(feature = "kafka", feature = "postgres"))]
        mod distributed {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(super::Mode::Distributed).await;
                }
            )*
        }
    };
}

both_modes!(
    a_mail_enqueued_is_received_once,
    smtp_down_is_retried_until_it_comes_up_and_nothing_is_lost,
    a_permanent_refusal_is_dead_lettered_with_its_reason,
    a_restart_after_a_send_does_not_send_the_key_again,
    without_smtp_mail_is_written_as_files,
    a_persons_mail_is_sealed_and_goes_with_them,
);

//! `udaconnect mailer` as a process, killed with SIGKILL while it sends: every mail arrives,
//! and none twice. The SMTP server (the test kit's, over TCP) takes a while to answer each
//! message, and each kill lands in that while; a message whose answer the mailer never read
//! was not taken. In both modes: the embedded log and sent keys in its directory, and a Kafka broker
//! with the sent keys in PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use udaconnect_core::mail::{MailKind, MailRequest, NOTIFICATION_TOPIC};
use udaconnect_core::ports::DynLog;
use udaconnect_testkit::process::RoleProc;
use udaconnect_testkit::smtp::SmtpServer;

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");
const MAILS: usize = 30;
/// How long the SMTP server takes to answer each message.
const SERVER_THINKS: Duration = Duration::from_millis(150);

fn requests() -> Vec<udaconnect_core::record::LogRecord> {
    (0..MAILS)
        .map(|i| {
            MailRequest::new(
                &format!("sign-in-{i}"),
                &format!("attendee{i}@example.org"),
                &format!("Sign in ({i})"),
                "Follow the link\n",
                None,
                MailKind::SignIn,
            )
            .expect("request")
            .encode(1_700_000_000_000 + i as i64)
        })
        .collect()
}

/// Waits until `server` holds at least `n` messages.
async fn until_received(server: &SmtpServer, n: usize, mailer: &RoleProc) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while server.received().len() < n {
        assert!(
            Instant::now() < deadline,
            "{n} mails never arrived ({} did); log:\n{}",
            server.received().len(),
            std::fs::read_to_string(&mailer.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts the mailer with `args`, kills it twice mid-send, and checks what arrived.
async fn killed_mid_send(args: Vec<String>, server: &SmtpServer) {
    let mut mailer = RoleProc::spawn(std::path::Path::new(BIN), "mailer", &args).await;
    mailer.wait_ready(Duration::from_secs(60)).await;
    for after in [MAILS / 4, MAILS / 2] {
        until_received(server, after, &mailer).await;
        // Into the next mail's send, while the server thinks (not right after an acceptance:
        // a kill between the acceptance and the record of the key is the one window where a
        // mail goes out twice, documented in docs/operations.md).
        tokio::time::sleep(SERVER_THINKS / 2).await;
        mailer.restart().await;
    }
    until_received(server, MAILS, &mailer).await;
    // Time enough for a mail sent twice to arrive twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut per_subject: HashMap<String, usize> = HashMap::new();
    for r in server.received() {
        *per_subject
            .entry(r.header("Subject").expect("subject"))
            .or_default() += 1;
    }
    let twice: Vec<_> = per_subject.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(per_subject.len(), MAILS);
    let metrics = reqwest::get(format!("{}/metrics", mailer.base()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(metrics.contains("udaconnect_mail_sent_total"), "{metrics}");
    mailer.kill_9();
}

fn slow_server_args(server: &SmtpServer) -> Vec<String> {
    server.delay(SERVER_THINKS);
    vec![
        "--smtp".into(),
        server.url(),
        "--mail-retry-ms".into(),
        "100".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_a_mailer_killed_mid_send_sends_each_mail_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        // The embedded log is one process's at a time: the requests go in before it starts.
        let log: DynLog = Arc::new(
            udaconnect_log::EmbeddedLog::open(dir.path().join("log"), Default::default())
                .expect("log"),
        );
        // As a role asks for mail.
        for r in requests() {
            let mail = MailRequest::decode(&r).expect("request");
            udaconnect_server::mail::enqueue(&log, &mail)
                .await
                .expect("enqueue");
        }
    }
    let server = SmtpServer::start().await;
    let data = dir.path().display().to_string();
    let mut args = vec!["--store".into(), data.clone(), "--log".into(), data];
    args.extend(slow_server_args(&server));
    killed_mid_send(args, &server).await;
}

#[cfg(all(feature = "kafka", feature = "postgres"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_a_mailer_killed_mid_send_sends_each_mail_once() {
    // A broker of its own: the mailer reads the fixed topic `notification` as group `mailer`.
    let broker = udaconnect_testkit::kafka::Broker::start().await;
    let db = udaconnect_testkit::postgres::TestDb::new().await;
    let log: DynLog = Arc::new(
        udaconnect_log::KafkaLog::connect(&broker.brokers(), Default::default()).expect("log"),
    );
    log.append(NOTIFICATION_TOPIC, requests())
        .await
        .expect("append");
    let server = SmtpServer::start().await;
    let mut args = vec![
        "--store".into(),
        db.url.clone(),
        "--log".into(),
        broker.consumer_url("mailer-0"),
    ];
    args.extend(slow_server_args(&server));
    killed_mid_send(args, &server).await;
}

#[test]
fn mailer_and_serve_name_their_mail_flags() {
    let bin = std::path::Path::new(BIN);
    udaconnect_testkit::process::assert_help_names(
        bin,
        &["mailer"],
        &[
            "--smtp",
            "--mail-from",
            "--mail-attempts",
            "--mail-retry-ms",
            "--mail-dir",
            "--store",
            "--log",
            "--listen",
        ],
    );
    udaconnect_testkit::process::assert_help_names(bin, &["serve"], &["--smtp", "--mail-from"]);
}

//! The engines the suite runs against: `udaconnect serve` as a process, and the distributed
//! stack (every role its own process on a Kafka-protocol broker and PostGIS, behind web).

use std::path::Path;
use std::time::Duration;

use udaconnect_server::roles::Role;
use udaconnect_testkit::mqtt;
use udaconnect_testkit::process::{printed_token, run_admin, RoleProc};
use udaconnect_testkit::smtp::SmtpServer;

use crate::suite::{Api, Auth, Engine};

pub const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");

/// The suite's client; with a token, every request it sends carries it.
fn client(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token {
        let mut value: reqwest::header::HeaderValue = format!("Bearer {t}").parse().unwrap();
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .default_headers(headers)
        .build()
        .unwrap()
}

fn on_off(auth: Auth) -> &'static str {
    match auth {
        Auth::Off => "off",
        Auth::On => "on",
    }
}

/// `udaconnect admin create-token --role ROLE <where>`: the token on its last line.
fn create_token(role: &str, place: &[&str]) -> String {
    let what = ["create-token", "--role", role, "--name", "api-suite"];
    let out = run_admin(Path::new(BIN), &[&what[..], place].concat());
    printed_token(&out).trim().to_string()
}

/// `udaconnect serve --demo` on a fresh data directory: every role in one process, its mail
/// sent to a test SMTP server.
pub struct Serve {
    process: RoleProc,
    /// Its tracker-mqtt's session at the broker, cleared once it has stopped.
    _mqtt_session: mqtt::Session,
    /// The admin's token the suite's client sends, with `--auth on`.
    token: Option<String>,
    smtp: SmtpServer,
    data_dir: tempfile::TempDir,
}

impl Engine for Serve {
    async fn start(auth: Auth) -> Serve {
        let data_dir = tempfile::tempdir().unwrap();
        let smtp = SmtpServer::start().await;
        let mqtt_session = mqtt::Session::new();
        let venue = data_dir.path().join("venue.json");
        std::fs::write(&venue, crate::live::VENUE).unwrap();
        let args: Vec<String> = [
            "--demo",
            "--demo-attendees",
            "0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--data-dir",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([data_dir.path().display().to_string()])
        .chain(["--smtp".to_string(), smtp.url()])
        .chain(["--auth".to_string(), on_off(auth).to_string()])
        .chain(["--venue".to_string(), venue.display().to_string()])
        .chain([
            "--mqtt".to_string(),
            mqtt::BROKER.to_string(),
            "--mqtt-client-id".to_string(),
            mqtt_session.client_id.clone(),
        ])
        .collect();
        let process = RoleProc::spawn(Path::new(BIN), "serve", &args).await;
        process.wait_ready(Duration::from_secs(60)).await;
        let dir = data_dir.path().display().to_string();
        let token = (auth == Auth::On).then(|| create_token("admin", &["--data-dir", &dir]));
        Serve {
            process,
            _mqtt_session: mqtt_session,
            token,
            smtp,
            data_dir,
        }
    }

    fn api(&self) -> Api {
        Api {
            base: self.process.base(),
            grpc: self.process.grpc(),
            client: client(self.token.as_deref()),
            roles: Role::ALL
                .iter()
                .map(|&r| (r, self.process.base(), self.process.log.clone()))
                .collect(),
            accounts: vec![
                "--data-dir".into(),
                self.data_dir.path().display().to_string(),
            ],
            inbox: self.smtp.inbox(),
            data_dir: Some(self.data_dir.path().to_path_buf()),
        }
    }
}

#[cfg(all(feature = "kafka", feature = "postgres"))]
pub use distributed::Distributed;

#[cfg(all(feature = "kafka", feature = "postgres"))]
mod distributed {
    use super::*;
    use crate::demo;
    use udaconnect_testkit::kafka::Broker;
    use udaconnect_testkit::postgres::TestDb;
    use udaconnect_testkit::process::Stack;

    /// Every role its own process on a broker and a database of its own, reached through web.
    /// The demo data is loaded as `serve --demo` loads it (persons into person-api's store,
    /// locations through the log), before any role but person-api starts.
    pub struct Distributed {
        stack: Stack,
        _broker: Broker,
        _db: TestDb,
        _seed_dir: tempfile::TempDir,
        /// The admin's token the suite's client sends, with `--auth on`.
        token: Option<String>,
    }

    impl Engine for Distributed {
        async fn start(auth: Auth) -> Distributed {
            let broker = Broker::start().await;
            let db = TestDb::new().await;
            let seed_dir = tempfile::tempdir().unwrap();
            // With auth on, the roles look persons up with an organizer's service token.
            let (token, service) = match auth {
                Auth::Off => (None, String::new()),
                Auth::On => (
                    Some(create_token("admin", &["--store", &db.url])),
                    create_token("organizer", &["--store", &db.url]),
                ),
            };
            // connection-api takes the plan from the environment; the other roles ignore it.
            let venue = seed_dir.path().join("venue.json");
            std::fs::write(&venue, crate::live::VENUE).unwrap();
            let venue = venue.display().to_string();
            let env = [
                ("UDACONNECT_AUTH", on_off(auth)),
                ("UDACONNECT_SERVICE_TOKEN", service.as_str()),
                ("UDACONNECT_VENUE", venue.as_str()),
            ];
            let seed = || demo::load(&db.url, &broker, seed_dir.path());
            let stack =
                Stack::start_seeded_with_env(Path::new(BIN), &db.url, &broker, &env, seed).await;
            Distributed {
                stack,
                _broker: broker,
                _db: db,
                _seed_dir: seed_dir,
                token,
            }
        }

        fn api(&self) -> Api {
            let s = &self.stack;
            let process = |role: Role| match role {
                Role::PersonApi => &s.person_api,
                Role::LocationApi => &s.location_api,
                Role::LocationConsumer => &s.consumer,
                Role::ConnectionApi => &s.connection_api,
                Role::Mailer => &s.mailer,
                Role::Web => &s.web,
                Role::TrackerMqtt => &s.tracker_mqtt,
            };
            Api {
                base: s.web.base(),
                grpc: s.location_api.grpc(),
                client: client(self.token.as_deref()),
                roles: Role::ALL
                    .iter()
                    .map(|&r| (r, process(r).base(), process(r).log.clone()))
                    .collect(),
                accounts: vec!["--store".into(), self._db.url.clone()],
                inbox: s.smtp.inbox(),
                data_dir: None,
            }
        }
    }
}

//! The log conformance suite ([`udaconnect_testkit::log_suite`]) on every engine: the embedded
//! log in a temporary directory, and Kafka on the shared test broker (`scripts/kafka start`,
//! or `UDACONNECT_TEST_KAFKA`).

use std::sync::Arc;

use async_trait::async_trait;
use tempfile::TempDir;
use udaconnect_core::ports::DynLog;
use udaconnect_log::{EmbeddedLog, EmbeddedLogOptions};
#[cfg(feature = "kafka")]
use udaconnect_log::{KafkaLog, KafkaOptions};
#[cfg(feature = "kafka")]
use udaconnect_testkit::kafka::{client_debug, shared_broker};
#[cfg(feature = "kafka")]
use udaconnect_testkit::local::init_tracing;
use udaconnect_testkit::log_suite::LogEngine;

struct Embedded {
    log: DynLog,
    // Last: removed once the log is closed.
    _dir: TempDir,
}

#[async_trait]
impl LogEngine for Embedded {
    const PARTITIONS: usize = 1;

    async fn open() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        // Small segments, so every body also reads and writes across segment files.
        let options = EmbeddedLogOptions {
            segment_bytes: 4096,
            ..Default::default()
        };
        Embedded {
            log: Arc::new(EmbeddedLog::open(dir.path(), options).expect("open the log")),
            _dir: dir,
        }
    }

    fn log(&self) -> DynLog {
        self.log.clone()
    }
}

#[cfg(feature = "kafka")]
struct Kafka(DynLog);

#[cfg(feature = "kafka")]
#[async_trait]
impl LogEngine for Kafka {
    const PARTITIONS: usize = 3;

    async fn open() -> Self {
        init_tracing();
        let options = KafkaOptions {
            client_config: client_debug(),
            ..KafkaOptions::default()
        };
        assert_eq!(options.topic_partitions as usize, Self::PARTITIONS);
        Kafka(Arc::new(
            KafkaLog::connect(&shared_broker(), options).expect("kafka log"),
        ))
    }

    fn log(&self) -> DynLog {
        self.0.clone()
    }
}

udaconnect_testkit::log_suite!(embedded, Embedded);
#[cfg(feature = "kafka")]
udaconnect_testkit::log_suite!(kafka, Kafka);

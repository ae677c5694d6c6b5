//! The Kafka log: the [`Log`] port over any broker that speaks the Apache Kafka protocol, through
//! librdkafka (built from source by `rdkafka-sys`).
//!
//! Durability: the producer is idempotent with `acks=all`, and [`KafkaLog::append`] answers only
//! once every record of the call has a delivery report, so an acknowledged record is on every
//! in-sync replica and a retried send is never written twice. A broker that is down fails the
//! append after [`KafkaOptions::delivery_timeout`]; librdkafka reconnects on its own, and the
//! producer is replaced after a fatal error (possible with idempotence) or a timed-out delivery
//! (a broker that lost the producer's id rejects it for ever), so appends recover when the broker
//! does, without a restart.
//!
//! Topics are created with [`KafkaOptions::topic_partitions`] partitions, in the background from
//! [`KafkaLog::connect`] on for [`KafkaOptions::create_topics`] and on first use for any other.
//! Roles may start before the broker: an append or a new consumer fails with `Unavailable` until
//! it answers.
//!
//! Consumers commit by hand. Each one remembers, per partition, the offset after the last record
//! [`LogConsumer::poll`] handed out, and [`LogConsumer::commit`] commits exactly those, so a commit
//! never covers a record the caller has not seen. When a rebalance takes partitions away, their
//! remembered offsets are dropped: the new owner starts from the last commit and redelivers what
//! was not committed, which the stores absorb because their writes are idempotent. A record is
//! handed out only once every offset before it has been read (`gaps`): a broker that shows an
//! offset before its record can be read is fetched from again, never read past.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use udaconnect_core::mail::{NOTIFICATION_DLQ_TOPIC, NOTIFICATION_TOPIC};
use udaconnect_core::ports::{
    retry_delay, Consumed, DynLogConsumer, Log, LogConsumer, LogScan, StartFrom,
};
use udaconnect_core::record::{LogRecord, Position, LOCATION_DLQ_TOPIC, LOCATION_TOPIC};
use udaconnect_core::{Error, Result};

mod consumer;
mod gaps;
mod retention;

pub use retention::RetentionSet;

/// How the Kafka clients behave. `Default` suits a production cluster; every field can be set
/// from configuration.
#[derive(Clone)]
pub struct KafkaOptions {
    /// Names this process in the broker's logs and quotas.
    pub client_id: String,
    /// How long an append may wait for its acknowledgements (librdkafka's `message.timeout.ms`).
    /// Also bounds topic creation on first use, so an append to a broker that is down fails
    /// within about this long instead of hanging.
    pub delivery_timeout: Duration,
    /// How long the producer waits for more records before sending a batch: a little latency
    /// buys far fewer requests under load.
    pub linger: Duration,
    /// Partitions of topics this log creates; the number of consumers that can share a topic.
    pub topic_partitions: i32,
    /// Replicas of topics this log creates; -1 leaves it to the broker's default.
    pub replication_factor: i32,
    /// How long the group waits for a silent consumer before giving its partitions to others.
    pub session_timeout: Duration,
    /// The same for a static member ([`KafkaOptions::group_instance_id`]): long enough that a
    /// replica restarted, or out of the broker's reach for a while, comes back to its place
    /// without a rebalance. A group that drops an absent member it would have taken back gains
    /// nothing, and on some brokers (tansu 0.6) dropping the group's leader that way leaves the
    /// group without one for good.
    pub static_session_timeout: Duration,
    /// How often a consumer tells its group it is alive, and so how soon it hears of a
    /// rebalance.
    pub heartbeat_interval: Duration,
    /// The longest a fetch waits at the broker for records (`fetch.wait.max.ms`). A ping is
    /// queryable this much sooner at worst; librdkafka's 500 ms put p99 ingest-to-stored near
    /// half a second. Shorter means more (empty) fetch requests while the topic is idle.
    pub fetch_wait: Duration,
    /// A stable name for this process's consumers (`group.instance.id`, static membership),
    /// so a restarted consumer takes its partitions back at once instead of after a
    /// rebalance; each group member needs its own. `None`: a new member at every start.
    pub group_instance_id: Option<String>,
    /// Topics created in the background from [`KafkaLog::connect`] on, retried until a broker
    /// answers, so producers outside UdaConnect find them too (brokers that do not create
    /// topics on first produce). Other topics are created on first use.
    pub create_topics: Vec<String>,
    /// Further librdkafka properties for every client (TLS, SASL, tuning), applied after ours.
    /// Values may be secrets: `Debug` shows the keys only.
    pub client_config: Vec<(String, String)>,
}

impl std::fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.client_config.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KafkaOptions")
            .field("client_id", &self.client_id)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("linger", &self.linger)
            .field("topic_partitions", &self.topic_partitions)
            .field("replication_factor", &self.replication_factor)
            .field("session_timeout", &self.session_timeout)
            .field("static_session_timeout", &self.static_session_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("fetch_wait", &self.fetch_wait)
            .field("group_instance_id", &self.group_instance_id)
            .field("create_topics", &self.create_topics)
            .field("client_config_keys", &keys)
            .finish()
    }
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            client_id: "udaconnect".into(),
            delivery_timeout: Duration::from_secs(5),
            linger: Duration::from_millis(5),
            topic_partitions: 3,
            replication_factor: -1,
            session_timeout: Duration::from_secs(10),
            static_session_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(1),
            fetch_wait: Duration::from_millis(5),
            group_instance_id: None,
            create_topics: vec![
                LOCATION_TOPIC.into(),
                LOCATION_DLQ_TOPIC.into(),
                NOTIFICATION_TOPIC.into(),
                NOTIFICATION_DLQ_TOPIC.into(),
            ],
            client_config: Vec::new(),
        }
    }
}

/// Upper bound on a liveness check, so `/ready` answers quickly when no broker does.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// How often librdkafka reports statistics, from which consumers compute their lag.
const STATS_INTERVAL_MS: &str = "1000";

fn unavailable(what: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("kafka log ({what})"))
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

/// Routes librdkafka's logs and client errors to `tracing`.
#[derive(Clone, Default)]
struct TracingContext;

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_event(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

fn log_event(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(facility, "{message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(facility, "{message}"),
        RDKafkaLogLevel::Debug => tracing::debug!(facility, "{message}"),
    }
}

// Scans only assign partitions, so a consumer of theirs needs no rebalance callbacks.
impl ConsumerContext for TracingContext {}

type ProducerClient = FutureProducer<TracingContext>;

/// A [`Log`] on a Kafka cluster.
pub struct KafkaLog {
    brokers: String,
    options: KafkaOptions,
    /// Replaced when it cannot send any more (see `renew_producer`); appends in progress keep
    /// the one they started with.
    producer: RwLock<Arc<ProducerClient>>,
    /// Shared with the background task that creates [`KafkaOptions::create_topics`].
    topics: Arc<Topics>,
}

/// Creates topics, and remembers which exist so that only the first use of a topic pays for a
/// creation request.
struct Topics {
    admin: AdminClient<TracingContext>,
    known: Mutex<HashSet<String>>,
    partitions: i32,
    replication_factor: i32,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("brokers", &self.brokers)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Builds the clients for the cluster at `brokers` (`host:port[,host:port]`). Connections are
    /// made in the background: this succeeds whether or not a broker answers yet.
    pub fn connect(brokers: &str, options: KafkaOptions) -> Result<KafkaLog> {
        let brokers = brokers.trim();
        if brokers.is_empty() {
            return Err(Error::Internal("kafka log: no broker address given".into()));
        }
        let producer = Arc::new(create_producer(brokers, &options)?);
        let admin = base_config(brokers, &options)
            .create_with_context(TracingContext)
            .map_err(|e| Error::Internal(format!("kafka log: create admin client: {e}")))?;
        let topics = Arc::new(Topics {
            admin,
            known: Mutex::new(HashSet::new()),
            partitions: options.topic_partitions.max(1),
            replication_factor: options.replication_factor,
            timeout: options.delivery_timeout,
        });
        // Without a runtime (a synchronous caller), first use creates them all the same.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            if !options.create_topics.is_empty() {
                let names = options.create_topics.clone();
                runtime.spawn(create_in_background(Arc::downgrade(&topics), names));
            }
        }
        Ok(KafkaLog {
            brokers: brokers.to_string(),
            options,
            producer: RwLock::new(producer),
            topics,
        })
    }

    /// The addresses this log was given.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Creates the topics that do not exist yet (done on first use anyway; call it at startup
    /// to have them before any traffic).
    pub async fn create_topics(&self, names: &[&str]) -> Result<()> {
        for name in names {
            self.topics.ensure(name).await?;
        }
        Ok(())
    }

    fn producer(&self) -> Arc<ProducerClient> {
        self.producer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces `failed` with a new producer when librdkafka has given up on it: an idempotent
    /// producer that hits a fatal error sends nothing ever again.
    fn renew_producer_if_fatal(&self, failed: &Arc<ProducerClient>) {
        let Some((code, reason)) = failed.client().fatal_error() else {
            return;
        };
        self.renew_producer(failed, &code.to_string(), &reason);
    }

    /// Replaces `failed` after its records timed out: a broker that came back without the
    /// producer's state (an in-memory broker, expired producer ids) answers
    /// UNKNOWN_PRODUCER_ID to it for ever, while a new producer gets a new id. Every record of
    /// the old one has failed already, so nothing acknowledged is at stake.
    fn renew_producer_after_timeout(&self, failed: &Arc<ProducerClient>) {
        self.renew_producer(failed, "MessageTimedOut", "records timed out");
    }

    fn renew_producer(&self, failed: &Arc<ProducerClient>, code: &str, reason: &str) {
        let mut slot = self
            .producer
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&slot, failed) {
            return; // another append renewed it already
        }
        match create_producer(&self.brokers, &self.options) {
            Ok(fresh) => {
                tracing::warn!(error = %code, reason, "kafka producer replaced");
                let old = std::mem::replace(&mut *slot, Arc::new(fresh));
                drop(slot);
                // Dropping a producer purges and joins its thread: keep it off the async workers.
                drop_off_runtime(old);
            }
            Err(e) => {
                tracing::error!(error = %e, "kafka producer cannot be replaced")
            }
        }
    }
}

/// Creates `names` as soon as a broker answers; gives up when the log is dropped.
async fn create_in_background(topics: Weak<Topics>, names: Vec<String>) {
    for attempt in 0u32.. {
        let Some(topics) = topics.upgrade() else {
            return;
        };
        let mut missing = 0;
        for name in &names {
            if let Err(e) = topics.ensure(name).await {
                tracing::debug!(topic = %name, error = %e, "kafka topic not created yet; retrying");
                missing += 1;
            }
        }
        if missing == 0 {
            return;
        }
        drop(topics);
        tokio::time::sleep(retry_delay(attempt)).await;
    }
}

impl Topics {
    fn is_known(&self, name: &str) -> bool {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(name)
    }

    fn set_known(&self, name: &str, known: bool) {
        let mut topics = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known {
            topics.insert(name.to_string());
        } else {
            topics.remove(name);
        }
    }

    /// Makes sure `name` exists. Fails with `Unavailable` when no broker answers within the
    /// delivery timeout; a refusal by the broker (a policy, missing rights) is logged and left to
    /// the produce or fetch requests to report, since the topic may well exist.
    async fn ensure(&self, name: &str) -> Result<()> {
        if self.is_known(name) {
            return Ok(());
        }
        if name.is_empty() {
            return Err(Error::Internal("kafka log: empty topic name".into()));
        }
        let topic = NewTopic::new(
            name,
            self.partitions,
            TopicReplication::Fixed(self.replication_factor),
        );
        let opts = AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout));
        // librdkafka bounds the request itself; the outer timeout only guards against a lost
        // answer.
        let created = tokio::time::timeout(
            self.timeout + Duration::from_secs(1),
            self.admin.create_topics([&topic], &opts),
        )
        .await
        .map_err(|_| unavailable(format!("creating topic {name}: no answer")))?
        .map_err(|e| unavailable(format!("creating topic {name}: {e}")))?;
        for result in created {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) if is_transient(code) => {
                    return Err(unavailable(format!("creating topic {name}: {code}")));
                }
                Err((_, code)) => {
                    tracing::warn!(topic = name, error = %code, "kafka topic not created; using it as it is");
                }
            }
        }
        self.set_known(name, true);
        Ok(())
    }
}

/// True for errors that mean "no broker answered (yet)", as opposed to a refusal.
fn is_transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::NotController
            | RDKafkaErrorCode::BrokerNotAvailable
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::CoordinatorLoadInProgress
    )
}

/// Drops `value` on a thread of its own. Closing a consumer waits on the group coordinator with
/// no bound of librdkafka's, and a runtime waits for its blocking tasks when it shuts down: a
/// detached thread keeps a coordinator that never answers from holding a process's exit.
fn drop_off_runtime<T: Send + 'static>(value: T) {
    let dropping = std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || drop(value));
    if let Err(e) = dropping {
        tracing::warn!(error = %e, "no thread to close a kafka client on");
    }
}

fn base_config(brokers: &str, options: &KafkaOptions) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", &options.client_id)
        // Reconnect soon after a broker comes back (librdkafka's default backs off to 10 s).
        .set("reconnect.backoff.max.ms", "1000")
        // librdkafka's debug contexts (`debug=...`) log at debug level: let them through.
        .set_log_level(
            if options.client_config.iter().any(|(key, _)| key == "debug") {
                RDKafkaLogLevel::Debug
            } else {
                RDKafkaLogLevel::Warning
            },
        );
    for (key, value) in &options.client_config {
        config.set(key, value);
    }
    config
}

fn create_producer(brokers: &str, options: &KafkaOptions) -> Result<ProducerClient> {
    let mut config = base_config(brokers, options);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", millis(options.linger))
        .set("message.timeout.ms", millis(options.delivery_timeout))
        .set(
            "request.timeout.ms",
            millis(options.delivery_timeout.min(Duration::from_secs(30))),
        )
        // The Java client's partitioner: one key lands on the same partition whichever client
        // wrote it, so one person's pings stay in order across producers.
        .set("partitioner", "murmur2_random");
    // Again, so that the caller's settings win over the producer's defaults above.
    for (key, value) in &options.client_config {
        config.set(key, value);
    }
    config
        .create_with_context(TracingContext)
        .map_err(|e| Error::Internal(format!("kafka log: create producer: {e}")))
}

fn kafka_headers(headers: &[(String, Vec<u8>)]) -> Option<OwnedHeaders> {
    if headers.is_empty() {
        return None;
    }
    let mut owned = OwnedHeaders::new_with_capacity(headers.len());
    for (key, value) in headers {
        owned = owned.insert(Header {
            key: key.as_str(),
            value: Some(value.as_slice()),
        });
    }
    Some(owned)
}

#[async_trait]
impl Log for KafkaLog {
    async fn append(&self, topic: &str, records: Vec<LogRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.topics.ensure(topic).await?;
        let producer = self.producer();
        let mut deliveries = Vec::with_capacity(records.len());
        // Enqueue everything first so the records travel in as few batches as linger allows.
        for r in &records {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic).payload(r.value.as_slice());
            if let Some(key) = &r.key {
                record = record.key(key.as_slice());
            }
            if let Some(headers) = kafka_headers(&r.headers) {
                record = record.headers(headers);
            }
            if r.timestamp_ms >= 0 {
                record = record.timestamp(r.timestamp_ms);
            }
            let mut full_since: Option<Instant> = None;
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    // The local queue drains as the broker acknowledges or as records time out,
                    // so waiting is bounded; only a queue stuck longer than a delivery fails.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        let since = *full_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > self.options.delivery_timeout {
                            return Err(unavailable("local send queue stays full"));
                        }
                        record = back;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((e, _)) => {
                        self.renew_producer_if_fatal(&producer);
                        return Err(unavailable(format!("send to {topic}: {e}")));
                    }
                }
            }
        }
        let mut failure = None;
        for delivery in deliveries {
            let reason = match delivery.await {
                Ok(Ok(_)) => continue,
                Ok(Err((e, _))) => e,
                Err(_) => KafkaError::Canceled,
            };
            failure.get_or_insert(reason);
        }
        let Some(e) = failure else {
            return Ok(());
        };
        if matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::MessageTimedOut
            )
        ) {
            // Deleted behind our back, or lost with a broker that came back empty (librdkafka
            // then retries the unknown topic until the delivery times out): create it again on
            // the next append.
            self.topics.set_known(topic, false);
        }
        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageTimedOut) {
            self.renew_producer_after_timeout(&producer);
        }
        self.renew_producer_if_fatal(&producer);
        Err(unavailable(format!("append to {topic}: {e}")))
    }

    async fn consumer(&self, topic: &str, group: &str, start: StartFrom) -> Result<DynLogConsumer> {
        self.topics.ensure(topic).await?;
        consumer::subscribe(&self.brokers, &self.options, topic, group, start)
    }

    async fn scan(&self, scan: LogScan<'_>) -> Result<u64> {
        self.topics.ensure(scan.topic).await?;
        let (out, mut batches) = tokio::sync::mpsc::channel(4);
        let (brokers, options) = (self.brokers.clone(), self.options.clone());
        let (topic, group) = (scan.topic.to_string(), scan.group.map(str::to_string));
        let limit = scan.limit;
        let reading = tokio::task::spawn_blocking(move || {
            consumer::scan(&brokers, &options, &topic, group.as_deref(), limit, &out)
        });
        let mut read = 0;
        while let Some(batch) = batches.recv().await {
            read += batch.len() as u64;
            (scan.visit)(&batch);
        }
        reading
            .await
            .map_err(|e| Error::Internal(format!("kafka log scan: {e}")))??;
        Ok(read)
    }

    async fn ping(&self) -> Result<()> {
        let producer = self.producer();
        let timeout = self.options.delivery_timeout.min(PING_TIMEOUT);
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|e| unavailable(format!("no broker answered: {e}")))
        })
        .await
        .map_err(|e| Error::Internal(format!("kafka log ping: {e}")))?
    }
}

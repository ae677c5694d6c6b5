//! Kafka consumer groups: a member that polls in batches, commits by hand, and tells its lag.

use super::gaps::{Admit, InOrder};
use super::*;

/// The group a scan names when it asks no group's position: it never joins or commits.
const SCAN_GROUP: &str = "udaconnect-scan";
/// How long a scan may read nothing before it gives up (at least the delivery timeout).
const SCAN_STALL: Duration = Duration::from_secs(30);
/// How long asking the broker where a partition's reading starts, or moving it back to a hole,
/// may take before the read goes on without.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// A pause before a partition with a hole is fetched again: its record is being stored.
const REFETCH_PAUSE: Duration = Duration::from_millis(5);

/// Joins `group` on `topic` as a new member (commits by hand, offsets stored only when committed).
pub(super) fn subscribe(
    brokers: &str,
    options: &KafkaOptions,
    topic: &str,
    group: &str,
    start: StartFrom,
) -> Result<DynLogConsumer> {
    let mut config = base_config(brokers, options);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            match start {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        )
        .set("session.timeout.ms", millis(session_timeout(options)))
        .set("heartbeat.interval.ms", millis(options.heartbeat_interval))
        .set("fetch.wait.max.ms", millis(options.fetch_wait))
        .set("statistics.interval.ms", STATS_INTERVAL_MS);
    if let Some(id) = &options.group_instance_id {
        config.set("group.instance.id", id);
    }
    // Again, so that the caller's settings win over the consumer's defaults above.
    for (key, value) in &options.client_config {
        config.set(key, value);
    }
    let context = GroupContext {
        topic: topic.to_string(),
        start,
        positions: Mutex::new(Positions::default()),
        lag: AtomicI64::new(-1),
        assigned: AtomicI64::new(0),
    };
    let consumer: BaseConsumer<GroupContext> = config
        .create_with_context(context)
        .map_err(|e| Error::Internal(format!("kafka log: create consumer: {e}")))?;
    consumer
        .subscribe(&[topic])
        .map_err(|e| unavailable(format!("subscribe to {topic}: {e}")))?;
    Ok(Box::new(KafkaConsumer {
        topic: topic.to_string(),
        consumer: Some(Arc::new(consumer)),
        in_flight: None,
        buffered: VecDeque::new(),
        broken: false,
    }))
}

/// How long the group waits for this member when it falls silent. A member is static when it
/// has a name, given either way.
fn session_timeout(options: &KafkaOptions) -> Duration {
    let named_in_config = options
        .client_config
        .iter()
        .any(|(key, _)| key == "group.instance.id");
    if options.group_instance_id.is_some() || named_in_config {
        options.static_session_timeout
    } else {
        options.session_timeout
    }
}

/// What a consumer's next commit covers, and which reads a revocation made stale.
#[derive(Debug, Default)]
struct Positions {
    /// Per partition, the offset after the last record handed to the caller and not yet
    /// committed.
    returned: HashMap<i32, i64>,
    /// Bumped whenever the partition is taken from this member: a record read before the
    /// bump is still handed out but no longer counts for commits.
    epochs: HashMap<i32, u64>,
    /// Bumped when the whole assignment is dropped.
    all_epoch: u64,
    /// Per partition, the offset the next record read must have (see [`super::gaps`]).
    order: InOrder,
}

impl Positions {
    fn epoch(&self, partition: i32) -> u64 {
        self.all_epoch + self.epochs.get(&partition).copied().unwrap_or(0)
    }

    fn revoke(&mut self, partition: i32) {
        self.returned.remove(&partition);
        *self.epochs.entry(partition).or_insert(0) += 1;
    }

    fn revoke_all(&mut self) {
        self.returned.clear();
        self.all_epoch += 1;
    }

    /// Records `records` as returned to the caller, except those read before their partition
    /// was revoked: the new owner reads them again from the last commit.
    fn hand_out(&mut self, records: impl Iterator<Item = Fetched>) -> Vec<Consumed> {
        records
            .map(|(epoch, record)| {
                let Position { partition, offset } = record.position;
                if self.epoch(partition) == epoch {
                    self.returned.insert(partition, offset.saturating_add(1));
                }
                record
            })
            .collect()
    }
}

/// The consumer's side of the group protocol: forgets positions of revoked partitions, and
/// keeps the lag from librdkafka's statistics.
struct GroupContext {
    topic: String,
    /// Where a group without a commit starts reading.
    start: StartFrom,
    positions: Mutex<Positions>,
    /// Records behind the high watermarks of the assigned partitions; -1 when unknown.
    lag: AtomicI64,
    /// Partitions of the topic this member holds, after the last rebalance.
    assigned: AtomicI64,
}

impl GroupContext {
    fn positions(&self) -> std::sync::MutexGuard<'_, Positions> {
        self.positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_event(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, topic = %self.topic, "kafka consumer error");
    }

    fn stats(&self, statistics: Statistics) {
        let mut lag = 0i64;
        let mut known = false;
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for p in topic.partitions.values() {
                // Partition -1 is librdkafka's bookkeeping; "none" means not assigned to us.
                if p.partition < 0 || p.fetch_state == "none" || p.hi_offset < 0 {
                    continue;
                }
                let next = if p.app_offset >= 0 {
                    p.app_offset
                } else if p.committed_offset >= 0 {
                    p.committed_offset
                } else {
                    continue;
                };
                lag += (p.hi_offset - next).max(0);
                known = true;
            }
        }
        self.lag
            .store(if known { lag } else { -1 }, Ordering::Relaxed);
    }
}

impl ConsumerContext for GroupContext {
    // Runs on the thread inside `BaseConsumer::poll`, so never concurrently with a commit.
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut positions = self.positions();
        match rebalance {
            Rebalance::Revoke(partitions) => {
                for p in partitions.elements() {
                    if p.topic() == self.topic {
                        positions.revoke(p.partition());
                    }
                }
            }
            Rebalance::Assign(_) => {}
            // librdkafka drops the whole assignment after a rebalance error.
            Rebalance::Error(_) => positions.revoke_all(),
        }
        tracing::debug!(topic = %self.topic, ?rebalance, "kafka consumer group rebalance");
    }

    // Counted from the assignment itself, which holds for eager and cooperative protocols.
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        let held = consumer.assignment().map_or(0, |tpl| {
            tpl.elements()
                .iter()
                .filter(|p| p.topic() == self.topic)
                .count()
        });
        self.assigned.store(held as i64, Ordering::Relaxed);
        tracing::info!(topic = %self.topic, partitions = held, "kafka consumer assignment");
    }
}

type GroupConsumer = BaseConsumer<GroupContext>;

/// A record read from librdkafka, with the epoch of its partition when it was read.
type Fetched = (u64, Consumed);

/// One member of a consumer group on one topic.
struct KafkaConsumer {
    topic: String,
    /// Taken by `drop`, to close the consumer off the async workers.
    consumer: Option<Arc<GroupConsumer>>,
    /// A read whose caller went away (its future was dropped). Its records go to `buffered`
    /// when it ends, so none is skipped and none is committed unseen.
    in_flight: Option<JoinHandle<Result<Vec<Fetched>>>>,
    /// Records read and not yet handed out.
    buffered: VecDeque<Fetched>,
    /// Set when a read died midway: this member stops, and the group hands its partitions to
    /// a fresh one that resumes from the last commit.
    broken: bool,
}

impl KafkaConsumer {
    /// What the group's callbacks keep up to date; `None` once closed.
    fn group(&self) -> Option<&GroupContext> {
        self.consumer.as_ref().map(|c| c.context().as_ref())
    }

    fn consumer(&self) -> Result<Arc<GroupConsumer>> {
        match &self.consumer {
            Some(c) if !self.broken => Ok(c.clone()),
            _ => Err(Error::Internal(format!(
                "kafka consumer on {} is broken: create a new one",
                self.topic
            ))),
        }
    }

    /// Waits for the read in flight, if any, and buffers its records.
    async fn settle(&mut self) -> Result<()> {
        let Some(handle) = self.in_flight.as_mut() else {
            return Ok(());
        };
        let joined = handle.await;
        self.in_flight = None;
        match joined {
            Ok(read) => {
                self.buffered.extend(read?);
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(Error::Internal(format!("kafka consumer read failed: {e}")))
            }
        }
    }
}

/// Reads up to `max` records: waits up to `wait` for the first, then takes what is buffered.
fn read_batch(consumer: &GroupConsumer, max: usize, wait: Duration) -> Result<Vec<Fetched>> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    loop {
        let timeout = if out.is_empty() {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        };
        match consumer.poll(timeout) {
            Some(Ok(message)) => {
                let consumed = consumed(&message);
                drop(message);
                let Position { partition, offset } = consumed.position;
                // Rebalance callbacks run inside `poll`, before it returns a message: the
                // epoch now is the one this record was read in.
                let epoch = consumer.context().positions().epoch(partition);
                if in_order(consumer, partition, offset, epoch) {
                    out.push((epoch, consumed));
                    if out.len() >= max {
                        break;
                    }
                }
            }
            // Records already read go out first; the error comes back on the next poll.
            Some(Err(KafkaError::MessageConsumptionFatal(code))) if out.is_empty() => {
                return Err(unavailable(format!("consumer failed: {code}")));
            }
            Some(Err(KafkaError::MessageConsumptionFatal(_))) => break,
            // librdkafka retries on its own (a broker down, a topic not yet visible): report
            // and go on reading.
            Some(Err(e)) => {
                tracing::warn!(error = %e, topic = %consumer.context().topic, "kafka consumer error");
                if !out.is_empty() {
                    break;
                }
            }
            None if !out.is_empty() => break,
            None => {}
        }
        if out.is_empty() && Instant::now() >= deadline {
            break;
        }
    }
    Ok(out)
}

/// Whether the record at `offset` of `partition` follows every offset read before it since the
/// member started reading the partition; when not, the partition is fetched again from the
/// hole before it (see [`super::gaps`]).
fn in_order(consumer: &GroupConsumer, partition: i32, offset: i64, epoch: u64) -> bool {
    let context = consumer.context();
    loop {
        let admit = context
            .positions()
            .order
            .admit(partition, offset, epoch, Instant::now());
        match admit {
            Admit::Take => return true,
            Admit::Again => return false,
            Admit::Start => {
                let start = start_of(consumer, partition);
                context.positions().order.start(partition, epoch, start);
            }
            Admit::Refetch(hole) => {
                let moved =
                    consumer.seek(&context.topic, partition, Offset::Offset(hole), ASK_TIMEOUT);
                if let Err(e) = &moved {
                    tracing::warn!(error = %e, partition, offset = hole, topic = %context.topic, "kafka consumer cannot fetch again from a hole; trying again");
                }
                context
                    .positions()
                    .order
                    .refetched(partition, moved.is_ok());
                std::thread::sleep(REFETCH_PAUSE);
                return false;
            }
        }
    }
}

/// Where this member's reading of `partition` started: the group's commit, else (for a group
/// reading from the earliest record) the low watermark; `None` when the broker does not say.
fn start_of(consumer: &GroupConsumer, partition: i32) -> Option<i64> {
    let topic = consumer.context().topic.as_str();
    let mut asked = TopicPartitionList::with_capacity(1);
    asked.add_partition(topic, partition);
    let committed = match consumer.committed_offsets(asked, ASK_TIMEOUT) {
        Ok(answer) => answer.find_partition(topic, partition).map(|p| p.offset()),
        Err(e) => {
            tracing::warn!(error = %e, partition, topic, "kafka consumer cannot learn where its reading started");
            return None;
        }
    };
    match committed {
        Some(Offset::Offset(at)) => Some(at),
        _ if consumer.context().start == StartFrom::Earliest => consumer
            .fetch_watermarks(topic, partition, ASK_TIMEOUT)
            .ok()
            .map(|(low, _)| low),
        _ => None,
    }
}

/// Reads `topic` from `group`'s committed offsets (or the low watermarks) to its end, sending
/// batches to `out`: [`Log::scan`] off the async workers. A consumer that is only assigned
/// partitions never joins its group, so the group's members and commits are untouched.
///
/// A partition's end is where librdkafka reports it (`enable.partition.eof`), after every
/// record of the last fetched batch: the high watermarks only size the read beforehand, as a
/// broker may report a stale one (tansu 0.6 gives the last batch's first offset plus one).
pub(super) fn scan(
    brokers: &str,
    options: &KafkaOptions,
    topic: &str,
    group: Option<&str>,
    limit: u64,
    out: &tokio::sync::mpsc::Sender<Vec<Consumed>>,
) -> Result<()> {
    let timeout = options.delivery_timeout;
    let mut config = base_config(brokers, options);
    config
        .set("group.id", group.unwrap_or(SCAN_GROUP))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A commit past the end (a broker that came back empty): from the oldest record.
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer<TracingContext> = config
        .create_with_context(TracingContext)
        .map_err(|e| Error::Internal(format!("kafka log: create consumer: {e}")))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| unavailable(format!("scan of {topic}: metadata: {e}")))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Ok(());
    }
    let mut committed = HashMap::new();
    if group.is_some() {
        let mut asked = TopicPartitionList::with_capacity(partitions.len());
        for p in &partitions {
            asked.add_partition(topic, *p);
        }
        let answer = consumer
            .committed_offsets(asked, timeout)
            .map_err(|e| unavailable(format!("scan of {topic}: committed offsets: {e}")))?;
        for p in answer.elements() {
            if let Offset::Offset(at) = p.offset() {
                committed.insert(p.partition(), at);
            }
        }
    }
    let mut start = TopicPartitionList::with_capacity(partitions.len());
    let mut expected = 0u64;
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, timeout)
            .map_err(|e| unavailable(format!("scan of {topic}: watermarks of {p}: {e}")))?;
        let from = committed.get(p).copied().unwrap_or(low).max(low);
        expected += (high - from).max(0) as u64;
        start
            .add_partition_offset(topic, *p, Offset::Offset(from))
            .map_err(|e| Error::Internal(format!("kafka log: {e}")))?;
    }
    if expected > limit {
        return Err(crate::scan_limit(topic, expected, limit));
    }
    consumer
        .assign(&start)
        .map_err(|e| unavailable(format!("scan of {topic}: assign: {e}")))?;
    let mut unfinished: HashSet<i32> = partitions.into_iter().collect();
    let stall = timeout.max(SCAN_STALL);
    let mut progressed = Instant::now();
    let (mut batch, mut read) = (Vec::new(), 0u64);
    let send = |batch: Vec<Consumed>| {
        out.blocking_send(batch)
            .map_err(|_| Error::Internal(format!("scan of {topic}: abandoned")))
    };
    while !unfinished.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                progressed = Instant::now();
                batch.push(consumed(&message));
                read += 1;
                if read > limit {
                    return Err(crate::scan_limit(topic, read, limit));
                }
                if batch.len() >= crate::SCAN_BATCH {
                    send(std::mem::take(&mut batch))?;
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                progressed = Instant::now();
                unfinished.remove(&p);
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, topic, "kafka scan error; retrying");
            }
            None => {}
        }
        if progressed.elapsed() > stall {
            return Err(unavailable(format!(
                "scan of {topic}: nothing read for {} s with {} partitions unfinished",
                stall.as_secs(),
                unfinished.len()
            )));
        }
    }
    if !batch.is_empty() {
        send(batch)?;
    }
    Ok(())
}

fn consumed(message: &BorrowedMessage<'_>) -> Consumed {
    let mut headers = Vec::new();
    if let Some(h) = message.headers() {
        for i in 0..h.count() {
            // rdkafka panics on a header name that is not UTF-8; such a header cannot be
            // represented in a `LogRecord` anyway, so it is left out rather than stopping the
            // consumer on one bad record.
            match catch_unwind(AssertUnwindSafe(|| {
                h.try_get(i)
                    .map(|hd| (hd.key.to_string(), hd.value.unwrap_or_default().to_vec()))
            })) {
                Ok(Some(header)) => headers.push(header),
                Ok(None) => {}
                Err(_) => tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    "kafka record header with a name that is not UTF-8 left out"
                ),
            }
        }
    }
    Consumed {
        position: Position {
            partition: message.partition(),
            offset: message.offset(),
        },
        record: LogRecord {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
            timestamp_ms: message.timestamp().to_millis().unwrap_or(-1),
        },
    }
}

#[async_trait]
impl LogConsumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Consumed>> {
        let consumer = self.consumer()?;
        let max = max.max(1);
        if self.buffered.is_empty() {
            if self.in_flight.is_none() {
                let reader = consumer.clone();
                self.in_flight = Some(tokio::task::spawn_blocking(move || {
                    read_batch(&reader, max, wait)
                }));
            }
            self.settle().await?;
        }
        // Nothing below can be cancelled: what leaves the buffer reaches the caller.
        let take = self.buffered.len().min(max);
        let mut positions = consumer.context().positions();
        Ok(positions.hand_out(self.buffered.drain(..take)))
    }

    async fn commit(&mut self) -> Result<()> {
        // A read still running could rebalance under the commit; let it end first.
        self.settle().await?;
        let consumer = self.consumer()?;
        let returned = consumer.context().positions().returned.clone();
        if returned.is_empty() {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::with_capacity(returned.len());
        for (partition, next) in &returned {
            offsets
                .add_partition_offset(&self.topic, *partition, Offset::Offset(*next))
                .map_err(|e| Error::Internal(format!("kafka consumer: {e}")))?;
        }
        let committing = consumer.clone();
        tokio::task::spawn_blocking(move || committing.commit(&offsets, CommitMode::Sync))
            .await
            .map_err(|e| Error::Internal(format!("kafka consumer: {e}")))?
            .map_err(|e| unavailable(format!("commit on {}: {e}", self.topic)))?;
        // No read ran meanwhile, so nothing newer was returned: forget what is committed.
        let mut positions = consumer.context().positions();
        for (partition, next) in returned {
            if positions.returned.get(&partition) == Some(&next) {
                positions.returned.remove(&partition);
            }
        }
        Ok(())
    }

    fn lag(&self) -> Option<u64> {
        u64::try_from(self.group()?.lag.load(Ordering::Relaxed)).ok()
    }

    fn assigned(&self) -> Option<usize> {
        usize::try_from(self.group()?.assigned.load(Ordering::Relaxed)).ok()
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        // Closing leaves the group, which waits on the broker: never on an async worker. A read
        // still running holds its own reference and closes the consumer when it ends.
        if let Some(consumer) = self.consumer.take() {
            drop_off_runtime(consumer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_member_named_either_way_gets_the_longer_session() {
        let dynamic = KafkaOptions::default();
        assert_eq!(session_timeout(&dynamic), dynamic.session_timeout);
        let named = KafkaOptions {
            group_instance_id: Some("consumer-0".into()),
            ..KafkaOptions::default()
        };
        assert_eq!(session_timeout(&named), named.static_session_timeout);
        let named_in_url = KafkaOptions {
            client_config: vec![("group.instance.id".into(), "consumer-0".into())],
            ..KafkaOptions::default()
        };
        assert_eq!(
            session_timeout(&named_in_url),
            named_in_url.static_session_timeout
        );
        assert_ne!(dynamic.session_timeout, dynamic.static_session_timeout);
    }

    fn fetched(positions: &Positions, partition: i32, offset: i64) -> Fetched {
        let record = Consumed {
            position: Position { partition, offset },
            record: LogRecord::default(),
        };
        (positions.epoch(partition), record)
    }

    #[test]
    fn commits_cover_what_was_handed_out_in_partitions_still_owned() {
        let mut p = Positions::default();
        let batch = vec![fetched(&p, 0, 10), fetched(&p, 1, 4), fetched(&p, 0, 11)];
        assert_eq!(p.hand_out(batch.into_iter()).len(), 3);
        assert_eq!(p.returned, HashMap::from([(0, 12), (1, 5)]));

        // Read, then revoked before being handed out: handed out, but not committed.
        let stale = vec![fetched(&p, 1, 5), fetched(&p, 0, 12)];
        p.revoke(1);
        assert_eq!(p.hand_out(stale.into_iter()).len(), 2);
        assert_eq!(p.returned, HashMap::from([(0, 13)]));

        // Assigned again: records read from now on count again.
        let fresh = vec![fetched(&p, 1, 5)];
        p.hand_out(fresh.into_iter());
        assert_eq!(p.returned, HashMap::from([(0, 13), (1, 6)]));
    }

    #[test]
    fn a_lost_assignment_forgets_every_partition() {
        let mut p = Positions::default();
        let before = vec![fetched(&p, 2, 7)];
        p.hand_out(vec![fetched(&p, 0, 1)].into_iter());
        p.revoke_all();
        p.hand_out(before.into_iter());
        assert!(p.returned.is_empty());
    }
}

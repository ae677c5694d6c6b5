use std::collections::{BTreeMap, HashMap, HashSet};

use udaconnect_core::ports::Consumed;
use udaconnect_core::record::LogRecord;

use super::{
    collect, drain, open_with_topic, reader, record, sorted_values, value, LogEngine, PATIENCE,
};

/// What was appended comes back whole (key, value, headers, time), each record once, in
/// append order per key, across appends; keys spread over the partitions there are.
pub async fn appended_records_come_back_in_order_per_key_with_everything_intact<E: LogEngine>() {
    let (_engine, log, topic) = open_with_topic::<E>("order").await;
    let base_ts = 1_594_117_026_000i64;
    let mut sent = Vec::new();
    for i in 0..30 {
        let key = format!("person-{}", i % 4);
        let mut r = record(Some(&key), &format!("{key}/{i}"), base_ts + i);
        r.headers = vec![
            ("correlation_id".into(), format!("corr-{i}").into_bytes()),
            ("binary".into(), vec![0xff, 0x00, i as u8]),
            ("empty".into(), Vec::new()),
        ];
        sent.push(r);
    }
    // Two appends: order must hold across calls too.
    log.append(&topic, sent[..13].to_vec())
        .await
        .expect("append");
    log.append(&topic, sent[13..].to_vec())
        .await
        .expect("append");

    let mut consumer = reader(&*log, &topic).await;
    let got = collect(consumer.as_mut(), sent.len(), PATIENCE).await;
    assert_eq!(got.len(), sent.len(), "every record comes back");

    let by_value: HashMap<String, &LogRecord> = sent
        .iter()
        .map(|r| (String::from_utf8_lossy(&r.value).into_owned(), r))
        .collect();
    for c in &got {
        let original = by_value.get(&value(c)).expect("a record that was sent");
        assert_eq!(&c.record, *original, "key, value, headers and time intact");
    }
    let positions: HashSet<(i32, i64)> = got
        .iter()
        .map(|c| (c.position.partition, c.position.offset))
        .collect();
    assert_eq!(positions.len(), got.len(), "positions are unique");

    let mut per_key: BTreeMap<Vec<u8>, Vec<&Consumed>> = BTreeMap::new();
    for c in &got {
        per_key
            .entry(c.record.key.clone().unwrap_or_default())
            .or_default()
            .push(c);
    }
    for (key, records) in per_key {
        let partitions: HashSet<i32> = records.iter().map(|c| c.position.partition).collect();
        assert_eq!(partitions.len(), 1, "one key, one partition");
        let times: Vec<i64> = records.iter().map(|c| c.record.timestamp_ms).collect();
        let mut sorted = times.clone();
        sorted.sort_unstable();
        assert_eq!(
            times,
            sorted,
            "records of key {} in append order",
            String::from_utf8_lossy(&key)
        );
    }
    let partitions: HashSet<i32> = got.iter().map(|c| c.position.partition).collect();
    assert_eq!(
        partitions.len() > 1,
        E::PARTITIONS > 1,
        "keys spread over the topic's {} partitions: {partitions:?}",
        E::PARTITIONS
    );
}

/// Appends from many tasks at once are each stored once: none lost, none twice.
pub async fn concurrent_appends_are_each_stored_once<E: LogEngine>() {
    let (_engine, log, topic) = open_with_topic::<E>("concurrent").await;
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            let log = log.clone();
            let topic = topic.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    let r = record(Some(&format!("{}", i % 7)), &format!("{t}/{i}"), 1_000);
                    log.append(&topic, vec![r]).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut want: Vec<String> = (0..64)
        .flat_map(|t| (0..20).map(move |i| format!("{t}/{i}")))
        .collect();
    want.sort();

    let mut consumer = reader(&*log, &topic).await;
    let mut got = collect(consumer.as_mut(), want.len(), PATIENCE).await;
    got.extend(drain(consumer.as_mut(), std::time::Duration::from_secs(1)).await);
    assert_eq!(sorted_values(&got), want);
}

/// A log that can take appends says so.
pub async fn ping_answers<E: LogEngine>() {
    let engine = E::open().await;
    engine
        .log()
        .ping()
        .await
        .expect("the log answers (a broker: start it with scripts/kafka start)");
}

use std::time::{Duration, Instant};

use udaconnect_core::ports::{Consumed, Log, LogScan, StartFrom};

use super::{
    append_one_by_one, collect, drain, member, open_with_topic, reader, record, records,
    sorted_values, value, LogEngine, PATIENCE,
};
use crate::unique;

/// A group resumes after its commit: a new member gets exactly what came after it.
pub async fn a_new_consumer_of_the_group_resumes_after_the_commit<E: LogEngine>() {
    let (_engine, log, topic) = open_with_topic::<E>("resume").await;
    let group = unique("group");
    log.append(&topic, records("first", 10, 1_000))
        .await
        .expect("append");

    let mut a = member(&*log, &topic, &group, StartFrom::Earliest).await;
    let got = collect(a.as_mut(), 10, PATIENCE).await;
    assert_eq!(got.len(), 10);
    a.commit().await.expect("commit");
    drop(a);

    log.append(&topic, records("second", 5, 2_000))
        .await
        .expect("append");
    let mut b = member(&*log, &topic, &group, StartFrom::Earliest).await;
    let mut got = collect(b.as_mut(), 5, PATIENCE).await;
    got.extend(drain(b.as_mut(), Duration::from_secs(2)).await);
    assert_eq!(
        sorted_values(&got),
        (0..5).map(|i| format!("second-{i}")).collect::<Vec<_>>(),
        "exactly the records after the commit"
    );
}

/// What a member read but did not commit (its writes had not finished) goes to the next
/// member of the group; what it committed does not.
pub async fn records_not_committed_are_delivered_again<E: LogEngine>() {
    let (_engine, log, topic) = open_with_topic::<E>("redeliver").await;
    let group = unique("group");
    append_one_by_one(&log, &topic, records("r", 12, 1_000)).await;

    let rest = commit_then_read(&*log, &topic, &group, 1, 11).await;

    let mut b = member(&*log, &topic, &group, StartFrom::Earliest).await;
    let mut again = collect(b.as_mut(), 11, PATIENCE).await;
    again.extend(drain(b.as_mut(), Duration::from_secs(2)).await);
    assert_eq!(
        sorted_values(&again),
        sorted_values(&rest),
        "everything after the commit, and nothing before it"
    );
}

/// A new group starting at the latest record reads only what is appended after it joined.
pub async fn a_group_starting_at_latest_skips_what_was_there<E: LogEngine>() {
    let (_engine, log, topic) = open_with_topic::<E>("latest").await;
    log.append(&topic, records("old", 6, 1_000))
        .await
        .expect("append");

    let mut consumer = member(&*log, &topic, &unique("group"), StartFrom::Latest).await;
    // When the group's start is fixed depends on the join: keep appending until records come.
    let mut got = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    let mut i = 0;
    while got.is_empty() && Instant::now() < deadline {
        log.append(
            &topic,
            vec![record(Some("k"), &format!("new-{i}"), 5_000 + i)],
        )
        .await
        .expect("append");
        i += 1;
        got = consumer
            .poll(100, Duration::from_millis(500))
            .await
            .expect("poll");
    }
    assert!(!got.is_empty(), "new records arrive");
    for c in &got {
        assert!(
            value(c).starts_with("new-"),
            "{} was there before",
            value(c)
        );
    }
}

/// Once a consumer has returned every record, its lag says nothing is left.
pub async fn lag_counts_records_not_yet_returned<E: LogEngine>() {
    let (_engine, log, topic) = open_with_topic::<E>("lag").await;
    let mut consumer = reader(&*log, &topic).await;
    log.append(&topic, records("l", 20, 1_000))
        .await
        .expect("append");
    let got = collect(consumer.as_mut(), 20, PATIENCE).await;
    assert_eq!(got.len(), 20);
    // A distributed log may know its lag only from statistics refreshed every second, and
    // refreshed while polling: once known, nothing is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lag = consumer.lag();
    while lag != Some(0) && Instant::now() < deadline {
        let more = consumer
            .poll(1, Duration::from_millis(300))
            .await
            .expect("poll");
        assert!(more.is_empty(), "read twice: {more:?}");
        lag = consumer.lag();
    }
    assert_eq!(lag, Some(0));
}

/// A poll with nothing to read waits for its time, and returns as soon as a record comes.
pub async fn a_consumer_waits_for_new_records<E: LogEngine>() {
    let (_engine, log, topic) = open_with_topic::<E>("wait").await;
    let mut consumer = reader(&*log, &topic).await;
    let started = Instant::now();
    let nothing = consumer
        .poll(10, Duration::from_millis(300))
        .await
        .expect("poll");
    assert!(nothing.is_empty(), "{nothing:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));

    let writer = log.clone();
    let writer_topic = topic.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer
            .append(&writer_topic, vec![record(Some("k"), "late", 1)])
            .await
            .expect("append");
    });
    let got = consumer.poll(10, PATIENCE).await.expect("poll");
    assert_eq!(
        got.iter().map(value).collect::<Vec<_>>(),
        ["late"],
        "one poll waits for the record"
    );
}

/// A scan reads from a group's commit (or from the start) to the end the topic had when it
/// began, moves no group, and refuses without reading when there is more than its limit.
pub async fn a_scan_reads_past_the_commit_and_moves_nothing<E: LogEngine>() {
    let (_engine, log, topic) = open_with_topic::<E>("scan").await;
    let group = unique("group");
    // One key, so one partition; the commit at the start of the last append's batch.
    let all: Vec<_> = (0..12)
        .map(|i| record(Some("k"), &format!("r-{i:02}"), 1_000 + i))
        .collect();
    append_one_by_one(&log, &topic, all[..5].to_vec()).await;
    log.append(&topic, all[5..].to_vec()).await.expect("append");

    let rest = commit_then_read(&*log, &topic, &group, 5, 7).await;

    let scan = async |group: Option<&str>, limit: u64| {
        let mut seen = Vec::new();
        let read = log
            .scan(LogScan {
                topic: &topic,
                group,
                limit,
                visit: &mut |batch: &[Consumed]| seen.extend_from_slice(batch),
            })
            .await;
        read.map(|n| {
            assert_eq!(n as usize, seen.len(), "the count of what was handed over");
            seen
        })
    };
    let past = scan(Some(&group), 100).await.expect("scan past the commit");
    assert_eq!(
        sorted_values(&past),
        sorted_values(&rest),
        "everything after the commit, and nothing before it"
    );
    let everything = scan(None, 100).await.expect("scan from the start");
    assert_eq!(everything.len(), 12);
    let never = scan(Some(&unique("group")), 100).await.expect("scan");
    assert_eq!(never.len(), 12, "a group without a commit: from the start");
    let refused = scan(Some(&group), 6).await;
    assert!(refused.is_err(), "7 records read with a limit of 6");

    // The group still resumes after its commit.
    let mut b = member(&*log, &topic, &group, StartFrom::Earliest).await;
    let mut again = collect(b.as_mut(), 7, PATIENCE).await;
    again.extend(drain(b.as_mut(), Duration::from_secs(2)).await);
    assert_eq!(sorted_values(&again), sorted_values(&rest));
}

/// A member of `group` reads `committed` records and commits, then reads `uncommitted` more
/// and leaves without committing them; returns those.
async fn commit_then_read(
    log: &dyn Log,
    topic: &str,
    group: &str,
    committed: usize,
    uncommitted: usize,
) -> Vec<Consumed> {
    let mut a = member(log, topic, group, StartFrom::Earliest).await;
    assert_eq!(
        collect(a.as_mut(), committed, PATIENCE).await.len(),
        committed
    );
    a.commit().await.expect("commit");
    let rest = collect(a.as_mut(), uncommitted, PATIENCE).await;
    assert_eq!(rest.len(), uncommitted);
    rest
}

//! `bench --index-only`: the contact index alone, in this process, on the simulated pings: no
//! server, no storage (for working on the index).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use udaconnect_core::contact::Point;
use udaconnect_core::index::{BulkBuilder, ContactIndex, DynWorkers};
use udaconnect_sim::Conference;

use udaconnect_server::query::workers::RayonWorkers;

use super::queries::time_each;
use crate::common::{connection_query, contacts_query, days_from, ConferenceArgs};

pub fn run(
    args: &ConferenceArgs,
    conference: &Conference,
    report: &mut String,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // Fed in batches, as the consumer does, compactions included.
    let workers: DynWorkers = Arc::new(RayonWorkers::new());
    let shared = std::sync::RwLock::new(ContactIndex::new(workers.clone()));
    let mut n = 0i64;
    let mut batch = Vec::with_capacity(10_000);
    for p in conference.pings() {
        n += 1;
        batch.push(Point {
            id: n,
            person_id: p.person_id,
            lat: p.latitude,
            lon: p.longitude,
            t: p.t,
            acc: Default::default(),
        });
        if batch.len() == 10_000 {
            udaconnect_core::index::feed(&shared, batch.drain(..));
        }
    }
    udaconnect_core::index::feed(&shared, batch.drain(..));
    let mut index = shared
        .into_inner()
        .map_err(|_| anyhow::anyhow!("index poisoned"))?;
    index.shrink_to_fit();
    let built_s = started.elapsed().as_secs_f64();
    // The bulk layout a restart does, on the same pings.
    let all: Vec<Point> = (0..index.len() as u32).map(|s| index.point(s)).collect();
    let bulk_started = Instant::now();
    let mut builder = BulkBuilder::with_capacity(all.len(), workers);
    for p in &all {
        builder.push(p);
    }
    let pushed = bulk_started.elapsed().as_secs_f64();
    let laid_out = builder.finish();
    writeln!(
        report,
        "bulk layout (a restart's): {pushed:.2} s pushing, {:.2} s in all\n",
        bulk_started.elapsed().as_secs_f64()
    )?;
    drop(all);
    writeln!(
        report,
        "index of {n} pings built in {:.2} s, {:.1} bytes per ping\n",
        built_s,
        index.heap_bytes() as f64 / n as f64
    )?;
    let people = args.asked(conference);
    let window = |days: i64| days_from(conference.config.start, days);
    // Each query on the index as the consumer fed it and on the one a restart lays out from
    // the same pings: their layouts differ (rows arrived since the last compaction, cells
    // grown in place), and a server answers from either.
    writeln!(
        report,
        "| query | window | fed: p50 | fed: p99 | laid out at start: p50 | laid out at start: p99 |\n\
         | --- | --- | --- | --- | --- | --- |"
    )?;
    // One table row: `ask` timed on both indexes.
    let mut row = |query: String, days: i64, ask: &dyn Fn(&ContactIndex, i64) -> usize| {
        let (fed50, fed99) = time_each(&people, |p| ask(&index, p)).summary();
        let (bulk50, bulk99) = time_each(&people, |p| ask(&laid_out, p)).summary();
        writeln!(
            report,
            "| {query} | {days} d | {fed50:.2} ms | {fed99:.2} ms | {bulk50:.2} ms | {bulk99:.2} ms |"
        )
    };
    for (label, days, gap) in [
        ("gap 60 s", 1, Some(60_000_000)),
        ("gap 60 s", 3, Some(60_000_000)),
        ("no gap", 1, None),
    ] {
        let q = |p: i64| connection_query(p, window(days), gap);
        row(format!("connection, {label}"), days, &|i, p| {
            i.connections(&q(p)).len()
        })?;
    }
    for days in [1, 3] {
        let q = |p: i64| contacts_query(p, window(days));
        row(
            "contacts over tracks, min 120 s".to_string(),
            days,
            &|i, p| i.track_contacts(&q(p)).len(),
        )?;
    }
    Ok(())
}

//! Queries on PostGIS: connection-api's engine (`StoreEngine`, one `near` statement per query)
//! timed in this process, against `ScanEngine` (the whole window read, then the same
//! predicate), whose every answer must be equal; and the plan of the `near` statement.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use udaconnect::progress;
use udaconnect_core::contact::{Contact, Point};
use udaconnect_core::ports::DynLocationStore;
use udaconnect_core::time::{from_micros, Window};
use udaconnect_server::query::engine::{ContactEngine, Rows};
use udaconnect_server::query::store::{ScanEngine, StoreEngine};
use udaconnect_sim::Conference;
use udaconnect_store::postgres::near_sql;

use super::ratio;
use crate::common::{
    connection_query, contacts_query, days_from, ms, p50_p99, Answer, ConferenceArgs, Timed, DAY_US,
};

fn all_rows(rows: &dyn Rows) -> Vec<Point> {
    let mut out = Vec::with_capacity(rows.len());
    rows.read(0, rows.len(), &mut out);
    out
}

pub async fn run(
    args: &ConferenceArgs,
    conference: &Conference,
    store: &DynLocationStore,
    admin: &tokio_postgres::Client,
    stored: usize,
    vacuum_s: f64,
    report: &mut String,
) -> anyhow::Result<()> {
    let engine = StoreEngine {
        store: store.clone(),
    };
    let scan = ScanEngine {
        store: store.clone(),
    };
    let people = args.asked(conference);
    let checked = args.baseline(&people);
    let start = conference.config.start;
    let windows = [
        ("1 day", 1),
        ("3 days", 3.min(conference.config.days as i64)),
    ];
    let total = (windows.len() * 2 * (people.len() + checked.len()) + 2 * checked.len()) as u64;
    let bar = progress::bar(total, "queries");
    let tick = || bar.inc(1);
    writeln!(
        report,
        "### Connection queries on PostGIS, {stored} locations stored\n\n\
         {} random attendees per query kind (the same as `udaconnect bench` asks), timed in this process as connection-api \
         runs them (`StoreEngine`: one `near` statement on the geography GiST index, then the exact predicate). \
         Baseline: `ScanEngine` on the same database (reads the whole window, then the same predicate) on the first {}; \
         each of its answers is checked equal to `StoreEngine`'s. `VACUUM ANALYZE location` ran first ({vacuum_s:.1} s).\n\n\
         | query | window | p50 | p99 | baseline p50 | speed-up (p50) |\n| --- | --- | --- | --- | --- | --- |",
        people.len(),
        checked.len()
    )?;
    let timing = Timing {
        people: &people,
        checked,
        tick: &tick,
    };
    for (label, days) in windows {
        let window = days_from(start, days);
        for kind in Timed::ALL {
            timing
                .row(
                    report,
                    (kind.title(), label),
                    async |p| ask(&engine, kind, window, p).await,
                    async |p| ask(&scan, kind, window, p).await,
                    (kind.answers(), Raw::comparable),
                )
                .await?;
        }
    }

    // The original semantics: no time condition, first day.
    let window = days_from(start, 1);
    let q = |p: i64| connection_query(p, window, None);
    let (mut fast, mut slow, mut sizes) = (Tally::default(), Tally::default(), Vec::new());
    for &p in checked {
        let t = Instant::now();
        let indexed = engine.connections(q(p)).await?;
        fast.add(t.elapsed(), indexed.len());
        sizes.push(indexed.len() as f64);
        tick();
        let t = Instant::now();
        let scanned = scan.connections(q(p)).await?;
        slow.add(t.elapsed(), scanned.len());
        if all_rows(scanned.as_ref()) != all_rows(indexed.as_ref()) {
            return Err(disagree("connections", p, "original semantics"));
        }
        tick();
    }
    bar.finish_and_clear();
    let largest = sizes.iter().copied().fold(0.0, f64::max);
    let (size_p50, _) = p50_p99(sizes);
    let (rate, base_rate) = (fast.rate(), slow.rate());
    let (f50, f99) = p50_p99(fast.times);
    let (s50, s99) = p50_p99(slow.times);
    writeln!(
        report,
        "\n### The original semantics (no time condition), 1-day window, {} attendees\n\n\
         | figure | StoreEngine (PostGIS) | baseline: ScanEngine | ratio |\n| --- | --- | --- | --- |\n\
         | answer locations per second | {:.0} k/s | {:.0} k/s | {} |\n\
         | latency p50 / p99 | {f50:.1} / {f99:.1} ms | {s50:.1} / {s99:.1} ms | {} (p50) |\n\
         | answer size, median / largest | {size_p50:.0} / {largest:.0} locations | | |\n",
        checked.len(),
        rate / 1e3,
        base_rate / 1e3,
        ratio(rate / base_rate),
        ratio(s50 / f50)
    )?;

    // The plan of the statement behind one connection query.
    if let Some(&p) = people.first() {
        let plan = explain_near(admin, p, start, start + DAY_US).await?;
        writeln!(
            report,
            "### Plan of the `near` statement (person {p}, 1 day, gap 60 s)\n\n\
             `EXPLAIN (ANALYZE, BUFFERS)` with the values of one query:\n\n```text\n{}\n```\n",
            plan.join("\n")
        )?;
    }
    Ok(())
}

/// Rows answered and time taken by a run of queries.
#[derive(Default)]
struct Tally {
    rows: usize,
    secs: f64,
    /// Each query's, in ms.
    times: Vec<f64>,
}

impl Tally {
    fn add(&mut self, took: Duration, rows: usize) {
        self.rows += rows;
        self.secs += took.as_secs_f64();
        self.times.push(ms(took));
    }

    /// Rows answered per second of query time.
    fn rate(&self) -> f64 {
        self.rows as f64 / self.secs
    }
}

/// An engine's answer as it gives it: what is timed.
enum Raw {
    Rows(Box<dyn Rows>),
    Contacts(Vec<Contact>),
}

impl Raw {
    fn comparable(self) -> Answer {
        match self {
            Raw::Rows(rows) => Answer::Points(all_rows(rows.as_ref())),
            Raw::Contacts(contacts) => Answer::Contacts(contacts),
        }
    }
}

/// `engine`'s answer to the query of `kind` about person `p` in `window`.
async fn ask(
    engine: &dyn ContactEngine,
    kind: Timed,
    window: Window,
    p: i64,
) -> anyhow::Result<Raw> {
    Ok(match kind {
        Timed::Connection => Raw::Rows(
            engine
                .connections(Timed::connection_query(p, window))
                .await?,
        ),
        Timed::Contacts => Raw::Contacts(engine.contacts(contacts_query(p, window)).await?),
    })
}

fn disagree(what: &str, person: i64, label: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "StoreEngine and ScanEngine disagree on the {what} of person {person} ({label})"
    )
}

/// Who the queries ask about, and the progress bar's tick after each query.
struct Timing<'a, F: Fn()> {
    people: &'a [i64],
    /// The first of `people`, whom the scan baseline is asked about too.
    checked: &'a [i64],
    tick: &'a F,
}

impl<F: Fn()> Timing<'_, F> {
    /// One row: the engine timed for every person, the scan for the checked ones, each scan
    /// answer checked equal to the engine's once both are in `comparable` form (`answers`
    /// names them where they differ).
    async fn row<T, C: PartialEq>(
        &self,
        report: &mut String,
        (what, window): (&str, &str),
        engine: impl AsyncFn(i64) -> anyhow::Result<T>,
        scan: impl AsyncFn(i64) -> anyhow::Result<T>,
        (answers, comparable): (&str, impl Fn(T) -> C),
    ) -> anyhow::Result<()> {
        let mut fast = Vec::with_capacity(self.people.len());
        for &p in self.people {
            let t = Instant::now();
            std::hint::black_box(engine(p).await?);
            fast.push(ms(t.elapsed()));
            (self.tick)();
        }
        let mut slow = Vec::with_capacity(self.checked.len());
        for &p in self.checked {
            let t = Instant::now();
            let scanned = scan(p).await?;
            slow.push(ms(t.elapsed()));
            if comparable(scanned) != comparable(engine(p).await?) {
                return Err(disagree(answers, p, window));
            }
            (self.tick)();
        }
        let (f50, f99) = p50_p99(fast);
        let (s50, _) = p50_p99(slow);
        writeln!(
            report,
            "| {what} | {window} | {f50:.1} ms | {f99:.1} ms | {s50:.1} ms | {} |",
            ratio(s50 / f50)
        )?;
        Ok(())
    }
}

async fn explain_near(
    client: &tokio_postgres::Client,
    person: i64,
    start: i64,
    end: i64,
) -> anyhow::Result<Vec<String>> {
    let t = |us: i64| from_micros(us).naive_utc();
    // The store's search radius for 5 m: the distance with 0.1% and half a metre of slack.
    let radius = 5.0f64 * 1.001 + 0.5;
    let gap = 60_000_000i64;
    let rows = client
        .query(
            &format!("EXPLAIN (ANALYZE, BUFFERS) {}", near_sql(true)),
            &[&person, &t(start), &t(end), &radius, &gap],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

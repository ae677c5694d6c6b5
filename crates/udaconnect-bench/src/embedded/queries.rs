//! The queries stage: each query kind timed in the server's index, over HTTP from a separate
//! client, and against a linear scan of every stored location that must give the same answers.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use udaconnect_core::contact::{self, Point};
use udaconnect_core::time::{format_utc, from_micros};
use udaconnect_server::query::engine::SharedIndex;
use udaconnect_sim::Conference;

use crate::common::{
    connection_query, contacts_oracle, contacts_query, days_from, ms, p50_p99, percentile, Answer,
    ConferenceArgs, Timed, DAY_US,
};
use crate::load;

/// Times of a run of queries (ms), and the size of each answer (rows, or bytes over HTTP).
#[derive(Default)]
pub struct Latencies(pub Vec<f64>, pub Vec<f64>);

impl Latencies {
    pub fn summary(self) -> (f64, f64) {
        p50_p99(self.0)
    }

    fn median_size(&self) -> f64 {
        let mut sizes = self.1.clone();
        sizes.sort_by(f64::total_cmp);
        percentile(&sizes, 0.5)
    }
}

pub async fn run(
    args: &ConferenceArgs,
    conference: &Conference,
    index: &SharedIndex,
    (base, token): (&str, Option<&str>),
    scratch: &Path,
    report: &mut String,
) -> anyhow::Result<()> {
    let all: Vec<Point> = {
        let index = index
            .read()
            .map_err(|_| anyhow::anyhow!("index poisoned"))?;
        (0..index.len() as u32).map(|s| index.point(s)).collect()
    };
    let people = args.asked(conference);
    let checked = args.baseline(&people);
    let start = conference.config.start;
    let read = || index.read().expect("index");
    writeln!(
        report,
        "### Queries ({} random attendees each; baseline: a linear scan of every stored location, on the first {})\n\n\
         Server: the index's search in this process. HTTP: the whole answer received by a client in a separate process, one request at a time on a kept-alive connection, after 0.3 s of untimed requests.\n\n\
         | query | window | server p50 | server p99 | HTTP p50 | HTTP p99 | answer, median (rows / JSON) | baseline p50 | speed-up (p50) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        args.queries, args.baseline_queries
    )?;
    let stage = Stage {
        people: &people,
        checked,
        all: &all,
        scratch,
        token,
    };
    for (label, days) in [
        ("1 day", 1),
        ("3 days", 3.min(conference.config.days as i64)),
    ] {
        let window = days_from(start, days);
        let date = |d: i64| format_utc(from_micros(start + d * DAY_US))[..10].to_string();
        let (start_date, end_date) = (date(0), date(days - 1));
        let q = |p: i64| Timed::connection_query(p, window);
        let cq = |p: i64| contacts_query(p, window);
        let url = |kind: Timed, p: i64| match kind {
            Timed::Connection => format!(
                "{base}/api/persons/{p}/connection?start_date={start_date}&end_date={end_date}\
                 &distance=5&max_time_gap=60"
            ),
            Timed::Contacts => {
                format!("{base}/api/persons/{p}/contacts?start={start_date}&end={end_date}")
            }
        };
        for kind in Timed::ALL {
            stage
                .row(
                    report,
                    (kind.title(), label),
                    |p| match kind {
                        Timed::Connection => read().connections(&q(p)).len(),
                        Timed::Contacts => read().track_contacts(&cq(p)).len(),
                    },
                    |p| url(kind, p),
                    |own, p| match kind {
                        Timed::Connection => Answer::Points(contact::connections(own, &all, &q(p))),
                        Timed::Contacts => Answer::Contacts(contacts_oracle(&all, &cq(p))),
                    },
                    |p| match kind {
                        Timed::Connection => {
                            let i = read();
                            let found = i.connections(&q(p));
                            Answer::Points(found.iter().map(|&s| i.point(s)).collect())
                        }
                        Timed::Contacts => Answer::Contacts(read().track_contacts(&cq(p))),
                    },
                )
                .await?;
        }
    }
    original_semantics(start, &people, checked, &all, index, report)
}

/// The original semantics: no time condition, one day: raw answer throughput.
fn original_semantics(
    start: i64,
    people: &[i64],
    checked: &[i64],
    all: &[Point],
    index: &SharedIndex,
    report: &mut String,
) -> anyhow::Result<()> {
    let window = days_from(start, 1);
    let q = |p: i64| connection_query(p, window, None);
    let mut rows = 0usize;
    let mut secs = 0.0;
    let mut sizes = Vec::new();
    for &p in people {
        let t = Instant::now();
        let n = index.read().expect("index").connections(&q(p)).len();
        secs += t.elapsed().as_secs_f64();
        rows += n;
        sizes.push(n as f64);
    }
    let (size_p50, _) = p50_p99(sizes.clone());
    let max_size = sizes.iter().cloned().fold(0.0, f64::max);
    let mut base_rows = 0usize;
    let mut base_secs = 0.0;
    for &p in checked {
        let own: Vec<Point> = all.iter().filter(|x| x.person_id == p).copied().collect();
        let t = Instant::now();
        base_rows += contact::connections(&own, all, &q(p)).len();
        base_secs += t.elapsed().as_secs_f64();
    }
    writeln!(
        report,
        "\n### The original semantics (no time condition), 1-day window\n\n\
         | figure | index | baseline (linear scan) | ratio |\n| --- | --- | --- | --- |\n\
         | answer locations per second of server time | {:.2} M/s | {:.2} M/s | {:.1}x |\n\
         | answer size, median / largest | {:.0} / {:.0} locations | | |\n",
        rows as f64 / secs / 1e6,
        base_rows as f64 / base_secs / 1e6,
        (rows as f64 / secs) / (base_rows as f64 / base_secs),
        size_p50,
        max_size
    )?;
    Ok(())
}

/// What every row of the queries table is measured on.
struct Stage<'a> {
    people: &'a [i64],
    checked: &'a [i64],
    all: &'a [Point],
    scratch: &'a Path,
    /// Sent with each request over HTTP, if the server asks who is asking.
    token: Option<&'a str>,
}

impl Stage<'_> {
    /// One row: the query in the server's index (`server` answers its row count), over HTTP
    /// (`url`), and by the linear scan (`scan`), each of whose answers must be the index's
    /// (`indexed`).
    async fn row(
        &self,
        report: &mut String,
        (what, window): (&str, &str),
        server: impl FnMut(i64) -> usize,
        url: impl Fn(i64) -> String,
        scan: impl Fn(&[Point], i64) -> Answer,
        indexed: impl Fn(i64) -> Answer,
    ) -> anyhow::Result<()> {
        let server = time_each(self.people, server);
        let http = http_each(self.scratch, self.people, url, self.token).await?;
        let baseline = baseline_each(self.checked, self.all, scan, indexed)?;
        let (rows, bytes) = (server.median_size(), http.median_size());
        let (s50, s99) = server.summary();
        let (h50, h99) = http.summary();
        let (b50, _) = baseline.summary();
        writeln!(
            report,
            "| {what} | {window} | {s50:.2} ms | {s99:.2} ms | {h50:.2} ms | {h99:.2} ms | {rows:.0} / {:.0} KiB | {b50:.1} ms | {:.0}x |",
            bytes / 1024.0,
            b50 / s50
        )?;
        Ok(())
    }
}

/// Each person's query timed with `f`, which answers how many rows it found.
pub fn time_each(people: &[i64], mut f: impl FnMut(i64) -> usize) -> Latencies {
    let mut out = Latencies::default();
    for &p in people {
        let t = Instant::now();
        let n = std::hint::black_box(f(p));
        out.0.push(ms(t.elapsed()));
        out.1.push(n as f64);
    }
    out
}

/// The linear scan, checked against the index's answer as it goes.
fn baseline_each(
    people: &[i64],
    all: &[Point],
    scan: impl Fn(&[Point], i64) -> Answer,
    indexed: impl Fn(i64) -> Answer,
) -> anyhow::Result<Latencies> {
    let mut out = Latencies::default();
    for &p in people {
        let own: Vec<Point> = all.iter().filter(|x| x.person_id == p).copied().collect();
        let t = Instant::now();
        let scanned = scan(&own, p);
        out.0.push(ms(t.elapsed()));
        out.1.push(scanned.rows() as f64);
        if indexed(p) != scanned {
            bail!("index and scan disagree for person {p}");
        }
    }
    Ok(out)
}

/// Each person's URL asked over HTTP by the query client (see [`load::ask_each`]).
async fn http_each(
    scratch: &Path,
    people: &[i64],
    url: impl Fn(i64) -> String,
    token: Option<&str>,
) -> anyhow::Result<Latencies> {
    let urls: Vec<String> = people.iter().map(|&p| url(p)).collect();
    let (times, sizes) = load::ask_each(scratch, &urls, token).await?;
    Ok(Latencies(times, sizes))
}

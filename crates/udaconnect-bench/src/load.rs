//! The load and query clients: this program again (`udaconnect-bench bench-load`), as a
//! separate process, so their CPU is not the server's they measure. Both sides are here: the
//! benchmark starts a client and reads its JSON line; the client sends and prints it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use udaconnect_sim::Rng;

use crate::common::ms;
use crate::http1;

/// The load generator's settings: what the benchmark passes to the process it starts (an
/// internal command, so these flags take no environment variables: one set for the
/// benchmark would reach its clients too).
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// URL to send requests to.
    #[arg(long)]
    pub url: String,
    /// POST pings (for persons 1..=N), or GET when 0.
    #[arg(long, default_value_t = 0)]
    pub persons: u32,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Instead: GET each URL of this file (one per line) in turn, on one kept-alive connection,
    /// and print each one's time to the whole answer and its size.
    #[arg(long)]
    pub urls_file: Option<PathBuf>,
}

/// The variable that hands the load and query clients the token they send: only to the
/// processes this one starts, and never on a command line that `ps` shows.
const TOKEN_VAR: &str = "UDACONNECT_BENCH_LOAD_TOKEN";

/// This program as a client process, sending `token` if given.
fn client_process(token: Option<&str>) -> anyhow::Result<Command> {
    let mut process = Command::new(std::env::current_exe()?);
    process.env_remove(TOKEN_VAR);
    if let Some(token) = token {
        process.env(TOKEN_VAR, token);
    }
    Ok(process)
}

/// Runs the load process, which sends `token` if given; the rate of acknowledged requests,
/// and their number.
pub async fn load(
    url: &str,
    persons: u32,
    seconds: u64,
    token: Option<&str>,
) -> anyhow::Result<(f64, u64)> {
    let mut process = client_process(token)?;
    process
        .args([
            "bench-load",
            "--url",
            url,
            "--persons",
            &persons.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .stderr(Stdio::inherit());
    let out = output_of(process).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("load process output")?;
    if v["errors"].as_u64().unwrap_or(0) > 0 {
        bail!("load against {url} had {} errors", v["errors"]);
    }
    let requests = v["requests"].as_u64().unwrap_or(0);
    Ok((
        requests as f64 / v["seconds"].as_f64().unwrap_or(1.0),
        requests,
    ))
}

/// Each URL's answer time (ms) and size (bytes), asked one after another by a separate client
/// process (as a real client is): in this process, the client's tasks would share the server's
/// runtime threads and queue behind its work. The list is written to `scratch`.
pub async fn ask_each(
    scratch: &Path,
    urls: &[String],
    token: Option<&str>,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let Some(first) = urls.first() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let list = scratch.join("bench-urls.txt");
    std::fs::write(&list, urls.join("\n"))?;
    let mut client = client_process(token)?;
    client
        .args(["bench-load", "--url", first, "--urls-file"])
        .arg(&list)
        .stderr(Stdio::inherit());
    let out = output_of(client).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("query client output")?;
    let numbers = |key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    if let Some(e) = v["error"].as_str() {
        bail!("{e}");
    }
    Ok((numbers("ms"), numbers("bytes")))
}

/// Runs a child process to its end on a blocking thread. The server under test runs on this
/// process's runtime: waiting for the child on a worker would take that worker from the
/// server while the child measures it.
async fn output_of(mut command: Command) -> anyhow::Result<std::process::Output> {
    Ok(tokio::task::spawn_blocking(move || command.output()).await??)
}

/// How long the query client asks before it times (see [`get_each`]).
const WARM_UP: Duration = Duration::from_millis(300);

/// The query client's side of [`ask_each`]: every URL on one connection to the first URL's
/// host.
async fn get_each(urls_file: &Path, token: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let urls = std::fs::read_to_string(urls_file)?;
    let paths = urls
        .lines()
        .filter(|l| !l.is_empty())
        .map(http1::split_url)
        .collect::<std::io::Result<Vec<_>>>()?;
    let Some((host, _)) = paths.first() else {
        return Ok(serde_json::json!({"ms": [], "bytes": []}));
    };
    let mut connection = http1::Connection::open(host).await?.with_token(token);
    // Untimed requests first, for WARM_UP: a new client process runs slow for its first tenth
    // of a second or so (the first 22 of 200 3-day answers took 5.5-6.6 ms on average against
    // 3.6-4.5 ms for the rest; after a warm-up, on the same connection or a new one, they did
    // not).
    let warming = Instant::now();
    for (_, path) in paths.iter().cycle() {
        connection.get(path).await?;
        if warming.elapsed() >= WARM_UP {
            break;
        }
    }
    let (mut times, mut sizes) = (Vec::new(), Vec::new());
    for (_, path) in &paths {
        let t = Instant::now();
        let answer = connection.get(path).await?;
        times.push(ms(t.elapsed()));
        if answer.status != 200 {
            return Ok(serde_json::json!({"error": format!("{path}: {}", answer.status)}));
        }
        sizes.push(answer.body_bytes);
    }
    Ok(serde_json::json!({"ms": times, "bytes": sizes}))
}

/// The load process: `connections` clients in a loop for `seconds`; prints JSON counts.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let token = std::env::var(TOKEN_VAR).ok();
    if let Some(urls) = args.urls_file {
        // One request at a time on one connection: one thread does it all. On the
        // multi-threaded runtime, the connection's task and the request's could sit on two
        // threads, and every chunk of an answer waited for a thread to wake.
        let answers = tokio::task::spawn_blocking(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(get_each(&urls, token.as_deref()))
        })
        .await??;
        println!("{answers}");
        return Ok(());
    }
    let (host, path) = http1::split_url(&args.url)?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.connections {
        let (host, path, persons) = (host.clone(), path.clone(), args.persons);
        let token = token.clone();
        tasks.spawn(async move {
            let mut rng = Rng::new(c as u64 + 1);
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut body = String::new();
            let mut connection = None;
            while Instant::now() < deadline {
                let c = match connection.as_mut() {
                    Some(c) => c,
                    None => match http1::Connection::open(&host).await {
                        Ok(c) => connection.insert(c.with_token(token.as_deref())),
                        Err(_) => {
                            errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let answer = if persons == 0 {
                    c.get(&path).await
                } else {
                    body.clear();
                    let _ = write!(
                        body,
                        "{{\"person_id\":{},\"latitude\":{},\"longitude\":{}}}",
                        1 + rng.below(persons as usize),
                        37.55 + rng.unit() * 0.001,
                        -122.29 + rng.unit() * 0.001
                    );
                    c.post_json(&path, body.as_bytes()).await
                };
                match answer {
                    Ok(a) if (200..300).contains(&a.status) => ok += 1,
                    Ok(_) => errors += 1,
                    // The connection is in an unknown state: a new one for the next request.
                    Err(_) => {
                        errors += 1;
                        connection = None;
                    }
                }
            }
            (ok, errors)
        });
    }
    let (mut ok, mut errors) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (o, e) = r?;
        ok += o;
        errors += e;
    }
    println!(
        "{}",
        serde_json::json!({"requests": ok, "errors": errors, "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(())
}

//! `udaconnect log check` and `log repair`: damage in the embedded log, found and removed
//! while no server runs on it (see `udaconnect_log::embedded::check`).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use udaconnect_log::embedded::check::{self, Exclusive, LogReport, Problem, SegmentScan};

#[derive(Args, Debug)]
pub struct LogArgs {
    #[command(subcommand)]
    pub command: LogCommand,
}

#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Read every record of the embedded log and report each segment: its records, first and
    /// last offset, and every problem (torn tail, corruption, gap). Exits 1 on corruption; a
    /// torn tail (a write a crash cut short, cleared at the next start) or a gap alone exits 0.
    Check(CheckArgs),
    /// Remove damaged records from the embedded log, keeping every intact record at its own
    /// offset (run while `serve` is stopped). Each segment it changes is first copied to
    /// DIR/log/backup/<topic>/<segment>.<unix-time>; it reports the bytes and record offsets
    /// it removed, and asks before changing anything unless --yes.
    Repair(RepairArgs),
}

#[derive(Args, Debug)]
pub struct LogDirArgs {
    /// Data directory whose embedded log (DIR/log) to read.
    #[arg(long, env = "UDACONNECT_DATA_DIR", default_value = "./udaconnect-data")]
    pub data_dir: PathBuf,
    /// Only this topic (`location`, `location.dlq`); default: every topic.
    #[arg(long, env = "UDACONNECT_LOG_TOPIC")]
    pub topic: Option<String>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub log: LogDirArgs,
    /// Print the report as JSON on stdout instead of text.
    #[arg(long, env = "UDACONNECT_LOG_JSON")]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RepairArgs {
    #[command(flatten)]
    pub log: LogDirArgs,
    /// Repair without asking for confirmation.
    #[arg(long, env = "UDACONNECT_LOG_REPAIR_YES")]
    pub yes: bool,
}

pub async fn run(args: LogArgs) -> anyhow::Result<()> {
    // Whole-file reads and a question on the terminal: not for the async workers.
    tokio::task::spawn_blocking(move || match args.command {
        LogCommand::Check(args) => check(args),
        LogCommand::Repair(args) => repair(args),
    })
    .await
    .context("the log command stopped")?
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let root = args.log.data_dir.join("log");
    let bar = progress_bar("check");
    let report = check::check(&root, args.log.topic.as_deref(), &mut progress(&bar))
        .with_context(|| format!("failed to check the log in {}", root.display()))?;
    bar.finish_and_clear();
    if args.json {
        println!("{:#}", report_json(&report));
    } else {
        print!("{}", report_text(&report));
    }
    if report.is_corrupt() {
        bail!(
            "the log has damaged records; `udaconnect log repair --data-dir {}` removes them \
             and keeps every intact record (after a backup copy)",
            args.log.data_dir.display()
        );
    }
    Ok(())
}

fn repair(args: RepairArgs) -> anyhow::Result<()> {
    let root = args.log.data_dir.join("log");
    let held = Exclusive::acquire(&root).with_context(|| {
        format!(
            "failed to take the log in {} for repair (stop the server using it first)",
            root.display()
        )
    })?;
    let bar = progress_bar("check");
    let report = held
        .check(args.log.topic.as_deref(), &mut progress(&bar))
        .with_context(|| format!("failed to check the log in {}", root.display()))?;
    bar.finish_and_clear();
    let damaged: Vec<&SegmentScan> = report.segments().filter(|s| s.needs_repair()).collect();
    if damaged.is_empty() {
        println!("nothing to repair in {}", root.display());
        return Ok(());
    }
    println!("to repair:");
    for scan in &damaged {
        println!("  {}", scan.path.display());
        for removal in scan.problems.iter().filter_map(Problem::removal) {
            println!("    remove {removal}");
        }
    }
    println!(
        "each segment is copied to {} first",
        root.join("backup").join("<topic>").display()
    );
    if !args.yes && !confirm(&format!("repair {} segment(s)? [y/N] ", damaged.len()))? {
        bail!("repair not confirmed, nothing changed (--yes repairs without asking)");
    }
    for done in held.repair(&report).context("repair failed")? {
        let action = if done.removed {
            "removed (no intact record left)"
        } else {
            "repaired"
        };
        println!("{action} {}", done.scan.path.display());
        for removal in done.scan.problems.iter().filter_map(Problem::removal) {
            println!("  removed {removal}");
        }
        println!("  backup {}", done.backup.display());
    }
    println!("the log opens again; `udaconnect log check` lists the records removed as gaps");
    Ok(())
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// A bar over the bytes read, on the terminal only.
fn progress_bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let template = format!(
        "{what} {{bar:40}} {{binary_bytes}}/{{binary_total_bytes}}  {{binary_bytes_per_sec}}  eta {{eta}}"
    );
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn progress(bar: &ProgressBar) -> impl FnMut(u64, u64) + '_ {
    |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    }
}

fn report_text(report: &LogReport) -> String {
    let mut out = format!("log {}\n", report.root.display());
    if report.in_use {
        out.push_str("(in use by a running server: its active segments may have grown since)\n");
    }
    let (mut records, mut segments, mut corrupt) = (0, 0, 0);
    for topic in &report.topics {
        out.push_str(&format!("topic {}\n", topic.topic));
        for s in &topic.segments {
            let name = s.path.file_name().unwrap_or_default().to_string_lossy();
            let offsets = match (s.first_offset, s.last_offset) {
                (Some(a), Some(b)) => format!(", offsets {a}..{b}"),
                _ => String::new(),
            };
            let state = if s.next_base.is_some() {
                "sealed"
            } else {
                "active"
            };
            out.push_str(&format!(
                "  {name}  {state}, {} bytes, {} records{offsets}\n",
                s.file_len, s.records
            ));
            for p in &s.problems {
                out.push_str(&format!("    {p}\n"));
            }
            records += s.records;
            segments += 1;
            corrupt += s.problems.iter().filter(|p| p.is_corruption()).count();
        }
    }
    out.push_str(&format!(
        "{segments} segments, {records} records, {}\n",
        match corrupt {
            0 => "no corruption".to_string(),
            n => format!("{n} damaged region(s)"),
        }
    ));
    out
}

fn report_json(report: &LogReport) -> Value {
    let topics: Vec<Value> = report
        .topics
        .iter()
        .map(|t| {
            let segments: Vec<Value> = t.segments.iter().map(segment_json).collect();
            json!({"topic": t.topic, "segments": segments})
        })
        .collect();
    json!({
        "log": report.root,
        "in_use": report.in_use,
        "corrupt": report.is_corrupt(),
        "topics": topics,
    })
}

fn segment_json(s: &SegmentScan) -> Value {
    let problems: Vec<Value> = s
        .problems
        .iter()
        .map(|p| {
            let mut v = serde_json::to_value(p).unwrap_or_default();
            v["message"] = p.to_string().into();
            v
        })
        .collect();
    json!({
        "file": s.path,
        "base": s.base,
        "sealed": s.next_base.is_some(),
        "bytes": s.file_len,
        "records": s.records,
        "first_offset": s.first_offset,
        "last_offset": s.last_offset,
        "problems": problems,
    })
}

//! The gateway key's safe default: with `--auth on`, a role that takes API requests (web and
//! the roles behind it) does not listen beyond loopback without the key, and a key too short
//! to sign with, or given twice, stops the start with the reason. What the key does once
//! given is the distributed suite's (`tests/distributed/gateway.rs`).

use std::process::{Command, Output};
use std::time::Duration;

use udaconnect_testkit::process::output_within;

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");

/// `udaconnect <args>` with these environment variables (and no gateway key but theirs), run
/// until it exits; fails the test if it is still running after a while.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("UDACONNECT_GATEWAY_KEY")
        .env_remove("UDACONNECT_GATEWAY_KEY_FILE")
        .env("UDACONNECT_AUTH", "on")
        .envs(env.iter().copied());
    output_within(&mut command, None, Duration::from_secs(30))
}

fn refused_saying(args: &[&str], env: &[(&str, &str)], reason: &str) {
    let out = run(args, env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} started");
    assert!(err.contains(reason), "{args:?}: {err}");
}

#[test]
fn an_api_role_without_the_key_is_refused_off_loopback() {
    let data = tempfile::tempdir().unwrap();
    let store = data.path().to_str().unwrap();
    for role in ["person-api", "connection-api", "web"] {
        refused_saying(
            &[
                role,
                "--listen",
                "0.0.0.0:0",
                "--store",
                store,
                "--log",
                store,
            ],
            &[],
            "--gateway-key-file",
        );
    }
}

#[test]
fn a_short_or_doubled_key_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let store = data.path().to_str().unwrap();
    let file = data.path().join("gateway.key");
    std::fs::write(&file, "0123456789abcdef0123456789abcdef0123\n").unwrap();
    let file = file.to_str().unwrap();
    let listen = ["--listen", "127.0.0.1:0", "--store", store, "--log", store];
    let args = [&["person-api"][..], &listen].concat();
    refused_saying(&args, &[("UDACONNECT_GATEWAY_KEY", "short")], "too short");
    let with_file = [&args[..], &["--gateway-key-file", file]].concat();
    refused_saying(
        &with_file,
        &[("UDACONNECT_GATEWAY_KEY", "0123456789abcdef0123456789abcdef")],
        "once",
    );
    let missing = [
        &args[..],
        &["--gateway-key-file", "/nonexistent/gateway.key"],
    ]
    .concat();
    refused_saying(&missing, &[], "gateway key");
}

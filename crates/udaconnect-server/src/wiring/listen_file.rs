//! The machine-readable report of where a process listens (`--listen-file FILE`), so tests and
//! scripts never parse log text: one JSON object,
//! `{"http":"127.0.0.1:PORT","grpc":"127.0.0.1:PORT"|null,"role":"serve"|"<role>","pid":N}`,
//! written once the listeners are bound, atomically (a reader sees no file or the whole one).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Listening {
    pub http: SocketAddr,
    pub grpc: Option<SocketAddr>,
    /// `serve`, or the role's name.
    pub role: &'static str,
    pub pid: u32,
}

/// Writes `listening` to `path`: to a temporary file beside it first, then renamed over it.
pub fn write(path: &Path, listening: &Listening) -> anyhow::Result<()> {
    let json = serde_json::to_vec(listening)?;
    let name = path
        .file_name()
        .with_context(|| format!("--listen-file {} names no file", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", listening.pid));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("failed to write the listen file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_holds_one_json_object_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("listen.json");
        std::fs::write(&path, "old").unwrap();
        write(
            &path,
            &Listening {
                http: "127.0.0.1:30000".parse().unwrap(),
                grpc: None,
                role: "serve",
                pid: 42,
            },
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"http": "127.0.0.1:30000", "grpc": null, "role": "serve", "pid": 42})
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
        assert!(write(
            Path::new("/"),
            &Listening {
                http: "127.0.0.1:1".parse().unwrap(),
                grpc: None,
                role: "web",
                pid: 1
            }
        )
        .is_err());
    }
}

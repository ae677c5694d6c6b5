//! Finding another program: the workspace's binaries run each other (`udaconnect bench` runs
//! `udaconnect-bench`, which runs `udaconnect serve` to measure its start), and the benchmark
//! starts a broker.

use std::path::{Path, PathBuf};

/// The program `name` next to this executable, where `cargo build` and an install put the
/// workspace's binaries side by side; else the first on `PATH`.
pub fn sibling(name: &str) -> Option<PathBuf> {
    let here = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    find(name, here.into_iter().chain(path_dirs()))
}

/// The first `dir/name` that is a file, in the order of `dirs`.
pub fn find(name: &str, dirs: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The directories of `PATH`, in order.
pub fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_directory_holding_the_program_wins() {
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = ["a", "b", "c"]
            .iter()
            .map(|d| root.path().join(d))
            .collect();
        for dir in &dirs {
            std::fs::create_dir(dir).unwrap();
        }
        std::fs::write(dirs[1].join("tool"), "").unwrap();
        std::fs::write(dirs[2].join("tool"), "").unwrap();
        // A directory of that name is not a program.
        std::fs::create_dir(dirs[0].join("tool")).unwrap();
        assert_eq!(find("tool", dirs.clone()), Some(dirs[1].join("tool")));
        assert_eq!(find("other", dirs), None);
    }

    #[test]
    fn a_sibling_is_looked_for_beside_this_executable() {
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_str().unwrap();
        assert_eq!(sibling(name), Some(exe));
    }
}

//! Transparent huge pages for the processes that hold the contact index.
//!
//! A search reads rows and cell lists scattered over tens to hundreds of MiB. In 4 KiB pages
//! nearly every such read also misses the TLB; in 2 MiB pages the index is a few dozen pages.
//! Most distributions' kernels back memory with huge pages only where the program asks
//! (`madvise` mode), and glibc's malloc asks only when told by its `glibc.malloc.hugetlb`
//! tunable, which it reads once, at start. So a process that holds the index starts itself
//! again, once, with the tunable added, unless the environment already says something about it
//! (`GLIBC_TUNABLES=glibc.malloc.hugetlb=0` keeps 4 KiB pages).

/// The tunable added to `GLIBC_TUNABLES`.
const TUNABLE: &str = "glibc.malloc.hugetlb";

/// `GLIBC_TUNABLES` with huge pages asked for, or `None` where it already names the tunable.
pub fn tunables_with_huge_pages(current: Option<&str>) -> Option<String> {
    match current.filter(|c| !c.is_empty()) {
        None => Some(format!("{TUNABLE}=1")),
        Some(c) if c.split(':').any(|t| t.split('=').next() == Some(TUNABLE)) => None,
        Some(c) => Some(format!("{c}:{TUNABLE}=1")),
    }
}

/// Whether the kernel's mode is `madvise`: huge pages only where asked. With `always` they come
/// anyway, with `never` not at all; starting again would change nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn kernel_waits_to_be_asked() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|mode| mode.contains("[madvise]"))
}

/// Starts this program again with huge pages asked for, where that changes anything; returns
/// only where it does not or cannot (then the process goes on in 4 KiB pages, as before).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn ask() {
    use std::os::unix::process::CommandExt;

    let current = std::env::var("GLIBC_TUNABLES").ok();
    let Some(tunables) = tunables_with_huge_pages(current.as_deref()) else {
        return;
    };
    if !kernel_waits_to_be_asked() {
        return;
    }
    let Ok(program) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let name = args
        .next()
        .unwrap_or_else(|| program.clone().into_os_string());
    // `exec` replaces this process (same pid, same open files) and returns only on failure.
    let error = std::process::Command::new(&program)
        .arg0(name)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .exec();
    eprintln!("note: could not start again with huge pages ({error}); going on without them");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn ask() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tunable_is_added_once_and_an_explicit_choice_is_kept() {
        assert_eq!(
            tunables_with_huge_pages(None).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            tunables_with_huge_pages(Some("")).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            tunables_with_huge_pages(Some("glibc.malloc.arena_max=2")).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            tunables_with_huge_pages(Some("glibc.malloc.hugetlb=0")),
            None
        );
        assert_eq!(
            tunables_with_huge_pages(Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")),
            None
        );
        // A tunable whose name only starts like it is another tunable.
        assert_eq!(
            tunables_with_huge_pages(Some("glibc.malloc.hugetlbx=1")).as_deref(),
            Some("glibc.malloc.hugetlbx=1:glibc.malloc.hugetlb=1")
        );
    }
}

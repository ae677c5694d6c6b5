//! Transparent huge pages for the processes that hold the contact index.
//!
//! A search reads rows and cell lists scattered over tens to hundreds of MiB. In 4 KiB pages
//! nearly every such read also misses the TLB; in 2 MiB pages the index is a few dozen pages.
//! Most distributions' kernels back memory with huge pages only where the program asks
//! (`madvise` mode), and glibc's malloc asks only when told by its `glibc.malloc.hugetlb`
//! tunable, which it reads once, at start. So a process that holds the index starts itself
//! again with the tunable added, unless the environment already says something about it
//! (`GLIBC_TUNABLES=glibc.malloc.hugetlb=0` keeps 4 KiB pages).
//!
//! glibc 2.35 and 2.36 (Debian 12) read the kernel's mode into a buffer they do not end with a
//! NUL before comparing it, so whether `hugetlb=1` takes effect depends on a byte left on the
//! stack: about half the starts of one binary. So a process started with `hugetlb=1` checks
//! that malloc asked for huge pages for a probe allocation, and starts again, a few times at
//! most, until it has.

/// The tunable added to `GLIBC_TUNABLES`.
const TUNABLE: &str = "glibc.malloc.hugetlb";
/// Starts so far, carried across `exec` and removed at once so children do not inherit it.
const ATTEMPT_VAR: &str = "UDACONNECT_HUGE_PAGES_ATTEMPT";
/// Starts with the tunable before going on without huge pages. Where glibc has the bug above,
/// each succeeds about half the time, and not quite independently: with six, 2 of 60 starts
/// of the debug build ran out. A start again costs milliseconds; the index takes seconds.
const MAX_ATTEMPTS: u32 = 16;

/// The value `GLIBC_TUNABLES` gives the tunable, if it names it (empty when named bare).
fn tunable_value(tunables: &str) -> Option<&str> {
    tunables.split(':').find_map(|t| {
        let (name, value) = t.split_once('=').unwrap_or((t, ""));
        (name == TUNABLE).then_some(value)
    })
}

/// The address range of a mapping's header line in `/proc/self/smaps`; `None` for the other
/// lines (`Size:`, `VmFlags:`, ...).
fn mapping_range(line: &str) -> Option<std::ops::Range<usize>> {
    let (start, end) = line.split_once(' ')?.0.split_once('-')?;
    Some(usize::from_str_radix(start, 16).ok()?..usize::from_str_radix(end, 16).ok()?)
}

/// Whether the mapping holding `address`, in `/proc/self/smaps` text, has the kernel's `hg`
/// flag (`madvise(MADV_HUGEPAGE)`).
fn mapping_asks_for_huge_pages(smaps: &str, address: usize) -> bool {
    let mut inside = false;
    for line in smaps.lines() {
        match (mapping_range(line), line.strip_prefix("VmFlags:")) {
            (Some(range), _) => inside = range.contains(&address),
            (None, Some(flags)) if inside => return flags.split_whitespace().any(|f| f == "hg"),
            _ => {}
        }
    }
    false
}

/// `GLIBC_TUNABLES` with huge pages asked for, or `None` where it already names the tunable.
pub fn tunables_with_huge_pages(current: Option<&str>) -> Option<String> {
    match current.filter(|c| !c.is_empty()) {
        None => Some(format!("{TUNABLE}=1")),
        Some(c) if tunable_value(c).is_some() => None,
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

    let attempt: u32 = std::env::var(ATTEMPT_VAR)
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    // Still one thread: nothing reads the environment meanwhile.
    std::env::remove_var(ATTEMPT_VAR);
    if !kernel_waits_to_be_asked() {
        return;
    }
    let current = std::env::var("GLIBC_TUNABLES").ok();
    let tunables = match tunables_with_huge_pages(current.as_deref()) {
        Some(added) => added,
        // Named already: check that it took, where it asks for them.
        None => {
            let current = current.unwrap_or_default();
            if tunable_value(&current) != Some("1")
                || attempt >= MAX_ATTEMPTS
                || malloc_asks_for_huge_pages()
            {
                return;
            }
            current
        }
    };
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
        .env(ATTEMPT_VAR, (attempt + 1).to_string())
        .exec();
    eprintln!("note: could not start again with huge pages ({error}); going on without them");
}

/// Whether malloc asks the kernel for huge pages: a probe above malloc's threshold for
/// mapping an allocation on its own (128 KiB at start) and of two huge pages, so malloc
/// advises it if it advises anything.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn malloc_asks_for_huge_pages() -> bool {
    let probe: Vec<u8> = Vec::with_capacity(4 << 20);
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    mapping_asks_for_huge_pages(&smaps, probe.as_ptr() as usize)
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
        assert_eq!(
            tunable_value("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"),
            Some("1")
        );
        assert_eq!(tunable_value("glibc.malloc.hugetlb=0"), Some("0"));
        assert_eq!(tunable_value("glibc.malloc.hugetlbx=1"), None);
        assert_eq!(tunable_value("glibc.malloc.hugetlb"), Some(""));
        assert_eq!(tunables_with_huge_pages(Some("glibc.malloc.hugetlb")), None);
        // A tunable whose name only starts like it is another tunable.
        assert_eq!(
            tunables_with_huge_pages(Some("glibc.malloc.hugetlbx=1")).as_deref(),
            Some("glibc.malloc.hugetlbx=1:glibc.malloc.hugetlb=1")
        );
    }

    #[test]
    fn the_flag_is_read_from_the_mapping_that_holds_the_address() {
        let smaps = "\
55d0a000-55d0b000 r--p 00000000 08:01 12 /usr/bin/x
Size:                  4 kB
VmFlags: rd mr mw me
7f0000000000-7f0000400000 rw-p 00000000 00:00 0
Size:               4096 kB
AnonHugePages:      2048 kB
VmFlags: rd wr mr mw me ac hg
7f0000400000-7f0000500000 rw-p 00000000 00:00 0
Size:               1024 kB
VmFlags: rd wr mr mw me ac
";
        assert!(mapping_asks_for_huge_pages(smaps, 0x7f0000000000));
        assert!(mapping_asks_for_huge_pages(smaps, 0x7f00003fffff));
        assert!(!mapping_asks_for_huge_pages(smaps, 0x7f0000400000));
        assert!(!mapping_asks_for_huge_pages(smaps, 0x55d0a800));
        assert!(!mapping_asks_for_huge_pages(smaps, 0x1000));
        assert!(!mapping_asks_for_huge_pages("", 0x7f0000000000));
    }
}

//! What a running process uses, read from `/proc`: CPU time and resident memory.

use std::time::Duration;

/// Ticks per second of the CPU times in `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux whatever
/// the kernel's own tick rate).
const USER_HZ: u64 = 100;

/// CPU time process `pid` has used so far, user and system, all threads (10 ms resolution).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
    // Fields after the command name (in parentheses, which may hold spaces): state is the
    // 3rd field of the line, utime the 14th and stime the 15th.
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 1000 / USER_HZ)
}

/// Process `pid`'s resident memory now (`VmRSS`) and at its peak (`VmHWM`), in bytes.
pub fn rss_bytes(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
    };
    (kib("VmRSS:") * 1024, kib("VmHWM:") * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_uses_cpu_and_memory() {
        let pid = std::process::id();
        let before = cpu_time(pid);
        // Spin until 100 ms of CPU time show; on a loaded machine that takes longer than 100 ms
        // of wall time, so only a reading that never moves fails.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_time(pid) < before + Duration::from_millis(100)
            && started.elapsed() < Duration::from_secs(30)
        {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        assert!(cpu_time(pid) >= before + Duration::from_millis(100));
        let (rss, peak) = rss_bytes(pid);
        assert!(rss > 1 << 20 && peak >= rss);
    }
}

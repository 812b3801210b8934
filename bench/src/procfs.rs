//! What the kernel says about processes and the machine: CPU time, peak RSS, load average
//! and the machine's description, from `/proc` (and `getrusage` for waited-for children).

/// Clock ticks per second, the unit of [`process_cpu_ticks`].
pub fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// utime + stime of a process (all its threads), in clock ticks; `None` once it is gone.
pub fn process_cpu_ticks(pid: u32) -> Option<u64> {
    cpu_ticks_of_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime from a `/proc/<pid>/stat` line.
fn cpu_ticks_of_stat(stat: &str) -> Option<u64> {
    // The command name, in parentheses, may hold spaces and parentheses itself: count the
    // fields from its last `)`. State is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds of the children this process has waited for (wrk, once its load finished).
pub fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_CHILDREN is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) != 0 {
            return f64::NAN;
        }
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The peak resident set size (`VmHWM`) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&status, "VmHWM:")
}

/// The machine's memory (`MemTotal`), in KiB.
pub fn memory_total_kib() -> Option<u64> {
    kib_field(&std::fs::read_to_string("/proc/meminfo").ok()?, "MemTotal:")
}

/// The number after `key` in `/proc`'s `key   value kB` lines.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` prints them; `?` when unreadable.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".to_owned())
}

/// The first CPU's `model name`.
pub fn cpu_model() -> Option<String> {
    cpu_model_of(&std::fs::read_to_string("/proc/cpuinfo").ok()?)
}

fn cpu_model_of(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
}

/// The kernel's release (`uname -r`); empty when unreadable.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_count_from_the_last_parenthesis() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
                    731 269 0 0 20 0 2 0 123456 10000000 2000 18446744073709551615";
        assert_eq!(cpu_ticks_of_stat(stat), Some(731 + 269));
        assert_eq!(cpu_ticks_of_stat("4242 (short) S 1"), None);
    }

    #[test]
    fn kib_fields_of_status_and_meminfo() {
        let status = "Name:\tbench-server\nVmPeak:\t  20000 kB\nVmHWM:\t    8123 kB\n";
        assert_eq!(kib_field(status, "VmHWM:"), Some(8123));
        assert_eq!(
            kib_field("MemTotal:       16318412 kB\n", "MemTotal:"),
            Some(16318412)
        );
        assert_eq!(kib_field(status, "VmRSS:"), None);
    }

    #[test]
    fn cpu_model_line() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n";
        assert_eq!(cpu_model_of(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
    }
}

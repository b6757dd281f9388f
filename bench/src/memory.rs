//! Comparison 5, memory: resident set sizes from `/proc/<pid>/status` (the
//! benchmark runs as root or as the server's user, so it can read the backend's).

use crate::clients::BenchResult;
use crate::report::Target;

/// The resident set of one process, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Rss {
    /// `VmRSS`: everything resident, shared memory pages this process touched included.
    pub total_kib: u64,
    /// `RssAnon`: resident private memory (heap, stacks): where a leak shows.
    pub anon_kib: u64,
}

impl Rss {
    /// The resident set of process `pid`.
    pub fn of_pid(pid: i32) -> BenchResult<Rss> {
        Rss::parse(&std::fs::read_to_string(format!("/proc/{pid}/status"))?)
    }

    /// The resident set of this process.
    pub fn of_self() -> BenchResult<Rss> {
        Rss::parse(&std::fs::read_to_string("/proc/self/status")?)
    }

    fn parse(status: &str) -> BenchResult<Rss> {
        let field = |name: &str| -> BenchResult<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| format!("no {name} in /proc/<pid>/status").into())
        };
        Ok(Rss {
            total_kib: field("VmRSS:")?,
            anon_kib: field("RssAnon:")?,
        })
    }
}

/// CPU time (user + system) process `pid` has used so far, in seconds.
pub fn cpu_seconds(pid: i32) -> BenchResult<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after its `)` are fixed.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `)`.
    let ticks = |i: usize| -> BenchResult<f64> {
        Ok(fields
            .get(i)
            .ok_or("short /proc/<pid>/stat")?
            .parse::<f64>()?)
    };
    // USER_HZ is 100 on every Linux architecture PostgreSQL runs on.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// A process's resident set before and after a loop.
#[derive(Debug, Clone)]
pub struct Growth {
    /// Which process, across what.
    pub what: String,
    /// Before the loop (after a warm-up).
    pub before: Rss,
    /// After the loop.
    pub after: Rss,
    /// A PostgreSQL backend (the limit applies), else this client.
    pub backend: bool,
}

/// The limit on backend growth across the loops.
pub const BACKEND_LIMIT_KIB: i64 = 1024;

impl Growth {
    /// Growth of `VmRSS` in KiB.
    pub fn total_kib(&self) -> i64 {
        self.after.total_kib as i64 - self.before.total_kib as i64
    }

    /// Growth of `RssAnon` in KiB.
    pub fn anon_kib(&self) -> i64 {
        self.after.anon_kib as i64 - self.before.anon_kib as i64
    }

    /// For a backend: private memory may grow by at most 1 MiB.
    pub fn target(&self) -> Option<Target> {
        self.backend.then(|| Target {
            goal: "backend private memory (RssAnon) growth ≤ 1 MiB".into(),
            measured: format!("{} KiB", self.anon_kib()),
            met: self.anon_kib() <= BACKEND_LIMIT_KIB,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vmrss_and_rssanon() {
        let status =
            "Name:\tpostgres\nVmRSS:\t   12345 kB\nRssAnon:\t    2048 kB\nRssFile:\t1 kB\n";
        let rss = Rss::parse(status).unwrap();
        assert_eq!((rss.total_kib, rss.anon_kib), (12345, 2048));
        assert!(Rss::of_self().unwrap().total_kib > 0);
    }
}

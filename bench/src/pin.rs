//! Pinning the server and this client to different cores, so that the two
//! sides of a measurement do not take turns on one core while the other
//! idles. Best effort: on a machine with one core, or without `taskset`, the
//! run goes on unpinned and the report says so.

use std::path::Path;
use std::process::Command;

/// Pins every process of the server whose data directory is `data_dir` (the
/// postmaster, the processes it started, and every backend it forks later,
/// which inherit its affinity) to the last core, and this process (all its
/// threads, and the pgbench and openssl processes it starts) to the others.
/// Returns the line the report prints.
pub fn pin(data_dir: &Path) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        return "not pinned (one core)".into();
    }
    let Some(postmaster) = std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return "not pinned (no postmaster.pid)".into();
    };
    let server_core = cores - 1;
    let client_cores = format!("0-{}", server_core - 1);
    let mut server = vec![postmaster];
    server.extend(children(postmaster));
    let pinned = server
        .iter()
        .all(|pid| taskset(&server_core.to_string(), *pid))
        && taskset(&client_cores, std::process::id());
    if pinned {
        format!("server pinned to core {server_core}, client to cores {client_cores}")
    } else {
        "not pinned (taskset failed)".into()
    }
}

fn taskset(cores: &str, pid: u32) -> bool {
    Command::new("taskset")
        .args(["-a", "-c", "-p", cores, &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The pids whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command name may hold spaces; the fields after it do not.
                    let rest = &stat[stat.rfind(')')? + 2..];
                    rest.split(' ').nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

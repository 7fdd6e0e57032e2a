//! The processes under test: started on free ports, stopped when dropped, and measured for
//! peak resident memory and CPU time.
//!
//! Peak RSS is the kernel's own high-water mark (`VmHWM` in `/proc/<pid>/status`), summed
//! over the process and its children (nginx's workers). Before each measurement the mark
//! is reset (`5` to `/proc/<pid>/clear_refs`), so the peak reported is that measurement's.
//! CPU time is user + system time from `/proc/<pid>/stat`, summed the same way.
//!
//! Stopping kills the children too: a killed nginx master does not take its worker with
//! it, and an orphaned worker would keep the port and its memory after the run.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// A running process; killed, with its children, when dropped.
pub struct Process {
    pub name: String,
    child: Child,
}

impl Process {
    /// Starts `program` with `env`, its output appended to `log_dir/<name>.log`.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = std::fs::File::create(log_dir.join(format!("{name}.log")))
            .with_context(|| format!("failed to create the log of {name}"))?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {name} ({})", program.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Resets the kernel's peak-RSS mark of the process and its children.
    pub fn reset_peak_rss(&self) {
        for pid in self.pid().map(family).unwrap_or_default() {
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
    }

    /// Peak RSS in bytes since the last reset, summed over the process and its children.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        self.sum_over_family("VmHWM:")
    }

    /// RSS in bytes now, summed over the process and its children.
    pub fn rss_bytes(&self) -> Option<u64> {
        self.sum_over_family("VmRSS:")
    }

    /// CPU time (user + system) in seconds the process and its children have used so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pids = family(self.pid()?);
        let ticks: u64 = pids.iter().filter_map(|pid| cpu_ticks(*pid)).sum();
        Some(ticks as f64 / USER_HZ)
    }

    fn sum_over_family(&self, field: &str) -> Option<u64> {
        let pids = family(self.pid()?);
        let total: u64 = pids.iter().filter_map(|pid| status_bytes(*pid, field)).sum();
        (total > 0).then_some(total)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The children are listed before their parent dies, and killed after it, so a
        // parent that restarts dead children (nginx's master) has none left to restart.
        let children: Vec<u32> = self.pid().map(family).unwrap_or_default().into_iter().skip(1).collect();
        let _ = self.child.start_kill();
        for pid in children {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// `pid` and its direct children.
fn family(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.filter_map(Result::ok) {
            if let Ok(children) = std::fs::read_to_string(task.path().join("children")) {
                pids.extend(
                    children
                        .split_whitespace()
                        .filter_map(|child| child.parse::<u32>().ok()),
                );
            }
        }
    }
    pids
}

/// The unit of `/proc/<pid>/stat`'s times: fixed at 100 by Linux's user ABI, whatever the
/// kernel's own tick rate.
const USER_HZ: f64 = 100.0;

/// `utime + stime` of `/proc/<pid>/stat`, in [`USER_HZ`] ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let mut fields = stat_fields(pid)?.into_iter();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The fields of `/proc/<pid>/stat` after the command name, from the state (field 3) on;
/// `None` once the process is gone.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let (_, after_name) = stat.rsplit_once(')')?;
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// A memory `field` of `/proc/<pid>/status` (given in kB there), in bytes.
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// A port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("failed to find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `url` answers 2xx (a GET), failing after `timeout`.
pub async fn wait_ready(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{url} did not become ready within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process's state letter (`S` sleeping, `Z` zombie…), `None` once it is gone.
    fn state(pid: u32) -> Option<char> {
        stat_fields(pid)?.first()?.chars().next()
    }

    #[tokio::test]
    async fn a_stopped_process_takes_its_children_with_it() {
        let logs = tempfile::tempdir().unwrap();
        let parent = Process::start(
            "parent",
            Path::new("/bin/sh"),
            &["-c", "sleep 600 & wait"],
            &[],
            logs.path(),
        )
        .unwrap();
        let parent_pid = parent.pid().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let child = loop {
            if let Some(child) = family(parent_pid).get(1) {
                break *child;
            }
            assert!(Instant::now() < deadline, "the shell never started its child");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };

        drop(parent);

        // Killed means gone, or a zombie nobody has reaped yet; never still running.
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(letter) = state(child).filter(|letter| *letter != 'Z') {
            assert!(
                Instant::now() < deadline,
                "the child outlived its parent (state {letter})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

//! Wall time and peak resident memory of a child process, from the kernel's own
//! accounting (`wait4`), so no `/usr/bin/time` is needed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Measured {
    pub wall: Duration,
    /// Peak resident set size of the child (and of its waited-for descendants), bytes.
    pub peak_rss: u64,
    pub stdout: String,
}

/// Runs `command` to completion; a non-zero exit is an error carrying its stderr.
pub fn run_measured(mut command: Command, what: &str) -> Result<Measured, String> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("cannot start {what}: {e}"))?;
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out_pipe = child.stdout.take().expect("piped");
    let mut err_pipe = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out_pipe, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err_pipe, &mut s).ok();
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, which we reap here
    // instead of through `Child::wait`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if reaped != pid {
        return Err(format!("waiting for {what} failed: {}", std::io::Error::last_os_error()));
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !exited_ok {
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("{what} failed (wait status {status}):\n{}", tail.join("\n")));
    }
    // Linux reports ru_maxrss in KiB.
    Ok(Measured { wall, peak_rss: usage.ru_maxrss as u64 * 1024, stdout })
}

pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_process_that_allocates() {
        // python is not guaranteed; `sh` with a big here-string allocation is.
        let mut c = Command::new("sh");
        c.args(["-c", "x=$(head -c 50000000 /dev/zero | tr '\\0' a); echo ${#x}"]);
        let m = run_measured(c, "sh").unwrap();
        assert_eq!(m.stdout.trim(), "50000000");
        assert!(m.peak_rss > 50_000_000, "peak {}", m.peak_rss);
    }

    #[test]
    fn failure_carries_stderr() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo broken >&2; exit 3"]);
        let e = run_measured(c, "sh").unwrap_err();
        assert!(e.contains("broken"), "{e}");
    }
}

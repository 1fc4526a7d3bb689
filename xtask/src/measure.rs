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
    let waited = perturb_pipeline::runner::wait_measured(child).map_err(|e| format!("waiting for {what} failed: {e}"))?;
    let wall = start.elapsed();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !waited.success {
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("{what} failed (wait status {}):\n{}", waited.status, tail.join("\n")));
    }
    Ok(Measured { wall, peak_rss: waited.peak_rss_bytes.unwrap_or(0), stdout })
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

//! Running a list of `perturb` invocations as a resumable, parallel pipeline.
//!
//! Every job has a key: a hash of its command line, of anything else it reads that the
//! command line does not name (`salt`: an input file's content), and of the keys of the
//! jobs it depends on. A job whose output exists and whose stored key matches is up to
//! date and skipped; a changed parameter changes the key of its job and of everything
//! downstream, and only those run again. Stages write their outputs atomically and the
//! key is stored only after the job succeeded, so a killed run resumes where it stopped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};

/// One `perturb` invocation.
#[derive(Debug, Clone)]
pub struct Job {
    /// What the progress lines call it, e.g. `train app_plus double seed 1`.
    pub id: String,
    /// Arguments of `perturb`.
    pub args: Vec<String>,
    /// The file or folder it produces.
    pub output: PathBuf,
    /// Jobs (indices into the list) that must finish first.
    pub deps: Vec<usize>,
    /// Anything else the output depends on (e.g. the content hash of an input file).
    pub salt: String,
}

impl Job {
    pub fn new(id: impl Into<String>, args: Vec<String>, output: impl Into<PathBuf>, deps: Vec<usize>) -> Job {
        Job { id: id.into(), args, output: output.into(), deps, salt: String::new() }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub ran: usize,
    pub up_to_date: usize,
}

pub struct Runner {
    /// The `perturb` binary.
    pub perturb: PathBuf,
    /// Where `perturb` runs (relative paths in arguments are relative to it).
    pub workdir: PathBuf,
    /// Keys and logs go to `state/keys` and `state/logs`.
    pub state: PathBuf,
    pub parallel: usize,
    /// Ignore stored keys: run everything.
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Running,
    Done,
    Failed,
}

/// The keys of `jobs`, in order (a job's dependencies come before it). Paths under `home`
/// (the results folder) are hashed relative to it, so a moved or copied results folder
/// keeps its finished stages.
pub fn keys(jobs: &[Job], home: &Path) -> Result<Vec<String>, String> {
    let home = home.to_string_lossy();
    let mut keys: Vec<String> = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        for a in &job.args {
            h.update([0u8]);
            let relative = if home.is_empty() { a.clone() } else { a.replace(home.as_ref(), "$OUT") };
            h.update(relative.as_bytes());
        }
        h.update([1u8]);
        h.update(job.salt.as_bytes());
        for &d in &job.deps {
            if d >= i {
                return Err(format!("job '{}' depends on a later job", job.id));
            }
            h.update([2u8]);
            h.update(keys[d].as_bytes());
        }
        keys.push(format!("{:x}", h.finalize()));
    }
    Ok(keys)
}

fn key_file(state: &Path, id: &str) -> PathBuf {
    let name: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    state.join("keys").join(name)
}

fn stage_file(state: &Path, id: &str) -> PathBuf {
    key_file(state, id).to_string_lossy().replace("/keys/", "/stages/").into()
}

/// One stage as it ran: its wall time and its peak resident memory (the kernel's
/// account of the `perturb` process, from `wait4`), kept in `.state/stages/` for
/// `cargo xtask bench study`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageRecord {
    pub id: String,
    /// The `perturb` subcommand.
    pub stage: String,
    pub wall_seconds: f64,
    /// `None` where the platform does not report it.
    pub peak_rss_bytes: Option<u64>,
}

impl StageRecord {
    fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).expect("a stage record serialises");
        perturb_core::table::write_bytes_atomically(path, text.as_bytes()).map_err(|e| e.to_string())
    }

    fn read(path: &Path) -> Result<StageRecord, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not a stage record ({e})", path.display()))
    }
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited {
    /// Exited with status 0.
    pub success: bool,
    /// The raw wait status, for messages.
    pub status: i32,
    /// Peak resident set size of the child and of the descendants it waited for, from
    /// the kernel's accounting; `None` off Linux.
    pub peak_rss_bytes: Option<u64>,
}

/// Waits for `child` (reaping it) and reads its peak RSS: the runner's stage records and
/// the xtask benchmarks measure processes the same way.
#[cfg(target_os = "linux")]
pub fn wait_measured(child: std::process::Child) -> std::io::Result<Waited> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in; the child is ours and is reaped
    // here rather than through `Child::wait` (which is never called on it).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // Linux reports ru_maxrss in KiB.
    Ok(Waited { success, status, peak_rss_bytes: Some(usage.ru_maxrss as u64 * 1024) })
}

#[cfg(not(target_os = "linux"))]
pub fn wait_measured(mut child: std::process::Child) -> std::io::Result<Waited> {
    let status = child.wait()?;
    Ok(Waited { success: status.success(), status: status.code().unwrap_or(-1), peak_rss_bytes: None })
}

/// What was measured of the stages that ran under the state folder `state` (the latest
/// run of each), in no particular order; none if no stage has run there.
pub fn stage_records(state: &Path) -> Result<Vec<StageRecord>, String> {
    let dir = state.join("stages");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        records.push(StageRecord::read(&path)?);
    }
    Ok(records)
}

fn log_file(state: &Path, id: &str) -> PathBuf {
    key_file(state, id).to_string_lossy().replace("/keys/", "/logs/").into()
}

/// What a key file holds while its job runs: the job's output is this study's from the
/// moment it is started, so a stage killed after it wrote its output is still known.
const PENDING: &str = "pending";

/// Removes a stale output of this study, and what a killed stage may have left beside it.
fn clear(output: &Path) -> Result<(), String> {
    let removed = if output.is_dir() {
        std::fs::remove_dir_all(output)
    } else if output.exists() {
        std::fs::remove_file(output)
    } else {
        Ok(())
    };
    removed.map_err(|e| format!("{}: cannot remove the stale output ({e})", output.display()))?;
    perturb_core::guard::clear_leftovers(output);
    Ok(())
}

impl Runner {
    /// Whether `job` (with `key`) is already done.
    fn up_to_date(&self, job: &Job, key: &str) -> bool {
        !self.force && job.output.exists() && std::fs::read_to_string(key_file(&self.state, &job.id)).is_ok_and(|k| k.trim() == key)
    }

    /// Whether this study wrote `job`'s output (or started to): its key file exists.
    fn owns(&self, job: &Job) -> bool {
        key_file(&self.state, &job.id).is_file()
    }

    /// An output in the way that this study did not write: it is the user's, and stays.
    fn refuse_foreign(&self, job: &Job) -> Result<(), String> {
        if job.output.exists() && !self.owns(job) {
            return Err(format!(
                "{}: exists but this study did not write it (no record in {}); move it away or choose another --out — nothing was removed",
                job.output.display(),
                self.state.display()
            ));
        }
        Ok(())
    }

    fn execute(&self, job: &Job, key: &str) -> Result<f64, String> {
        self.refuse_foreign(job)?;
        clear(&job.output)?;
        perturb_core::table::write_bytes_atomically(&key_file(&self.state, &job.id), PENDING.as_bytes()).map_err(|e| e.to_string())?;
        let log = log_file(&self.state, &job.id);
        let started = Instant::now();
        // The stage writes straight into its log, so a long stage can be followed with
        // `tail -f` and a killed one leaves what it had printed.
        let log_error = |e: std::io::Error| format!("{}: {e}", log.display());
        let mut file = std::fs::File::create(&log).map_err(log_error)?;
        writeln!(file, "$ perturb {}", job.args.join(" ")).map_err(log_error)?;
        let stderr = file.try_clone().map_err(log_error)?;
        let child = Command::new(&self.perturb)
            .args(&job.args)
            .current_dir(&self.workdir)
            .stdout(file)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.perturb.display()))?;
        let waited = wait_measured(child).map_err(|e| format!("waiting for {}: {e}", job.id))?;
        if !waited.success {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let last = text.lines().rev().find(|l| !l.trim().is_empty() && !l.starts_with("$ perturb")).unwrap_or("(no message)");
            return Err(format!("{} failed: {last} (log: {}); finished stages are kept, rerun to resume", job.id, log.display()));
        }
        let wall_seconds = started.elapsed().as_secs_f64();
        let record =
            StageRecord { id: job.id.clone(), stage: job.args.first().cloned().unwrap_or_default(), wall_seconds, peak_rss_bytes: waited.peak_rss_bytes };
        record.write(&stage_file(&self.state, &job.id))?;
        perturb_core::table::write_bytes_atomically(&key_file(&self.state, &job.id), key.as_bytes()).map_err(|e| e.to_string())?;
        Ok(wall_seconds)
    }

    /// The keys of `jobs`, paths relative to the results folder that holds `state`.
    pub fn keys(&self, jobs: &[Job]) -> Result<Vec<String>, String> {
        keys(jobs, self.state.parent().unwrap_or(Path::new("")))
    }

    /// Runs `jobs` (dependencies first in the list), up to `parallel` at a time; prints a
    /// line per job and stops scheduling at the first failure.
    pub fn run(&self, jobs: &[Job]) -> Result<RunSummary, String> {
        let keys = self.keys(jobs)?;
        for dir in ["keys", "logs", "stages"] {
            std::fs::create_dir_all(self.state.join(dir)).map_err(|e| format!("{}: {e}", self.state.display()))?;
        }
        let status = self.settle_up_to_date(jobs, &keys);
        let mut summary = RunSummary { up_to_date: status.iter().filter(|s| **s == Status::Done).count(), ..RunSummary::default() };
        // Nothing runs if any stage would have to replace a file the user made.
        for (job, _) in jobs.iter().zip(&status).filter(|(_, s)| **s == Status::Pending) {
            self.refuse_foreign(job)?;
        }
        let to_run = status.iter().filter(|s| **s == Status::Pending).count();
        if to_run == 0 {
            println!("all {} stages are up to date", jobs.len());
            return Ok(summary);
        }
        println!("{} of {} stages to run ({} up to date), {} at a time", to_run, jobs.len(), summary.up_to_date, self.parallel.max(1));
        let progress = Progress::new(to_run);
        let schedule = Schedule { jobs, status: Mutex::new(ScheduleState { status, failure: None, ran: 0 }), wake: Condvar::new() };
        let finished = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            if progress.bar.is_some() {
                scope.spawn(|| {
                    while !finished.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(std::time::Duration::from_millis(250));
                        progress.refresh();
                    }
                });
            }
            let workers: Vec<_> = (0..self.parallel.max(1)).map(|_| scope.spawn(|| self.work(&schedule, &keys, &progress))).collect();
            for worker in workers {
                let _ = worker.join();
            }
            finished.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        progress.done();
        let ScheduleState { failure, ran, .. } = schedule.status.into_inner().expect("runner state");
        summary.ran = ran;
        match failure {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }

    /// Each job's status before any runs: up-to-date jobs are settled first, in order: a
    /// job is only up to date if every job it depends on is too (its key includes theirs,
    /// and they did not rerun).
    fn settle_up_to_date(&self, jobs: &[Job], keys: &[String]) -> Vec<Status> {
        let mut status = vec![Status::Pending; jobs.len()];
        for (i, job) in jobs.iter().enumerate() {
            if job.deps.iter().all(|&d| status[d] == Status::Done) && self.up_to_date(job, &keys[i]) {
                status[i] = Status::Done;
            }
        }
        status
    }

    /// One worker: runs the next ready job until none is left or one has failed.
    fn work(&self, schedule: &Schedule, keys: &[String], progress: &Progress) {
        while let Some(i) = schedule.next_ready() {
            let job = &schedule.jobs[i];
            progress.start(&job.id, log_file(&self.state, &job.id));
            let result = self.execute(job, &keys[i]);
            let mut state = schedule.status.lock().expect("runner state");
            match result {
                Ok(seconds) => {
                    state.status[i] = Status::Done;
                    state.ran += 1;
                    progress.finish(&job.id, seconds);
                }
                Err(e) => {
                    state.status[i] = Status::Failed;
                    state.failure.get_or_insert(e);
                }
            }
            schedule.wake.notify_all();
        }
        schedule.wake.notify_all();
    }
}

/// The jobs of a run and where each stands, shared by the workers.
struct Schedule<'j> {
    jobs: &'j [Job],
    status: Mutex<ScheduleState>,
    /// Woken whenever a job finishes, so that workers waiting on its dependants look again.
    wake: Condvar,
}

struct ScheduleState {
    status: Vec<Status>,
    /// The first failure: no job starts after it.
    failure: Option<String>,
    ran: usize,
}

impl Schedule<'_> {
    /// Marks the first pending job whose dependencies are done as running and returns it;
    /// waits while only running jobs could make one ready; `None` when nothing is left to
    /// start or a job has failed.
    fn next_ready(&self) -> Option<usize> {
        let mut guard = self.status.lock().expect("runner state");
        loop {
            let state = &mut *guard;
            if state.failure.is_some() {
                return None;
            }
            let ready = |i: usize| state.status[i] == Status::Pending && self.jobs[i].deps.iter().all(|&d| state.status[d] == Status::Done);
            if let Some(i) = (0..self.jobs.len()).find(|&i| ready(i)) {
                state.status[i] = Status::Running;
                return Some(i);
            }
            if !state.status.contains(&Status::Running) {
                return None;
            }
            guard = self.wake.wait(guard).expect("runner state");
        }
    }
}

/// A bar over the jobs to run when stderr is a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    /// The stages running now and their logs: the bar shows each one's latest line
    /// (a training stage prints its epoch, loss and validation L2 there).
    running: Mutex<Vec<(String, PathBuf)>>,
}

impl Progress {
    fn new(total: usize) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("[{elapsed_precise}] [{bar:30}] {pos}/{len}\n{msg}").expect("valid template").progress_chars("=> "),
            );
            bar
        });
        Progress { bar, running: Mutex::new(Vec::new()) }
    }

    fn start(&self, id: &str, log: PathBuf) {
        self.running.lock().expect("progress").push((id.to_string(), log));
        self.refresh();
    }

    /// Rewrites the message: one line per running stage with the last line of its log.
    fn refresh(&self) {
        let Some(bar) = &self.bar else { return };
        let running = self.running.lock().expect("progress").clone();
        let lines: Vec<String> = running
            .iter()
            .map(|(id, log)| {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let last = text.lines().rev().find(|l| !l.trim().is_empty() && !l.starts_with("$ perturb")).unwrap_or("");
                let last: String = last.chars().take(100).collect();
                format!("  running {id}  {last}")
            })
            .collect();
        bar.set_message(lines.join("\n"));
    }

    fn finish(&self, id: &str, seconds: f64) {
        self.running.lock().expect("progress").retain(|(r, _)| r != id);
        self.refresh();
        let line = format!("  done {id} ({seconds:.1} s)");
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => println!("{line}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, args: &[&str], deps: Vec<usize>) -> Job {
        Job::new(id, args.iter().map(|a| a.to_string()).collect(), PathBuf::from(id), deps)
    }

    #[test]
    fn a_changed_parameter_changes_its_key_and_everything_downstream_only() {
        let a = vec![job("a", &["x", "1"], vec![]), job("b", &["y"], vec![0]), job("c", &["z"], vec![])];
        let mut b = a.clone();
        b[0].args[1] = "2".into();
        let home = Path::new("/results");
        let (ka, kb) = (keys(&a, home).unwrap(), keys(&b, home).unwrap());
        assert_ne!(ka[0], kb[0]);
        assert_ne!(ka[1], kb[1], "b depends on a");
        assert_eq!(ka[2], kb[2], "c does not");
        let mut c = a.clone();
        c[2].salt = "input changed".into();
        assert_ne!(keys(&c, home).unwrap()[2], ka[2]);
        assert!(keys(&[job("a", &[], vec![1]), job("b", &[], vec![])], home).is_err());
        // The same study in another folder has the same keys.
        let here = vec![job("a", &["--out", "/results/graph"], vec![])];
        let there = vec![job("a", &["--out", "/elsewhere/graph"], vec![])];
        assert_eq!(keys(&here, home).unwrap(), keys(&there, Path::new("/elsewhere")).unwrap());
        assert_ne!(keys(&here, home).unwrap(), keys(&there, home).unwrap());
    }

    #[test]
    fn only_outputs_this_study_wrote_are_ever_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".state");
        std::fs::create_dir_all(state.join("keys")).unwrap();
        std::fs::create_dir_all(state.join("logs")).unwrap();
        let runner = Runner { perturb: PathBuf::from("/bin/true"), workdir: dir.path().to_path_buf(), state: state.clone(), parallel: 1, force: false };
        let mine = dir.path().join("ingest");
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join("screen.h5ad"), b"precious").unwrap();
        let jobs = vec![Job::new("ingest", vec![], &mine, vec![])];
        let e = runner.run(&jobs).unwrap_err();
        assert!(e.contains("this study did not write it"), "{e}");
        assert_eq!(std::fs::read(mine.join("screen.h5ad")).unwrap(), b"precious");
        // Once the study has a record of the output, a stale one is its own to replace.
        std::fs::write(key_file(&state, "ingest"), PENDING).unwrap();
        std::fs::create_dir_all(dir.path().join(".ingest.staging-abc")).unwrap();
        runner.run(&jobs).unwrap();
        assert!(!mine.exists() && !dir.path().join(".ingest.staging-abc").exists());
        assert_ne!(std::fs::read_to_string(key_file(&state, "ingest")).unwrap(), PENDING);
    }

    #[test]
    fn every_stage_that_ran_leaves_its_wall_time_and_peak_memory_and_a_failure_none() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".state");
        // `sh -c SCRIPT` stands in for perturb: the job's arguments are the script.
        let runner = Runner { perturb: PathBuf::from("/bin/sh"), workdir: dir.path().to_path_buf(), state: state.clone(), parallel: 1, force: false };
        let out = dir.path().join("made");
        let script = format!("x=$(head -c 30000000 /dev/zero | tr '\\0' a); sleep 0.2; echo ${{#x}} > {}", out.display());
        let jobs = vec![Job::new("make it", vec!["-c".into(), script], &out, vec![])];
        runner.run(&jobs).unwrap();
        let records = stage_records(&state).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!((records[0].id.as_str(), records[0].stage.as_str()), ("make it", "-c"));
        assert!(records[0].wall_seconds >= 0.2, "{records:?}");
        assert!(records[0].peak_rss_bytes.unwrap() > 30_000_000, "{records:?}");

        let failing = vec![Job::new("fail", vec!["-c".into(), "exit 3".into()], dir.path().join("never"), vec![])];
        assert!(runner.run(&failing).is_err());
        assert_eq!(stage_records(&state).unwrap().len(), 1, "a failed stage is not recorded as a finished one");
    }
}

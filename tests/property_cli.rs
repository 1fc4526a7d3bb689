//! Property tests of the `perturb` binary: whatever bytes, AnnData files or option values
//! it is given, a stage ends with exit 0 (done), 1 (an error: one line on stderr starting
//! with `error: `) or 2 (clap's usage error) — never a panic (101), an abort (134), a
//! signal or a run that does not end — and a run that fails leaves nothing behind: no
//! output, no hidden staging folder, temp file or lock beside it.
//!
//! Cases per property (fixed seeds: the same cases run every time; about 40 s on two
//! cores in release mode):
//! - `ingest_survives_random_bytes`: 500 cases — random bytes as .h5ad / .csv / .csv.gz /
//!   .tsv, the HDF5 signature then random bytes, truncated, bit-flipped or overwritten
//!   copies of real .h5ad files (one simulated, five written by anndata: gzip, lzf, csc,
//!   dense), random CSV tables (plain, gzip, cut gzip; counts and pseudobulk);
//! - `ingest_survives_odd_anndata`: 400 cases — valid-but-odd AnnData written with
//!   `perturb_simulate::h5ad_write` (0-299 cells, 0-79 genes, duplicate / empty / unicode
//!   names, odd labels, huge, zero and fractional counts), one case in five with a
//!   corrupted CSR matrix or codes (which must then be refused), with random ingest options;
//! - `simulate_and_ingest_survive_random_option_values`: 100 simulate + 80 ingest cases;
//! - `later_stages_survive_random_option_values`: 80 graph + 50 eval + 160 train (APP and
//!   both siblings) + 100 predict cases.
//!
//! `PERTURB_PROPERTY_SCALE=K` runs K times as many cases (the usual ones first);
//! `PERTURB_PROPERTY_KEEP_GOING=1` does not stop (nor shrink) at the first failing case
//! but lists every one at the end; `PERTURB_PROPERTY_VERBOSE=1` prints every run's
//! command line, exit and first line of stderr. The inputs of failing cases are kept
//! under the target folder's `tmp/property_cli/`.
//!
//! Every run has a wall-clock bound ([`DEADLINE`]) and an address-space limit
//! ([`MEMORY_LIMIT`]): the fixtures are tiny, so a run that needs more tried to allocate
//! from a nonsense option and ends by abort, which the property reports.

mod common;

use std::cell::RefCell;
use std::fmt;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use perturb_core::Table;
use perturb_simulate::h5ad_write::{write_h5ad, CountScreen};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// Longest a single `perturb` run may take before it is killed and the case fails.
const DEADLINE: Duration = Duration::from_secs(30);
/// Address-space limit of every run (the fixtures need well under 1 GiB).
const MEMORY_LIMIT: u64 = 8 << 30;
/// Cells of the small simulated screens: simulate wants 10 per condition of its
/// norman-like design (225 with the control: at least 2,250).
const SMALL_SCREEN_CELLS: &str = "2300";

// ---------------------------------------------------------------------------------------
// Running `perturb` with a deadline, and the checks every case makes
// ---------------------------------------------------------------------------------------

/// One finished run of `perturb`.
struct Run {
    args: Vec<String>,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The command line, quoted for a shell.
    fn command_line(&self) -> String {
        let quote = |a: &String| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./+,:".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        };
        std::iter::once("perturb".to_string()).chain(self.args.iter().map(quote)).collect::<Vec<_>>().join(" ")
    }

    fn describe(&self, problem: &str) -> String {
        format!(
            "{problem}\n  command: {}\n  exit: {}\n  stdout: {}\n  stderr: {}",
            self.command_line(),
            exit_text(&self.status),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

fn exit_text(status: &ExitStatus) -> String {
    match status.code() {
        Some(c) => format!("code {c}"),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                format!("killed by signal {}", status.signal().unwrap_or(0))
            }
            #[cfg(not(unix))]
            {
                "no exit code".to_string()
            }
        }
    }
}

/// Runs `perturb ARGS` in the repository root (where the committed priors are found),
/// killing it if it has not ended within [`DEADLINE`].
fn perturb(args: &[String]) -> Result<Run, String> {
    let mut out = tempfile::tempfile().map_err(|e| e.to_string())?;
    let mut err = tempfile::tempfile().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perturb"));
    cmd.args(args).current_dir(common::root()).env_remove("RUST_LOG").stdin(Stdio::null());
    cmd.stdout(out.try_clone().map_err(|e| e.to_string())?).stderr(err.try_clone().map_err(|e| e.to_string())?);
    limit_memory(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start perturb: {e}"))?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            let run = Run { args: args.to_vec(), status: ExitStatus::default(), stdout: read_all(&mut out), stderr: read_all(&mut err) };
            return Err(format!(
                "did not end within {} s (killed)\n  command: {}\n  stdout: {}\n  stderr: {}",
                DEADLINE.as_secs(),
                run.command_line(),
                run.stdout.trim_end(),
                run.stderr.trim_end()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    let run = Run { args: args.to_vec(), status, stdout: read_all(&mut out), stderr: read_all(&mut err) };
    if std::env::var_os("PERTURB_PROPERTY_VERBOSE").is_some() {
        eprintln!("[{} {:.2}s] {} -> {}", exit_text(&run.status), started.elapsed().as_secs_f64(), run.command_line(), run.stderr.lines().next().unwrap_or(""));
    }
    Ok(run)
}

fn read_all(f: &mut fs::File) -> String {
    let mut bytes = Vec::new();
    let _ = f.seek(SeekFrom::Start(0)).and_then(|_| f.read_to_end(&mut bytes));
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(target_os = "linux")]
fn limit_memory(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; the closure touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: MEMORY_LIMIT as libc::rlim_t, rlim_max: MEMORY_LIMIT as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn limit_memory(_cmd: &mut Command) {}

/// The exit status is one of `allowed` (never a panic, an abort or a signal), and an
/// error (exit 1) is one non-empty line on stderr starting with `error: `.
fn check_exit(run: &Run, allowed: &[i32]) -> Result<i32, String> {
    let code = match run.status.code() {
        None => return Err(run.describe("died by a signal")),
        Some(101) => return Err(run.describe("panicked (exit 101)")),
        Some(134) => return Err(run.describe("aborted (exit 134)")),
        Some(c) if !allowed.contains(&c) => return Err(run.describe(&format!("exit {c} is not one of {allowed:?}"))),
        Some(c) => c,
    };
    if code == 1 {
        let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() != 1 || !lines[0].starts_with("error: ") {
            return Err(run.describe(&format!("an error should be one line starting with 'error: ', got {} lines", lines.len())));
        }
    }
    Ok(code)
}

/// Every path under `dir`, relative to it, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            names.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    names.sort();
    names
}

/// `case_dir` was empty before the run and holds only the run's outputs. After a failure
/// it is still empty: no output, no `.NAME.staging-*`, `.NAME.*.tmp` or `.NAME.lock`.
/// After a success every path of `expected` (relative to `case_dir`) is there and
/// nothing hidden is left, beside the output or inside it.
fn check_no_partial_output(run: &Run, code: i32, case_dir: &Path, expected: &[&str]) -> Result<(), String> {
    let names = listing(case_dir);
    if code != 0 {
        if !names.is_empty() {
            return Err(run.describe(&format!("a failed run left {names:?} in the output's folder")));
        }
        return Ok(());
    }
    for e in expected {
        if !names.iter().any(|n| n == e) {
            return Err(run.describe(&format!("exit 0 but no '{e}' (the folder holds {names:?})")));
        }
    }
    let hidden: Vec<&String> = names.iter().filter(|n| Path::new(n).file_name().is_some_and(|f| f.to_string_lossy().starts_with('.'))).collect();
    if !hidden.is_empty() {
        return Err(run.describe(&format!("a successful run left hidden files {hidden:?}")));
    }
    Ok(())
}

/// What a successful ingest writes into its folder `out`.
const INGEST_OUTPUTS: [&str; 4] = ["out/genes.parquet", "out/conditions.parquet", "out/pseudobulk.parquet", "out/manifest.json"];

/// A fresh, empty folder for one case's output.
fn case_dir(root: &Path, counter: &AtomicUsize) -> PathBuf {
    let dir = root.join(format!("case{}", counter.fetch_add(1, Ordering::Relaxed)));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Keeps a failing case's input under the target folder and says where.
fn keep_input(property: &str, input: &Path) -> String {
    static KEPT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("property_cli");
    let name = input.file_name().unwrap().to_string_lossy().into_owned();
    let kept = dir.join(format!("{property}-{}-{name}", KEPT.fetch_add(1, Ordering::Relaxed)));
    match fs::create_dir_all(&dir).and_then(|_| fs::copy(input, &kept)) {
        Ok(_) => format!("\n  input kept at: {}", kept.display()),
        Err(e) => format!("\n  (input not kept: {e})"),
    }
}

// ---------------------------------------------------------------------------------------
// The property runner: fixed seeds, no files beside the sources
// ---------------------------------------------------------------------------------------

fn scale() -> u32 {
    std::env::var("PERTURB_PROPERTY_SCALE").ok().and_then(|s| s.parse().ok()).filter(|&k| k >= 1).unwrap_or(1)
}

/// What a case came to: the exit status of its run, or skipped (valid but long).
enum Outcome {
    Exit(i32),
    Skipped,
}

/// Runs `test` on `cases` values of `strategy` drawn from a seed fixed by `name`; fails
/// with the smallest failing case proptest finds (or with every failing case, under
/// `PERTURB_PROPERTY_KEEP_GOING`). Prints how the cases ended.
fn check_property<S>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<Outcome, String>)
where
    S: Strategy,
    S::Value: fmt::Debug,
{
    let keep_going = std::env::var_os("PERTURB_PROPERTY_KEEP_GOING").is_some();
    let config = Config {
        cases: cases * scale(),
        failure_persistence: None,
        max_shrink_iters: if keep_going { 0 } else { 256 },
        max_shrink_time: 60_000,
        max_global_rejects: 100_000,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    // The seed: FNV-1a of the property's name, spread over 32 bytes.
    let mut seed = [0u8; 32];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        for b in name.bytes().chain([i as u8]) {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let failures = RefCell::new(Vec::new());
    let tally = RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    let started = Instant::now();
    let result = runner.run(&strategy, |value| match test(value) {
        Ok(outcome) => {
            let key = match outcome {
                Outcome::Exit(code) => format!("exit {code}"),
                Outcome::Skipped => s("skipped"),
            };
            *tally.borrow_mut().entry(key).or_default() += 1;
            Ok(())
        }
        Err(e) if keep_going => {
            failures.borrow_mut().push(e);
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(e)),
    });
    let tally: Vec<String> = tally.into_inner().into_iter().map(|(k, n)| format!("{k}: {n}")).collect();
    eprintln!("{name}: {} cases in {:.1} s ({})", cases * scale(), started.elapsed().as_secs_f64(), tally.join(", "));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, _)) => panic!("{name}: a failing case (after shrinking):\n{reason}"),
        Err(TestError::Abort(reason)) => panic!("{name}: aborted: {reason}"),
    }
    let failures = failures.into_inner();
    if !failures.is_empty() {
        panic!("{name}: {} failing cases:\n\n{}", failures.len(), failures.join("\n\n"));
    }
}

fn s(v: impl Into<String>) -> String {
    v.into()
}

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

/// Ingests `input` into `case_dir/out` with `extra` options and checks the run.
fn ingest_case(property: &str, input: &Path, extra: &[String], case_dir: &Path) -> Result<i32, String> {
    let out = case_dir.join("out");
    let mut args = vec![s("ingest"), format!("--input={}", p(input)), format!("--out={}", p(&out))];
    args.extend_from_slice(extra);
    let run = perturb(&args).map_err(|e| e + &keep_input(property, input))?;
    let checked = check_exit(&run, &[0, 1]).and_then(|code| check_no_partial_output(&run, code, case_dir, &INGEST_OUTPUTS).map(|()| code));
    checked.map_err(|e| e + &keep_input(property, input))
}

// ---------------------------------------------------------------------------------------
// Property 1: random bytes, and real files broken at random, as ingest's input
// ---------------------------------------------------------------------------------------

/// Bytes that print short.
#[derive(Clone)]
struct Blob(Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head: String = self.0.iter().take(24).map(|b| format!("{b:02x}")).collect();
        write!(f, "{} bytes [{head}{}]", self.0.len(), if self.0.len() > 24 { "…" } else { "" })
    }
}

/// Where in a file a position falls: its first or last 4 KiB (metadata), or anywhere.
#[derive(Debug, Clone, Copy)]
enum Region {
    Head,
    Tail,
    Anywhere,
}

fn position(region: Region, draw: u32, len: usize) -> usize {
    let window = len.min(4096);
    match region {
        Region::Head => draw as usize % window,
        Region::Tail => len - 1 - draw as usize % window,
        Region::Anywhere => draw as usize % len,
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(Region, u32),
    FlipBits(Vec<(Region, u32, u8)>),
    Overwrite(Region, u32, Blob),
}

#[derive(Debug, Clone)]
enum CsvLayout {
    Plain,
    Tab,
    Gzip,
    /// Gzip cut at this share (per mille) of its length.
    GzipTruncated(u16),
}

#[derive(Debug, Clone)]
enum RawInput {
    /// Random bytes under a name with this extension.
    Bytes(&'static str, Blob),
    /// `\x89HDF\r\n\x1a\n` then random bytes.
    Hdf5Signature(Blob),
    /// A real .h5ad (index into the bases) with a mutation.
    Broken(usize, Mutation),
    /// A table of text: header, rows of (label, values, ragged), odd values put in at
    /// (row draw, column draw).
    Csv { layout: CsvLayout, pseudobulk: bool, header: Vec<String>, rows: Vec<(String, Vec<String>, bool)>, odd_cells: Vec<(u16, u16, String)> },
    /// Random bytes, gzip-compressed, as .csv.gz.
    GzipBytes(Blob),
}

fn blob(max: usize) -> impl Strategy<Value = Blob> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Blob)
}

fn region() -> impl Strategy<Value = Region> {
    prop_oneof![Just(Region::Head), Just(Region::Tail), Just(Region::Anywhere)]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (region(), any::<u32>()).prop_map(|(r, at)| Mutation::Truncate(r, at)),
        3 => prop::collection::vec((region(), any::<u32>(), 0u8..8), 1..4).prop_map(Mutation::FlipBits),
        1 => (region(), any::<u32>(), blob(64)).prop_map(|(r, at, b)| Mutation::Overwrite(r, at, b)),
    ]
}

/// Gene symbols of clean lists: real ones first (the labels below name some), then G<i>.
const GENE_POOL: [&str; 10] = ["KLF1", "CBL", "CNN1", "SET", "FOXA1", "CEBPA", "TP53", "MYC", "GATA1", "SPI1"];

fn gene_symbol(i: usize) -> String {
    GENE_POOL.get(i).map_or_else(|| format!("G{i}"), |g| s(*g))
}

/// Odd names for genes, conditions and CSV headers: empty, controls, separators, spaces,
/// unicode, names that collide with others, random characters.
fn odd_name() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(GENE_POOL.to_vec()).prop_map(s),
        1 => (0u8..40).prop_map(|i| format!("G{i}")),
        4 => prop::sample::select(vec![
            "", "ctrl", "control", "A+B", "A_B", "gene with space", " padded ", "Ünïcødé", "\u{1F9EC}", "a,b", "x\ty", "\"q\"", "cell", "condition",
            "n_cells", "NaN", "0", "-", "+", "_", "ctrl+ctrl", "KLF1+ctrl", "klf1",
        ])
        .prop_map(s),
        1 => prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
    ]
}

/// Up to `max` odd replacements (position draw, value) for a clean list — none in half the cases.
fn oddities(max: usize, value: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<(u16, String)>> {
    prop_oneof![Just(Vec::new()), prop::collection::vec((any::<u16>(), value), 1..=max)]
}

fn apply_oddities(list: &mut [String], odd: &[(u16, String)]) {
    let n = list.len();
    for (at, v) in odd.iter().filter(|_| n > 0) {
        list[*at as usize % n] = v.clone();
    }
}

/// A gene list: `0..max` clean symbols with a few odd names put in.
fn gene_list(min: usize, max: usize) -> impl Strategy<Value = Vec<String>> {
    (min..max, oddities(3, odd_name())).prop_map(|(n, odd)| {
        let mut genes: Vec<String> = (0..n).map(gene_symbol).collect();
        apply_oddities(&mut genes, &odd);
        genes
    })
}

/// The genes that labels name: measured ones (while the list is long enough), and one
/// that is never measured.
fn label_gene() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["KLF1", "CBL", "CNN1", "SET", "FOXA1", "G12", "ZZZ9"])
}

/// A GEARS label: a single, a double, or (rarely) a bare gene.
fn clean_label() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => label_gene().prop_map(|g| format!("{g}+ctrl")),
        1 => label_gene().prop_map(|g| format!("ctrl+{g}")),
        3 => (label_gene(), label_gene()).prop_map(|(a, b)| format!("{a}+{b}")),
    ]
}

/// Odd condition labels: scPerturb forms, triples, doubled genes, case, nonsense.
fn odd_label() -> impl Strategy<Value = String> {
    let gene = || prop::sample::select(vec!["KLF1", "CBL", "G1", "ZZZ9", "klf1", "ctrl", ""]);
    prop_oneof![
        1 => Just(s("ctrl")),
        1 => (gene(), gene()).prop_map(|(a, b)| format!("{a}+{b}")),
        1 => (gene(), gene()).prop_map(|(a, b)| format!("{a}_{b}")),
        1 => (gene(), gene(), gene()).prop_map(|(a, b, c)| format!("{a}+{b}+{c}")),
        1 => gene().prop_map(s),
        2 => odd_name(),
    ]
}

/// Condition categories: the control, clean labels and a few odd ones; sometimes only
/// the control, or none at all.
fn categories() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        1 => Just(vec![s("ctrl")]),
        1 => Just(Vec::<String>::new()),
        8 => (prop::bool::weighted(0.9), prop::collection::vec(clean_label(), 0..8), oddities(2, odd_label())).prop_map(|(with_ctrl, labels, odd)| {
            let mut cats: Vec<String> = if with_ctrl { std::iter::once(s("ctrl")).chain(labels).collect() } else { labels };
            apply_oddities(&mut cats, &odd);
            cats
        }),
    ]
}

fn csv_count() -> impl Strategy<Value = String> {
    prop_oneof![6 => (0u32..20).prop_map(|v| v.to_string()), 1 => Just(s("0")), 1 => (0.0f64..100.0).prop_map(|v| format!("{v:.3}"))]
}

fn odd_csv_value() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["0.5", "-1", "nan", "NaN", "", " 2 ", "inf", "-inf", "1e400", "1e9", "abc", "1,5", "0x1", "+3", "1e-300", "\"3\""]).prop_map(s)
}

fn csv_input() -> impl Strategy<Value = RawInput> {
    let layout = prop_oneof![Just(CsvLayout::Plain), Just(CsvLayout::Tab), Just(CsvLayout::Gzip), (0u16..1000).prop_map(CsvLayout::GzipTruncated)];
    let first = prop_oneof![6 => Just(s("condition")), 1 => odd_name()];
    let header = (first, prop::option::of(Just(s("cell"))), gene_list(1, 12));
    let header = header.prop_map(|(first, cell, genes)| std::iter::once(first).chain(cell).chain(genes).collect::<Vec<_>>());
    let label = prop_oneof![4 => Just(s("ctrl")), 4 => clean_label(), 1 => odd_label()];
    let rows = prop::collection::vec((label, prop::collection::vec(csv_count(), 1..14), prop::bool::weighted(0.02)), 0..40);
    let odd_cells = oddities(3, odd_csv_value()).prop_flat_map(|odd| {
        let n = odd.len();
        (Just(odd), prop::collection::vec(any::<u16>(), n..=n))
    });
    (layout, prop::bool::weighted(0.2), header, rows, odd_cells).prop_map(|(layout, pseudobulk, header, rows, (odd, rows_at))| RawInput::Csv {
        layout,
        pseudobulk,
        header,
        rows,
        odd_cells: odd.into_iter().zip(rows_at).map(|((col, v), row)| (row, col, v)).collect(),
    })
}

fn raw_input(n_bases: usize) -> impl Strategy<Value = RawInput> {
    let ext = prop::sample::select(vec![".h5ad", ".csv", ".csv.gz", ".tsv"]);
    prop_oneof![
        2 => (ext, blob(2048)).prop_map(|(e, b)| RawInput::Bytes(e, b)),
        2 => blob(2048).prop_map(RawInput::Hdf5Signature),
        5 => (0..n_bases, mutation()).prop_map(|(i, m)| RawInput::Broken(i, m)),
        3 => csv_input(),
        1 => blob(512).prop_map(RawInput::GzipBytes),
    ]
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes the input into `dir`; returns its path and the extra ingest options it needs.
fn write_raw_input(input: &RawInput, bases: &[Vec<u8>], dir: &Path) -> (PathBuf, Vec<String>) {
    let (name, bytes, extra): (&str, Vec<u8>, Vec<String>) = match input {
        RawInput::Bytes(ext, b) => (ext, b.0.clone(), vec![]),
        RawInput::Hdf5Signature(b) => (".h5ad", [b"\x89HDF\r\n\x1a\n".as_slice(), &b.0].concat(), vec![]),
        RawInput::GzipBytes(b) => (".csv.gz", gzip(&b.0), vec![]),
        RawInput::Broken(i, m) => {
            let mut bytes = bases[*i].clone();
            match m {
                Mutation::Truncate(r, at) => bytes.truncate(position(*r, *at, bytes.len())),
                Mutation::FlipBits(flips) => {
                    for (r, at, bit) in flips {
                        let at = position(*r, *at, bytes.len());
                        bytes[at] ^= 1 << bit;
                    }
                }
                Mutation::Overwrite(r, at, b) => {
                    let at = position(*r, *at, bytes.len());
                    for (k, v) in b.0.iter().enumerate() {
                        if let Some(slot) = bytes.get_mut(at + k) {
                            *slot = *v;
                        }
                    }
                }
            }
            (".h5ad", bytes, vec![])
        }
        RawInput::Csv { layout, pseudobulk, header, rows, odd_cells } => {
            let sep = if matches!(layout, CsvLayout::Tab) { "\t" } else { "," };
            let width = header.len().saturating_sub(1);
            let mut table: Vec<Vec<String>> = rows
                .iter()
                .map(|(label, values, ragged)| {
                    let take = if *ragged { values.len() } else { width };
                    std::iter::once(label.clone()).chain(values.iter().cycle().take(take).cloned()).collect()
                })
                .collect();
            let n = table.len();
            for (row, col, v) in odd_cells.iter().filter(|_| n > 0) {
                let r = &mut table[*row as usize % n];
                let c = 1 + *col as usize % (r.len() - 1).max(1);
                if let Some(slot) = r.get_mut(c) {
                    *slot = v.clone();
                }
            }
            let mut text = header.join(sep) + "\n";
            for fields in table {
                text += &(fields.join(sep) + "\n");
            }
            let extra = if *pseudobulk { vec![s("--format=csv-pseudobulk")] } else { vec![] };
            match layout {
                CsvLayout::Plain => (".csv", text.into_bytes(), extra),
                CsvLayout::Tab => (".tsv", text.into_bytes(), extra),
                CsvLayout::Gzip => (".csv.gz", gzip(text.as_bytes()), extra),
                CsvLayout::GzipTruncated(permille) => {
                    let mut z = gzip(text.as_bytes());
                    z.truncate(z.len() * *permille as usize / 1000);
                    (".csv.gz", z, extra)
                }
            }
        }
    };
    let path = dir.join(format!("input{name}"));
    fs::write(&path, bytes).unwrap();
    (path, extra)
}

#[test]
fn ingest_survives_random_bytes() {
    const PROPERTY: &str = "random_bytes";
    let dir = tempfile::tempdir().unwrap();
    let simulated = dir.path().join("sim.h5ad");
    let run = perturb(&[s("simulate"), s("--n-genes=60"), format!("--n-cells={SMALL_SCREEN_CELLS}"), format!("--out={}", p(&simulated))]).unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", run.describe("the fixture"));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/h5ad");
    let mut bases = vec![fs::read(&simulated).unwrap()];
    for name in ["csr_gzip.h5ad", "lzf.h5ad", "csc_f64.h5ad", "dense_int.h5ad", "scperturb_style.h5ad"] {
        bases.push(fs::read(fixtures.join(name)).unwrap());
    }
    let counter = AtomicUsize::new(0);
    check_property(PROPERTY, 500, raw_input(bases.len()), |input| {
        let case = case_dir(dir.path(), &counter);
        let inputs = dir.path().join(format!("in{}", counter.load(Ordering::Relaxed)));
        fs::create_dir_all(&inputs).unwrap();
        let (path, extra) = write_raw_input(&input, &bases, &inputs);
        let result = ingest_case(PROPERTY, &path, &extra, &case);
        let _ = fs::remove_dir_all(&case);
        let _ = fs::remove_dir_all(&inputs);
        result.map(Outcome::Exit)
    });
}

// ---------------------------------------------------------------------------------------
// Property 2: valid-but-odd AnnData (and a few with a broken CSR structure)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum CountsMode {
    AsDrawn,
    Rounded,
    AllZero,
    TimesBillion,
}

#[derive(Debug, Clone, Copy)]
enum CellNames {
    Unique,
    AllSame,
    Empty,
}

/// A change that breaks the matrix or the codes (applied where the screen has the parts).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Corruption {
    IndptrDecreases,
    IndptrEndsPastData,
    IndptrEndsShort,
    IndptrStartsAtOne,
    IndexPastGenes,
    NegativeIndex,
    CodePastCategories,
    /// Odd but valid from here on: scipy allows these, anndata reads -1 as a missing value.
    UnsortedRow,
    DuplicateIndexInRow,
    MissingCode,
    NegativeCount,
    NanCount,
    InfiniteCount,
}

impl Corruption {
    /// Whether a reader must refuse the file (exit 1) rather than ingest it.
    fn must_refuse(self) -> bool {
        matches!(
            self,
            Corruption::IndptrDecreases
                | Corruption::IndptrEndsPastData
                | Corruption::IndptrEndsShort
                | Corruption::IndptrStartsAtOne
                | Corruption::IndexPastGenes
                | Corruption::NegativeIndex
                | Corruption::CodePastCategories
        )
    }
}

#[derive(Debug, Clone)]
struct OddScreen {
    genes: Vec<String>,
    categories: Vec<String>,
    /// Per cell: a draw for its category, and (gene draw, count) entries.
    cells: Vec<(u16, Vec<(u16, f32)>)>,
    counts: CountsMode,
    cell_names: CellNames,
    cell_type: String,
    corruption: Option<(Corruption, u16)>,
    options: Vec<&'static str>,
}

impl OddScreen {
    /// The screen, and the corruption if it could be applied.
    fn build(&self) -> (CountScreen, Option<Corruption>) {
        let (n_genes, n_cats) = (self.genes.len(), self.categories.len());
        let mut sc = CountScreen {
            cell_names: (0..self.cells.len())
                .map(|i| match self.cell_names {
                    CellNames::Unique => format!("cell{i}"),
                    CellNames::AllSame => s("AAAC-1"),
                    CellNames::Empty => String::new(),
                })
                .collect(),
            condition_categories: self.categories.clone(),
            condition_codes: self.cells.iter().map(|(c, _)| if n_cats == 0 { 0 } else { c % n_cats as u16 }).collect(),
            cell_types: vec![self.cell_type.clone()],
            cell_type_codes: vec![0; self.cells.len()],
            gene_names: self.genes.clone(),
            indptr: vec![0],
            indices: vec![],
            counts: vec![],
        };
        for (_, entries) in &self.cells {
            let mut row: Vec<(i32, f32)> = if n_genes == 0 { vec![] } else { entries.iter().map(|&(g, v)| ((g as usize % n_genes) as i32, v)).collect() };
            row.sort_by_key(|e| e.0);
            row.dedup_by_key(|e| e.0);
            for (g, v) in row {
                sc.indices.push(g);
                sc.counts.push(match self.counts {
                    CountsMode::AsDrawn => v,
                    CountsMode::Rounded => v.round(),
                    CountsMode::AllZero => 0.0,
                    CountsMode::TimesBillion => v * 1e9,
                });
            }
            sc.indptr.push(sc.indices.len() as i64);
        }
        let applied = self.corruption.and_then(|(c, draw)| corrupt(&mut sc, c, draw as usize).then_some(c));
        (sc, applied)
    }
}

/// Applies `c` to `sc` where it has the parts; says whether it did.
fn corrupt(sc: &mut CountScreen, c: Corruption, draw: usize) -> bool {
    let (n_cells, nnz) = (sc.cell_names.len(), sc.indices.len());
    let rows_with_two: Vec<usize> = (0..n_cells).filter(|&r| sc.indptr[r + 1] - sc.indptr[r] >= 2).collect();
    match c {
        Corruption::IndptrDecreases if n_cells >= 1 && nnz >= 1 => {
            let r = 1 + draw % n_cells;
            sc.indptr[r] = sc.indptr[r - 1] - 1;
        }
        Corruption::IndptrEndsPastData => sc.indptr[n_cells] += 1 + (draw % 5) as i64,
        Corruption::IndptrEndsShort if nnz >= 1 => sc.indptr[n_cells] -= 1,
        Corruption::IndptrStartsAtOne if nnz >= 1 && n_cells >= 1 => sc.indptr[0] = 1,
        Corruption::IndexPastGenes if nnz >= 1 => sc.indices[draw % nnz] = (sc.gene_names.len() + draw % 3) as i32,
        Corruption::NegativeIndex if nnz >= 1 => sc.indices[draw % nnz] = -1,
        Corruption::CodePastCategories if n_cells >= 1 => sc.condition_codes[draw % n_cells] = (sc.condition_categories.len() + draw % 3) as u16,
        Corruption::UnsortedRow if !rows_with_two.is_empty() => {
            let r = rows_with_two[draw % rows_with_two.len()];
            sc.indices[sc.indptr[r] as usize..sc.indptr[r + 1] as usize].reverse();
        }
        Corruption::DuplicateIndexInRow if !rows_with_two.is_empty() => {
            let start = sc.indptr[rows_with_two[draw % rows_with_two.len()]] as usize;
            sc.indices[start + 1] = sc.indices[start];
        }
        Corruption::MissingCode if n_cells >= 1 => sc.condition_codes[draw % n_cells] = u16::MAX, // written as -1
        Corruption::NegativeCount if nnz >= 1 => sc.counts[draw % nnz] = -3.0,
        Corruption::NanCount if nnz >= 1 => sc.counts[draw % nnz] = f32::NAN,
        Corruption::InfiniteCount if nnz >= 1 => sc.counts[draw % nnz] = f32::INFINITY,
        _ => return false,
    }
    true
}

fn count() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => (1u32..20).prop_map(|v| v as f32),
        2 => Just(0.0f32),
        1 => Just(1e9f32),
        2 => 0.0f32..5.0,
        1 => Just(1e-7f32),
        1 => Just(3e38f32),
    ]
}

fn odd_screen() -> impl Strategy<Value = OddScreen> {
    let corruption = prop::sample::select(vec![
        Corruption::IndptrDecreases,
        Corruption::IndptrEndsPastData,
        Corruption::IndptrEndsShort,
        Corruption::IndptrStartsAtOne,
        Corruption::IndexPastGenes,
        Corruption::NegativeIndex,
        Corruption::CodePastCategories,
        Corruption::UnsortedRow,
        Corruption::DuplicateIndexInRow,
        Corruption::MissingCode,
        Corruption::NegativeCount,
        Corruption::NanCount,
        Corruption::InfiniteCount,
    ]);
    // Ingest's options: an HVG flavour, a label syntax, a scale, and one more.
    let one_of = |choices: Vec<&'static str>| prop::sample::select(choices);
    let options = (
        one_of(vec!["", "", "", "--hvg-flavor=cell_ranger", "--hvg-flavor=seurat_v3"]),
        one_of(vec!["", "", "", "", "", "--condition-syntax=gears", "--condition-syntax=scperturb"]),
        one_of(vec!["", "", "", "", "", "--assume=counts", "--assume=lognorm"]),
        one_of(vec![
            "",
            "",
            "",
            "",
            "",
            "",
            "--n-top-genes=1",
            "--min-counts=5",
            "--hvg-cutoffs",
            "--control=",
            "--control=KLF1+ctrl",
            "--condition-key=cell_type",
            "--gene-key=_index",
            "--layer=raw",
            "--target-sum=1e-300",
        ]),
    )
        .prop_map(|(a, b, c, d)| [a, b, c, d].into_iter().filter(|o| !o.is_empty()).collect::<Vec<_>>());
    (
        gene_list(0, 80),
        categories(),
        prop::collection::vec((any::<u16>(), prop::collection::vec((any::<u16>(), count()), 0..12)), 0..300),
        prop_oneof![3 => Just(CountsMode::AsDrawn), 4 => Just(CountsMode::Rounded), 1 => Just(CountsMode::AllZero), 1 => Just(CountsMode::TimesBillion)],
        prop_oneof![6 => Just(CellNames::Unique), 1 => Just(CellNames::AllSame), 1 => Just(CellNames::Empty)],
        prop_oneof![3 => Just(s("K562")), 1 => odd_name()],
        prop_oneof![4 => Just(None), 1 => (corruption, any::<u16>()).prop_map(Some)],
        options,
    )
        .prop_map(|(genes, categories, cells, counts, cell_names, cell_type, corruption, options)| OddScreen {
            genes,
            categories,
            cells,
            counts,
            cell_names,
            cell_type,
            corruption,
            options,
        })
}

#[test]
fn ingest_survives_odd_anndata() {
    const PROPERTY: &str = "odd_anndata";
    let dir = tempfile::tempdir().unwrap();
    let counter = AtomicUsize::new(0);
    check_property(PROPERTY, 400, odd_screen(), |odd| {
        let (screen, corruption) = odd.build();
        let case = case_dir(dir.path(), &counter);
        let inputs = dir.path().join(format!("in{}", counter.load(Ordering::Relaxed)));
        fs::create_dir_all(&inputs).unwrap();
        let path = inputs.join("odd.h5ad");
        if let Err(e) = write_h5ad(&path, &screen) {
            // Not the CLI's business: the writer refused the screen.
            eprintln!("{PROPERTY}: write_h5ad refused a screen ({e}); case skipped");
            return Ok(Outcome::Skipped);
        }
        let extra: Vec<String> = odd.options.iter().map(|o| s(*o)).collect();
        let summary = format!(
            "\n  screen: {} cells x {} genes, categories {:?}, counts {:?}, cell names {:?}, corruption {:?}, ingest options {:?}",
            screen.n_cells(),
            screen.n_genes(),
            screen.condition_categories,
            odd.counts,
            odd.cell_names,
            corruption,
            extra
        );
        // A code past the categories (other than -1, a missing value) is broken too.
        let n_cats = screen.condition_categories.len();
        let code_out_of_range = screen.condition_codes.iter().any(|&c| c != u16::MAX && c as usize >= n_cats);
        let broken = corruption.filter(|c| c.must_refuse()).map(|c| format!("{c:?}")).or(code_out_of_range.then(|| s("a code past the categories")));
        let mut result = ingest_case(PROPERTY, &path, &extra, &case).map_err(|e| e + &summary);
        if let (Ok(0), Some(why)) = (&result, broken) {
            result = Err(format!("exit 0 on a screen with {why}: a broken file must be refused{summary}{}", keep_input(PROPERTY, &path)));
        }
        let _ = fs::remove_dir_all(&case);
        let _ = fs::remove_dir_all(&inputs);
        result.map(Outcome::Exit)
    });
}

// ---------------------------------------------------------------------------------------
// Property 3: random option values for every stage
// ---------------------------------------------------------------------------------------

/// A value for a numeric option: integers of every size and sign, floats from tiny to
/// huge, non-finite spellings and non-numbers.
fn option_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (-3i64..=3).prop_map(|v| v.to_string()),
        3 => (0u64..64).prop_map(|v| v.to_string()),
        1 => (64u64..100_000).prop_map(|v| v.to_string()),
        2 => prop::sample::select(vec![
            "1000000000000", "-1000000000000", "4294967296", "18446744073709551615", "18446744073709551616", "-9223372036854775808", "9223372036854775807",
        ])
        .prop_map(s),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        3 => prop::sample::select(vec!["0.0", "-0.0", "-0.5", "0.5", "1.5", "1e-30", "1e30", "1e308", "1e400", "-1e30", "5e-324"]).prop_map(s),
        1 => (-2.0f64..2.0).prop_map(|v| v.to_string()),
        3 => prop::sample::select(vec!["nan", "NaN", "inf", "-inf", "infinity", "", " ", "abc", "1,1", "0,1", "1,2,3", " 1", "1 ", "0x10", "1_000", "+1", "1e3", "٣"])
            .prop_map(s),
    ]
}

/// A `perturb` stage with one option set to a drawn value, in one of the stage's
/// variants (preset, HVG flavour, graph source, model kind, ...; see [`stage_command`]).
#[derive(Debug, Clone)]
struct OptionCase {
    option: &'static str,
    value: String,
    variant: u8,
}

/// The model kinds of `perturb train --model`.
const MODELS: [&str; 3] = ["app", "modules", "grn_vae"];

/// The shared inputs of the later stages: a small screen, ingested, its graph, its double
/// split and a 2-epoch model of each kind.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    h5ad: PathBuf,
    data: PathBuf,
    graph: PathBuf,
    split: PathBuf,
    train_conditions: PathBuf,
    /// The model folder of each of [`MODELS`].
    models: Vec<PathBuf>,
    /// Perturbed genes of the screen, for --perturbations.
    targets: Vec<String>,
}

fn must_succeed(args: Vec<String>) {
    let run = perturb(&args).unwrap_or_else(|e| panic!("fixture: {e}"));
    assert_eq!(run.status.code(), Some(0), "{}", run.describe("fixture"));
}

fn base_train_args(f: &Fixture, model: &str) -> Vec<(String, String)> {
    [
        ("--data", p(&f.data)),
        ("--graph", p(&f.graph)),
        ("--split", p(&f.split)),
        ("--model", s(model)),
        ("--epochs", s("2")),
        ("--hidden", s("8")),
        ("--device", s("cpu")),
    ]
    .into_iter()
    .map(|(k, v)| (s(k), v))
    .collect()
}

fn fixture(with_models: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let h5ad = root.join("screen.h5ad");
    must_succeed(vec![s("simulate"), s("--n-genes=100"), format!("--n-cells={SMALL_SCREEN_CELLS}"), format!("--out={}", p(&h5ad))]);
    let data = root.join("ingest");
    must_succeed(vec![s("ingest"), format!("--input={}", p(&h5ad)), format!("--out={}", p(&data))]);
    let mut f = Fixture {
        _dir: dir,
        graph: root.join("graph"),
        split: root.join("eval/split_double_seed1.parquet"),
        train_conditions: root.join("train_conditions.txt"),
        models: MODELS.iter().map(|m| root.join(format!("model_{m}"))).collect(),
        targets: Vec::new(),
        root,
        h5ad,
        data,
    };
    let conditions = f.data.join("conditions.parquet");
    let table = Table::read_parquet(&conditions).unwrap();
    let mut targets: Vec<String> = table.string_lists("genes", &conditions).unwrap().iter().flatten().cloned().collect();
    targets.sort();
    targets.dedup();
    f.targets = targets;
    if with_models {
        must_succeed(vec![s("graph"), format!("--genes={}", p(&f.data.join("genes.parquet"))), s("--source=go+regulon"), format!("--out={}", p(&f.graph))]);
        must_succeed(vec![s("eval"), format!("--data={}", p(&f.data)), s("--seeds=1"), format!("--out={}", p(&f.root.join("eval")))]);
        let split = Table::read_parquet(&f.split).unwrap();
        let (names, sets) = (split.strings("condition", &f.split).unwrap(), split.strings("set", &f.split).unwrap());
        let train: Vec<&str> = names.iter().zip(sets).filter(|(_, set)| *set == "train").map(|(n, _)| n.as_str()).collect();
        fs::write(&f.train_conditions, train.join("\n") + "\n").unwrap();
        for (model, out) in MODELS.iter().zip(&f.models) {
            let mut args = vec![s("train")];
            args.extend(base_train_args(&f, model).into_iter().map(|(k, v)| format!("{k}={v}")));
            args.push(format!("--out={}", p(out)));
            must_succeed(args);
        }
    }
    f
}

/// The stage's command line with `case.option` set to `case.value`, and the names a
/// success puts in the case folder; `None` where the value is valid but would make a
/// long run (the property is about robustness, not load).
fn stage_command(stage: &str, f: &Fixture, case: &OptionCase, dir: &Path) -> Option<(Vec<String>, Vec<&'static str>)> {
    let int = case.value.parse::<u64>().ok();
    let costly = |lo: u64, hi: u64| int.is_some_and(|n| n >= lo && n <= hi);
    let skip = match (stage, case.option) {
        ("simulate", "--n-cells") => costly(20_001, 999_999_999_999),
        ("simulate", "--n-genes") => costly(5_001, 999_999_999_999),
        ("train", "--epochs") => costly(3, 1_000_000),
        ("train", "--hidden" | "--head-hidden" | "--latent") => costly(513, 4096),
        _ => false,
    };
    if skip {
        return None;
    }
    let pick = |choices: &[&'static str]| choices[case.variant as usize % choices.len()];
    let out_name: &'static str;
    let expected: Vec<&'static str>;
    let mut options: Vec<(String, String)> = match stage {
        "simulate" => {
            out_name = "s.h5ad";
            expected = vec!["s.h5ad", "s.network.parquet"];
            let preset = pick(&["norman-like", "norman-like", "adamson-like", "replogle-like"]);
            vec![(s("--preset"), s(preset)), (s("--n-genes"), s("60")), (s("--n-cells"), s(SMALL_SCREEN_CELLS)), (s("--seed"), s("1"))]
        }
        "ingest" => {
            out_name = "out";
            expected = INGEST_OUTPUTS.to_vec();
            let mut o = vec![(s("--input"), p(&f.h5ad))];
            match pick(&["", "cell_ranger", "seurat_v3", "cutoffs"]) {
                "" => {}
                "cutoffs" => o.push((s("--hvg-cutoffs"), String::new())),
                flavor => o.push((s("--hvg-flavor"), s(flavor))),
            }
            o
        }
        "graph" => {
            out_name = "graph";
            expected = vec!["graph/edges.parquet", "graph/nodes.parquet", "graph/manifest.json"];
            let source = if case.option == "--min-correlation" { "coexpression" } else { pick(&["go+regulon", "go", "regulon", "ppi", "go+coexpression"]) };
            let mut o = vec![(s("--genes"), p(&f.data.join("genes.parquet"))), (s("--source"), s(source))];
            if source.contains("coexpression") {
                o.push((s("--train-conditions"), p(&f.train_conditions)));
            }
            o
        }
        "eval" => {
            out_name = "eval";
            expected = vec!["eval/metrics.parquet", "eval/summary.parquet", "eval/report.md", "eval/manifest.json"];
            vec![(s("--data"), p(&f.data)), (s("--seeds"), s("1")), (s("--task"), s(pick(&["double", "double,unseen_single"])))]
        }
        "train" => {
            out_name = "model";
            expected = vec!["model/config.json", "model/model.bpk", "model/index.json", "model/manifest.json"];
            // An option of one kind picks that kind; the others train any kind (an APP
            // option given to a sibling is an error, and must be refused cleanly).
            let model = match case.option {
                "--programs" | "--coherence-weight" | "--pathway-weight" => "modules",
                "--latent" | "--hops" | "--kl-weight" | "--sparsity-weight" | "--alignment-weight" => "grn_vae",
                _ => pick(&["app", "app", "modules", "grn_vae"]),
            };
            let mut o = base_train_args(f, model);
            if matches!(case.option, "--genes-per-step" | "--head-hidden") {
                o.push((s("--propagation"), s("1")));
            }
            o
        }
        "predict" => {
            out_name = "pred.parquet";
            let attention = case.variant / MODELS.len() as u8 % 2 == 1;
            expected = if attention { vec!["pred.parquet", "pred.attention.parquet"] } else { vec!["pred.parquet"] };
            let model = &f.models[case.variant as usize % MODELS.len()];
            let mut o = vec![(s("--model"), p(model)), (s("--device"), s("cpu"))];
            if case.option == "--set" {
                o.push((s("--split"), p(&f.split)));
            } else {
                o.push((s("--perturbations"), f.targets[0].clone()));
            }
            if attention {
                o.push((s("--attention"), String::new()));
            }
            o
        }
        other => panic!("no stage {other}"),
    };
    match options.iter_mut().find(|(k, _)| k == case.option) {
        Some(slot) => slot.1 = case.value.clone(),
        None => options.push((s(case.option), case.value.clone())),
    }
    options.push((s("--out"), p(&dir.join(out_name))));
    let mut args = vec![s(stage)];
    // `--option=value`, so that values such as -1 or "" reach the option's parser; an
    // empty value of a flag (`--attention`) means the bare flag.
    args.extend(options.into_iter().map(|(k, v)| if v.is_empty() && matches!(k.as_str(), "--attention" | "--hvg-cutoffs") { k } else { format!("{k}={v}") }));
    Some((args, expected))
}

/// Values special to some options: task names, split sets, perturbation lists.
fn special_value(option: &'static str, targets: &[String]) -> BoxedStrategy<String> {
    match option {
        "--task" => {
            prop::sample::select(vec!["double", "unseen_single", "double,unseen_single", "double,double", "unseen_single,double", "combo_seen", "DOUBLE", ","])
                .prop_map(s)
                .boxed()
        }
        "--seeds" => prop::sample::select(vec!["1,2", "1,1", "0", "1,,2", "2,1", "0,18446744073709551615"]).prop_map(s).boxed(),
        "--set" => prop::sample::select(vec!["train", "val", "test", "TEST", "", "all"]).prop_map(s).boxed(),
        "--perturbations" => {
            let gene = prop::sample::select(targets.to_vec());
            let label = prop_oneof![
                3 => gene.clone(),
                2 => (gene.clone(), gene.clone()).prop_map(|(a, b)| format!("{a}+{b}")),
                1 => gene.clone().prop_map(|g| format!("{g}+{g}")),
                1 => gene.clone().prop_map(|g| format!("{g}+ctrl")),
                1 => gene.clone().prop_map(|g| g.to_lowercase()),
                1 => gene.clone().prop_map(|g| format!(" {g} ")),
                1 => (gene.clone(), gene.clone(), gene.clone()).prop_map(|(a, b, c)| format!("{a}+{b}+{c}")),
                1 => (gene.clone(), gene).prop_map(|(a, b)| format!("{a}_{b}")),
                2 => prop::sample::select(vec!["ctrl", "", "NOTAGENE", "ZZZ9+ctrl", "+", "ctrl+ctrl", "\u{1F9EC}"]).prop_map(s),
            ];
            prop::collection::vec(label, 1..4).prop_map(|labels| labels.join(",")).boxed()
        }
        _ => option_value().boxed(),
    }
}

/// Cases for one stage: one of `options`, set to a general or an option-specific value.
fn option_cases(options: &[&'static str], targets: &[String]) -> impl Strategy<Value = OptionCase> {
    let targets = targets.to_vec();
    prop::sample::select(options.to_vec()).prop_flat_map(move |option| {
        (prop_oneof![option_value(), special_value(option, &targets)], any::<u8>()).prop_map(move |(value, variant)| OptionCase { option, value, variant })
    })
}

/// Runs `cases` random option cases of each `(stage, cases, options)`.
fn check_stages(f: &Fixture, stages: &[(&str, u32, &[&'static str])]) {
    let counter = AtomicUsize::new(0);
    for &(stage, cases, options) in stages {
        check_property(&format!("options_{stage}"), cases, option_cases(options, &f.targets), |case| {
            let dir = case_dir(&f.root.join("cases"), &counter);
            let Some((args, expected)) = stage_command(stage, f, &case, &dir) else {
                let _ = fs::remove_dir_all(&dir);
                return Ok(Outcome::Skipped);
            };
            let run = perturb(&args)?;
            let result = check_exit(&run, &[0, 1, 2]).and_then(|code| check_no_partial_output(&run, code, &dir, &expected).map(|()| Outcome::Exit(code)));
            let _ = fs::remove_dir_all(&dir);
            result
        });
    }
}

#[test]
fn simulate_and_ingest_survive_random_option_values() {
    let f = fixture(false);
    check_stages(&f, &[("simulate", 100, &["--n-genes", "--n-cells", "--seed"]), ("ingest", 80, &["--target-sum", "--n-top-genes", "--min-counts"])]);
}

#[test]
fn later_stages_survive_random_option_values() {
    let f = fixture(true);
    check_stages(
        &f,
        &[
            ("graph", 80, &["--min-jaccard", "--top-k", "--min-correlation", "--drop-edges", "--add-edges", "--seed"]),
            ("eval", 50, &["--top-genes", "--seeds", "--task"]),
            (
                "train",
                160,
                &[
                    "--hidden",
                    "--layers",
                    "--epochs",
                    "--patience",
                    "--batch-size",
                    "--learning-rate",
                    "--genes-per-step",
                    "--propagation",
                    "--head-hidden",
                    "--seed",
                    "--programs",
                    "--coherence-weight",
                    "--pathway-weight",
                    "--latent",
                    "--hops",
                    "--kl-weight",
                    "--sparsity-weight",
                    "--alignment-weight",
                ],
            ),
            ("predict", 100, &["--perturbations", "--set"]),
        ],
    );
}

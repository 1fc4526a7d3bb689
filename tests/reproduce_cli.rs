//! `perturb reproduce` (what `cargo xtask reproduce` runs): killed mid-training and rerun,
//! it resumes and ends with exactly the metrics of an uninterrupted run; a third run finds
//! every stage up to date.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{perturb, root};
use perturb_core::Table;

const STUDY: [&str; 7] = ["reproduce", "--quick", "--seeds", "1", "--variants", "app_plus", "--no-network-study"];

fn reproduce(out: &Path) -> (i32, String, String) {
    let mut args = STUDY.to_vec();
    args.extend(["--out", out.to_str().unwrap()]);
    perturb(&args)
}

/// metrics.parquet as sorted text rows, every column included.
fn metrics(out: &Path) -> Vec<String> {
    let path = out.join("metrics.parquet");
    let t = Table::read_parquet(&path).unwrap();
    let (task, model, pert) = (t.strings("task", &path).unwrap(), t.strings("model", &path).unwrap(), t.strings("perturbation", &path).unwrap());
    let (l2, pearson) = (t.floats("l2", &path).unwrap(), t.floats("pearson_delta", &path).unwrap());
    let seed = t.ints("seed", &path).unwrap();
    let mut rows: Vec<String> = (0..t.n_rows()).map(|i| format!("{} {} {} {} {:.12} {:.12}", task[i], seed[i], model[i], pert[i], l2[i], pearson[i])).collect();
    rows.sort();
    rows
}

#[test]
fn killed_mid_training_then_rerun_gives_the_uninterrupted_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, resumed) = (dir.path().join("whole"), dir.path().join("resumed"));
    let (c, o, e) = reproduce(&whole);
    assert_eq!(c, 0, "{o}{e}");
    assert!(whole.join("report.html").is_file() && whole.join("report.md").is_file());

    // The same study, killed (with every stage it started) once a model is training.
    let mut args: Vec<&str> = STUDY.to_vec();
    args.extend(["--out", resumed.to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_perturb"))
        .args(&args)
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let training_log = resumed.join(".state/logs/train_app_plus_double_seed_1");
    let started = Instant::now();
    while !training_log.exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "training never started");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before training started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on the process group the child leads; no memory is involved.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    assert!(!resumed.join("metrics.parquet").exists(), "killed before the end");
    let log = std::fs::read_to_string(&training_log).unwrap();
    assert!(!log.contains("trained "), "the kill came after training had finished, the test proves nothing: {log}");

    let (c, o, e) = reproduce(&resumed);
    assert_eq!(c, 0, "{o}{e}");
    assert!(o.contains("up to date)"), "finished stages are not redone: {o}");
    assert_eq!(metrics(&whole), metrics(&resumed));

    let (c, o, e) = reproduce(&resumed);
    assert_eq!(c, 0, "{o}{e}");
    assert!(o.contains("0 stages run"), "{o}");
}

/// A screen of one's own with contexts (`--ingest-arg=--context-key`): the study runs in
/// every context against its own control, then predicts each context from the others, and
/// the headline report has a section per context and per transfer evaluation.
#[test]
fn a_screen_with_contexts_is_studied_per_context_and_across_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("jurkat");
    let input = root().join("data/examples/datlinger2021_subset_7500cells_2000genes.h5ad");
    let mut args = STUDY.to_vec();
    args.extend(["--input", input.to_str().unwrap(), "--ingest-arg=--condition-key", "--ingest-arg=target"]);
    args.extend(["--ingest-arg=--context-key", "--ingest-arg=perturbation_2", "--out", out.to_str().unwrap()]);
    let (code, o, e) = perturb(&args);
    assert_eq!(code, 0, "{o}{e}");
    for state in ["stimulated", "unstimulated"] {
        assert!(out.join("contexts").join(state).join("eval/metrics.parquet").is_file(), "{state}: its own study");
        assert!(out.join(format!("to_{state}")).join("comparisons.parquet").is_file(), "{state}: predicted from the other");
        assert!(out.join(state).join("models/app_plus_context/unseen_single_s1/context_effects.parquet").is_file(), "{state}: the model reading the other");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("this screen is one context of its input (perturbation_2=stimulated)"), "the headline is the first context's");
    for section in [
        "# Context: unstimulated",
        "# Transfer across contexts: the screen, stimulated from the other contexts",
        "# Transfer across contexts: the screen, unstimulated's unseen singles from its own and the other contexts",
    ] {
        assert!(report.contains(section), "{section}");
    }
}

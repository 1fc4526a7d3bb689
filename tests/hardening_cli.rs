//! The cases a hostile probe found, each as a test: no stage deletes or overwrites a
//! path the user gave it, no run reports a wrong figure with exit 0, and bad options are
//! refused (exit 2 for a usage error, 1 for bad input) with one line naming the culprit.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{graph_and_split, ingested, perturb};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// An error of a stage: exit 1 and one line on stderr that holds every one of `needles`.
fn assert_refused(run: (i32, String, String), needles: &[&str]) {
    let (code, out, err) = run;
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "'{n}' not in: {}", lines[0]);
    }
}

/// A usage error caught by clap before any work: exit 2, naming the option.
fn assert_usage_error(run: (i32, String, String), option: &str) {
    let (code, out, err) = run;
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(err.contains(option), "{err}");
}

/// Every file under `dir` with its bytes, to show nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// A small screen, ingested, with its graph, its double split and a 2-epoch APP model.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    graph: PathBuf,
    split: PathBuf,
    model: PathBuf,
}

fn train_args<'a>(f: &'a Fixture, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "--data", p(&f.data), "--graph", p(&f.graph), "--split", p(&f.split), "--epochs", "2", "--hidden", "8", "--device", "cpu"];
    a.extend_from_slice(extra);
    a.extend(["--out", out]);
    a
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let data = ingested(&root, "norman-like", 200, 3000);
    let (graph, split) = graph_and_split(&root, &data);
    let f = Fixture { _dir: dir, root: root.clone(), data, graph, split, model: root.join("model") };
    let (c, o, e) = perturb(&train_args(&f, p(&f.model), &[]));
    assert_eq!(c, 0, "{o}{e}");
    f
}

#[test]
fn no_stage_writes_over_its_own_input() {
    let f = fixture();
    let before = snapshot(&f.root);
    // predict --out the split, a file inside the model folder; eval --out its --data.
    let split = p(&f.split);
    assert_refused(perturb(&["predict", "--model", p(&f.model), "--split", split, "--device", "cpu", "--out", split]), &["--out", "is the input --split"]);
    let inside = f.model.join("edges.parquet");
    assert_refused(
        perturb(&["predict", "--model", p(&f.model), "--perturbations", "KLF1", "--device", "cpu", "--out", p(&inside)]),
        &["lies inside the input --model"],
    );
    assert_refused(perturb(&["eval", "--data", p(&f.data), "--seeds", "1", "--out", p(&f.data)]), &["is the input --data"]);
    assert_refused(perturb(&train_args(&f, p(&f.data.join("model")), &[])), &["lies inside the input --data"]);
    let genes = f.data.join("genes.parquet");
    assert_refused(perturb(&["graph", "--genes", p(&genes), "--out", p(&f.data)]), &["contains the input --genes"]);
    let h5ad = f.root.join("norman-like.h5ad");
    assert_refused(perturb(&["ingest", "--input", p(&h5ad), "--out", p(&f.root)]), &["contains the input --input"]);
    assert_eq!(snapshot(&f.root), before, "nothing the user had changed");
}

#[test]
fn a_held_output_is_refused_and_leftovers_of_a_killed_run_are_cleared() {
    let f = fixture();
    // Another run holds the model folder's lock (this test process takes it).
    let out = f.root.join("model2");
    let lock = fs::File::create(f.root.join(".model2.lock")).unwrap();
    lock.try_lock().unwrap();
    assert_refused(perturb(&train_args(&f, p(&out), &[])), &["model2", "is writing it now"]);
    assert!(!out.exists());
    drop(lock);
    // A killed earlier run left its staging folder: the next run removes it.
    fs::create_dir_all(f.root.join(".model2.staging-abc123")).unwrap();
    let (c, o, e) = perturb(&train_args(&f, p(&out), &[]));
    assert_eq!(c, 0, "{o}{e}");
    let left: Vec<String> =
        fs::read_dir(&f.root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(".model2")).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn reruns_leave_no_stale_companion_files() {
    let f = fixture();
    let pred = f.root.join("pred.parquet");
    let attention = f.root.join("pred.attention.parquet");
    let predict = |extra: &[&str]| {
        let mut a = vec!["predict", "--model", p(&f.model), "--perturbations", "KLF1", "--device", "cpu", "--out", p(&pred)];
        a.extend_from_slice(extra);
        perturb(&a)
    };
    let (c, o, e) = predict(&["--attention"]);
    assert_eq!(c, 0, "{o}{e}");
    assert!(attention.exists());
    let (c, o, e) = predict(&[]);
    assert_eq!(c, 0, "{o}{e}");
    assert!(pred.exists() && !attention.exists(), "the attention of the earlier run is gone");

    // eval with fewer seeds: the split files of seed 2 go with the old manifest.
    let eval = f.root.join("eval2");
    let (c, o, e) = perturb(&["eval", "--data", p(&f.data), "--seeds", "1,2", "--out", p(&eval)]);
    assert_eq!(c, 0, "{o}{e}");
    assert!(eval.join("split_double_seed2.parquet").exists());
    fs::write(eval.join("my_notes.txt"), "mine").unwrap();
    let (c, o, e) = perturb(&["eval", "--data", p(&f.data), "--seeds", "1", "--out", p(&eval)]);
    assert_eq!(c, 0, "{o}{e}");
    assert!(!eval.join("split_double_seed2.parquet").exists() && eval.join("split_double_seed1.parquet").exists());
    assert_eq!(fs::read_to_string(eval.join("my_notes.txt")).unwrap(), "mine", "a file no manifest listed stays");

    // Another model kind into the same folder: the first model's programs go.
    let m = f.root.join("kinds");
    let (c, o, e) = perturb(&train_args(&f, p(&m), &["--model", "modules", "--programs", "3"]));
    assert_eq!(c, 0, "{o}{e}");
    assert!(m.join("programs.parquet").exists());
    let (c, o, e) = perturb(&train_args(&f, p(&m), &["--model", "grn_vae"]));
    assert_eq!(c, 0, "{o}{e}");
    assert!(!m.join("programs.parquet").exists() && m.join("grn.parquet").exists());
}

#[test]
fn nonsense_training_options_are_usage_errors() {
    let f = fixture();
    let out = f.root.join("never");
    let o = p(&out);
    for (option, value) in [
        ("--learning-rate", "nan"),
        ("--learning-rate", "inf"),
        ("--learning-rate", "1e30"),
        ("--learning-rate=-1", ""),
        ("--epochs", "0"),
        ("--batch-size", "0"),
        ("--hidden", "0"),
        ("--hidden", "100000000"),
        ("--propagation", "1000000"),
        ("--head-hidden", "0"),
        ("--layers", "0"),
    ] {
        let given: Vec<&str> = [option, value].into_iter().filter(|x| !x.is_empty()).collect();
        assert_usage_error(perturb(&train_args(&f, o, &given)), option.split('=').next().unwrap());
    }
    assert_usage_error(perturb(&train_args(&f, o, &["--model", "grn_vae", "--hops", "100"])), "--hops");
    assert_usage_error(perturb(&train_args(&f, o, &["--model", "modules", "--programs", "0"])), "--programs");
    assert!(!out.exists() && !f.root.join(".never.lock").exists());
}

#[test]
fn simulate_refuses_a_screen_larger_than_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("huge.h5ad");
    assert_refused(perturb(&["simulate", "--n-cells", "100000000000", "--out", p(&out)]), &["--n-cells", "GiB of memory"]);
    assert!(!out.exists());
}

#[test]
fn messages_name_what_the_user_gave() {
    let f = fixture();
    // --set train: the control in the set is not a perturbation and is left out.
    let pred = f.root.join("train_pred.parquet");
    let (c, o, e) = perturb(&["predict", "--model", p(&f.model), "--split", p(&f.split), "--set", "train", "--device", "cpu", "--out", p(&pred)]);
    assert_eq!(c, 0, "{o}{e}");
    assert_usage_error(perturb(&["predict", "--model", p(&f.model), "--split", p(&f.split), "--set", "tset", "--out", p(&pred)]), "--set");
    #[cfg(target_os = "linux")]
    assert_refused(
        perturb(&["predict", "--model", p(&f.model), "--perturbations", "KLF1", "--device", "cpu", "--out", "/proc/x.parquet"]),
        &["/proc/x.parquet"],
    );
    let file = f.root.join("a_file");
    fs::write(&file, "x").unwrap();
    assert_refused(perturb(&["reproduce", "--quick", "--out", p(&file)]), &["a_file", "is a file, not a folder"]);
}

#[test]
fn model_weights_are_reproducible_and_checked() {
    let f = fixture();
    let again = f.root.join("again");
    let (c, o, e) = perturb(&train_args(&f, p(&again), &[]));
    assert_eq!(c, 0, "{o}{e}");
    assert_eq!(fs::read(f.model.join("model.bpk")).unwrap(), fs::read(again.join("model.bpk")).unwrap(), "same seed, same bytes");
    assert_eq!(fs::read(f.model.join("manifest.json")).unwrap(), fs::read(again.join("manifest.json")).unwrap());

    // A flipped byte is found before any prediction.
    let weights = again.join("model.bpk");
    let mut bytes = fs::read(&weights).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    fs::write(&weights, &bytes).unwrap();
    let pred = f.root.join("x.parquet");
    assert_refused(perturb(&["predict", "--model", p(&again), "--perturbations", "KLF1", "--device", "cpu", "--out", p(&pred)]), &["model.bpk", "sha256"]);
    assert!(!pred.exists());

    // Weights of another model with its manifest: a short line, not burn's dump.
    let wide = f.root.join("wide");
    let (c, o, e) = perturb(&train_args(&f, p(&wide), &["--layers", "1"]));
    assert_eq!(c, 0, "{o}{e}");
    for file in ["model.bpk", "manifest.json"] {
        fs::copy(wide.join(file), again.join(file)).unwrap();
    }
    let (c, o, e) = perturb(&["predict", "--model", p(&again), "--perturbations", "KLF1", "--device", "cpu", "--out", p(&pred)]);
    assert!(e.len() < 300, "{e}");
    assert_refused((c, o, e), &["model.bpk", "do not match"]);
}

#[test]
fn reproduce_never_removes_what_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("R");
    let screen = r.join("ingest/screen.h5ad");
    fs::create_dir_all(screen.parent().unwrap()).unwrap();
    let (c, o, e) = perturb(&["simulate", "--n-genes", "100", "--n-cells", "5000", "--out", p(&screen)]);
    assert_eq!(c, 0, "{o}{e}");
    let before = snapshot(dir.path());
    assert_refused(perturb(&["reproduce", "--quick", "--input", p(&screen), "--out", p(&r)]), &["--input lies inside", "ingest"]);

    // The README's step-by-step folders, then a study into the same folder.
    let step = dir.path().join("r");
    let ingest = step.join("ingest");
    let (c, o, e) = perturb(&["ingest", "--input", p(&screen), "--out", p(&ingest)]);
    assert_eq!(c, 0, "{o}{e}");
    let (c, o, e) = perturb(&["graph", "--genes", p(&ingest.join("genes.parquet")), "--out", p(&step.join("graph"))]);
    assert_eq!(c, 0, "{o}{e}");
    let (c, o, e) = perturb(&["eval", "--data", p(&ingest), "--seeds", "1", "--out", p(&step.join("splits"))]);
    assert_eq!(c, 0, "{o}{e}");
    let made = snapshot(&step);
    let (c, o, e) = perturb(&["reproduce", "--quick", "--out", p(&step)]);
    assert_eq!(c, 1, "{o}{e}");
    assert!(e.contains("this study did not write it") && e.contains("nothing was removed"), "{e}");
    let after: Vec<_> = snapshot(&step).into_iter().filter(|(path, _)| !path.starts_with(step.join(".state"))).collect();
    assert_eq!(after, made, "the user's folders are as they were");
    assert_eq!(snapshot(&r), before.into_iter().filter(|(path, _)| path.starts_with(&r)).collect::<Vec<_>>());

    // A second study on a held results folder is refused at once.
    let held = dir.path().join("held");
    fs::create_dir_all(held.join(".state")).unwrap();
    let lock = fs::File::create(held.join(".state/lock")).unwrap();
    lock.try_lock().unwrap();
    assert_refused(perturb(&["reproduce", "--quick", "--out", p(&held)]), &["is writing it now"]);
}

/// A count CSV: `per_condition` cells of each condition over real genes, counts from a
/// fixed recurrence (no randomness), the perturbed gene's own count raised.
fn count_csv(path: &Path, conditions: &[&str], genes: &[&str], per_condition: usize) {
    let mut text = format!("condition,{}\n", genes.join(","));
    let mut state: u64 = 7;
    for condition in conditions {
        for _ in 0..per_condition {
            let counts: Vec<String> = genes
                .iter()
                .map(|g| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let base = (state >> 60) + 1;
                    (if condition.starts_with(&format!("{g}+")) { base * 4 } else { base }).to_string()
                })
                .collect();
            text.push_str(&format!("{condition},{}\n", counts.join(",")));
        }
    }
    fs::write(path, text).unwrap();
}

#[test]
fn a_target_absent_from_every_prior_is_flagged_and_still_predicted() {
    let dir = tempfile::tempdir().unwrap();
    let genes = ["KLF1", "GATA1", "CEBPA", "SPI1", "TAL1", "MYB", "JUN", "FOS", "EGR1", "CEBPB", "RUNX1", "FLI1"];
    let conditions = ["ctrl", "KLF1+ctrl", "GATA1+ctrl", "CEBPA+ctrl", "SPI1+ctrl", "TAL1+ctrl", "MYB+ctrl", "NOTAGENE7+ctrl"];
    let csv = dir.path().join("screen.csv");
    count_csv(&csv, &conditions, &genes, 30);
    let ingest = dir.path().join("ingest");
    let (c, o, e) = perturb(&["ingest", "--input", p(&csv), "--out", p(&ingest)]);
    assert_eq!(c, 0, "{o}{e}");
    assert!(e.contains("NOTAGENE7"), "the unmeasured target is named: {e}");
    let graph = dir.path().join("graph");
    let (c, o, e) = perturb(&["graph", "--genes", p(&ingest.join("genes.parquet")), "--source", "go+regulon", "--out", p(&graph)]);
    assert_eq!(c, 0, "{o}{e}");
    let manifest = fs::read_to_string(graph.join("manifest.json")).unwrap();
    let coverage: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert!(coverage.to_string().contains("\"targets_without_edges\":[\"NOTAGENE7\"]"), "{manifest}");
    let splits = dir.path().join("splits");
    let (c, o, e) = perturb(&["eval", "--data", p(&ingest), "--task", "unseen_single", "--seeds", "1", "--out", p(&splits)]);
    assert_eq!(c, 0, "{o}{e}");
    let model = dir.path().join("model");
    let split = splits.join("split_unseen_single_seed1.parquet");
    let (c, o, e) = perturb(&[
        "train",
        "--data",
        p(&ingest),
        "--graph",
        p(&graph),
        "--split",
        p(&split),
        "--epochs",
        "3",
        "--hidden",
        "8",
        "--propagation",
        "2",
        "--device",
        "cpu",
        "--out",
        p(&model),
    ]);
    assert_eq!(c, 0, "{o}{e}");
    let pred = dir.path().join("pred.parquet");
    let (c, o, e) = perturb(&["predict", "--model", p(&model), "--perturbations", "NOTAGENE7", "--device", "cpu", "--out", p(&pred)]);
    assert_eq!(c, 0, "{o}{e}");
    let t = perturb_core::Table::read_parquet(&pred).unwrap();
    assert!(t.floats("lfc", &pred).unwrap().iter().all(|v| v.is_finite()) && t.n_rows() == genes.len());
}

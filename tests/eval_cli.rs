//! `perturb eval` on a small simulated screen: baselines, splits and bad input.

mod common;

use common::{ingested, perturb};

use perturb_core::Table;

#[test]
fn baselines_on_both_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingested(dir.path(), "norman-like", 300, 6000);
    let out = dir.path().join("eval");
    let (c, o, e) = perturb(&["eval", "--data", data.to_str().unwrap(), "--task", "double,unseen_single", "--seeds", "1,2", "--out", out.to_str().unwrap()]);
    assert_eq!(c, 0, "{o}{e}");
    let p = out.join("metrics.parquet");
    let t = Table::read_parquet(&p).unwrap();
    let models = t.strings("model", &p).unwrap();
    for m in ["no_change", "mean", "additive", "linear"] {
        assert!(models.iter().any(|x| x == m), "{m} missing");
    }
    // Each double-task seed tests half of the 124 doubles (62) with all four baselines.
    let tasks = t.strings("task", &p).unwrap();
    let seeds = t.ints("seed", &p).unwrap();
    let n = (0..t.n_rows()).filter(|&i| tasks[i] == "double" && seeds[i] == 1 && models[i] == "additive").count();
    assert_eq!(n, 62);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("no-change / additive L2 ratio"), "{report}");
    // Same inputs, same metrics.
    let out2 = dir.path().join("eval2");
    perturb(&["eval", "--data", data.to_str().unwrap(), "--task", "double,unseen_single", "--seeds", "1,2", "--out", out2.to_str().unwrap()]);
    assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(out2.join("metrics.parquet")).unwrap());
}

#[test]
fn double_task_needs_doubles() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingested(dir.path(), "adamson-like", 300, 6000);
    let out = dir.path().join("eval");
    let (c, _, e) = perturb(&["eval", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(e.contains("the double task needs at least 2 double perturbations; this data set has 0"), "{e}");
    assert!(!out.exists());
    let (c, _, e) = perturb(&["eval", "--data", dir.path().join("nowhere").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(e.contains("nowhere/genes.parquet"), "{e}");
}

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

/// A model's predictions join the baselines through the same scoring; incomplete
/// predictions are refused with the missing perturbations named.
#[test]
fn model_predictions_are_scored_and_checked() {
    use perturb_core::Column;
    let dir = tempfile::tempdir().unwrap();
    let data = ingested(dir.path(), "norman-like", 300, 6000);
    let d = data.to_str().unwrap();
    let first = dir.path().join("first");
    let (c, o, e) = perturb(&["eval", "--data", d, "--seeds", "1", "--out", first.to_str().unwrap()]);
    assert_eq!(c, 0, "{o}{e}");
    let sp = first.join("split_double_seed1.parquet");
    let split = Table::read_parquet(&sp).unwrap();
    let test: Vec<String> =
        split.strings("condition", &sp).unwrap().iter().zip(split.strings("set", &sp).unwrap()).filter(|(_, s)| *s == "test").map(|(c, _)| c.clone()).collect();
    let gp = data.join("genes.parquet");
    let genes = Table::read_parquet(&gp).unwrap().strings("gene", &gp).unwrap().to_vec();
    // "zero" predicts no change at all: its L2 must equal the no_change baseline's.
    let write = |path: &std::path::Path, conditions: &[String]| {
        Table::new()
            .with("perturbation", Column::Str(conditions.iter().flat_map(|c| std::iter::repeat_n(c.clone(), genes.len())).collect()))
            .with("gene", Column::Str(conditions.iter().flat_map(|_| genes.iter().cloned()).collect()))
            .with("lfc", Column::F64(vec![0.0; conditions.len() * genes.len()]))
            .write_parquet(path)
            .unwrap();
    };
    let full = dir.path().join("zero.parquet");
    write(&full, &test);
    let out = dir.path().join("with_model");
    let (c, o, e) = perturb(&["eval", "--data", d, "--seeds", "1", "--predictions", &format!("zero={}", full.display()), "--out", out.to_str().unwrap()]);
    assert_eq!(c, 0, "{o}{e}");
    let line = |m: &str| o.lines().find(|l| l.contains(&format!(" {m} "))).unwrap_or_else(|| panic!("{o}")).split_whitespace().last().unwrap().to_string();
    assert_eq!(line("zero"), line("no_change"));
    let partial = dir.path().join("partial.parquet");
    write(&partial, &test[1..]);
    let bad = dir.path().join("bad");
    let (c, _, e) = perturb(&["eval", "--data", d, "--seeds", "1", "--predictions", &format!("zero={}", partial.display()), "--out", bad.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(e.contains(&format!("1 test perturbation(s) have no prediction: {}", test[0])), "{e}");
    assert!(!bad.exists());
}

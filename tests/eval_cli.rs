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

/// The linear baseline with P from another screen (here: an adamson-like CRISPRi screen
/// of other singles, P transferred to an unseen_single split of the norman-like one).
#[test]
fn linear_with_p_from_another_screen() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingested(dir.path(), "norman-like", 300, 6000);
    let other = ingested(dir.path(), "adamson-like", 300, 6000);
    let out = dir.path().join("eval");
    let args = ["eval", "--data", data.to_str().unwrap(), "--task", "unseen_single", "--seeds", "1", "--linear-p-from", other.to_str().unwrap()];
    let (c, o, e) = perturb(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(c, 0, "{o}{e}");
    let p = out.join("metrics.parquet");
    let t = Table::read_parquet(&p).unwrap();
    let models = t.strings("model", &p).unwrap();
    let n = |m: &str| models.iter().filter(|x| *x == m).count();
    assert!(n("linear_p_other") > 0 && n("linear_p_other") == n("linear"), "{models:?}");
    // A folder without singles cannot lend P.
    let (c, _, e) =
        perturb(&["eval", "--data", data.to_str().unwrap(), "--linear-p-from", dir.path().join("missing").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(e.contains("missing/genes.parquet"), "{e}");
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

    // Gene sets that differ: a gene the data does not have, and a gene left out.
    let t = Table::read_parquet(&full).unwrap();
    let (p, g, l) = (t.strings("perturbation", &full).unwrap(), t.strings("gene", &full).unwrap(), t.floats("lfc", &full).unwrap());
    let with_genes = |path: &std::path::Path, genes: Vec<String>, keep: usize| {
        Table::new()
            .with("perturbation", Column::Str(p[..keep].to_vec()))
            .with("gene", Column::Str(genes))
            .with("lfc", Column::F64(l[..keep].to_vec()))
            .write_parquet(path)
            .unwrap();
    };
    let renamed = dir.path().join("renamed.parquet");
    let mut genes_renamed = g.to_vec();
    genes_renamed[0] = "NOT_A_GENE".into();
    with_genes(&renamed, genes_renamed, g.len());
    let (c, _, e) = perturb(&["eval", "--data", d, "--seeds", "1", "--predictions", &format!("zero={}", renamed.display()), "--out", bad.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(e.contains("renamed.parquet") && e.contains("gene 'NOT_A_GENE' is not among the evaluated data's genes"), "{e}");
    let short = dir.path().join("short.parquet");
    with_genes(&short, g[..g.len() - 1].to_vec(), g.len() - 1);
    let (c, _, e) = perturb(&["eval", "--data", d, "--seeds", "1", "--predictions", &format!("zero={}", short.display()), "--out", bad.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(e.contains("short.parquet") && e.contains("no prediction for gene"), "{e}");
    assert!(!bad.exists());
}

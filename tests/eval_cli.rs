//! `perturb eval` on a small simulated screen: baselines, splits and bad input.

mod common;

use common::{ingested, perturb, refused};

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
    refused(
        &["eval", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()],
        "the double task needs at least 2 double perturbations; this data set has 0",
    );
    assert!(!out.exists());
    refused(&["eval", "--data", dir.path().join("nowhere").to_str().unwrap(), "--out", out.to_str().unwrap()], "nowhere/genes.parquet");
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
    refused(
        &["eval", "--data", data.to_str().unwrap(), "--linear-p-from", dir.path().join("missing").to_str().unwrap(), "--out", out.to_str().unwrap()],
        "missing/genes.parquet",
    );
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

/// Keeps the rows of `path` where `keep(condition)` holds, in every column.
fn drop_condition_rows(path: &std::path::Path, column: &str, keep: impl Fn(&str) -> bool) {
    use perturb_core::Column;
    let table = Table::read_parquet(path).unwrap();
    let mask: Vec<bool> = table.strings(column, path).unwrap().iter().map(|c| keep(c)).collect();
    let pick = |c: &Column| -> Column {
        fn kept<T: Clone>(v: &[T], mask: &[bool]) -> Vec<T> {
            v.iter().zip(mask).filter(|(_, k)| **k).map(|(x, _)| x.clone()).collect()
        }
        match c {
            Column::Str(v) => Column::Str(kept(v, &mask)),
            Column::F64(v) => Column::F64(kept(v, &mask)),
            Column::I64(v) => Column::I64(kept(v, &mask)),
            Column::Bool(v) => Column::Bool(kept(v, &mask)),
            Column::StrList(v) => Column::StrList(kept(v, &mask)),
            Column::Dict { .. } => unreachable!("read back as strings"),
        }
    };
    let mut out = Table::new();
    for name in table.column_names() {
        out.push(name, pick(table.column(name).unwrap()));
    }
    out.write_parquet(path).unwrap();
}

/// A screen where one gene of some doubles was never measured alone: `additive` covers
/// fewer doubles than every other model, so it is ranked in a table of its own (with
/// every model on the same doubles) and not beside them; the prior-network baselines run
/// on both tasks and cover every perturbation.
#[test]
fn a_double_without_its_single_gets_its_own_table_and_the_prior_baselines_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingested(dir.path(), "norman-like", 300, 6000);
    let conditions = data.join("conditions.parquet");
    let t = Table::read_parquet(&conditions).unwrap();
    let names = t.strings("condition", &conditions).unwrap().to_vec();
    // The single of a gene that is in the most doubles.
    let gene = names
        .iter()
        .filter(|c| !c.contains('+') && *c != "ctrl")
        .max_by_key(|g| (names.iter().filter(|c| c.split('+').any(|x| x == g.as_str()) && c.contains('+')).count(), g.to_string()))
        .unwrap()
        .clone();
    drop_condition_rows(&conditions, "condition", |c| c != gene);
    drop_condition_rows(&data.join("pseudobulk.parquet"), "condition", |c| c != gene);
    let (graph, split) = common::graph_and_split(dir.path(), &data);
    // A model that predicts no change on the doubles, to be compared on both sets.
    let st = Table::read_parquet(&split).unwrap();
    let test: Vec<String> =
        st.strings("condition", &split).unwrap().iter().zip(st.strings("set", &split).unwrap()).filter(|(_, s)| *s == "test").map(|(c, _)| c.clone()).collect();
    let gp = data.join("genes.parquet");
    let genes = Table::read_parquet(&gp).unwrap().strings("gene", &gp).unwrap().to_vec();
    Table::new()
        .with("perturbation", perturb_core::Column::Str(test.iter().flat_map(|c| std::iter::repeat_n(c.clone(), genes.len())).collect()))
        .with("gene", perturb_core::Column::Str(test.iter().flat_map(|_| genes.iter().cloned()).collect()))
        .with("lfc", perturb_core::Column::F64(vec![0.0; test.len() * genes.len()]))
        .write_parquet(&dir.path().join("zero_double.parquet"))
        .unwrap();
    let zero = format!("zero={}", dir.path().join("zero_{task}.parquet").display());
    let out = dir.path().join("with_graph");
    let d = data.to_str().unwrap();
    let args = ["eval", "--data", d, "--graph", graph.to_str().unwrap(), "--task", "double,unseen_single", "--seeds", "1", "--predictions", &zero];
    let (c, o, e) = perturb(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(c, 0, "{o}{e}");

    let p = out.join("metrics.parquet");
    let m = Table::read_parquet(&p).unwrap();
    let (tasks, models) = (m.strings("task", &p).unwrap(), m.strings("model", &p).unwrap());
    let count = |task: &str, model: &str| (0..m.n_rows()).filter(|&i| tasks[i] == task && models[i] == model).count();
    for task in ["double", "unseen_single"] {
        for prior_baseline in ["graph_knn", "linear_prior"] {
            assert!(count(task, prior_baseline) > 0 && count(task, prior_baseline) == count(task, "mean"), "{prior_baseline} on {task}");
        }
    }
    assert!(count("double", "additive") < count("double", "mean"), "additive covers fewer doubles");
    for column in ["pearson_delta_no_target", "pearson_delta_centroid", "mae", "des_overlap_20", "des_overlap_100", "pds_l1"] {
        let v = m.floats(column, &p).unwrap();
        assert!(v.iter().any(|x| x.is_finite()), "{column} holds values");
    }

    let s = out.join("summary.parquet");
    let summary = Table::read_parquet(&s).unwrap();
    let (sets, smodels, stasks) =
        (summary.strings("perturbation_set", &s).unwrap(), summary.strings("model", &s).unwrap(), summary.strings("task", &s).unwrap());
    let in_set = |set: &str, model: &str| (0..summary.n_rows()).any(|i| stasks[i] == "double" && sets[i] == set && smodels[i] == model);
    assert!(!in_set("all", "additive"), "additive is not ranked among the models that cover every double");
    assert!(in_set("additive", "additive") && in_set("additive", "mean") && in_set("additive", "graph_knn"));
    for column in ["versus", "mean_difference", "ci_low", "ci_high", "win_share"] {
        assert!(summary.column(column).is_some(), "summary.parquet has {column}");
    }
    let metrics = summary.strings("metric", &s).unwrap();
    assert!(metrics.iter().any(|x| x == "vcc_score"));

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("### Where additive predicts (n = "), "{report}");
    assert!(report.contains("Left out: ") && (report.contains(&format!("+{gene} (seed 1)")) || report.contains(&format!("{gene}+"))), "{report}");
    assert!(report.contains("Paired comparisons: double, where additive predicts"), "{report}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("On fewer perturbations"));
    let c = out.join("comparisons.parquet");
    let comparisons = Table::read_parquet(&c).unwrap();
    assert!(comparisons.strings("perturbation_set", &c).unwrap().iter().any(|x| x == "additive"));

    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("zero_double.parquet") && manifest.contains("edges.parquet"), "the manifest hashes the predictions and the graph: {manifest}");

    // Same inputs, same bytes: every process hashes differently, so an order taken from a
    // hash map would show here.
    let again = dir.path().join("again");
    let (c, o, e) = perturb(&[&args[..], &["--out", again.to_str().unwrap()]].concat());
    assert_eq!(c, 0, "{o}{e}");
    for file in ["metrics.parquet", "summary.parquet", "comparisons.parquet"] {
        assert_eq!(std::fs::read(out.join(file)).unwrap(), std::fs::read(again.join(file)).unwrap(), "{file} differs between two runs");
    }
}

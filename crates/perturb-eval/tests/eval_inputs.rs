//! `evaluate` on a tiny ingest folder: options that would double-count rows or merge
//! models are refused before anything is written, bad prediction files leave no output,
//! and the manifest lists every file the evaluation writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use perturb_core::timing::ModelTiming;
use perturb_core::{Column, Table};
use perturb_eval::{evaluate, EvalOptions, Task};

const N_GENES: usize = 30;
const DOUBLES: [&str; 8] = ["G0+G1", "G0+G2", "G1+G2", "G2+G3", "G3+G4", "G4+G5", "G0+G5", "G1+G3"];

fn genes() -> Vec<String> {
    (0..N_GENES).map(|g| format!("G{g}")).collect()
}

/// Control, singles of G0..G5 and eight doubles of them, as the ingest stage writes them.
fn conditions() -> Vec<String> {
    let mut c = vec!["ctrl".to_string()];
    c.extend((0..6).map(|g| format!("G{g}")));
    c.extend(DOUBLES.iter().map(|d| d.to_string()));
    c
}

fn ingest_folder(root: &Path) -> PathBuf {
    let dir = root.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let (genes, conditions) = (genes(), conditions());
    Table::new().with("gene", Column::Str(genes.clone())).write_parquet(&dir.join("genes.parquet")).unwrap();
    let targets: Vec<Vec<String>> = conditions.iter().map(|c| if c == "ctrl" { vec![] } else { c.split('+').map(String::from).collect() }).collect();
    Table::new()
        .with("condition", Column::Str(conditions.clone()))
        .with("genes", Column::StrList(targets))
        .with("n_cells", Column::I64(vec![40; conditions.len()]))
        .write_parquet(&dir.join("conditions.parquet"))
        .unwrap();
    let n = conditions.len() * N_GENES;
    Table::new()
        .with("condition", Column::Str(conditions.iter().flat_map(|c| std::iter::repeat_n(c.clone(), N_GENES)).collect()))
        .with("gene", Column::Str(conditions.iter().flat_map(|_| genes.iter().cloned()).collect()))
        .with("mean", Column::F64((0..n).map(|i| 2.0 + ((i * 7919) % 101) as f64 / 50.0).collect()))
        .with("variance", Column::F64(vec![0.2; n]))
        .write_parquet(&dir.join("pseudobulk.parquet"))
        .unwrap();
    dir
}

/// Predictions for every perturbed condition (so for any split's test set).
fn predictions(path: &Path, rows: impl Fn(&mut Vec<(String, String, f64)>)) -> PathBuf {
    let mut r: Vec<(String, String, f64)> = conditions()[1..].iter().flat_map(|c| genes().into_iter().map(move |g| (c.clone(), g, 0.1))).collect();
    rows(&mut r);
    Table::new()
        .with("perturbation", Column::Str(r.iter().map(|x| x.0.clone()).collect()))
        .with("gene", Column::Str(r.iter().map(|x| x.1.clone()).collect()))
        .with("lfc", Column::F64(r.iter().map(|x| x.2).collect()))
        .write_parquet(path)
        .unwrap();
    path.to_path_buf()
}

fn options(root: &Path) -> EvalOptions {
    let mut o = EvalOptions::new(ingest_folder(root), root.join("eval"));
    o.seeds = vec![1];
    o
}

fn refused(o: &EvalOptions) -> String {
    let e = evaluate(o).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(!o.out.exists(), "{e}: wrote {}", o.out.display());
    e
}

#[test]
fn a_seed_or_task_given_twice_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut o = options(root.path());
    o.seeds = vec![1, 2, 1];
    assert_eq!(refused(&o), "invalid option --seeds: 1 is given twice");
    o.seeds = vec![1];
    o.tasks = vec![Task::Double, Task::Double];
    assert_eq!(refused(&o), "invalid option --task: double is given twice");
}

#[test]
fn top_genes_must_be_at_least_one() {
    let root = tempfile::tempdir().unwrap();
    let mut o = options(root.path());
    o.top_genes = 0;
    assert_eq!(refused(&o), "invalid option --top-genes: must be at least 1 (got 0)");
    o.top_genes = 10;
    o.ridge = f64::NAN;
    assert!(refused(&o).starts_with("invalid option ridge:"));
}

#[test]
fn a_model_named_like_a_baseline_or_twice_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let file = predictions(&root.path().join("p.parquet"), |_| {});
    let mut o = options(root.path());
    for baseline in perturb_eval::baselines::all_names() {
        o.predictions = vec![(baseline.to_string(), file.clone())];
        let e = refused(&o);
        assert!(
            e.starts_with(&format!("invalid option --predictions: '{baseline}' is the name of a baseline (no_change, mean, additive, linear, graph_knn, linear_prior, linear_p_other, other_contexts, other_contexts_mean, other_contexts_fit)")),
            "{e}"
        );
    }
    let other = predictions(&root.path().join("q.parquet"), |_| {});
    o.predictions = vec![("app".into(), file.clone()), ("app".into(), other.clone())];
    let e = refused(&o);
    assert!(e.starts_with("invalid option --predictions: model name 'app' is given twice ("), "{e}");
    o.predictions = vec![("app".into(), file.clone())];
    for option in ["--timing", "--grn", "--programs"] {
        let mut o = o.clone();
        let list = vec![("x".to_string(), file.clone()), ("x".to_string(), other.clone())];
        match option {
            "--timing" => o.timing = list,
            "--grn" => o.grn = list,
            _ => o.programs = list,
        }
        let e = refused(&o);
        assert!(e.starts_with(&format!("invalid option {option}: model name 'x' is given twice")), "{e}");
    }
    // One attention table per task under one model name is how a study passes them; the
    // same table twice is refused.
    o.attention = vec![("app".into(), file.clone()), ("app".into(), file.clone())];
    assert!(refused(&o).starts_with("invalid option --attention: model name 'app' is given twice"));
}

#[test]
fn bad_prediction_rows_leave_no_output() {
    let root = tempfile::tempdir().unwrap();
    let mut o = options(root.path());
    let dup = predictions(&root.path().join("dup.parquet"), |r| {
        let mut row = r[3].clone();
        row.2 = 5.0;
        r.push(row);
    });
    o.predictions = vec![("app".into(), dup.clone())];
    let e = refused(&o);
    let n = (conditions().len() - 1) * N_GENES + 1;
    assert_eq!(e, format!("{}: row {n} (perturbation 'G0', gene 'G3') repeats row 4; each (perturbation, gene) pair must appear once", dup.display()));
    let inf = predictions(&root.path().join("inf.parquet"), |r| r[40].2 = f64::INFINITY);
    o.predictions = vec![("app".into(), inf.clone())];
    let e = refused(&o);
    assert_eq!(
        e,
        format!("{}: row 41 (perturbation 'G1', gene 'G10'): lfc is inf; every lfc must be a finite number (not NaN, null or infinite)", inf.display())
    );
}

fn manifest_outputs(out: &Path) -> BTreeSet<String> {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let list: Vec<String> = m["outputs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let set: BTreeSet<String> = list.iter().cloned().collect();
    assert_eq!(set.len(), list.len(), "an output listed twice: {list:?}");
    set
}

fn listing(out: &Path) -> BTreeSet<String> {
    std::fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n != "manifest.json").collect()
}

/// Every artifact, the optional ones included, is in the manifest's `outputs`, so that a
/// rerun with fewer seeds or tasks can remove what it no longer writes.
#[test]
fn the_manifest_lists_every_file_written() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let mut o = options(r);
    o.seeds = vec![1, 2];
    o.tasks = vec![Task::Double, Task::UnseenSingle];
    for seed in [1, 2] {
        for task in ["double", "unseen_single"] {
            predictions(&r.join(format!("app_{task}_{seed}.parquet")), |_| {});
            let timing = ModelTiming {
                n_params: 10,
                epochs: 1,
                train_seconds: 1.0,
                predict_ms_single: 0.1,
                predict_ms_batched: 0.1,
                predict_setup_ms: 0.2,
                batch: 4,
                peak_rss_bytes: 1,
                device: "cpu".into(),
            };
            timing.write(&r.join(format!("timing_{task}_{seed}.json"))).unwrap();
            let names = |v: &[&str]| Column::Str(v.iter().map(|s| s.to_string()).collect());
            Table::new()
                .with("source", names(&["G0", "G1"]))
                .with("target", names(&["G7", "G8"]))
                .with("learned", Column::F64(vec![0.4, -0.2]))
                .with("prior_weight", Column::F64(vec![1.0, 1.0]))
                .with("prior_sign", Column::I64(vec![1, 0]))
                .with("source_perturbed", Column::Bool(vec![true, true]))
                .write_parquet(&r.join(format!("grn_{task}_{seed}.parquet")))
                .unwrap();
            Table::new()
                .with("gene", Column::Str(genes()))
                .with("program", Column::I64((0..N_GENES as i64).map(|g| g % 3).collect()))
                .with("measured", Column::Bool(vec![true; N_GENES]))
                .write_parquet(&r.join(format!("programs_{task}_{seed}.parquet")))
                .unwrap();
        }
    }
    let truth = r.join("truth.parquet");
    Table::new()
        .with("source", Column::Str(vec!["G0".into(); 6]))
        .with("target", Column::Str((7..13).map(|g| format!("G{g}")).collect()))
        .with("weight", Column::F64(vec![0.5; 6]))
        .write_parquet(&truth)
        .unwrap();
    Table::new()
        .with("perturbation", Column::Str(vec!["G0+G1".into(); 3]))
        .with("gene", Column::Str(vec!["G0".into(), "G1".into(), "G2".into()]))
        .with("attention", Column::F64(vec![0.5, 0.3, 0.2]))
        .write_parquet(&r.join("attention.parquet"))
        .unwrap();
    let pattern = |prefix: &str, ext: &str| r.join(format!("{prefix}_{{task}}_{{seed}}.{ext}"));
    o.predictions = vec![("app".into(), pattern("app", "parquet"))];
    o.timing = vec![("app".into(), pattern("timing", "json"))];
    o.grn = vec![("grn_vae".into(), pattern("grn", "parquet"))];
    o.programs = vec![("modules".into(), pattern("programs", "parquet"))];
    o.attention = vec![("app".into(), r.join("attention.parquet"))];
    o.truth_network = Some(truth);
    evaluate(&o).unwrap();
    let first = manifest_outputs(&o.out);
    assert_eq!(first, listing(&o.out));
    for optional in ["interactions.parquet", "efficiency.parquet", "grn_recovery.parquet", "program_enrichment.parquet", "split_unseen_single_seed2.parquet"] {
        assert!(first.contains(optional), "{optional} not written: {first:?}");
    }

    // A smaller rerun into the same folder: its manifest lists exactly what it wrote, and
    // whatever else is left there is a previous output, which the commit may remove.
    let mut small = options(r);
    small.out = o.out.clone();
    evaluate(&small).unwrap();
    let second = manifest_outputs(&o.out);
    let expected: BTreeSet<String> = ["split_double_seed1.parquet", "metrics.parquet", "interactions.parquet", "summary.parquet", "report.md", "report.html"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(second, expected);
    let present = listing(&o.out);
    assert!(second.is_subset(&present));
    assert!(present.difference(&second).all(|f| first.contains(f)), "{present:?}");
}

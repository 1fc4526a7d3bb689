//! One model picked on validation perturbations and reported on test: `perturb train
//! --preset`, `--edge-trust`, and `perturb eval --validation / --recommended`.

mod common;

use common::{perturb, Screen};
use perturb_core::Table;

/// `perturb train` on `screen`'s split, small and on the CPU, with `extra` flags.
fn train_on(screen: &Screen, out: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let (g, split) = (screen.graph.to_str().unwrap(), screen.split.to_str().unwrap());
    let mut a = vec!["train", "--data", screen.data_arg(), "--graph", g, "--split", split, "--hidden", "8", "--device", "cpu"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["--out", out.to_str().unwrap()]);
    perturb(&a)
}

#[test]
fn a_model_is_picked_on_validation_and_compared_on_test_with_every_other() {
    let screen = Screen::norman_like(300, 4000);
    let (dir, g, split, d) = (&screen.dir, &screen.graph, &screen.split, screen.data_arg());
    let train = |out: &std::path::Path, extra: &[&str]| train_on(&screen, out, extra);
    let manifest =
        |model: &std::path::Path| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(model.join("manifest.json")).unwrap()).unwrap() };

    // The recommended model, as the study trains it, with the epochs cut short.
    let best = dir.path().join("best");
    let (c, o, err) = train(&best, &["--preset", "best", "--epochs", "2"]);
    assert_eq!(c, 0, "{o}{err}");
    let p = &manifest(&best)["parameters"];
    assert_eq!((p["max_epochs"].as_u64(), p["patience"].as_u64(), p["learning_rate"].as_f64()), (Some(2), Some(15), Some(0.01)), "{p}");
    assert!(p["query_skip"].as_bool().unwrap() && p["features"]["propagation_hops"].as_u64() == Some(3), "{p}");
    // Edge trust: the propagation the head reads, over learned edge weights.
    let trust = dir.path().join("trust");
    let (c, o, err) = train(&trust, &["--propagation", "2", "--edge-trust", "--epochs", "2"]);
    assert_eq!(c, 0, "{o}{err}");
    assert_eq!(manifest(&trust)["parameters"]["edge_trust"].as_bool(), Some(true));
    let path = trust.join("trust.parquet");
    let t = Table::read_parquet(&path).unwrap();
    assert_eq!(t.n_rows(), Table::read_parquet(&g.join("edges.parquet")).unwrap().n_rows(), "one row per prior edge");
    let values = t.floats("trust", &path).unwrap();
    assert!(values.iter().all(|v| (0.0..=2.0).contains(v)) && values.iter().any(|&v| v != 1.0), "trust in [0, 2], moved by training");
    let refused = dir.path().join("refused");
    let (c, _, err) = train(&refused, &["--edge-trust"]);
    assert_eq!(c, 1);
    assert!(err.contains("--edge-trust") && err.contains("--propagation") && !refused.exists(), "{err}");
    let (c, _, err) = train(&refused, &["--preset", "gears"]);
    assert_eq!(c, 2);
    assert!(err.contains("unknown model variant 'gears'") && !refused.exists(), "{err}");

    let mut a: Vec<String> = ["eval", "--data", d, "--seeds", "1", "--recommended", "best"].iter().map(|s| s.to_string()).collect();
    for (name, model) in [("best", &best), ("trust", &trust)] {
        let pred = dir.path().join(format!("{name}.parquet"));
        let (c, o, err) =
            perturb(&["predict", "--model", model.to_str().unwrap(), "--split", split.to_str().unwrap(), "--device", "cpu", "--out", pred.to_str().unwrap()]);
        assert_eq!(c, 0, "{o}{err}");
        a.extend([
            "--predictions".into(),
            format!("{name}={}", pred.display()),
            "--validation".into(),
            format!("{name}={}", model.join("manifest.json").display()),
        ]);
    }
    let eval = dir.path().join("picked");
    a.extend(["--out".into(), eval.to_str().unwrap().into()]);
    let (c, o, err) = perturb(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(c, 0, "{o}{err}");
    let path = eval.join("selection.parquet");
    let t = Table::read_parquet(&path).unwrap();
    let (models, chosen, l2) = (t.strings("model", &path).unwrap(), t.ints("chosen", &path).unwrap(), t.floats("validation_l2", &path).unwrap());
    assert_eq!(models, ["best", "trust"]);
    let pick = chosen.iter().position(|&c| c == 1).expect("one model is picked");
    assert_eq!(chosen.iter().sum::<i64>(), 1);
    assert!(l2[pick] <= l2[1 - pick], "the pick has the lower validation L2: {l2:?}");
    let recorded = manifest(if pick == 0 { &best } else { &trust })["summary"]["best_validation_l2"].as_f64().unwrap();
    assert!((l2[pick] - recorded).abs() < 1e-12);
    let report = std::fs::read_to_string(eval.join("report.md")).unwrap();
    assert!(report.contains("Model selection on validation perturbations"), "{report}");
    // The pick against every baseline and the other model, on test.
    let section = report.split("on test: ").nth(1).expect("the pick's test table");
    assert!(section.contains(if pick == 0 { "| trust " } else { "| best " }) && section.contains("| additive "), "{section}");

    // A manifest that is not a training run's is named.
    let (c, _, err) = perturb(&[
        "eval",
        "--data",
        d,
        "--seeds",
        "1",
        "--validation",
        &format!("x={}", eval.join("manifest.json").display()),
        "--out",
        dir.path().join("bad").to_str().unwrap(),
    ]);
    assert_eq!(c, 1);
    assert!(err.contains("manifest.json") && err.contains("best_validation_l2"), "{err}");
}

#[test]
fn local_genes_train_on_candidates_predict_every_gene_and_refuse_what_they_cannot_run() {
    let screen = Screen::norman_like(300, 4000);
    let (dir, split) = (&screen.dir, &screen.split);
    let train = |out: &std::path::Path, extra: &[&str]| train_on(&screen, out, &[&["--epochs", "2"], extra].concat());
    let features = |model: &std::path::Path| -> serde_json::Value {
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(model.join("manifest.json")).unwrap()).unwrap();
        m["parameters"]["features"].clone()
    };
    let local = dir.path().join("local");
    let (c, o, err) = train(&local, &["--propagation", "2", "--additive-gate", "--local-genes", "8", "--local-expressed", "4"]);
    assert_eq!(c, 0, "{o}{err}");
    assert_eq!((features(&local)["local_genes"].as_u64(), features(&local)["local_expressed"].as_u64()), (Some(8), Some(4)));
    let pred = dir.path().join("local.parquet");
    let (c, o, err) =
        perturb(&["predict", "--model", local.to_str().unwrap(), "--split", split.to_str().unwrap(), "--device", "cpu", "--out", pred.to_str().unwrap()]);
    assert_eq!(c, 0, "{o}{err}");
    let genes = Table::read_parquet(&screen.data.join("genes.parquet")).unwrap().n_rows();
    let predicted = Table::read_parquet(&pred).unwrap();
    assert!(predicted.n_rows() > 0 && predicted.n_rows().is_multiple_of(genes), "every gene predicted: {} rows, {genes} genes", predicted.n_rows());
    // As many candidates as genes or more: the full head, recorded as such.
    let every = dir.path().join("every");
    let (c, o, err) = train(&every, &["--propagation", "2", "--local-genes", "100000"]);
    assert_eq!(c, 0, "{o}{err}");
    assert_eq!(features(&every)["local_genes"].as_u64(), Some(0));
    assert!(features(&every).get("local_expressed").is_none(), "none chosen: not recorded");
    let refused = dir.path().join("refused");
    for (extra, needle) in [
        (&["--local-genes", "8"][..], "--propagation"),
        (&["--local-genes", "8", "--propagation", "2", "--pooling", "mean"][..], "--pooling"),
        (&["--local-genes", "8", "--propagation", "2", "--edge-trust"][..], "--edge-trust"),
        (&["--local-genes", "8", "--local-expressed", "8", "--propagation", "2"][..], "--local-expressed"),
        (&["--local-expressed", "4", "--propagation", "2"][..], "--local-expressed"),
    ] {
        let (c, _, err) = train(&refused, extra);
        assert_eq!(c, 1, "{extra:?}: {err}");
        assert!(err.contains("--local-genes") && err.contains(needle) && err.lines().count() == 1 && !refused.exists(), "{extra:?}: {err}");
    }
}

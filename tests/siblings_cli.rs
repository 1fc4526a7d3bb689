//! The sibling models end to end: `perturb train --model modules|grn_vae`, their
//! predictions and artifacts, the learned network fed back to `perturb graph`, and the
//! evaluation scoring both against the simulator's network.

mod common;

use common::{graph_and_split, ingested, perturb};
use perturb_core::Table;

#[test]
fn modules_and_grn_vae_train_predict_and_are_scored_against_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingested(dir.path(), "norman-like", 300, 4000);
    let truth = dir.path().join("norman-like.network.parquet");
    assert!(truth.is_file());
    let (g, split) = graph_and_split(dir.path(), &data);
    let d = data.to_str().unwrap();
    let train = |out: &std::path::Path, extra: &[&str]| {
        let mut a =
            vec!["train", "--data", d, "--graph", g.to_str().unwrap(), "--split", split.to_str().unwrap(), "--epochs", "3", "--hidden", "8", "--device", "cpu"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--out", out.to_str().unwrap()]);
        perturb(&a)
    };
    let nodes = Table::read_parquet(&g.join("nodes.parquet")).unwrap().n_rows();
    let edges = Table::read_parquet(&g.join("edges.parquet")).unwrap().n_rows();

    // modules: every node in one of at most K programs; attention over genes sums to 1.
    let modules = dir.path().join("modules");
    let (c, o, err) = train(&modules, &["--model", "modules", "--programs", "4"]);
    assert_eq!(c, 0, "{o}{err}");
    let programs = Table::read_parquet(&modules.join("programs.parquet")).unwrap();
    assert_eq!(programs.n_rows(), nodes);
    let p = programs.ints("program", &modules.join("programs.parquet")).unwrap();
    assert!(p.iter().all(|&x| (0..4).contains(&x)) && p.contains(&3), "four programs, all used");
    let pred = dir.path().join("modules.parquet");
    let (c, o, err) = perturb(&[
        "predict",
        "--model",
        modules.to_str().unwrap(),
        "--split",
        split.to_str().unwrap(),
        "--attention",
        "--device",
        "cpu",
        "--out",
        pred.to_str().unwrap(),
    ]);
    assert_eq!(c, 0, "{o}{err}");
    let att = dir.path().join("modules.attention.parquet");
    let a = Table::read_parquet(&att).unwrap();
    let first: f64 = a.floats("attention", &att).unwrap()[..nodes].iter().sum();
    assert!((first - 1.0).abs() < 1e-4, "{first}");

    // grn_vae: the learned network has one row per prior edge and is itself a GRN source.
    let vae = dir.path().join("grn_vae");
    let (c, o, err) = train(&vae, &["--model", "grn_vae"]);
    assert_eq!(c, 0, "{o}{err}");
    let grn_path = vae.join("grn.parquet");
    let grn = Table::read_parquet(&grn_path).unwrap();
    assert_eq!(grn.n_rows(), edges);
    let (learned, prior_sign) = (grn.floats("learned", &grn_path).unwrap(), grn.ints("prior_sign", &grn_path).unwrap());
    assert!(learned.iter().zip(prior_sign).any(|(w, &s)| s != 0 && *w != 0.0), "signed prior edges start non-zero and stay learnable");
    let (c, o, err) = perturb(&[
        "predict",
        "--model",
        vae.to_str().unwrap(),
        "--perturbations",
        "KLF1",
        "--attention",
        "--out",
        dir.path().join("x.parquet").to_str().unwrap(),
    ]);
    assert_eq!(c, 1, "{o}");
    assert!(err.contains("has no attention") && !dir.path().join("x.parquet").exists(), "{err}");
    let vae_pred = dir.path().join("grn_vae.parquet");
    let (c, o, err) =
        perturb(&["predict", "--model", vae.to_str().unwrap(), "--split", split.to_str().unwrap(), "--device", "cpu", "--out", vae_pred.to_str().unwrap()]);
    assert_eq!(c, 0, "{o}{err}");
    let relearned = dir.path().join("graph_learned");
    let (c, o, err) = perturb(&[
        "graph",
        "--genes",
        &format!("{d}/genes.parquet"),
        "--source",
        &format!("edges:{}", grn_path.display()),
        "--out",
        relearned.to_str().unwrap(),
    ]);
    assert_eq!(c, 0, "{o}{err}");

    // An APP option on a sibling is refused, naming it; nothing is written.
    let refused = dir.path().join("refused");
    let (c, _, err) = train(&refused, &["--model", "grn_vae", "--query-skip"]);
    assert_eq!(c, 1);
    assert!(err.contains("--query-skip is an option of app, not of grn_vae") && !refused.exists(), "{err}");
    let (c, _, err) = train(&refused, &["--model", "modules", "--target", "residual"]);
    assert_eq!(c, 1);
    assert!(err.contains("--target") && err.contains("not of modules") && !refused.exists(), "{err}");
    // A bonus that starts the attention somewhere needs an attention to start.
    let (c, _, err) = train(&refused, &["--pooling", "mean", "--attention-hops", "2"]);
    assert_eq!(c, 1);
    assert!(err.contains("--attention-hops") && err.contains("--pooling mean has no attention") && !refused.exists(), "{err}");
    // And a sibling's option on another model: refused, not silently ignored.
    let (c, _, err) = train(&refused, &["--programs", "4"]);
    assert_eq!(c, 1);
    assert!(err.contains("--programs") && err.contains("is an option of --model modules, not of --model app") && !refused.exists(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // Scored against the simulator's network.
    let scored = dir.path().join("scored");
    let (c, o, err) = perturb(&[
        "eval",
        "--data",
        d,
        "--seeds",
        "1",
        "--predictions",
        &format!("modules={}", pred.display()),
        "--predictions",
        &format!("grn_vae={}", vae_pred.display()),
        "--truth-network",
        truth.to_str().unwrap(),
        "--grn",
        &format!("grn_vae={}", grn_path.display()),
        "--programs",
        &format!("modules={}", modules.join("programs.parquet").display()),
        "--out",
        scored.to_str().unwrap(),
    ]);
    assert_eq!(c, 0, "{o}{err}");
    let rec = scored.join("grn_recovery.parquet");
    let t = Table::read_parquet(&rec).unwrap();
    let (ranking, auprc) = (t.strings("ranking", &rec).unwrap(), t.floats("auprc", &rec).unwrap());
    assert_eq!(t.n_rows(), 6, "(all, out of perturbed genes) x (learned, prior, tied)");
    assert!(auprc.iter().all(|a| (0.0..=1.0).contains(a)), "{auprc:?}");
    let tied = auprc[ranking.iter().position(|r| r == "tied").unwrap()];
    let prior = auprc[ranking.iter().position(|r| r == "prior").unwrap()];
    assert!(prior > tied, "the regulon prior holds the simulator's edges: {prior} vs {tied}");
    assert!(Table::read_parquet(&scored.join("program_enrichment.parquet")).unwrap().n_rows() >= 8);
    let report = std::fs::read_to_string(scored.join("report.md")).unwrap();
    assert!(report.contains("## Learned network vs the simulator's truth") && report.contains("## Gene programs vs the simulator's regulons"));

    // Structure without a truth to score it against is refused.
    let (c, _, err) =
        perturb(&["eval", "--data", d, "--seeds", "1", "--grn", &format!("grn_vae={}", grn_path.display()), "--out", dir.path().join("e2").to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(err.contains("--grn") && err.contains("needs --truth-network"), "{err}");
}

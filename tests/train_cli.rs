//! `perturb train` and `perturb predict` end to end on a small simulated screen.

mod common;

use common::{ingested, perturb};
use perturb_core::Table;

#[test]
fn train_predict_and_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = ingested(dir.path(), "norman-like", 300, 4000);
    let (d, g, e, m) = (data.to_str().unwrap(), dir.path().join("graph"), dir.path().join("eval"), dir.path().join("model"));
    let (c, o, err) = perturb(&["graph", "--genes", &format!("{d}/genes.parquet"), "--source", "go+regulon", "--out", g.to_str().unwrap()]);
    assert_eq!(c, 0, "{o}{err}");
    let (c, o, err) = perturb(&["eval", "--data", d, "--seeds", "1", "--out", e.to_str().unwrap()]);
    assert_eq!(c, 0, "{o}{err}");
    let split = e.join("split_double_seed1.parquet");
    let args = |out: &str, device: &str| {
        vec![
            "train".to_string(),
            "--data".into(),
            d.into(),
            "--graph".into(),
            g.to_str().unwrap().into(),
            "--split".into(),
            split.to_str().unwrap().into(),
            "--epochs".into(),
            "3".into(),
            "--hidden".into(),
            "8".into(),
            "--device".into(),
            device.into(),
            "--out".into(),
            out.into(),
        ]
    };
    let run = |a: Vec<String>| perturb(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let (c, o, err) = run(args(m.to_str().unwrap(), "auto"));
    assert_eq!(c, 0, "{o}{err}");
    assert!(o.contains("trained"), "{o}");

    let pred = dir.path().join("pred.parquet");
    let (c, o, err) =
        perturb(&["predict", "--model", m.to_str().unwrap(), "--perturbations", "KLF1+ctrl, CEBPA+KLF1", "--attention", "--out", pred.to_str().unwrap()]);
    assert_eq!(c, 0, "{o}{err}");
    let t = Table::read_parquet(&pred).unwrap();
    assert_eq!(t.n_rows(), 2 * 300, "two perturbations x every measured gene");
    assert_eq!(t.strings("perturbation", &pred).unwrap()[0], "KLF1");
    let att = dir.path().join("pred.attention.parquet");
    let a = Table::read_parquet(&att).unwrap();
    let sum: f64 = a.floats("attention", &att).unwrap().iter().take(a.n_rows() / 2).sum();
    assert!((sum - 1.0).abs() < 1e-4, "attention over genes sums to 1: {sum}");

    // Unknown gene: close names; a wgpu API this machine lacks, asked for explicitly:
    // refused before anything is written.
    let bad = dir.path().join("bad.parquet");
    let (c, _, err) = perturb(&["predict", "--model", m.to_str().unwrap(), "--perturbations", "KLF9X", "--out", bad.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(err.contains("gene 'KLF9X' is not in the model's graph (closest: "), "{err}");
    assert!(!bad.exists());
    if cfg!(target_os = "linux") {
        let (c, _, err) = run(args(dir.path().join("m2").to_str().unwrap(), "wgpu:metal"));
        assert_eq!(c, 1);
        assert!(err.contains("--device") && err.contains("no adapter"), "{err}");
        assert!(!dir.path().join("m2").exists());
    }
}

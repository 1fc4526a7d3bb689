//! `perturb train` and `perturb predict` end to end on a small simulated screen.

mod common;

use common::{perturb, refused, Screen};
use perturb_core::Table;

#[test]
fn train_predict_and_their_errors() {
    let screen = Screen::norman_like(300, 4000);
    let (dir, g, split, d) = (&screen.dir, &screen.graph, &screen.split, screen.data_arg());
    let m = dir.path().join("model");
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
    // Not on a terminal: a progress line per epoch instead of a bar.
    assert!(err.contains("epoch 1/3: loss ") && err.contains("epoch 3/3: loss "), "{err}");

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
    refused(
        &["predict", "--model", m.to_str().unwrap(), "--perturbations", "KLF9X", "--out", bad.to_str().unwrap()],
        "gene 'KLF9X' is not in the model's graph (closest: ",
    );
    assert!(!bad.exists());
    if cfg!(target_os = "linux") {
        let (c, _, err) = run(args(dir.path().join("m2").to_str().unwrap(), "wgpu:metal"));
        assert_eq!(c, 1);
        assert!(err.contains("--device") && err.contains("no adapter"), "{err}");
        assert!(!dir.path().join("m2").exists());
    }

    // A split with every condition moved out of train: nothing to learn from.
    let sp = Table::read_parquet(split).unwrap();
    let n = sp.n_rows();
    let rewrite = |path: &std::path::Path, set: &str| {
        let mut t = Table::new();
        for name in ["task", "condition"] {
            t = t.with(name, perturb_core::Column::Str(sp.strings(name, split).unwrap().to_vec()));
        }
        t.with("seed", perturb_core::Column::I64(sp.ints("seed", split).unwrap().to_vec()))
            .with("set", perturb_core::Column::Str(vec![set.to_string(); n]))
            .with("combo_seen", perturb_core::Column::I64(sp.ints("combo_seen", split).unwrap().to_vec()))
            .write_parquet(path)
            .unwrap();
    };
    let all_test = dir.path().join("all_test.parquet");
    rewrite(&all_test, "test");
    let mut a = args(dir.path().join("m3").to_str().unwrap(), "cpu");
    let at = a.iter().position(|x| x == "--split").unwrap() + 1;
    a[at] = all_test.to_str().unwrap().into();
    let (c, _, err) = run(a);
    assert_eq!(c, 1);
    assert!(err.contains("all_test.parquet") && err.contains("the training split has no perturbed conditions"), "{err}");
    assert!(!dir.path().join("m3").exists());
    // Predicting a split's test set when it has none.
    let all_train = dir.path().join("all_train.parquet");
    rewrite(&all_train, "train");
    refused(
        &["predict", "--model", m.to_str().unwrap(), "--split", all_train.to_str().unwrap(), "--out", bad.to_str().unwrap()],
        "--set test: no perturbed conditions in that set",
    );
    assert!(!bad.exists());

    // A model folder with a file missing, and one whose index belongs to another model.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for f in std::fs::read_dir(&m).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, broken.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::remove_file(broken.join("model.bpk")).unwrap();
    let (c, _, err) = perturb(&["predict", "--model", broken.to_str().unwrap(), "--perturbations", "KLF1", "--out", bad.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(err.contains("model.bpk") && err.contains("missing"), "{err}");
    std::fs::copy(m.join("model.bpk"), broken.join("model.bpk")).unwrap();
    let index = std::fs::read_to_string(broken.join("index.json")).unwrap();
    let mut index: serde_json::Value = serde_json::from_str(&index).unwrap();
    index["outputs"].as_array_mut().unwrap().pop();
    std::fs::write(broken.join("index.json"), index.to_string()).unwrap();
    let (c, _, err) = perturb(&["predict", "--model", broken.to_str().unwrap(), "--perturbations", "KLF1", "--out", bad.to_str().unwrap()]);
    assert_eq!(c, 1);
    assert!(err.contains("index.json") && err.contains("does not match"), "{err}");
    assert!(!bad.exists());
}

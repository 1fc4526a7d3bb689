//! `perturb simulate` as a user runs it: deterministic by seed, readable by the ingest
//! stage, and clear about bad input. Uses the committed priors (data/priors).

mod common;

use std::path::Path;

use common::perturb;

/// A small screen: the norman-like design over 300 genes and 4,000 cells.
fn simulate(out: &Path, seed: &str) {
    let (code, stdout, stderr) =
        perturb(&["simulate", "--preset", "norman-like", "--seed", seed, "--n-genes", "300", "--n-cells", "4000", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

#[test]
fn same_seed_same_file_and_ingest_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a.h5ad"), dir.path().join("b.h5ad"), dir.path().join("c.h5ad"));
    simulate(&a, "1");
    simulate(&b, "1");
    simulate(&c, "2");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "same seed, same bytes");
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap(), "another seed, another screen");
    assert!(dir.path().join("a.network.parquet").exists());

    let out = dir.path().join("ingested");
    let (code, stdout, stderr) = perturb(&["ingest", "--input", a.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    // Norman's design: control, 100 singles, 124 doubles.
    assert!(stdout.contains("225 conditions (100 singles, 124 doubles)"), "{stdout}");
    assert!(stdout.contains("raw counts"), "{stdout}");
}

/// `--contexts 2`: two cell lines, each with the whole design, that ingest as two contexts
/// with the same conditions and different controls.
#[test]
fn two_lines_hold_the_whole_design_each_and_differ() {
    let dir = tempfile::tempdir().unwrap();
    let screen = dir.path().join("lines.h5ad");
    let (code, o, e) = perturb(&["simulate", "--contexts", "2", "--n-genes", "300", "--n-cells", "4000", "--out", screen.to_str().unwrap()]);
    assert_eq!(code, 0, "{o}{e}");
    let out = dir.path().join("ingested");
    let (code, o, e) = perturb(&["ingest", "--input", screen.to_str().unwrap(), "--context-key", "cell_type", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{o}{e}");
    let lines: Vec<perturb_core::ingested::IngestedScreen> =
        ["line1", "line2"].iter().map(|l| perturb_core::ingested::IngestedScreen::read(&out.join(l)).unwrap()).collect();
    assert_eq!(lines[0].conditions, lines[1].conditions, "the same perturbations in both lines");
    assert_eq!(lines[0].conditions.len(), 225);
    let shift: f64 = lines[0].control().iter().zip(lines[1].control()).map(|(a, b)| (a - b).abs()).sum::<f64>() / 300.0;
    assert!(shift > 0.05, "the second line has a baseline of its own (mean |difference| {shift})");

    // One line is the screen as it was before --contexts: the same bytes.
    let (one, default) = (dir.path().join("one.h5ad"), dir.path().join("default.h5ad"));
    for (path, extra) in [(&one, &["--contexts", "1"][..]), (&default, &[][..])] {
        let mut args = vec!["simulate", "--n-genes", "300", "--n-cells", "4000", "--out", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        assert_eq!(perturb(&args).0, 0);
    }
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&default).unwrap());

    let x = dir.path().join("x.h5ad");
    assert_fails(&["simulate", "--contexts", "2", "--report", "--out", x.to_str().unwrap()], "leave it out with --contexts", 1);
    assert_fails(&["simulate", "--contexts", "9", "--out", x.to_str().unwrap()], "9 is not in 1..=8", 2);
    assert!(!x.exists());
}

fn assert_fails(args: &[&str], expect: &str, code_wanted: i32) {
    let (code, stdout, stderr) = perturb(args);
    assert_eq!(code, code_wanted, "{stdout}\n{stderr}");
    assert!(stderr.contains(expect), "expected '{expect}' in: {stderr}");
}

#[test]
fn bad_input_is_refused_without_leaving_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.h5ad");
    let o = out.to_str().unwrap();
    assert_fails(&["simulate", "--preset", "norman", "--out", o], "invalid value 'norman' for '--preset", 2);
    assert_fails(&["simulate", "--n-genes", "0", "--out", o], "0 is not a positive size", 2);
    assert_fails(&["simulate", "--n-cells=-5", "--out", o], "not a positive size", 2);
    assert_fails(&["simulate", "--targets", "KLF1,GATA9", "--n-genes", "300", "--out", o], "target gene 'GATA9' is not in the network (closest names: GATA", 1);
    assert_fails(&["simulate", "--out", "/nonexistent/dir/x.h5ad"], "/nonexistent/dir: output folder does not exist", 1);
    assert_fails(&["simulate", "--out", dir.path().join("x.txt").to_str().unwrap()], "should end in .h5ad", 1);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}

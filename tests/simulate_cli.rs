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
    assert_fails(&["simulate", "--preset", "norman", "--out", o], "unknown preset 'norman'", 2);
    assert_fails(&["simulate", "--n-genes", "0", "--out", o], "0 is not a positive size", 2);
    assert_fails(&["simulate", "--n-cells=-5", "--out", o], "not a positive size", 2);
    assert_fails(&["simulate", "--targets", "KLF1,GATA9", "--n-genes", "300", "--out", o], "target gene 'GATA9' is not in the network (closest names: GATA", 1);
    assert_fails(&["simulate", "--out", "/nonexistent/dir/x.h5ad"], "/nonexistent/dir: output folder does not exist", 1);
    assert_fails(&["simulate", "--out", dir.path().join("x.txt").to_str().unwrap()], "should end in .h5ad", 1);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}

//! End-to-end tests of `perturb ingest` as a user runs it: exit status, the one-line error,
//! and that a failed run leaves nothing behind.
//! (Registered as an integration test of crates/perturb-cli, which builds the binary.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/h5ad").join(name)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn perturb(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_perturb")).args(args).output().expect("run perturb");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `perturb ingest` on bad input and checks: exit status 1, exactly one line on
/// stderr that starts with `error:`, names `names`, contains `expect`, and nothing was
/// written — neither the output folder nor any staging leftovers beside it.
fn assert_fails(input: &Path, extra: &[&str], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut args = vec!["ingest", "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = perturb(&args);
    assert_eq!(run.code, 1, "{}: expected failure, got {}\nstdout: {}\nstderr: {}", input.display(), run.code, run.stdout, run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line of error, got: {:?}", lines);
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    assert!(lines[0].contains(input.file_name().unwrap().to_str().unwrap()), "error names the file: {}", lines[0]);
    assert!(lines[0].contains(expect), "error should say '{expect}': {}", lines[0]);
    assert!(!out.exists(), "no output folder after a failure");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no leftovers beside the output");
}

#[test]
fn missing_file() {
    assert_fails(Path::new("/nonexistent/screen.h5ad"), &[], "No such file");
}

/// A file that cannot be read as a screen is refused with what is wrong with it.
#[test]
fn an_unreadable_file_is_refused_with_its_problem() {
    for (file, problem) in [
        ("not_hdf5.h5ad", "not an HDF5 file"),
        ("truncated.h5ad", "file is truncated (107280 bytes"),
        ("no_x.h5ad", "no X matrix"),
        ("blosc.h5ad", "compression filter 32001 (blosc)"),
        ("coo_encoding.h5ad", "unsupported matrix encoding 'coo_matrix'"),
    ] {
        assert_fails(&fixture(file), &[], problem);
    }
}

#[test]
fn missing_condition_key_lists_the_columns() {
    assert_fails(&fixture("csr_f32.h5ad"), &["--condition-key", "guide"], "obs has no column 'guide' (columns: ");
    assert_fails(&fixture("csr_f32.h5ad"), &["--condition-key", "guide"], "condition");
}

#[test]
fn control_label_absent() {
    assert_fails(&fixture("no_control.h5ad"), &[], "no control cells");
    assert_fails(&fixture("csr_f32.h5ad"), &["--control", "NT"], "no control cells");
}

#[test]
fn nan_in_counts() {
    assert_fails(&fixture("nan_counts.h5ad"), &[], "non-finite value NaN");
}

#[test]
fn negative_counts() {
    assert_fails(&fixture("negative_counts.h5ad"), &[], "negative value -3");
}

#[test]
fn duplicate_gene_names() {
    assert_fails(&fixture("dup_genes.h5ad"), &[], "duplicate gene names");
}

#[test]
fn condition_with_zero_cells_after_filtering() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("counts.csv");
    std::fs::write(&input, "condition,G1,G2\nctrl,10,10\nctrl,12,9\nA+ctrl,1,0\nA+ctrl,0,2\n").unwrap();
    assert_fails(&input, &["--min-counts", "5"], "condition 'A' has zero cells after filtering");
}

#[test]
fn bad_options_are_errors_too() {
    assert_fails(&fixture("csr_f32.h5ad"), &["--layer", "spliced"], "no layer 'spliced'");
    assert_fails(&fixture("gears_lognorm.h5ad"), &["--hvg-flavor", "seurat_v3"], "needs raw counts");
    let run = perturb(&["ingest", "--input", "x.h5ad", "--out", "y", "--hvg-flavor", "pearson"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("seurat, cell_ranger, seurat_v3"), "{}", run.stderr);
}

#[test]
fn success_prints_a_summary_and_reruns_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let run = perturb(&["ingest", "--input", fixture("csr_f32.h5ad").to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("conditions"), "{}", run.stdout);
    }
    for f in ["genes.parquet", "conditions.parquet", "pseudobulk.parquet"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f} differs between runs");
    }
    let ma = std::fs::read_to_string(a.join("manifest.json")).unwrap();
    let mb = std::fs::read_to_string(b.join("manifest.json")).unwrap();
    assert_eq!(ma.replace(a.to_str().unwrap(), ""), mb.replace(b.to_str().unwrap(), ""));
}

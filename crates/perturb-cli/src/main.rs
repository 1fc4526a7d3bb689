//! `perturb`: every pipeline stage as a subcommand.
//!
//! Errors print as one line (`error: <file>: <problem>`) and exit with status 1; usage
//! errors exit with status 2 (clap's convention).

mod eval;
mod graph;
mod ingest;
mod parsers;
mod ranges;
mod reproduce;
mod simulate;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use eval::EvalArgs;
use graph::GraphArgs;
use ingest::IngestArgs;
use reproduce::ReproduceArgs;
use simulate::SimulateArgs;
use train::{PredictArgs, TrainArgs};

#[derive(Parser)]
#[command(name = "perturb", version, about = "Predict transcriptome responses to genetic perturbations with a gene-network prior")]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a screen (h5ad or CSV) and write normalised pseudobulk Parquet artifacts.
    Ingest(IngestArgs),
    /// Simulate a pooled CRISPR screen over the real regulon network (raw-count h5ad,
    /// GEARS schema) plus its ground-truth network.
    Simulate(SimulateArgs),
    /// Build the gene network over the ingested genes and perturbation targets.
    Graph(GraphArgs),
    /// Evaluate the honest baselines (and models) on benchmark splits.
    Eval(EvalArgs),
    /// Train APP (or an ablation), `modules` or `grn_vae` on a split's training conditions.
    // A flag given twice keeps its last value: --preset's flags come first, so the
    // user's own override them.
    #[command(args_override_self = true)]
    Train(TrainArgs),
    /// Predict log-fold changes (and attention) for perturbations with a trained model.
    Predict(PredictArgs),
    /// The whole study, resumable: simulate (or your --input) -> ingest -> graph -> splits
    /// and baselines -> every model per task and seed -> network-quality study -> report.
    Reproduce(ReproduceArgs),
}

/// Training allocates and frees tensors of a few megabytes every step; glibc serves those
/// with fresh mmaps by default and the page faults then cost more than the arithmetic.
/// Keeping them on the heap makes CPU training about twice as fast.
fn keep_large_allocations_on_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// `perturb train ... --preset NAME ...` with the preset's flags put right after `train`:
/// flags the user gives anywhere after them override them. Other commands pass as given.
fn with_preset(args: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>, String> {
    let Some(train) = args.iter().skip(1).position(|a| !a.to_string_lossy().starts_with('-')).map(|i| i + 1) else { return Ok(args) };
    if args[train] != "train" {
        return Ok(args);
    }
    let mut name = None;
    for (i, a) in args.iter().enumerate().skip(train + 1) {
        let a = a.to_string_lossy();
        if let Some(value) = a.strip_prefix("--preset=") {
            name = Some(value.to_string());
        } else if a == "--preset" {
            name = args.get(i + 1).map(|v| v.to_string_lossy().into_owned());
        }
    }
    let Some(name) = name else { return Ok(args) };
    let flags = perturb_pipeline::preset_flags(&name)?;
    let mut out = args[..=train].to_vec();
    out.extend(flags.iter().map(std::ffi::OsString::from));
    out.extend(args[train + 1..].iter().cloned());
    Ok(out)
}

fn main() -> ExitCode {
    keep_large_allocations_on_the_heap();
    let args = match with_preset(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();

    let result = match cli.command {
        Command::Ingest(a) => ingest::run_ingest(a),
        Command::Simulate(a) => simulate::run_simulate(a),
        Command::Graph(a) => graph::run_graph(a),
        Command::Eval(a) => eval::run_eval(a),
        Command::Train(a) => train::run_train(a),
        Command::Predict(a) => train::run_predict(a),
        Command::Reproduce(a) => reproduce::run_reproduce(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error: the message already names the file.
            eprintln!("error: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

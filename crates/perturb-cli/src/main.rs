//! `perturb`: every pipeline stage as a subcommand.
//!
//! Errors print as one line (`error: <file>: <problem>`) and exit with status 1; usage
//! errors exit with status 2 (clap's convention).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use perturb_core::ConditionSyntax;
use perturb_ingest::hvg::HvgFlavor;
use perturb_ingest::{AssumeScale, InputFormat, IngestOptions};

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
}

#[derive(Args)]
struct IngestArgs {
    /// The screen: an AnnData .h5ad, a cells x genes count CSV/TSV (optionally .gz), or
    /// with --format csv-pseudobulk a conditions x genes table.
    #[arg(long, short, value_name = "FILE")]
    input: PathBuf,
    /// Output folder (created; artifacts appear only when all are complete).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// auto | h5ad | csv-counts | csv-pseudobulk
    #[arg(long, default_value = "auto", value_parser = parse::<InputFormat>)]
    format: InputFormat,
    /// Matrix to read: X, raw (raw/X) or a layer name such as counts.
    #[arg(long, value_name = "NAME")]
    layer: Option<String>,
    /// var column holding gene symbols [default: gene_name if present, else the var index]
    #[arg(long, value_name = "COLUMN")]
    gene_key: Option<String>,
    /// obs column holding condition labels.
    #[arg(long, default_value = "condition", value_name = "COLUMN")]
    condition_key: String,
    /// Label (or label token) of unperturbed cells, e.g. ctrl (GEARS) or control (scPerturb).
    #[arg(long, default_value = "ctrl")]
    control: String,
    /// gears (A+B, A+ctrl) | scperturb (A_B) | auto (gears if any label has '+')
    #[arg(long, default_value = "auto", value_parser = parse::<ConditionSyntax>)]
    condition_syntax: ConditionSyntax,
    /// auto | counts | lognorm. auto: raw counts if the first block holds only
    /// non-negative integers, else already log-normalised.
    #[arg(long, default_value = "auto", value_parser = parse::<AssumeScale>)]
    assume: AssumeScale,
    /// Total counts per cell after normalisation (scanpy normalize_total).
    #[arg(long, default_value_t = 1e4)]
    target_sum: f64,
    /// seurat | cell_ranger | seurat_v3 (needs raw counts)
    #[arg(long, default_value = "seurat", value_parser = parse::<HvgFlavor>)]
    hvg_flavor: HvgFlavor,
    /// Number of highly-variable genes to flag (all genes are still summarised).
    #[arg(long, default_value_t = 2000)]
    n_top_genes: usize,
    /// Select HVGs by scanpy's default mean/dispersion cutoffs instead of --n-top-genes.
    #[arg(long)]
    hvg_cutoffs: bool,
    /// Drop cells with fewer total counts (raw counts only).
    #[arg(long, default_value_t = 0.0)]
    min_counts: f64,
}

fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();

    let result = match cli.command {
        Command::Ingest(a) => run_ingest(a),
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

fn run_ingest(a: IngestArgs) -> perturb_core::Result<()> {
    let started = std::time::Instant::now();
    let opts = IngestOptions {
        input: a.input,
        out: a.out,
        format: a.format,
        layer: a.layer,
        gene_key: a.gene_key,
        condition_key: a.condition_key,
        control: a.control,
        syntax: a.condition_syntax,
        assume: a.assume,
        target_sum: a.target_sum,
        hvg_flavor: a.hvg_flavor,
        n_top_genes: a.n_top_genes,
        hvg_cutoffs: a.hvg_cutoffs,
        min_counts: a.min_counts,
    };
    let s = perturb_ingest::ingest(&opts)?;
    for w in &s.warnings {
        eprintln!("note: {w}");
    }
    println!(
        "ingested {} cells x {} genes from {} ({}; genes from {}): {} conditions ({} singles, {} doubles), {} highly variable genes -> {} in {:.1}s",
        s.n_cells,
        s.n_genes,
        s.matrix,
        match s.value_scale.as_str() {
            "counts" => "raw counts, normalised + log1p",
            _ => "already log-normalised, used as is",
        },
        s.gene_names_from,
        s.n_conditions,
        s.n_singles,
        s.n_doubles,
        s.n_highly_variable,
        s.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

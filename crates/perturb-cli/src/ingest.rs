//! `perturb ingest`: a screen in, pseudobulk Parquet out.

use std::path::PathBuf;

use clap::Args;
use perturb_core::guard::{claim, NamedPath};
use perturb_core::ConditionSyntax;
use perturb_ingest::hvg::HvgFlavor;
use perturb_ingest::{AssumeScale, IngestOptions, InputFormat};

use crate::parsers::{named, parse};
use crate::ranges;

#[derive(Args)]
pub(crate) struct IngestArgs {
    /// The screen: an AnnData .h5ad, a cells x genes count CSV/TSV (optionally .gz), or
    /// with --format csv-pseudobulk a conditions x genes table.
    #[arg(long, short, value_name = "FILE")]
    input: PathBuf,
    /// Output folder (created; artifacts appear only when all are complete).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// What kind of file the input is; auto: from its name.
    #[arg(long, default_value = defaults().format.as_str(), value_parser = named::<InputFormat>())]
    format: InputFormat,
    /// Matrix to read: X, raw (raw/X) or a layer name such as counts.
    #[arg(long, value_name = "NAME")]
    layer: Option<String>,
    /// var column holding gene symbols [default: gene_name if present, else the var index]
    #[arg(long, value_name = "COLUMN")]
    gene_key: Option<String>,
    /// obs column holding condition labels [default: condition if present, else the first
    /// present of target, target_gene, gene, guide_target, perturbation]
    #[arg(long, value_name = "COLUMN")]
    condition_key: Option<String>,
    /// Label (or label token) of unperturbed cells, e.g. ctrl (GEARS) or control (scPerturb)
    /// [default: the one label that is a known control label: ctrl, control, non-targeting,
    /// NT, NTC, safe-targeting, negative_control, unperturbed, … ignoring case]
    #[arg(long, value_name = "LABEL")]
    control: Option<String>,
    /// Keep only the cells whose obs column KEY equals VALUE (a context: a cell line, a
    /// stimulation); repeat to AND several.
    #[arg(long, value_name = "KEY=VALUE", value_parser = |s: &str| match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("'{s}': expected KEY=VALUE, e.g. perturbation_2=stimulated")),
    })]
    subset: Vec<(String, String)>,
    /// obs column whose values are contexts (a cell line, a stimulation state): each
    /// context is ingested into DIR/<value>/ against its own control, and DIR/contexts.parquet
    /// lists them; repeat to combine columns.
    #[arg(long = "context-key", value_name = "COLUMN")]
    context_keys: Vec<String>,
    /// obs column of each cell's batch (a 10x lane, gem_group): each cell is read against
    /// its batch's own control cells, then the effects are averaged.
    #[arg(long, value_name = "COLUMN")]
    batch_key: Option<String>,
    /// gears (A+B, A+ctrl) | scperturb (A_B) | auto (gears if any label has '+')
    #[arg(long, default_value = "auto", value_parser = parse::<ConditionSyntax>)]
    condition_syntax: ConditionSyntax,
    /// What the values are; auto: raw counts if the first block holds only non-negative
    /// integers, else already log-normalised.
    #[arg(long, default_value = defaults().assume.as_str(), value_parser = named::<AssumeScale>())]
    assume: AssumeScale,
    /// Total counts per cell after normalisation (scanpy normalize_total).
    #[arg(long, default_value_t = defaults().target_sum, value_parser = ranges::positive)]
    target_sum: f64,
    /// scanpy's flavour of highly variable genes (seurat_v3 needs raw counts).
    #[arg(long, default_value = defaults().hvg_flavor.as_str(), value_parser = named::<HvgFlavor>())]
    hvg_flavor: HvgFlavor,
    /// Number of highly-variable genes to flag (all genes are still summarised).
    #[arg(long, default_value_t = defaults().n_top_genes, value_parser = ranges::count(1, 1_000_000))]
    n_top_genes: usize,
    /// Select HVGs by scanpy's default mean/dispersion cutoffs instead of --n-top-genes.
    #[arg(long)]
    hvg_cutoffs: bool,
    /// Drop cells with fewer total counts (raw counts only).
    #[arg(long, default_value_t = defaults().min_counts, value_parser = ranges::non_negative)]
    min_counts: f64,
    /// CSV input: read empty cells (how pandas writes NaN) as 0 instead of refusing the file.
    #[arg(long)]
    missing_as_zero: bool,
}

/// The ingest's notes on stderr; a context's note that every context shares is said once.
pub(crate) fn print_ingest_notes(s: &perturb_ingest::IngestSummary) {
    for w in &s.warnings {
        eprintln!("note: {w}");
    }
    let shared = |w: &String| s.contexts.iter().all(|c| c.warnings.contains(w));
    for w in s.contexts.first().map_or(&[][..], |c| &c.warnings[..]).iter().filter(|w| shared(w)) {
        eprintln!("note: {w}");
    }
    for c in &s.contexts {
        for w in c.warnings.iter().filter(|w| !shared(w)) {
            eprintln!("note: context {}: {w}", c.context.as_deref().unwrap_or(""));
        }
    }
}

/// The library's defaults, which the flags show and start from.
fn defaults() -> IngestOptions {
    IngestOptions::new("", "")
}

pub(crate) fn run_ingest(a: IngestArgs) -> perturb_core::Result<()> {
    let _lock = claim(NamedPath::new("--out", &a.out), &[NamedPath::new("--input", &a.input)])?;
    let started = std::time::Instant::now();
    let opts = IngestOptions {
        input: a.input,
        out: a.out,
        format: a.format,
        layer: a.layer,
        gene_key: a.gene_key,
        condition_key: a.condition_key,
        control: a.control,
        subset: a.subset,
        context_keys: a.context_keys,
        batch_key: a.batch_key,
        syntax: a.condition_syntax,
        assume: a.assume,
        target_sum: a.target_sum,
        hvg_flavor: a.hvg_flavor,
        n_top_genes: a.n_top_genes,
        hvg_cutoffs: a.hvg_cutoffs,
        min_counts: a.min_counts,
        missing_as_zero: a.missing_as_zero,
    };
    let s = perturb_ingest::ingest(&opts)?;
    print_ingest_notes(&s);
    let seconds = started.elapsed().as_secs_f64();
    if !s.contexts.is_empty() {
        for c in &s.contexts {
            println!("context {}: {} cells, {} -> {}", c.context.as_deref().unwrap_or(""), c.n_cells, design(c), c.out.display());
        }
        let (cells, genes, matrix, n_contexts) = (s.n_cells, s.n_genes, &s.matrix, s.contexts.len());
        println!(
            "ingested {cells} cells x {genes} genes from {matrix} in {n_contexts} contexts, each against its own control -> {} in {seconds:.1}s",
            s.out.display()
        );
        return Ok(());
    }
    let scale = match s.value_scale.as_str() {
        "counts" => "raw counts, normalised + log1p",
        _ => "already log-normalised, used as is",
    };
    let (cells, genes, matrix, gene_names) = (s.n_cells, s.n_genes, &s.matrix, &s.gene_names_from);
    println!("ingested {cells} cells x {genes} genes from {matrix} ({scale}; genes from {gene_names}): {} -> {} in {seconds:.1}s", design(&s), s.out.display());
    Ok(())
}

/// The screen's design as the summary line says it: "225 conditions (100 singles, 124
/// doubles), 2000 highly variable genes".
fn design(s: &perturb_ingest::IngestSummary) -> String {
    format!("{} conditions ({} singles, {} doubles), {} highly variable genes", s.n_conditions, s.n_singles, s.n_doubles, s.n_highly_variable)
}

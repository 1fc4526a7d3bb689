//! `perturb simulate`: the default screen.

use std::path::PathBuf;

use clap::Args;
use perturb_core::guard::{claim, NamedPath};
use perturb_simulate::{Preset, Scale, SimulateOptions, Sizes};

use crate::parsers::named;
use crate::ranges;

#[derive(Args)]
pub(crate) struct SimulateArgs {
    /// norman-like (CRISPRa singles + doubles) | adamson-like | replogle-like (CRISPRi singles)
    #[arg(long, default_value = "norman-like", value_parser = named::<Preset>())]
    preset: Preset,
    /// quick (seconds; 3,000 genes) | full (Norman-size: 85,000 cells x 19,000 genes)
    #[arg(long, default_value = "quick", value_parser = named::<Scale>())]
    scale: Scale,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output .h5ad; the network is written beside it as <name>.network.parquet.
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// Regulon table (columns source, target, sign).
    #[arg(long, default_value_os_t = defaults().network, value_name = "FILE")]
    network: PathBuf,
    /// Table whose `gene` column pads the gene list when the network names too few genes.
    #[arg(long, value_name = "FILE")]
    padding_genes: Option<PathBuf>,
    /// Comma-separated genes to perturb instead of the preset's.
    #[arg(long, value_delimiter = ',', value_name = "GENES")]
    targets: Option<Vec<String>>,
    /// Override the number of measured genes.
    #[arg(long, value_parser = ranges::size)]
    n_genes: Option<usize>,
    /// Override the number of cells.
    #[arg(long, value_parser = ranges::size)]
    n_cells: Option<usize>,
    /// Measure the screen with the benchmark's definitions beside the real Norman and
    /// Replogle figures.
    #[arg(long)]
    report: bool,
    /// Cell lines: each holds the whole design, later ones with another baseline and 30% of
    /// the true edges inactive; obs `cell_type` names them line1, line2, … (ingest with
    /// --context-key cell_type).
    #[arg(long, default_value_t = defaults().contexts, value_parser = ranges::count(1, 8))]
    contexts: usize,
    /// Share of the prior's regulon edges that are true in the simulated cell type
    /// [default: the calibrated realistic world, see `perturb_simulate::PriorNoise`].
    #[arg(long, value_parser = ranges::fraction)]
    prior_precision: Option<f64>,
    /// Share of the true edges the prior holds (the rest are hidden edges) [default: as precision].
    #[arg(long, value_parser = ranges::fraction)]
    prior_recall: Option<f64>,
    /// Share of kept prior edges whose true sign is flipped [default: 0].
    #[arg(long, value_parser = ranges::fraction)]
    prior_sign_error: Option<f64>,
    /// The truth is the prior itself (the simulator's world before realistic priors).
    #[arg(long, conflicts_with_all = ["prior_precision", "prior_recall", "prior_sign_error"])]
    exact_prior: bool,
}

/// The library's defaults, which the flags show and start from.
fn defaults() -> SimulateOptions {
    SimulateOptions::new(Preset::NormanLike, Scale::Quick, 0, "")
}

pub(crate) fn run_simulate(a: SimulateArgs) -> perturb_core::Result<()> {
    let network_out = perturb_simulate::network_path_for(&a.out);
    let mut inputs = vec![NamedPath::new("--network", &a.network)];
    inputs.extend(a.padding_genes.as_deref().map(|p| NamedPath::new("--padding-genes", p)));
    let _lock = claim(NamedPath::new("--out", &a.out), &inputs)?;
    perturb_core::guard::refuse_overlap(NamedPath::new("--out (its network file)", &network_out), &inputs)?;
    let started = std::time::Instant::now();
    let scale_name = a.scale.name();
    let mut opts = SimulateOptions::new(a.preset, a.scale, a.seed, a.out);
    opts.network = a.network;
    opts.padding_genes = a.padding_genes.or_else(|| {
        // The committed GO annotations name more real genes than the regulons do.
        let go = std::path::Path::new("data/priors/go_annotations.parquet");
        (a.scale == Scale::Full && go.exists()).then(|| go.to_path_buf())
    });
    // The alias table beside the network lists the official symbols.
    opts.symbols = Some(opts.network.with_file_name("gene_aliases.parquet")).filter(|p| p.exists());
    opts.targets = a.targets;
    opts.sizes = Sizes { n_genes: a.n_genes, n_cells: a.n_cells };
    opts.report = a.report;
    opts.contexts = a.contexts;
    let base = if a.exact_prior { perturb_simulate::PriorNoise::EXACT } else { perturb_simulate::PriorNoise::REALISTIC };
    opts.prior_noise = perturb_simulate::PriorNoise {
        precision: a.prior_precision.unwrap_or(base.precision),
        recall: a.prior_recall.or(a.prior_precision).unwrap_or(base.recall),
        sign_error: a.prior_sign_error.unwrap_or(base.sign_error),
    };
    let s = perturb_simulate::simulate(&opts)?;
    let (preset, seed, seconds) = (opts.preset.name(), opts.seed, started.elapsed().as_secs_f64());
    let (cells, genes, conditions, nonzero) = (s.n_cells, s.n_genes, s.n_conditions, s.n_nonzero);
    let (out, network) = (opts.out.display(), s.network_file.display());
    println!("simulated {scale_name} ({preset} preset, seed {seed}): {cells} cells x {genes} genes, {conditions} conditions, {nonzero} non-zeros -> {out} (+ {network}) in {seconds:.1}s");
    if let Some(r) = &s.report {
        for line in r.lines() {
            println!("{line}");
        }
    }
    Ok(())
}

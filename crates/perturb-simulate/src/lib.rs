//! `perturb simulate`: a pooled CRISPR screen simulated over a real regulatory network.
//!
//! No real Perturb-seq matrix ships with perturb, so the default data set is simulated:
//! genes and edges come from the real human regulon network in data/priors, control
//! expression and cell counts are drawn like the real Norman 2019 K562 screen (summary in
//! data/calibration/norman2019.json), perturbations propagate through saturating
//! regulation (dynamics.rs), and cells are sampled with library-size, CRISPR-efficiency,
//! cell-state and negative-binomial variation (sample.rs). The output is a raw-count
//! h5ad in GEARS' schema plus the ground-truth network, so every later stage runs on it
//! exactly as on a lab's file.

pub mod design;
pub mod dynamics;
pub mod h5ad_write;
pub mod network;
pub mod report;
pub mod sample;
pub mod truth;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use perturb_core::metrics::top_expressed_genes;
use perturb_core::staging::StagedFiles;
use perturb_core::truth_network::{self, TruthEdgeRow};
use perturb_core::{Error, Result, Table};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

pub use design::{Calibration, Modality, Preset, Scale, Sizes};
pub use dynamics::ResponseParams;
use h5ad_write::CountScreen;
use network::Network;
pub use report::CalibrationReport;
pub use truth::PriorNoise;

/// The calibration summary derived from the Norman 2019 source data.
pub const NORMAN_CALIBRATION: &str = include_str!("../../../data/calibration/norman2019.json");

#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub preset: Preset,
    pub scale: Scale,
    pub seed: u64,
    pub out: PathBuf,
    /// Regulon table (source, target, sign).
    pub network: PathBuf,
    /// Extra real gene symbols to pad the gene list with when the network has too few
    /// (e.g. data/priors/go_annotations.parquet's `gene` column); optional.
    pub padding_genes: Option<PathBuf>,
    /// Official symbols (a table with a `symbol` column, e.g. data/priors/gene_aliases.parquet):
    /// a node that looks like a UniProt accession is kept only if it is one of them.
    pub symbols: Option<PathBuf>,
    /// Perturb these genes instead of the preset's (singles; norman-like also pairs them).
    pub targets: Option<Vec<String>>,
    pub sizes: Sizes,
    pub response: ResponseParams,
    /// How far the network the screen is generated from lies from the prior.
    pub prior_noise: PriorNoise,
    pub report: bool,
    pub threads: usize,
    /// Cell lines (≥ 1): every line holds the whole design; lines after the first differ
    /// from it in baseline and in a share of inactive true edges ([`LINE_DIFFERENCES`]).
    pub contexts: usize,
}

/// How the cell lines of a multi-line screen (`--contexts`) differ from the first: each
/// gene's baseline rate times a log-normal factor of this spread, and this share of the
/// true edges inactive (drawn per line). The same network, perturbations and guides.
pub const LINE_DIFFERENCES: LineDifferences = LineDifferences { baseline_spread: 0.3, inactive_edges: 0.3 };

#[derive(Debug, Clone, Copy)]
pub struct LineDifferences {
    pub baseline_spread: f64,
    pub inactive_edges: f64,
}

impl SimulateOptions {
    pub fn new(preset: Preset, scale: Scale, seed: u64, out: impl Into<PathBuf>) -> Self {
        SimulateOptions {
            preset,
            scale,
            seed,
            out: out.into(),
            network: PathBuf::from("data/priors/regulons.parquet"),
            padding_genes: None,
            symbols: None,
            targets: None,
            sizes: Sizes::default(),
            response: ResponseParams::default(),
            prior_noise: PriorNoise::REALISTIC,
            report: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            contexts: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimulateSummary {
    pub n_cells: usize,
    pub n_genes: usize,
    pub n_conditions: usize,
    pub n_nonzero: usize,
    pub network_file: PathBuf,
    pub report: Option<CalibrationReport>,
}

/// The file beside `out` that holds the ground-truth network.
pub fn network_path_for(out: &Path) -> PathBuf {
    perturb_core::schema::truth_network::file_beside(out)
}

pub fn simulate(opts: &SimulateOptions) -> Result<SimulateSummary> {
    check_options(opts)?;
    let calibration: Calibration = serde_json::from_str(NORMAN_CALIBRATION).expect("embedded calibration parses");
    let symbols = read_symbols(opts)?;
    let network = Network::read(&opts.network, symbols.as_ref())?;
    let known = network.genes();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut design = design::build(opts.preset, opts.scale, &opts.sizes, &calibration, &regulators_by_targets(&network), &mut rng)?;
    if let Some(targets) = &opts.targets {
        replace_targets(&mut design, targets, &known, &opts.network, &mut rng)?;
    }
    refuse_beyond_memory(&design, opts.contexts)?;
    let genes = choose_genes(&design, &network, opts, &mut rng)?;
    let index: HashMap<&str, usize> = genes.iter().enumerate().map(|(i, g)| (g.as_str(), i)).collect();
    let n_genes = genes.len();
    let truth = TrueRegulation::draw(&network, &genes, &index, opts, &mut rng);
    let lines = line_regulations(&truth.regulation, opts.contexts, &mut rng);
    let baseline = Baseline::draw(n_genes, &calibration, opts, &mut rng);
    let shift = guide_shifts(&design, opts, &mut rng);
    let deviation = deviations(&design, &lines, &baseline.line_shift, &index, &shift);

    // Cells, shuffled as a pooled screen's are; each line holds the whole design.
    let n_conditions = design.conditions.len();
    let mut plan: Vec<sample::CellPlan> = (0..opts.contexts)
        .flat_map(|k| design.conditions.iter().enumerate().flat_map(move |(i, c)| std::iter::repeat_n((k * n_conditions + i) as u16, c.n_cells)))
        .collect();
    plan.shuffle(&mut rng);
    let model = sample::CellModel {
        rate: &baseline.rate,
        dispersion: &baseline.dispersion,
        program: &baseline.program,
        deviation: &deviation,
        level_weights: &EFFICIENCY_WEIGHTS,
        depth_spread: 0.35,
    };
    let sampled = sample::sample_cells(&model, &plan, opts.seed, opts.threads);
    let report = opts.report.then(|| {
        let prior_targets = report::prior_targets(&truth.prior_edges, n_genes);
        report::measure(&design, &genes, &sampled, &plan, &calibration, &prior_targets)
    });
    let screen = CountScreen {
        cell_names: (0..plan.len()).map(|i| format!("cell{i:06}")).collect(),
        condition_categories: design.conditions.iter().map(|c| c.gears_label()).collect(),
        condition_codes: plan.iter().map(|&c| c % n_conditions as u16).collect(),
        cell_types: line_names(opts.contexts),
        cell_type_codes: plan.iter().map(|&c| (c as usize / n_conditions) as u8).collect(),
        gene_names: genes.clone(),
        indptr: sampled.indptr,
        indices: sampled.indices,
        counts: sampled.counts,
    };
    let n_nonzero = screen.counts.len();
    let network_file = write_screen(opts, &screen, truth.network_rows)?;
    Ok(SimulateSummary { n_cells: plan.len(), n_genes, n_conditions, n_nonzero, network_file, report })
}

fn check_options(opts: &SimulateOptions) -> Result<()> {
    if opts.out.extension().and_then(|e| e.to_str()) != Some("h5ad") {
        return Err(Error::bad_option("--out", format!("{} should end in .h5ad", opts.out.display())));
    }
    if let Some(dir) = opts.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(Error::bad_input(dir, "output folder does not exist"));
        }
    }
    opts.prior_noise.check()?;
    if !(1..=8).contains(&opts.contexts) {
        return Err(Error::bad_option("--contexts", format!("must be 1 to 8 cell lines (got {})", opts.contexts)));
    }
    if opts.contexts > 1 && opts.report {
        return Err(Error::bad_option("--report", "measures a one-line screen against Norman's statistics; leave it out with --contexts"));
    }
    Ok(())
}

/// The official symbols of `--symbols`, when given.
fn read_symbols(opts: &SimulateOptions) -> Result<Option<std::collections::HashSet<String>>> {
    let Some(path) = &opts.symbols else { return Ok(None) };
    let t = Table::read_parquet(path)?;
    Ok(Some(t.strings("symbol", path)?.iter().cloned().collect()))
}

/// Regulators, most targets first (ties by name): CRISPRi presets draw their targets
/// from them.
fn regulators_by_targets(network: &Network) -> Vec<String> {
    let mut regulators: Vec<(&str, usize)> = network.out_degree().into_iter().collect();
    regulators.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    regulators.into_iter().map(|(g, _)| g.to_string()).collect()
}

/// The true regulation among the chosen genes: a noisy, partial version of the prior's.
struct TrueRegulation {
    /// The prior's edges among the chosen genes.
    prior_edges: Vec<truth::PriorEdge>,
    regulation: dynamics::Regulation,
    /// The network file's rows, one per true edge.
    network_rows: Vec<TruthEdgeRow>,
}

impl TrueRegulation {
    fn draw(network: &Network, genes: &[String], index: &HashMap<&str, usize>, opts: &SimulateOptions, rng: &mut ChaCha8Rng) -> TrueRegulation {
        let p = &opts.response;
        let n_genes = genes.len();
        let weight = LogNormal::new(p.edge_weight.ln(), p.edge_weight_spread).expect("valid weight spread");
        let amplitude = LogNormal::new(p.amplitude.ln(), p.amplitude_spread).expect("valid amplitude spread");
        let prior_edges: Vec<truth::PriorEdge> = network
            .edges
            .iter()
            .filter_map(|e| Some(truth::PriorEdge { source: *index.get(e.source.as_str())?, target: *index.get(e.target.as_str())?, sign: e.sign }))
            .collect();
        let true_edges = truth::realise(&prior_edges, n_genes, &opts.prior_noise, rng);
        let mut inputs: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n_genes];
        let mut network_rows = Vec::new();
        for e in &true_edges {
            let w = e.sign * weight.sample(rng);
            inputs[e.target].push((e.source, w));
            network_rows.push(TruthEdgeRow { source: genes[e.source].clone(), target: genes[e.target].clone(), weight: w, in_prior: e.in_prior });
        }
        let regulation = dynamics::Regulation {
            inputs,
            amplitude: (0..n_genes).map(|_| amplitude.sample(rng)).collect(),
            hill_n: (0..n_genes).map(|_| if rng.random::<f64>() < p.threshold_share { 2 } else { 1 }).collect(),
            half_saturation: p.half_saturation,
        };
        TrueRegulation { prior_edges, regulation, network_rows }
    }
}

/// Every line's regulation: the first's as drawn, each later one with a share of its edges
/// inactive.
fn line_regulations(regulation: &dynamics::Regulation, contexts: usize, rng: &mut ChaCha8Rng) -> Vec<dynamics::Regulation> {
    std::iter::once(regulation.clone())
        .chain((1..contexts).map(|_| {
            dynamics::Regulation {
                inputs: regulation
                    .inputs
                    .iter()
                    .map(|edges| edges.iter().copied().filter(|_| rng.random::<f64>() >= LINE_DIFFERENCES.inactive_edges).collect())
                    .collect(),
                ..regulation.clone()
            }
        }))
        .collect()
}

/// What every cell shares before its perturbation acts.
struct Baseline {
    /// Control expression: K562-like log-normalised means, turned into expected counts.
    rate: Vec<f64>,
    /// Each line's baseline as a log-scale shift of every gene (the first's is 0).
    line_shift: Vec<Vec<f32>>,
    dispersion: Vec<f64>,
    /// A shared program some genes follow across cells.
    program: Vec<f64>,
}

impl Baseline {
    fn draw(n_genes: usize, calibration: &Calibration, opts: &SimulateOptions, rng: &mut ChaCha8Rng) -> Baseline {
        let rate = control_rates(n_genes, calibration, rng);
        let baseline_shift = LogNormal::new(0.0, LINE_DIFFERENCES.baseline_spread).expect("valid spread");
        let line_shift: Vec<Vec<f32>> =
            (0..opts.contexts).map(|k| (0..n_genes).map(|_| if k == 0 { 0.0 } else { baseline_shift.sample(rng).ln() as f32 }).collect()).collect();
        let dispersion_dist = LogNormal::new(opts.response.dispersion.ln(), 0.4).expect("valid");
        let dispersion: Vec<f64> = (0..n_genes).map(|_| dispersion_dist.sample(rng)).collect();
        let program: Vec<f64> = (0..n_genes).map(|_| if rng.random::<f64>() < 0.1 { rng.random_range(-0.25..0.25) } else { 0.0 }).collect();
        Baseline { rate, line_shift, dispersion, program }
    }
}

/// Each target's shift, a property of its guide: the same in singles and doubles.
fn guide_shifts(design: &design::Design, opts: &SimulateOptions, rng: &mut ChaCha8Rng) -> HashMap<String, f64> {
    let (lo, hi) = match opts.preset.modality() {
        Modality::Activation => opts.response.activation_shift,
        Modality::Interference => opts.response.interference_shift,
    };
    let mut shift: HashMap<String, f64> = HashMap::new();
    for t in design.targets() {
        shift.insert(t, rng.random_range(lo..hi));
    }
    shift
}

/// CRISPR efficiency levels: a few cells escape, the rest vary around full strength.
const EFFICIENCY_LEVELS: [f64; 6] = [0.0, 0.6, 0.8, 1.0, 1.2, 1.4];
const EFFICIENCY_WEIGHTS: [f64; 6] = [0.08, 0.184, 0.184, 0.184, 0.184, 0.184];

/// Per line, per condition (line-major): the deviation from control of each efficiency
/// level, the line's baseline shift included.
fn deviations(
    design: &design::Design,
    lines: &[dynamics::Regulation],
    line_shift: &[Vec<f32>],
    index: &HashMap<&str, usize>,
    shift: &HashMap<String, f64>,
) -> Vec<Vec<Vec<f32>>> {
    lines
        .iter()
        .zip(line_shift)
        .flat_map(|(regulation, base)| {
            design
                .conditions
                .iter()
                .map(|c| {
                    EFFICIENCY_LEVELS
                        .iter()
                        .map(|&lambda| {
                            if c.targets.is_empty() {
                                return base.clone();
                            }
                            let clamped: Vec<(usize, f64)> = c.targets.iter().map(|t| (index[t.as_str()], shift[t] * lambda)).collect();
                            regulation.steady_state(&clamped).into_iter().zip(base).map(|(d, b)| d as f32 + b).collect()
                        })
                        .collect()
                })
                .collect::<Vec<Vec<Vec<f32>>>>()
        })
        .collect()
}

/// Writes the screen and its network beside it, together (the screen last) or not at all;
/// returns the network file.
fn write_screen(opts: &SimulateOptions, screen: &CountScreen, mut network_rows: Vec<TruthEdgeRow>) -> Result<PathBuf> {
    let network_file = network_path_for(&opts.out);
    network_rows.sort_by(|a, b| (&a.source, &a.target).cmp(&(&b.source, &b.target)));
    let staged = StagedFiles::new(&[opts.out.clone(), network_file.clone()])?;
    h5ad_write::write_h5ad(&staged.path(&opts.out), screen)?;
    truth_network::write(&network_rows, &staged.path(&network_file))?;
    staged.commit()?;
    Ok(network_file)
}

/// Bytes a screen of this design holds at once: every cell's counts (index and value, a
/// share of the genes non-zero, once sampled and once encoded) plus per-cell labels.
fn estimated_bytes(design: &design::Design) -> f64 {
    const NONZERO_SHARE: f64 = 0.5;
    const BYTES_PER_NONZERO: f64 = 8.0 * 2.0;
    const BYTES_PER_CELL: f64 = 64.0;
    design.n_cells() as f64 * (design.n_genes as f64 * NONZERO_SHARE * BYTES_PER_NONZERO + BYTES_PER_CELL)
}

fn refuse_beyond_memory(design: &design::Design, lines: usize) -> Result<()> {
    let what = format!("a screen of {} cells x {} genes", design.n_cells() * lines, design.n_genes);
    perturb_core::guard::refuse_beyond_memory("--n-cells", &what, estimated_bytes(design) * lines as f64)
}

/// The `cell_type` of each line: the calibration's K562 for a one-line screen, else
/// `line1`, `line2`, … (simulated lines, no real cell type).
fn line_names(lines: usize) -> Vec<String> {
    if lines == 1 {
        vec!["K562".to_string()]
    } else {
        (1..=lines).map(|k| format!("line{k}")).collect()
    }
}

/// Replaces the preset's perturbations by singles of `targets` (and, for norman-like,
/// up to 131 random pairs of them). Every target must be a gene of the network.
fn replace_targets(design: &mut design::Design, targets: &[String], known: &[String], network: &Path, rng: &mut ChaCha8Rng) -> Result<()> {
    for t in targets {
        if known.binary_search(t).is_err() {
            let close = network::close_names(t, known, 5);
            return Err(Error::bad_input(network, format!("target gene '{t}' is not in the network (closest names: {})", close.join(", "))));
        }
    }
    let cells: Vec<usize> = design.conditions.iter().skip(1).map(|c| c.n_cells).collect();
    let pick_cells = |rng: &mut ChaCha8Rng| cells[rng.random_range(0..cells.len())];
    let control = design.conditions[0].clone();
    let mut conditions = vec![control];
    for t in targets {
        conditions.push(design::ConditionDesign { targets: vec![t.clone()], n_cells: pick_cells(rng) });
    }
    if design.preset == Preset::NormanLike && targets.len() >= 2 {
        let mut pairs: Vec<(usize, usize)> = (0..targets.len()).flat_map(|i| (i + 1..targets.len()).map(move |j| (i, j))).collect();
        pairs.shuffle(rng);
        for (i, j) in pairs.into_iter().take(131) {
            let mut t = vec![targets[i].clone(), targets[j].clone()];
            t.sort();
            conditions.push(design::ConditionDesign { targets: t, n_cells: pick_cells(rng) });
        }
    }
    design.conditions = conditions;
    Ok(())
}

/// Targets, then the genes they reach (nearest first), then other network genes and
/// padding genes in random order, up to the design's gene count.
fn choose_genes(design: &design::Design, network: &Network, opts: &SimulateOptions, rng: &mut ChaCha8Rng) -> Result<Vec<String>> {
    let targets = design.targets();
    let mut genes = network.downstream(&targets, 2);
    let mut seen: std::collections::HashSet<String> = genes.iter().cloned().collect();
    let mut rest: Vec<String> = network.genes().into_iter().filter(|g| !seen.contains(g)).collect();
    rest.shuffle(rng);
    if let Some(path) = &opts.padding_genes {
        let table = Table::read_parquet(path)?;
        let mut extra: Vec<String> = table.strings("gene", path)?.to_vec();
        extra.sort();
        extra.dedup();
        extra.retain(|g| !seen.contains(g));
        extra.shuffle(rng);
        rest.extend(extra);
    }
    for g in rest {
        if seen.insert(g.clone()) {
            genes.push(g);
        }
    }
    if genes.len() < design.n_genes {
        return Err(Error::bad_option("--n-genes", format!("{} genes asked for but the network (and padding) name only {}", design.n_genes, genes.len())));
    }
    // Keep every target; cut the rest.
    genes.truncate(design.n_genes.max(targets.len()));
    Ok(genes)
}

/// Expected counts per gene in a control cell of average depth (~10,600 UMIs as in the
/// Norman K562 screen): log-normalised means drawn from the real K562 baseline
/// distribution, then scaled so the measured genes carry the whole library.
fn control_rates(n_genes: usize, calibration: &Calibration, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let q = &calibration.k562_control_baseline_quantiles;
    // The real baseline covers the ~2,800 best-measured genes; beyond that many genes
    // are lower, so the rest come from below its lowest quantile.
    let share_in_baseline = (calibration.k562_control_baseline_genes as f64 / n_genes as f64).min(1.0);
    let low = q[0];
    let mut normalised: Vec<f64> = (0..n_genes)
        .map(|_| {
            let b = if rng.random::<f64>() < share_in_baseline {
                design::quantile_at(q, rng.random::<f64>())
            } else {
                low * (rng.random::<f64>() * 3.0 - 3.0).exp()
            };
            b.exp_m1()
        })
        .collect();
    // Normalisation divides by what is measured, so the measured genes must carry the
    // whole library. Real K562 cells spend most of it on a few very highly expressed
    // genes (ribosomal, mitochondrial); the top 1% of genes take up the remainder, which
    // keeps the bulk of the distribution where the real baseline has it.
    let total: f64 = normalised.iter().sum();
    if total < 1e4 {
        let carriers = top_expressed_genes(&normalised, (n_genes / 100).max(10));
        let share = (1e4 - total) / carriers.len() as f64;
        for g in carriers {
            normalised[g] += share;
        }
    } else {
        normalised.iter_mut().for_each(|v| *v *= 1e4 / total);
    }
    let depth = 10_600.0 / 1e4;
    normalised.into_iter().map(|v| v * depth).collect()
}

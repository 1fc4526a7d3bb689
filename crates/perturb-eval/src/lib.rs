//! The evaluation stage: benchmark splits, the four honest baselines (no change, mean,
//! additive, linear) and the field's metrics per test perturbation, summarised in Parquet,
//! a Markdown report and a self-contained HTML report with plots. Model predictions join
//! through the same metric code; their runs' timings fill the efficiency table.

pub mod baselines;
pub mod coverage;
pub mod data;
pub mod gi;
pub mod linalg;
pub mod metrics;
pub mod paired;
pub mod predictions;
pub mod prior;
pub mod report;
pub mod report_html;
pub mod selection;
pub mod split;
pub mod structure;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use perturb_core::manifest::{InputFile, Manifest};
use perturb_core::metrics::top_expressed_genes;
use perturb_core::schema::{self, conditions as cs, genes as gs, pseudobulk as ps};
use perturb_core::staging::StagedDir;
use perturb_core::{Column, Error, Result, Table};
use report_html::TextTable;

pub use data::Screen;
pub use predictions::read_predictions;
pub use split::{Set, Split, Task};

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The ingest stage's output folder.
    pub data: PathBuf,
    pub out: PathBuf,
    pub tasks: Vec<Task>,
    pub seeds: Vec<u64>,
    /// Genes for L2 / Pearson delta: the top-N by control mean.
    pub top_genes: usize,
    pub de_genes: usize,
    pub linear_k: usize,
    pub ridge: f64,
    /// Model predictions to score beside the baselines: (model name, long-form table with
    /// perturbation, gene, lfc). The path may contain `{seed}` and `{task}`, replaced per
    /// split; without them only one task and seed can be evaluated. A model with no file
    /// for any seed of a task was not run on that task and is left out of it. Model names
    /// are unique and none is a baseline's ([`baselines::all_names`]); the same holds for
    /// the lists below (attention: one model may give one table per task).
    pub predictions: Vec<(String, PathBuf)>,
    /// Measurements of the models' runs (`timing.json` written by `perturb train`), by the
    /// same pattern rules, for the efficiency table.
    pub timing: Vec<(String, PathBuf)>,
    /// Attention tables written by `perturb predict --attention`, for the report.
    pub attention: Vec<(String, PathBuf)>,
    /// The models' training manifests (`manifest.json` of `perturb train`), by the pattern
    /// rules above: their validation L2 picks one model (see `selection`).
    pub validation: Vec<(String, PathBuf)>,
    /// The model `perturb train --preset best` trains: reported on test beside the
    /// validation pick, and instead of it on a screen without `validation`.
    pub recommended: Option<String>,
    /// The graph stage's output folder (the prior network the models get): adds the
    /// baselines built on it, `graph_knn` and `linear_prior`.
    pub graph: Option<PathBuf>,
    /// Another screen's ingest folder: adds the `linear_p_other` baseline, the linear model
    /// with perturbation embeddings P from that screen's singles.
    pub linear_p_from: Option<PathBuf>,
    /// Ingest folders of the same screen's other contexts (`perturb ingest --context-key`):
    /// adds the baselines that read the same perturbation there
    /// ([`baselines::OTHER_CONTEXT_NAMES`]).
    pub other_contexts: Vec<PathBuf>,
    /// The network a simulated screen was generated with (`<screen>.network.parquet`):
    /// learned networks and gene programs are scored against it.
    pub truth_network: Option<PathBuf>,
    /// Learned networks (`grn.parquet` of `grn_vae` models), by the pattern rules above.
    pub grn: Vec<(String, PathBuf)>,
    /// Gene programs (`programs.parquet` of `modules` models), by the pattern rules above.
    pub programs: Vec<(String, PathBuf)>,
}

impl EvalOptions {
    /// Every NAME=PATTERN list with the option that gives it.
    pub fn named_files(&self) -> [(&'static str, &Vec<(String, PathBuf)>); 6] {
        [
            ("--predictions", &self.predictions),
            ("--timing", &self.timing),
            ("--attention", &self.attention),
            ("--validation", &self.validation),
            ("--grn", &self.grn),
            ("--programs", &self.programs),
        ]
    }

    pub fn new(data: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        EvalOptions {
            data: data.into(),
            out: out.into(),
            tasks: vec![Task::Double],
            seeds: (1..=5).collect(),
            top_genes: 1000,
            de_genes: 20,
            linear_k: 10,
            ridge: 0.1,
            predictions: Vec::new(),
            timing: Vec::new(),
            attention: Vec::new(),
            validation: Vec::new(),
            recommended: None,
            graph: None,
            linear_p_from: None,
            other_contexts: Vec::new(),
            truth_network: None,
            grn: Vec::new(),
            programs: Vec::new(),
        }
    }
}

pub use perturb_core::scores::{MetricRow, SummaryRow};

/// A metrics row for tests: the given L2 (also without the targets), every other metric NaN.
#[cfg(test)]
pub(crate) fn example_metric_row(task: &str, seed: u64, model: &str, perturbation: &str, l2: f64) -> MetricRow {
    MetricRow {
        task: task.to_string(),
        seed,
        model: model.to_string(),
        perturbation: perturbation.to_string(),
        combo_seen: 2,
        l2,
        l2_no_target: l2,
        pearson_delta: f64::NAN,
        pearson_delta_no_target: f64::NAN,
        pearson_delta_centroid: f64::NAN,
        pearson_delta_all: f64::NAN,
        mse_top20_de: f64::NAN,
        mae: f64::NAN,
        des_overlap_20: f64::NAN,
        des_overlap_100: f64::NAN,
        discrimination_rank: 1,
        discrimination_score: f64::NAN,
        pds_l1: f64::NAN,
    }
}

/// The per-perturbation metrics, in the column order of `metrics.parquet` and
/// `summary.parquet`.
pub const METRICS: [&str; 12] = perturb_core::schema::metrics::PER_PERTURBATION;

/// The per-split metric `summary.parquet` adds: the Virtual Cell Challenge score against
/// `mean` (see [`metrics::vcc_score`]), one value per seed.
pub const VCC_SCORE: &str = "vcc_score";

#[derive(Debug, Clone)]
pub struct EvalSummary {
    pub n_rows: usize,
    /// (task, model) -> mean L2.
    pub mean_l2: BTreeMap<(String, String), f64>,
    pub seconds: f64,
}

/// What the metrics need of a split's test conditions that does not depend on the model:
/// computed once per split, then shared by every model scored on it.
pub struct TestTruth {
    /// The top genes by control mean (L2, Pearson delta).
    top: Vec<usize>,
    test: Vec<usize>,
    /// Per test condition (same order as `test`): its effect against the control.
    effects: Vec<Vec<f64>>,
    /// Its profile minus the perturbed training conditions' centroid.
    from_centroid: Vec<Vec<f64>>,
    /// The top genes without its measured targets.
    top_no_target: Vec<Vec<usize>>,
    /// Every gene but its targets (cell-eval's PDS).
    all_no_target: Vec<Vec<usize>>,
    /// Its top DE genes by Welch's t (`de_genes` of them), and its top-20 / top-100 genes by |effect|.
    de: Vec<Vec<usize>>,
    top_20: Vec<Vec<usize>>,
    top_100: Vec<Vec<usize>>,
    /// The centroid itself.
    centroid: Vec<f64>,
}

impl TestTruth {
    pub fn new(screen: &Screen, split: &Split, top_genes: usize, de_genes: usize) -> TestTruth {
        let control = screen.control();
        let top = top_expressed_genes(control, top_genes.min(screen.n_genes()));
        let gene_index: std::collections::HashMap<&str, usize> = screen.genes.iter().enumerate().map(|(g, name)| (name.as_str(), g)).collect();
        let centroid = baselines::perturbed_centroid(screen, &baselines::perturbed_training(screen, split));
        let test = split.indices(Set::Test);
        let (cvar, nc) = (screen.variance_row(0), screen.n_cells[0] as f64);
        let effects: Vec<Vec<f64>> = test.iter().map(|&i| screen.row(i).iter().zip(control).map(|(y, c)| y - c).collect()).collect();
        let targets: Vec<Vec<usize>> = test.iter().map(|&i| screen.targets[i].iter().filter_map(|t| gene_index.get(t.as_str()).copied()).collect()).collect();
        let without = |genes: &[usize], t: &[usize]| genes.iter().copied().filter(|g| !t.contains(g)).collect::<Vec<_>>();
        let all: Vec<usize> = (0..screen.n_genes()).collect();
        TestTruth {
            from_centroid: test.iter().map(|&i| screen.row(i).iter().zip(&centroid).map(|(y, m)| y - m).collect()).collect(),
            top_no_target: targets.iter().map(|t| without(&top, t)).collect(),
            all_no_target: targets.iter().map(|t| without(&all, t)).collect(),
            de: test
                .iter()
                .map(|&i| metrics::top_de_genes(screen.row(i), screen.variance_row(i), screen.n_cells[i] as f64, control, cvar, nc, de_genes))
                .collect(),
            top_20: effects.iter().map(|e| metrics::top_by_magnitude(e, 20)).collect(),
            top_100: effects.iter().map(|e| metrics::top_by_magnitude(e, 100)).collect(),
            top,
            test,
            effects,
            centroid,
        }
    }
}

/// Metrics of `predictions` (condition index -> profile) on the test conditions of `split`.
pub fn score(screen: &Screen, split: &Split, truth: &TestTruth, model: &str, predictions: &BTreeMap<usize, Vec<f64>>) -> Vec<MetricRow> {
    let control = screen.control();
    let all: Vec<usize> = (0..screen.n_genes()).collect();
    let n = truth.test.len().max(2) as f64;
    let mut rows = Vec::new();
    for (ti, &i) in truth.test.iter().enumerate() {
        let Some(p) = predictions.get(&i) else { continue };
        let y = screen.row(i);
        let pe: Vec<f64> = p.iter().zip(control).map(|(a, c)| a - c).collect();
        let pc: Vec<f64> = p.iter().zip(&truth.centroid).map(|(a, m)| a - m).collect();
        let rank = metrics::discrimination_rank(&pe, &truth.effects, ti, &truth.top);
        let (top, top_no_target) = (&truth.top, &truth.top_no_target[ti]);
        rows.push(MetricRow {
            task: split.task.name().to_string(),
            seed: split.seed,
            model: model.to_string(),
            perturbation: screen.conditions[i].clone(),
            combo_seen: split.combo_seen[i],
            l2: metrics::l2(p, y, top),
            l2_no_target: metrics::l2(p, y, top_no_target),
            pearson_delta: metrics::pearson_over(&pe, &truth.effects[ti], top),
            pearson_delta_no_target: metrics::pearson_over(&pe, &truth.effects[ti], top_no_target),
            pearson_delta_centroid: metrics::pearson_over(&pc, &truth.from_centroid[ti], top),
            pearson_delta_all: metrics::pearson_over(&pe, &truth.effects[ti], &all),
            mse_top20_de: metrics::mse_over(p, y, &truth.de[ti]),
            mae: metrics::mae(p, y),
            des_overlap_20: metrics::des_overlap(&pe, &truth.top_20[ti], 20),
            des_overlap_100: metrics::des_overlap(&pe, &truth.top_100[ti], 100),
            discrimination_rank: rank as i64,
            discrimination_score: 1.0 - (rank as f64 - 1.0) / (n - 1.0),
            pds_l1: metrics::pds_l1(&pe, &truth.effects, ti, &truth.all_no_target[ti]),
        });
    }
    rows
}

/// Checks the options on their own, before any file is read: no task or seed twice (each
/// would count every row twice), sizes of at least 1, a usable ridge, and model names
/// that are neither a baseline's nor given twice.
pub fn check_options(opts: &EvalOptions) -> Result<()> {
    if opts.seeds.is_empty() || opts.tasks.is_empty() {
        return Err(Error::bad_option("--seeds/--task", "at least one task and one seed"));
    }
    perturb_core::guard::refuse_duplicates("--seeds", &opts.seeds)?;
    perturb_core::guard::refuse_duplicates("--task", &opts.tasks.iter().map(|t| t.name()).collect::<Vec<_>>())?;
    for (option, value) in [("--top-genes", opts.top_genes), ("de_genes", opts.de_genes), ("linear_k", opts.linear_k)] {
        if value == 0 {
            return Err(Error::bad_option(option, "must be at least 1 (got 0)"));
        }
    }
    if opts.tasks.contains(&Task::UnseenContext) {
        if opts.other_contexts.is_empty() {
            return Err(Error::bad_option(
                "--task",
                "unseen_context predicts this context's perturbations from other contexts of the screen; name their ingest folders with --other-context",
            ));
        }
        if opts.seeds.len() > 1 {
            // Identical splits under several seeds would count every pair once per seed and
            // narrow the bootstrap intervals without any new evidence.
            return Err(Error::bad_option("--seeds", "the unseen_context split holds every perturbation in test, the same for every seed; pass one seed"));
        }
    }
    if !(opts.ridge.is_finite() && opts.ridge >= 0.0) {
        return Err(Error::bad_option("ridge", format!("must be a finite number >= 0 (got {})", opts.ridge)));
    }
    if opts.graph.is_some() && opts.ridge == 0.0 {
        // A double's features are the sum of its singles': without a penalty the kernel of
        // linear_prior is singular whenever both singles train beside it.
        return Err(Error::bad_option("ridge", "must be above 0 with --graph (linear_prior's kernel is singular without it)"));
    }
    for (option, list) in opts.named_files() {
        for (i, (name, path)) in list.iter().enumerate() {
            if name.is_empty() {
                return Err(Error::bad_option(option, format!("{}: the model name is empty", path.display())));
            }
            if baselines::all_names().any(|b| b == name) {
                let all: Vec<&str> = baselines::all_names().collect();
                return Err(Error::bad_option(option, format!("'{name}' is the name of a baseline ({}); give the model another name", all.join(", "))));
            }
            // The attention tables of one model come one file per task, under one name.
            let earlier = list[..i].iter().find(|(n, p)| n == name && (option != "--attention" || p == path));
            if let Some((_, first)) = earlier {
                return Err(Error::bad_option(
                    option,
                    format!("model name '{name}' is given twice ({} and {}); each model needs its own name", first.display(), path.display()),
                ));
            }
        }
    }
    if opts.truth_network.is_none() {
        if let Some((option, _)) = [("--grn", &opts.grn), ("--programs", &opts.programs)].into_iter().find(|(_, l)| !l.is_empty()) {
            return Err(Error::bad_option(option, "needs --truth-network (the network a simulated screen was generated with) to score against"));
        }
    }
    // A prediction file belongs to one split: with several seeds (tasks) its path must
    // name them through {seed} ({task}). Attention tables come one per task, named as given.
    for (option, list) in opts.named_files().into_iter().filter(|(option, _)| *option != "--attention") {
        for (name, path) in list {
            let p = path.to_string_lossy();
            if (opts.seeds.len() > 1 && !p.contains("{seed}")) || (opts.tasks.len() > 1 && !p.contains("{task}")) {
                return Err(Error::bad_option(
                    option,
                    format!("{name}={p}: a file belongs to one split; with several seeds or tasks put {{seed}} / {{task}} in the path"),
                ));
            }
        }
    }
    Ok(())
}

pub fn evaluate(opts: &EvalOptions) -> Result<EvalSummary> {
    let started = std::time::Instant::now();
    check_options(opts)?;
    let screen = Screen::read(&opts.data)?;
    let references = References::read(opts, &screen)?;
    let mut notes = screen_notes(&opts.data);
    if references.prior.is_none() {
        notes.push("the prior-network baselines (graph_knn, linear_prior) need --graph and were not run".to_string());
    }
    let files = ModelFiles::find(opts, &mut notes)?;
    let truth = opts.truth_network.as_deref().map(structure::TruthNetwork::read).transpose()?;
    // Every path is handed out with its name recorded (StagedDir::output), so the
    // manifest lists every artifact and a rerun into the folder removes the ones it no
    // longer writes.
    let out = StagedDir::new(&opts.out)?;
    let scores = score_splits(opts, &screen, &references.baseline_inputs(opts), &files.predictions, &out)?;
    let rows = &scores.rows;
    perturb_core::scores::write_metrics(rows, &out.output(schema::metrics::FILE))?;
    if !scores.interactions.is_empty() {
        write_gi(&scores.interactions, &out.output("interactions.parquet"))?;
    }
    let sets = coverage::perturbation_sets(rows);
    let (summary, comparisons) = summarise_sets(rows, &sets)?;
    perturb_core::scores::write_summary(&summary, &out.output(schema::summary::FILE))?;
    if !comparisons.is_empty() {
        write_comparisons(&comparisons, &out.output("comparisons.parquet"))?;
    }
    let efficiency = report::efficiency(&files.timing)?;
    if !efficiency.is_empty() {
        report::write_efficiency(&efficiency, &out.output("efficiency.parquet"))?;
    }
    let attention = opts.attention.iter().map(|(name, path)| report::attention_tops(name, path, 3, 10)).collect::<Result<Vec<_>>>()?.concat();
    let structure = StructureScores::score(opts, truth.as_ref(), &files)?;
    structure.write(&out)?;
    let train_seconds: BTreeMap<String, f64> = efficiency.iter().map(|e| (e.model.clone(), e.train_seconds)).collect();
    let selection_rows = selection::select(&files.validation, &train_seconds)?;
    if !selection_rows.is_empty() {
        selection::write(&selection_rows, &out.output(selection::FILE))?;
    }
    let selection_tables = selection_tables(&selection_rows, opts.recommended.as_deref(), rows, &comparisons, &mut notes);
    let structure_tables = [
        selection_tables,
        report::paired_tables(&comparisons),
        report::structure_tables(&structure.grn, &structure.programs),
        report::attention_truth_table(&structure.attention),
    ]
    .concat();
    let parts = report::Parts {
        screen: &screen,
        opts,
        rows,
        summary: &summary,
        sets: &sets,
        gi: &scores.interactions,
        efficiency: &efficiency,
        attention: &attention,
        structure: &structure_tables,
        notes: &notes,
    };
    perturb_core::table::write_bytes_atomically(&out.output("report.md"), report::markdown(&parts).as_bytes())?;
    perturb_core::table::write_bytes_atomically(&out.output("report.html"), report::html(&parts).as_bytes())?;
    write_eval_manifest(opts, &out, &files.predictions, rows.len())?;
    out.commit()?;
    // Each model's mean over the largest set it is scored on.
    let mut mean_l2 = BTreeMap::new();
    for r in summary.iter().filter(|r| r.metric == schema::metrics::L2) {
        mean_l2.entry((r.task.clone(), r.model.clone())).or_insert(r.mean);
    }
    Ok(EvalSummary { n_rows: rows.len(), mean_l2, seconds: started.elapsed().as_secs_f64() })
}

/// What the reference baselines read besides the screen: another screen's perturbation
/// embeddings (`--linear-p-from`), the prior network (`--graph`), the screen's other
/// contexts (`--other-context`).
struct References {
    other_p: Option<HashMap<String, Vec<f64>>>,
    prior: Option<prior::PriorGraph>,
    other_contexts: Option<baselines::OtherContexts>,
}

impl References {
    fn read(opts: &EvalOptions, screen: &Screen) -> Result<References> {
        let other_p = match &opts.linear_p_from {
            Some(dir) => {
                let p = baselines::perturbation_pca(&Screen::read(dir)?, opts.linear_k);
                if p.is_empty() {
                    return Err(Error::bad_input(dir, "has no single perturbations to take P for the linear baseline from"));
                }
                Some(p)
            }
            None => None,
        };
        let prior = opts.graph.as_deref().map(prior::PriorGraph::read).transpose()?;
        let same = |dir: &Path| dir.canonicalize().ok().is_some_and(|d| Some(d) == opts.data.canonicalize().ok());
        if let Some(dir) = opts.other_contexts.iter().find(|d| same(d)) {
            return Err(Error::bad_option(
                "--other-context",
                format!("{} is the evaluated screen itself (--data): its own effects would be the prediction", dir.display()),
            ));
        }
        let other_contexts = (!opts.other_contexts.is_empty()).then(|| baselines::OtherContexts::read(screen, &opts.other_contexts)).transpose()?;
        Ok(References { other_p, prior, other_contexts })
    }

    fn baseline_inputs(&self, opts: &EvalOptions) -> baselines::BaselineInputs<'_> {
        baselines::BaselineInputs {
            linear_k: opts.linear_k,
            ridge: opts.ridge,
            other_p: self.other_p.as_ref(),
            prior: self.prior.as_ref(),
            other_contexts: self.other_contexts.as_ref(),
        }
    }
}

/// Each model's files per (task, seed), by option.
struct ModelFiles {
    predictions: Vec<(String, BTreeMap<(Task, u64), PathBuf>)>,
    timing: Vec<(String, BTreeMap<(Task, u64), PathBuf>)>,
    validation: Vec<(String, BTreeMap<(Task, u64), PathBuf>)>,
    grn: Vec<(String, BTreeMap<(Task, u64), PathBuf>)>,
    programs: Vec<(String, BTreeMap<(Task, u64), PathBuf>)>,
}

impl ModelFiles {
    /// A model without prediction files for a task is noted in `notes` (only the
    /// predictions' gaps are worth a note: the others follow them).
    fn find(opts: &EvalOptions, notes: &mut Vec<String>) -> Result<ModelFiles> {
        let (tasks, seeds) = (&opts.tasks, &opts.seeds);
        Ok(ModelFiles {
            predictions: model_files(&opts.predictions, tasks, seeds, "--predictions", notes)?,
            timing: model_files(&opts.timing, tasks, seeds, "--timing", &mut Vec::new())?,
            validation: model_files(&opts.validation, tasks, seeds, "--validation", &mut Vec::new())?,
            grn: model_files(&opts.grn, tasks, seeds, "--grn", &mut Vec::new())?,
            programs: model_files(&opts.programs, tasks, seeds, "--programs", &mut Vec::new())?,
        })
    }
}

/// Every model's metrics on every (task, seed) split, and the doubles' interaction curves.
struct Scores {
    rows: Vec<MetricRow>,
    interactions: Vec<GiRow>,
}

/// Writes each split file and scores the baselines and the models' predictions on it.
fn score_splits(
    opts: &EvalOptions,
    screen: &Screen,
    baseline_inputs: &baselines::BaselineInputs,
    prediction_files: &[(String, BTreeMap<(Task, u64), PathBuf>)],
    out: &StagedDir,
) -> Result<Scores> {
    let mut scores = Scores { rows: Vec::new(), interactions: Vec::new() };
    for &task in &opts.tasks {
        for &seed in &opts.seeds {
            let split = split::make(screen, task, seed, &opts.data)?;
            let name = perturb_core::schema::split::file(task.name(), seed);
            split::write(&split, screen, &out.output(&name))?;
            let mut all_preds: Vec<(&str, BTreeMap<usize, Vec<f64>>)> =
                baselines::predict_all(screen, &split, baseline_inputs).into_iter().map(|(m, p)| (m, p.into_iter().collect())).collect();
            for (name, files) in prediction_files {
                if let Some(path) = files.get(&(task, seed)) {
                    all_preds.push((name.as_str(), read_predictions(screen, &split, path)?));
                }
            }
            let truth = TestTruth::new(screen, &split, opts.top_genes, opts.de_genes);
            for (model, preds) in &all_preds {
                scores.rows.extend(score(screen, &split, &truth, model, preds));
            }
            if task == Task::Double {
                scores.interactions.extend(interactions(screen, &split, &all_preds, opts.top_genes));
            }
        }
    }
    Ok(scores)
}

/// Learned structure scored against the simulator's network (empty without
/// `--truth-network`).
struct StructureScores {
    grn: Vec<structure::GrnRow>,
    programs: Vec<structure::ProgramRow>,
    attention: Vec<structure::AttentionRow>,
}

impl StructureScores {
    fn score(opts: &EvalOptions, truth: Option<&structure::TruthNetwork>, files: &ModelFiles) -> Result<StructureScores> {
        let mut scores = StructureScores { grn: Vec::new(), programs: Vec::new(), attention: Vec::new() };
        let Some(truth) = truth else { return Ok(scores) };
        for (name, files) in &files.grn {
            for ((task, seed), path) in files {
                scores.grn.extend(structure::score_grn(truth, path, task.name(), *seed, name)?);
            }
        }
        for (name, files) in &files.programs {
            for ((task, seed), path) in files {
                scores.programs.extend(structure::score_programs(truth, path, task.name(), *seed, name)?);
            }
        }
        for (name, path) in &opts.attention {
            scores.attention.extend(structure::score_attention(truth, path, name)?);
        }
        Ok(scores)
    }

    fn write(&self, out: &StagedDir) -> Result<()> {
        if !self.attention.is_empty() {
            structure::write_attention_rows(&self.attention, &out.output("attention_recovery.parquet"))?;
        }
        if !self.grn.is_empty() {
            structure::write_grn_rows(&self.grn, &out.output("grn_recovery.parquet"))?;
        }
        if !self.programs.is_empty() {
            structure::write_program_rows(&self.programs, &out.output("program_enrichment.parquet"))?;
        }
        Ok(())
    }
}

/// The manifest: the screen's tables and every other file read (every prediction file
/// scored, so a manifest says which predictions its metrics are of), the options, and
/// every file written, in the order written.
fn write_eval_manifest(opts: &EvalOptions, out: &StagedDir, prediction_files: &[(String, BTreeMap<(Task, u64), PathBuf>)], n_rows: usize) -> Result<()> {
    let mut inputs = [gs::FILE, cs::FILE, ps::FILE].iter().map(|f| InputFile::hash(&opts.data.join(f))).collect::<Result<Vec<_>>>()?;
    if let Some(truth) = &opts.truth_network {
        inputs.push(InputFile::hash(truth)?);
    }
    for dir in &opts.other_contexts {
        inputs.push(InputFile::hash(&dir.join(ps::FILE))?);
    }
    if let Some(graph) = &opts.graph {
        inputs.push(InputFile::hash(&graph.join(schema::edges::FILE))?);
    }
    for (_, files) in prediction_files {
        for path in files.values() {
            inputs.push(InputFile::hash(path)?);
        }
    }
    let parameters = serde_json::json!({
        "tasks": opts.tasks.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "seeds": opts.seeds, "top_genes": opts.top_genes, "de_genes": opts.de_genes,
        "linear_k": opts.linear_k, "ridge": opts.ridge,
        "graph": opts.graph.as_ref().map(|p| p.display().to_string()),
        "linear_p_from": opts.linear_p_from.as_ref().map(|p| p.display().to_string()),
        "other_contexts": opts.other_contexts.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "truth_network": opts.truth_network.as_ref().map(|p| p.display().to_string()),
        "recommended": opts.recommended,
    });
    let mut manifest = Manifest::new("eval", inputs, parameters);
    manifest.summary = serde_json::json!({ "rows": n_rows });
    // The manifest itself is not listed.
    out.write_manifest(manifest)
}

/// The validation ranking, then the validation pick (and the recommended model, when it
/// is another) on test against every baseline and every other model.
fn selection_tables(
    ranked: &[selection::SelectionRow],
    recommended: Option<&str>,
    rows: &[MetricRow],
    comparisons: &[paired::Comparison],
    notes: &mut Vec<String>,
) -> Vec<TextTable> {
    let picked = selection::chosen(ranked);
    let mut tables: Vec<TextTable> = selection::ranking_table(ranked).into_iter().collect();
    let mut shown: Vec<(&str, &str)> = picked.map(|p| (p, "validation-picked")).into_iter().collect();
    if let Some(r) = recommended {
        match picked {
            Some(p) if p == r => shown[0].1 = "validation-picked and recommended",
            Some(p) => {
                notes.push(format!("the recommended model ({r}, `perturb train --preset best`) is not this study's validation pick ({p})"));
                shown.push((r, "recommended"));
            }
            None => shown.push((r, "recommended")),
        }
    }
    for (model, how) in shown {
        if !rows.iter().any(|r| r.model == model) {
            notes.push(format!("the {how} model {model} has no predictions in this evaluation"));
            continue;
        }
        let all: Vec<paired::Comparison> = comparisons.iter().filter(|c| c.model == model).cloned().chain(selection::against_models(rows, model)).collect();
        tables.extend(selection::on_test_table(model, how, &all));
    }
    tables
}

/// What the report says of how the screen was ingested: the context it is (`perturb
/// ingest --context-key`) and whether its effects are against batch-matched controls
/// (`--batch-key`). A folder without a readable manifest says nothing.
fn screen_notes(data: &std::path::Path) -> Vec<String> {
    let Ok(manifest) = Manifest::read(&data.join(schema::MANIFEST)) else { return Vec::new() };
    let p = &manifest.parameters;
    let mut notes = Vec::new();
    if let Some(values) = p.get("context").and_then(|c| c.as_object()) {
        let pairs: Vec<String> = values.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
        notes.push(format!("this screen is one context of its input ({}): its effects are against that context's own control cells", pairs.join(" ")));
    }
    if let (Some(key), Some(batches)) = (p.get("batch_key").and_then(|k| k.as_str()), p.get("batches").and_then(|b| b.as_array())) {
        notes.push(format!(
            "effects against batch-matched controls: ingest read each cell against the control cells of its own batch (obs/{key}, {} batches), then averaged them over the condition's cells",
            batches.len()
        ));
    }
    notes
}

/// The file of each (task, seed) for every NAME=PATTERN. A model with no file for any
/// seed of a task was not run on it (noted, left out); one with some seeds missing is an
/// error naming the first missing file.
pub fn model_files(
    list: &[(String, PathBuf)],
    tasks: &[Task],
    seeds: &[u64],
    option: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, BTreeMap<(Task, u64), PathBuf>)>> {
    let mut out = Vec::new();
    for (name, pattern) in list {
        let mut files = BTreeMap::new();
        for &task in tasks {
            let paths: Vec<PathBuf> =
                seeds.iter().map(|s| PathBuf::from(pattern.to_string_lossy().replace("{seed}", &s.to_string()).replace("{task}", task.name()))).collect();
            let present = paths.iter().filter(|p| p.is_file()).count();
            let per_task = pattern.to_string_lossy().contains("{task}") && tasks.len() > 1;
            if present == 0 && per_task {
                notes.push(format!("{name} was not run on the {} task", task.name()));
                continue;
            }
            if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
                return Err(Error::bad_option(option, format!("{name}: {} does not exist", missing.display())));
            }
            for (&seed, path) in seeds.iter().zip(paths) {
                files.insert((task, seed), path);
            }
        }
        out.push((name.clone(), files));
    }
    Ok(out)
}

/// One model's genetic-interaction result on one double-task split.
#[derive(Debug, Clone)]
pub struct GiRow {
    pub seed: u64,
    pub model: String,
    pub entries: usize,
    pub synergy: usize,
    pub buffering: usize,
    pub synergy_above: f64,
    pub buffering_below: f64,
    pub tpr_at_fdp_25: f64,
    /// The TPR–FDP curve, thinned to at most 200 points.
    pub curve: Vec<(f64, f64)>,
}

/// Labels the test doubles' deviations from additivity with the two-group model and
/// scores each model's predicted deviations on finding the synergistic entries.
pub fn interactions(screen: &Screen, split: &Split, predictions: &[(&str, BTreeMap<usize, Vec<f64>>)], top_genes: usize) -> Vec<GiRow> {
    let control = screen.control();
    let top = top_expressed_genes(control, top_genes.min(screen.n_genes()));
    let mut doubles = Vec::new();
    for i in split.indices(Set::Test) {
        let singles: Option<Vec<usize>> = screen.targets[i].iter().map(|g| screen.single(g)).collect();
        if let Some(s) = singles.filter(|s| s.len() == 2) {
            let additive: Vec<f64> = (0..screen.n_genes()).map(|g| screen.row(s[0])[g] + screen.row(s[1])[g] - control[g]).collect();
            doubles.push((i, additive));
        }
    }
    let observed: Vec<f64> = doubles.iter().flat_map(|(i, add)| top.iter().map(move |&g| screen.row(*i)[g] - add[g])).collect();
    if observed.is_empty() {
        return Vec::new();
    }
    let model = gi::TwoGroup::fit(&observed, 0.2);
    let synergy: Vec<bool> = observed.iter().map(|&d| model.is_synergy(d)).collect();
    let n_buffering = observed.iter().filter(|&&d| model.is_buffering(d)).count();
    predictions
        .iter()
        .filter(|(_, p)| doubles.iter().all(|(i, _)| p.contains_key(i)))
        .map(|(name, p)| {
            let predicted: Vec<f64> = doubles.iter().flat_map(|(i, add)| top.iter().map(move |&g| p[i][g] - add[g])).collect();
            let curve = gi::tpr_fdp_curve(&predicted, &synergy);
            let step = curve.len().div_ceil(200).max(1);
            GiRow {
                seed: split.seed,
                model: name.to_string(),
                entries: observed.len(),
                synergy: synergy.iter().filter(|&&s| s).count(),
                buffering: n_buffering,
                synergy_above: model.synergy_above,
                buffering_below: model.buffering_below,
                tpr_at_fdp_25: gi::tpr_at_fdp(&curve, 0.25),
                curve: curve.iter().step_by(step).copied().chain(curve.last().copied()).collect(),
            }
        })
        .collect()
}

fn write_gi(rows: &[GiRow], path: &Path) -> Result<()> {
    // Long form: one row per curve point, the split-level figures repeated.
    let mut t: Vec<(&GiRow, usize, f64, f64)> = Vec::new();
    for r in rows {
        for (k, &(tpr, fdp)) in r.curve.iter().enumerate() {
            t.push((r, k, tpr, fdp));
        }
    }
    Table::new()
        .with("task", Column::Str(vec!["double".to_string(); t.len()]))
        .with("seed", Column::I64(t.iter().map(|x| x.0.seed as i64).collect()))
        .with("model", Column::Str(t.iter().map(|x| x.0.model.clone()).collect()))
        .with("point", Column::I64(t.iter().map(|x| x.1 as i64).collect()))
        .with("tpr", Column::F64(t.iter().map(|x| x.2).collect()))
        .with("fdp", Column::F64(t.iter().map(|x| x.3).collect()))
        .with("synergy_above", Column::F64(t.iter().map(|x| x.0.synergy_above).collect()))
        .with("buffering_below", Column::F64(t.iter().map(|x| x.0.buffering_below).collect()))
        .with("n_entries", Column::I64(t.iter().map(|x| x.0.entries as i64).collect()))
        .with("n_synergy", Column::I64(t.iter().map(|x| x.0.synergy as i64).collect()))
        .with("n_buffering", Column::I64(t.iter().map(|x| x.0.buffering as i64).collect()))
        .with("tpr_at_fdp_0.25", Column::F64(t.iter().map(|x| x.0.tpr_at_fdp_25).collect()))
        .write_parquet(path)
}

/// The summary and the paired comparisons of every perturbation set: per set, the
/// per-perturbation metrics' means, the VCC score per seed against `mean`, and each model
/// against each baseline.
pub fn summarise_sets(rows: &[MetricRow], sets: &[coverage::PerturbationSet]) -> Result<(Vec<SummaryRow>, Vec<paired::Comparison>)> {
    let baseline_names: Vec<&str> = baselines::references().collect();
    let (mut summary, mut comparisons) = (Vec::new(), Vec::new());
    for set in sets {
        let in_set = set.rows(rows);
        let compared = paired::compare(&in_set, &baseline_names, &set.name);
        let mut part = summarise(&in_set)?;
        part.extend(vcc_rows(&in_set));
        for r in part.iter_mut() {
            r.perturbation_set = set.name.clone();
        }
        attach_best_baseline(&mut part, &compared);
        summary.extend(part);
        comparisons.extend(compared);
    }
    Ok((summary, comparisons))
}

/// Fills each row's paired columns from its comparison against the set's best baseline.
fn attach_best_baseline(summary: &mut [SummaryRow], comparisons: &[paired::Comparison]) {
    let best: BTreeMap<(String, String), String> = {
        let mut best: BTreeMap<(String, String), (f64, String)> = BTreeMap::new();
        for r in summary.iter().filter(|r| baselines::all_names().any(|b| b == r.model) && r.mean.is_finite()) {
            let entry = best.entry((r.task.clone(), r.metric.clone())).or_insert((f64::INFINITY, String::new()));
            if r.mean < entry.0 {
                *entry = (r.mean, r.model.clone());
            }
        }
        best.into_iter().map(|(k, (_, m))| (k, m)).collect()
    };
    for r in summary.iter_mut() {
        let Some(baseline) = best.get(&(r.task.clone(), r.metric.clone())) else { continue };
        if let Some(c) = comparisons.iter().find(|c| c.task == r.task && c.model == r.model && &c.baseline == baseline && c.metric == r.metric) {
            r.versus = baseline.clone();
            (r.mean_difference, r.ci_low, r.ci_high, r.win_share) = (c.mean_difference, c.ci_low, c.ci_high, c.win_share);
        }
    }
}

/// The Virtual Cell Challenge score of every model against `mean` on each (task, seed):
/// mean, sample SD and count over seeds. `mean` itself scores 0 by construction.
fn vcc_rows(rows: &[MetricRow]) -> Vec<SummaryRow> {
    // Per (task, seed, model): the sum and count of the finite values of each of the three
    // metrics (an undefined value is left out, as in the summary, not spread over the mean).
    let mut sums: BTreeMap<(&str, u64, &str), [(f64, usize); 3]> = BTreeMap::new();
    for r in rows {
        let e = sums.entry((r.task.as_str(), r.seed, r.model.as_str())).or_insert([(0.0, 0); 3]);
        // The DES at 100 genes: the challenge's own N is its count of significant genes,
        // in the hundreds on real screens.
        for (slot, v) in e.iter_mut().zip([r.mae, r.pds_l1, r.des_overlap_100]) {
            if v.is_finite() {
                *slot = (slot.0 + v, slot.1 + 1);
            }
        }
    }
    let mean_of = |(sum, n): (f64, usize)| if n == 0 { f64::NAN } else { sum / n as f64 };
    let means = |v: &[(f64, usize); 3]| metrics::VccInputs { mae: mean_of(v[0]), pds_l1: mean_of(v[1]), des: mean_of(v[2]) };
    let mut per_model: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for (&(task, seed, model), v) in &sums {
        if let Some(base) = sums.get(&(task, seed, baselines::NAMES[1])) {
            per_model.entry((task, model)).or_default().push(metrics::vcc_score(means(v), means(base)));
        }
    }
    per_model
        .into_iter()
        .map(|((task, model), scores)| {
            let n = scores.len();
            let mean = scores.iter().sum::<f64>() / n as f64;
            let sd = if n < 2 { f64::NAN } else { (scores.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() };
            SummaryRow { task: task.to_string(), model: model.to_string(), metric: VCC_SCORE.to_string(), mean, sd, n, ..empty_summary_row() }
        })
        .collect()
}

/// A summary row with no figures yet, over every perturbation.
pub(crate) fn empty_summary_row() -> SummaryRow {
    SummaryRow {
        task: String::new(),
        perturbation_set: coverage::ALL.to_string(),
        model: String::new(),
        metric: String::new(),
        mean: f64::NAN,
        sd: f64::NAN,
        n: 0,
        versus: String::new(),
        mean_difference: f64::NAN,
        ci_low: f64::NAN,
        ci_high: f64::NAN,
        win_share: f64::NAN,
    }
}

/// Mean, sample SD and count per (task, model, metric), NaNs left out (a Pearson delta of a
/// constant prediction is undefined, not zero); models in the order baselines first, then
/// others by name. The long table is grouped with polars so the aggregation is the same
/// engine a user reaches for when they open `metrics.parquet` themselves.
pub fn summarise(rows: &[MetricRow]) -> Result<Vec<SummaryRow>> {
    use polars::prelude::{col, DataFrame, IntoLazy, SortMultipleOptions};
    let model_rank = |m: &str| baselines::all_names().position(|b| b == m).unwrap_or(usize::MAX) as u32;
    let n = rows.len() * METRICS.len();
    let (mut task, mut model, mut rank, mut metric, mut metric_order, mut value) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for r in rows {
        for (mi, v) in r.values().into_iter().enumerate() {
            task.push(r.task.to_string());
            model.push(r.model.clone());
            rank.push(model_rank(&r.model));
            metric.push(METRICS[mi]);
            metric_order.push(mi as u32);
            value.push((!v.is_nan()).then_some(v));
        }
    }
    let polars_error = |e: polars::prelude::PolarsError| Error::bad_input("summary.parquet", format!("summarising with polars failed: {e}"));
    let long = DataFrame::new_infer_height(vec![
        polars::prelude::Column::new("task".into(), task),
        polars::prelude::Column::new("model".into(), model),
        polars::prelude::Column::new("rank".into(), rank),
        polars::prelude::Column::new("metric".into(), metric),
        polars::prelude::Column::new("metric_order".into(), metric_order),
        polars::prelude::Column::new("value".into(), value),
    ])
    .map_err(polars_error)?;
    let summary = long
        .lazy()
        .group_by([col("task"), col("rank"), col("model"), col("metric_order"), col("metric")])
        .agg([
            col("value").mean().alias("mean"),
            col("value").std(1).alias("sd"),
            col("value").is_not_null().sum().cast(polars::prelude::DataType::UInt32).alias("n"),
        ])
        .sort(["task", "rank", "model", "metric_order"], SortMultipleOptions::default())
        .collect()
        .map_err(polars_error)?;
    let strings = |name: &str| -> Result<Vec<String>> {
        let c = summary.column(name).map_err(polars_error)?.str().map_err(polars_error)?;
        Ok(c.iter().map(|s| s.unwrap_or_default().to_string()).collect())
    };
    let floats = |name: &str| -> Result<Vec<f64>> {
        let c = summary.column(name).map_err(polars_error)?.f64().map_err(polars_error)?;
        Ok(c.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    };
    let counts: Vec<usize> = summary.column("n").map_err(polars_error)?.u32().map_err(polars_error)?.iter().map(|v| v.unwrap_or(0) as usize).collect();
    let (task, model, metric, mean, sd) = (strings("task")?, strings("model")?, strings("metric")?, floats("mean")?, floats("sd")?);
    Ok((0..summary.height())
        .map(|i| SummaryRow {
            task: task[i].clone(),
            model: model[i].clone(),
            metric: metric[i].clone(),
            mean: mean[i],
            sd: sd[i],
            n: counts[i],
            ..empty_summary_row()
        })
        .collect())
}

/// `comparisons.parquet`: one row per (task, perturbation set, model, baseline, metric), see [`paired`].
fn write_comparisons(rows: &[paired::Comparison], path: &Path) -> Result<()> {
    let col = |f: fn(&paired::Comparison) -> f64| Column::F64(rows.iter().map(f).collect());
    Table::new()
        .with("task", Column::Str(rows.iter().map(|r| r.task.clone()).collect()))
        .with("perturbation_set", Column::Str(rows.iter().map(|r| r.perturbation_set.clone()).collect()))
        .with("model", Column::Str(rows.iter().map(|r| r.model.clone()).collect()))
        .with("baseline", Column::Str(rows.iter().map(|r| r.baseline.clone()).collect()))
        .with("metric", Column::Str(rows.iter().map(|r| r.metric.to_string()).collect()))
        .with("n_pairs", Column::I64(rows.iter().map(|r| r.n_pairs as i64).collect()))
        .with("mean_l2_model", col(|r| r.mean_model))
        .with("mean_l2_baseline", col(|r| r.mean_baseline))
        .with("mean_difference", col(|r| r.mean_difference))
        .with("ci_low", col(|r| r.ci_low))
        .with("ci_high", col(|r| r.ci_high))
        .with("win_share", col(|r| r.win_share))
        .with("verdict", Column::Str(rows.iter().map(|r| r.verdict().to_string()).collect()))
        .write_parquet(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(task: &'static str, model: &str, l2: f64, pearson: f64) -> MetricRow {
        MetricRow {
            perturbation: "A+B".to_string(),
            pearson_delta: pearson,
            pearson_delta_all: pearson,
            mse_top20_de: l2 * l2,
            discrimination_score: 1.0,
            ..example_metric_row(task, 1, model, "A+B", l2)
        }
    }

    #[test]
    fn summary_is_mean_sample_sd_and_count_without_nan() {
        let rows = vec![
            row("double", "app", 1.0, 0.5),
            row("double", "app", 3.0, f64::NAN),
            row("double", "additive", 2.0, 0.1),
            row("double", "additive", 4.0, 0.3),
            row("double", "additive", 9.0, 0.2),
            row("unseen_single", "no_change", 5.0, f64::NAN),
        ];
        let summary = summarise(&rows).unwrap();
        let get = |task: &str, model: &str, metric: &str| summary.iter().find(|r| r.task == task && r.model == model && r.metric == metric).unwrap();
        let additive = get("double", "additive", "l2");
        assert_eq!(additive.n, 3);
        assert!((additive.mean - 5.0).abs() < 1e-12);
        // Sample SD of 2, 4, 9: deviations -3, -1, 4 -> sqrt(26 / 2).
        assert!((additive.sd - 13f64.sqrt()).abs() < 1e-12);
        let app_pearson = get("double", "app", "pearson_delta");
        assert_eq!(app_pearson.n, 1, "the NaN Pearson is left out, not counted as zero");
        assert!((app_pearson.mean - 0.5).abs() < 1e-12);
        assert!(app_pearson.sd.is_nan(), "one value has no sample SD");
        let undefined = get("unseen_single", "no_change", "pearson_delta");
        assert_eq!(undefined.n, 0);
        assert!(undefined.mean.is_nan());
        // Baselines come first within a task, metrics in their declared order.
        let order: Vec<(&str, &str)> = summary.iter().map(|r| (r.task.as_str(), r.model.as_str())).collect();
        assert_eq!(order.first(), Some(&("double", "additive")));
        assert_eq!(order[METRICS.len()], ("double", "app"));
        let metrics: Vec<&str> = summary.iter().take(METRICS.len()).map(|r| r.metric.as_str()).collect();
        assert_eq!(metrics, METRICS);
        assert_eq!(summary.len(), 3 * METRICS.len());
    }
}

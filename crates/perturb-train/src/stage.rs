//! `perturb train` and `perturb predict`: the model folder and the prediction table.
//!
//! A model folder holds `config.json` (the burn config of the model, tagged by `"model"`:
//! `app`, `modules` or `grn_vae`), `model.bpk` (burnpack weights), `index.json` (output
//! genes, graph nodes, feature choices, control means, node features, gene programs),
//! `edges.parquet` (the network the model reads, by node index), `singles.parquet`
//! (training singles' effects, when the model adds them back), `timing.json` and
//! `manifest.json`. Everything `perturb predict` needs is in it. The siblings add what a
//! user inspects: `programs.parquet` (`modules`: the program of every gene) and
//! `grn.parquet` (`grn_vae`: the learned network, by gene name); APP with `--edge-trust`
//! adds `trust.parquet` (how far training trusts each prior edge).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{BurnpackStore, ModuleSnapshot};
use perturb_core::learned::{self, EdgeTrustRow, GeneProgramRow, LearnedEdgeRow, PriorEdge};
use perturb_core::manifest::{InputFile, Manifest};
use perturb_core::metrics::top_expressed_genes;
use perturb_core::profiles::{self, Profiles};
use perturb_core::schema;
use perturb_core::schema::model_edges as me;
use perturb_core::staging::{StagedDir, StagedFiles};
use perturb_core::timing::{self, peak_rss_bytes, ModelTiming};
use perturb_core::{Column, Condition, Error, Result, Table};
use serde::{Deserialize, Serialize};

use crate::app::{AppConfig, Decoder, GeneEmbedding, Pooling};
use crate::data::{additive_part, examples, single_effects, split_conditions, GraphData, TargetMode, Targets};
use crate::device::Selected;
use crate::features::{node_features, Edge, FeatureSpec, HeadInputs};
use crate::grn_vae::{edge_support, GrnVaeConfig};
use crate::layers::Aggregation;
use crate::modules::ModulesConfig;
use crate::predictor::{Model, ModelConfig};
use crate::programs::gene_programs;
use crate::train::Example;
use crate::train::{predict_with_attention, train, Embedded, ModelInputs, TrainOptions, TrainReport, PREDICTION_BATCH};

const CONFIG: &str = "config.json";
const WEIGHTS: &str = "model.bpk";
const INDEX: &str = "index.json";
const EDGES: &str = me::FILE;
const SINGLES: &str = perturb_core::schema::single_effects::SINGLES_FILE;
/// The other contexts' single effects the head reads (`--other-context`), by gene.
const CONTEXT_EFFECTS: &str = perturb_core::schema::single_effects::CONTEXT_EFFECTS_FILE;
/// The manifest's summary field holding the sha256 of the weights, checked at load.
const WEIGHTS_SHA256: &str = "weights_sha256";
/// The program of every gene (`modules`).
pub const PROGRAMS: &str = perturb_core::schema::programs::FILE;
/// The learned network by gene name (`grn_vae`).
pub const GRN: &str = perturb_core::schema::grn::FILE;
/// The learned trust of every prior edge, by gene name (APP with `--edge-trust`).
pub const TRUST: &str = perturb_core::schema::trust::FILE;

/// Which genes the model reads (graph nodes) and writes (outputs), and the fixed inputs
/// it was trained with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneIndex {
    pub outputs: Vec<String>,
    pub nodes: Vec<String>,
    /// The node of each output gene.
    pub output_nodes: Vec<usize>,
    /// Control mean of each output gene.
    pub control_mean: Vec<f64>,
    pub features: FeatureSpec,
    pub target_mode: TargetMode,
    /// Row-major [nodes, features.node_width()].
    pub node_features: Vec<f32>,
    /// The program of every node and the number of programs (`modules` only).
    #[serde(default)]
    pub programs: Option<(Vec<usize>, usize)>,
}

#[derive(Debug, Clone)]
pub struct TrainStage {
    pub data: PathBuf,
    pub graph: PathBuf,
    pub split: PathBuf,
    pub out: PathBuf,
    /// Ingest folders of the screen's other contexts (`--other-context`): their single
    /// effects become head features (`FeatureSpec::context_effects`, set with them).
    pub other_contexts: Vec<PathBuf>,
    pub config: AppConfigChoice,
    pub model: ModelChoice,
    pub options: TrainOptions,
    pub target_mode: TargetMode,
}

/// Which model to train, with the knobs of the siblings (`hidden` and `layers` come from
/// [`AppConfigChoice`] for all three).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelChoice {
    App,
    Modules { programs: usize, coherence_weight: f64, pathway_weight: f64 },
    GrnVae { latent: usize, hops: usize, learn_grn: bool, kl_weight: f64, sparsity_weight: f64, alignment_weight: f64 },
}

impl ModelChoice {
    pub fn name(&self) -> &'static str {
        match self {
            ModelChoice::App => "app",
            ModelChoice::Modules { .. } => "modules",
            ModelChoice::GrnVae { .. } => "grn_vae",
        }
    }
}

/// The architecture knobs a user picks; sizes come from the data.
#[derive(Debug, Clone)]
pub struct AppConfigChoice {
    pub hidden: usize,
    pub layers: usize,
    pub gene_embedding: GeneEmbedding,
    pub aggregation: Aggregation,
    pub pooling: Pooling,
    pub decoder: Decoder,
    pub query_skip: bool,
    pub attention_focus: bool,
    /// Hops of the attention's neighbourhood bonus (`--attention-hops`; 0 = off).
    pub attention_hops: usize,
    /// Learned per-gene vectors as GNN input (`--gene-features learned`).
    pub learned_vectors: bool,
    pub features: FeatureSpec,
    pub head_hidden: usize,
    /// Learn a trust per prior edge for the head's propagation features (`--edge-trust`).
    pub edge_trust: bool,
}

/// The seed design: `AppConfig`'s own defaults (sizes aside), no head features.
impl Default for AppConfigChoice {
    fn default() -> Self {
        let c = AppConfig::new(1, 1);
        AppConfigChoice {
            hidden: c.hidden,
            layers: c.layers,
            gene_embedding: c.gene_embedding,
            aggregation: c.aggregation,
            pooling: c.pooling,
            decoder: c.decoder,
            query_skip: c.query_skip,
            attention_focus: c.attention_focus,
            attention_hops: c.attention_hops,
            learned_vectors: c.learned_vectors,
            features: FeatureSpec::default(),
            head_hidden: c.head_hidden,
            edge_trust: c.trust_edges > 0,
        }
    }
}

impl AppConfigChoice {
    /// The APP options that differ from the seed design, as flags (the siblings refuse them).
    fn app_only_options(&self) -> Vec<&'static str> {
        let d = AppConfigChoice::default();
        let mut used = Vec::new();
        for (differs, flag) in [
            (self.gene_embedding != d.gene_embedding, "--gene-embedding"),
            (self.pooling != d.pooling, "--pooling"),
            (self.decoder != d.decoder, "--decoder"),
            (self.aggregation != d.aggregation, "--aggregation"),
            (self.query_skip, "--query-skip"),
            (self.attention_focus, "--attention-focus"),
            (self.attention_hops > 0, "--attention-hops"),
            (self.features.propagation_hops > 0, "--propagation"),
            (self.features.additive_gate, "--additive-gate"),
            (self.edge_trust, "--edge-trust"),
            (self.features.context_effects, "--other-context"),
            (self.features.local_genes > 0, "--local-genes"),
        ] {
            if differs {
                used.push(flag);
            }
        }
        used
    }

    fn config(&self, n_nodes: usize, n_outputs: usize, n_edges: usize) -> AppConfig {
        AppConfig::new(n_nodes, n_outputs)
            .with_hidden(self.hidden)
            .with_layers(self.layers)
            .with_gene_embedding(self.gene_embedding)
            .with_aggregation(self.aggregation)
            .with_pooling(self.pooling)
            .with_decoder(self.decoder)
            .with_query_skip(self.query_skip)
            .with_attention_focus(self.attention_focus)
            .with_attention_hops(self.attention_hops)
            .with_learned_vectors(self.learned_vectors)
            .with_node_features(self.features.node_width())
            .with_head_features(self.features.head_width())
            .with_head_hidden(self.head_hidden)
            .with_trust_edges(if self.edge_trust { n_edges } else { 0 })
            .with_trust_hops(self.features.propagation_hops)
            .with_local_genes(self.features.local_genes_for(n_outputs))
    }
}

/// How long a prediction takes, measured on up to one batch ([`PREDICTION_BATCH`]) of
/// perturbations after a warm-up call.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Milliseconds per perturbation predicted one at a time, and in one batch (each with
    /// its own setup).
    pub single_ms: f64,
    pub batched_ms: f64,
    /// Milliseconds once per call: the graph's tensors and the gene embeddings.
    pub setup_ms: f64,
    pub batch: usize,
}

pub fn latency(model: &Model, inputs: &ModelInputs, perturbations: &[Vec<usize>], device: &Device) -> Latency {
    let sample: Vec<Vec<usize>> = perturbations.iter().take(PREDICTION_BATCH).cloned().collect();
    if sample.is_empty() {
        return Latency { single_ms: f64::NAN, batched_ms: f64::NAN, setup_ms: f64::NAN, batch: 0 };
    }
    let n = sample.len() as f64;
    let _ = predict_with_attention(model, inputs, &sample[..1], 1, device);
    let started = std::time::Instant::now();
    let _ = predict_with_attention(model, inputs, &sample, 1, device);
    let single_ms = started.elapsed().as_secs_f64() * 1e3 / n;
    let started = std::time::Instant::now();
    let embedded = Embedded::new(model, inputs, device).ready();
    let setup_ms = started.elapsed().as_secs_f64() * 1e3;
    let _ = embedded.predict(&sample, sample.len());
    let batched_ms = started.elapsed().as_secs_f64() * 1e3 / n;
    Latency { single_ms, batched_ms, setup_ms, batch: sample.len() }
}

/// What `perturb train` reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub report: TrainReport,
    pub n_params: usize,
}

/// Builds the model's fixed inputs from the graph, the control profile, the training
/// singles' effects and the other contexts' single effects.
fn model_inputs(index: &GeneIndex, edges: Vec<Edge>, singles: &HashMap<String, Vec<f32>>, context: &HashMap<String, Vec<f32>>) -> ModelInputs {
    let node_of: HashMap<&str, usize> = index.nodes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let by_node = |effects: &HashMap<String, Vec<f32>>| -> HashMap<usize, Vec<f32>> {
        effects.iter().filter_map(|(g, v)| node_of.get(g.as_str()).map(|&n| (n, v.clone()))).collect()
    };
    let head = index.features.has_head().then(|| {
        let control: Vec<f32> = index.control_mean.iter().map(|&c| c as f32).collect();
        HeadInputs::new(&index.features, index.nodes.len(), &edges, &index.output_nodes, &control, by_node(singles)).with_context(by_node(context))
    });
    ModelInputs {
        n_nodes: index.nodes.len(),
        edges,
        outputs: index.output_nodes.clone(),
        node_features: index.node_features.clone(),
        node_width: index.features.node_width(),
        head,
        programs: index.programs.clone(),
        edge_support: Vec::new(),
    }
}

pub fn run_train(s: &TrainStage, selected: &Selected) -> Result<TrainSummary> {
    let device = &selected.device;
    let targets = Targets::read(&s.data)?;
    let graph = GraphData::read(&s.graph)?;
    let output_nodes = graph.output_nodes(&targets.genes, &s.graph)?;
    let train_conditions = split_conditions(&s.split, "train")?;
    let val_conditions = split_conditions(&s.split, "val")?;
    let singles = single_effects(&targets, &train_conditions);
    if s.config.features.context_effects == s.other_contexts.is_empty() {
        return Err(Error::bad_option("--other-context", "the head reads the other contexts' effects exactly when their folders are given"));
    }
    let context = context_effects(&targets.genes, &s.other_contexts)?;
    let train_examples = examples(&targets, &graph, &train_conditions, &singles, &s.split, s.target_mode)?;
    if train_examples.is_empty() {
        return Err(Error::bad_input(&s.split, "the training split has no perturbed conditions"));
    }
    let val_examples = examples(&targets, &graph, &val_conditions, &singles, &s.split, s.target_mode)?;
    check_model_options(s)?;
    let spec = feature_spec(s, targets.genes.len());
    let programs = programs_for(s, &targets, &graph, &output_nodes, &train_examples);
    let index = gene_index(&targets, &graph, output_nodes, &spec, s.target_mode, programs);
    let node_of: HashMap<&str, usize> = graph.node_index();
    let singles_by_node: HashMap<usize, Vec<f32>> = singles.iter().filter_map(|(g, v)| node_of.get(g.as_str()).map(|&n| (n, v.clone()))).collect();
    let kept_singles = spec.additive_gate || s.target_mode == TargetMode::ResidualOverAdditive;
    let trained_singles: Vec<String> = singles.keys().cloned().collect();
    let singles = if kept_singles { singles } else { HashMap::new() };
    let mut inputs = model_inputs(&index, graph.edges.clone(), &singles, &context);
    let config = model_config(s, &index, &graph, &spec);
    if let ModelConfig::GrnVae(_) = &config {
        let mut output_of = vec![None; graph.nodes.len()];
        for (o, &n) in index.output_nodes.iter().enumerate() {
            output_of[n] = Some(o);
        }
        inputs.edge_support = edge_support(&graph.edges, &output_of, &singles_by_node);
    }
    let scored = top_expressed_genes(&targets.control_mean, 1000.min(targets.genes.len()));

    let staged = StagedDir::new(&s.out)?;
    let (model, report) = train(&config, &inputs, &train_examples, &val_examples, &scored, &s.options, device)?;
    let n_params = model.num_params();
    save_model(&staged, &config, &model, &index, &graph.edges, &singles)?;
    // Written last, after the manifest that lists it: its latency is measured on the model
    // as saved.
    let timing_file = staged.output(timing::FILE);
    let learned = LearnedTables { index: &index, graph: &graph, context: &context, trained_singles: &trained_singles };
    learned.write(&staged, &model)?;
    let fit = FitSummary { report: &report, n_params, config: &config, index: &index, inputs: &inputs, selected };
    write_train_manifest(&staged, s, &spec, &fit)?;
    let lists: Vec<Vec<usize>> = train_examples.iter().map(|e| e.genes.clone()).collect();
    let latency = latency(&model, &inputs, &lists, device);
    let timing = ModelTiming {
        n_params,
        epochs: report.history.len(),
        train_seconds: report.seconds,
        predict_ms_single: latency.single_ms,
        predict_ms_batched: latency.batched_ms,
        predict_setup_ms: latency.setup_ms,
        batch: latency.batch,
        peak_rss_bytes: peak_rss_bytes().unwrap_or(0),
        device: selected.name.clone(),
    };
    timing.write(&timing_file)?;
    staged.commit()?;
    Ok(TrainSummary { report, n_params })
}

/// Refuses option combinations that would train something other than what was asked.
fn check_model_options(s: &TrainStage) -> Result<()> {
    if s.model != ModelChoice::App {
        let used = s.config.app_only_options();
        if !used.is_empty() {
            return Err(Error::bad_option("--model", format!("{} is an option of app, not of {}", used.join(", "), s.model.name())));
        }
    }
    // The residual target changes only what is learned and added back; the programs'
    // structure losses of `modules` are defined on whole effects, not on residuals.
    if s.target_mode != TargetMode::Full && matches!(s.model, ModelChoice::Modules { .. }) {
        return Err(Error::bad_option("--target", "residual is an option of app and grn_vae, not of modules (its structure losses read whole effects)"));
    }
    if s.config.pooling == Pooling::Mean {
        // Uniform weights have no scores for a bonus to start: the flag would add an unused parameter.
        if let Some(flag) =
            [(s.config.attention_focus, "--attention-focus"), (s.config.attention_hops > 0, "--attention-hops")].iter().find(|f| f.0).map(|f| f.1)
        {
            return Err(Error::bad_option(flag, "starts the attention somewhere, but --pooling mean has no attention; use --pooling attention, dot or cosine"));
        }
    }
    check_local_options(&s.config)?;
    if s.config.edge_trust && s.config.features.propagation_hops == 0 {
        return Err(Error::bad_option("--edge-trust", "learns the trust of the edges the head's propagation features run over; give --propagation K too"));
    }
    Ok(())
}

/// `--local-genes` restricts the additive attention and the gene-wise head to a few genes
/// per perturbation: it needs the head, and the options that act on every gene's score or
/// feature (other poolings, score bonuses, learned edge trust) are not defined there.
fn check_local_options(c: &AppConfigChoice) -> Result<()> {
    if c.features.local_genes == 0 {
        return match c.features.local_expressed {
            0 => Ok(()),
            _ => Err(Error::bad_option("--local-expressed", "chooses some of the --local-genes candidates; give --local-genes K too")),
        };
    }
    if c.features.local_expressed >= c.features.local_genes {
        return Err(Error::bad_option(
            "--local-expressed",
            format!("must be below --local-genes ({}): the other candidates are the perturbed and the most reached genes", c.features.local_genes),
        ));
    }
    if !c.features.has_head() {
        return Err(Error::bad_option("--local-genes", "chooses the genes the gene-wise head runs on; give --propagation K or --additive-gate too"));
    }
    let refused = [
        (c.pooling != Pooling::Attention, "--pooling (other than attention)"),
        (c.attention_focus, "--attention-focus"),
        (c.attention_hops > 0, "--attention-hops"),
        (c.edge_trust, "--edge-trust"),
    ];
    match refused.iter().find(|r| r.0) {
        Some((_, flag)) => {
            Err(Error::bad_option("--local-genes", format!("runs the additive attention on the candidates only; it does not combine with {flag}")))
        }
        None => Ok(()),
    }
}

/// The fixed inputs the model reads: as asked, and for `grn_vae` always what is known of a
/// gene without perturbing it (the VAE encodes a perturbed gene from it).
/// `--local-genes` at or above the screen's gene count runs the head on every gene.
fn feature_spec(s: &TrainStage, n_outputs: usize) -> FeatureSpec {
    let mut spec = s.config.features.clone();
    if spec.local_genes > 0 && spec.local_genes_for(n_outputs) == 0 {
        tracing::info!("--local-genes {} covers all {n_outputs} genes of the screen: the head runs on every gene", spec.local_genes);
    }
    spec.local_genes = spec.local_genes_for(n_outputs);
    if spec.local_genes == 0 {
        spec.local_expressed = 0;
    }
    if matches!(s.model, ModelChoice::GrnVae { .. }) {
        spec.control_node_features = true;
        spec.prior_node_features = true;
    }
    spec
}

/// `modules`' gene programs (the program of every node, and their number), clustered from
/// each measured gene's changes across the training conditions; `None` for the others.
fn programs_for(s: &TrainStage, targets: &Targets, graph: &GraphData, output_nodes: &[usize], train: &[Example]) -> Option<(Vec<usize>, usize)> {
    let ModelChoice::Modules { programs, .. } = &s.model else { return None };
    let n_out = targets.genes.len();
    let mut lfc = vec![0.0f32; n_out * train.len()];
    for (c, e) in train.iter().enumerate() {
        for (g, &v) in e.lfc.iter().enumerate() {
            lfc[g * train.len() + c] = v;
        }
    }
    let assigned = gene_programs(graph.nodes.len(), &graph.edges, output_nodes, &lfc, train.len(), *programs, s.options.seed);
    let k = assigned.iter().max().map_or(1, |m| m + 1);
    Some((assigned, k))
}

fn gene_index(
    targets: &Targets,
    graph: &GraphData,
    output_nodes: Vec<usize>,
    spec: &FeatureSpec,
    target_mode: TargetMode,
    programs: Option<(Vec<usize>, usize)>,
) -> GeneIndex {
    let mut control: Vec<Option<(f64, f64)>> = vec![None; graph.nodes.len()];
    for (o, &n) in output_nodes.iter().enumerate() {
        control[n] = Some((targets.control_mean[o], targets.control_variance[o]));
    }
    GeneIndex {
        outputs: targets.genes.clone(),
        nodes: graph.nodes.clone(),
        output_nodes,
        control_mean: targets.control_mean.clone(),
        node_features: node_features(spec, graph.nodes.len(), &graph.edges, &control),
        features: spec.clone(),
        target_mode,
        programs,
    }
}

/// The burn config of the chosen model at this screen's sizes.
fn model_config(s: &TrainStage, index: &GeneIndex, graph: &GraphData, spec: &FeatureSpec) -> ModelConfig {
    let (n_nodes, n_outputs) = (graph.nodes.len(), index.outputs.len());
    match &s.model {
        ModelChoice::App => ModelConfig::App(s.config.config(n_nodes, n_outputs, graph.edges.len())),
        ModelChoice::Modules { coherence_weight, pathway_weight, .. } => ModelConfig::Modules(
            ModulesConfig::new(n_nodes, n_outputs)
                .with_programs(index.programs.as_ref().map_or(1, |p| p.1))
                .with_hidden(s.config.hidden)
                .with_layers(s.config.layers)
                .with_coherence_weight(*coherence_weight)
                .with_pathway_weight(*pathway_weight),
        ),
        ModelChoice::GrnVae { latent, hops, learn_grn, kl_weight, sparsity_weight, alignment_weight } => ModelConfig::GrnVae(
            GrnVaeConfig::new(n_nodes, n_outputs, graph.edges.len())
                .with_latent(*latent)
                .with_hidden(s.config.hidden)
                .with_hops(*hops)
                .with_node_features(spec.node_width())
                .with_learn_grn(*learn_grn)
                .with_kl_weight(*kl_weight)
                .with_sparsity_weight(*sparsity_weight)
                .with_alignment_weight(*alignment_weight),
        ),
    }
}

/// What a trained model learned beyond its weights, by gene name, and what it reads at
/// prediction time besides them.
struct LearnedTables<'a> {
    index: &'a GeneIndex,
    graph: &'a GraphData,
    context: &'a HashMap<String, Vec<f32>>,
    trained_singles: &'a [String],
}

impl LearnedTables<'_> {
    /// Writes the model folder's optional tables.
    fn write(&self, staged: &StagedDir, model: &Model) -> Result<()> {
        let (index, graph) = (self.index, self.graph);
        if index.features.context_effects {
            write_effects(&staged.output(CONTEXT_EFFECTS), self.context, &index.outputs)?;
        }
        if let Some((programs, _)) = &index.programs {
            write_programs(&staged.output(PROGRAMS), &graph.nodes, programs, &index.output_nodes)?;
        }
        if let Some(weights) = model.learned_grn() {
            let edges = prior_edges(&graph.nodes, &graph.edges, self.trained_singles);
            let rows: Vec<LearnedEdgeRow> = edges.into_iter().zip(weights).map(|(edge, w)| LearnedEdgeRow { edge, learned: f64::from(w) }).collect();
            learned::write_grn(&rows, &staged.output(GRN))?;
        }
        if let Some(trust) = model.edge_trust() {
            let edges = prior_edges(&graph.nodes, &graph.edges, self.trained_singles);
            let rows: Vec<EdgeTrustRow> = edges.into_iter().zip(trust).map(|(edge, t)| EdgeTrustRow { edge, trust: f64::from(t) }).collect();
            learned::write_trust(&rows, &staged.output(TRUST))?;
        }
        Ok(())
    }
}

/// How training went, for the manifest's summary.
struct FitSummary<'a> {
    report: &'a TrainReport,
    n_params: usize,
    config: &'a ModelConfig,
    index: &'a GeneIndex,
    inputs: &'a ModelInputs,
    selected: &'a Selected,
}

/// The training manifest: the inputs' hashes, every option, how training went and the
/// weights' sha256 (checked at every load).
fn write_train_manifest(staged: &StagedDir, s: &TrainStage, spec: &FeatureSpec, fit: &FitSummary) -> Result<()> {
    let hashed = [s.data.join(schema::pseudobulk::FILE), s.graph.join(schema::edges::FILE), s.split.clone()]
        .into_iter()
        .chain(s.other_contexts.iter().map(|d| d.join(schema::pseudobulk::FILE)))
        .collect::<Vec<_>>()
        .iter()
        .map(|p| InputFile::hash(p))
        .collect::<Result<Vec<_>>>()?;
    let o = &s.options;
    let c = &s.config;
    let mut parameters = serde_json::json!({
        "seed": o.seed, "learning_rate": o.learning_rate, "max_epochs": o.max_epochs, "patience": o.patience, "min_epochs": o.min_epochs,
        "batch_size": o.batch_size, "validation_share": o.validation_share, "bootstrap": o.bootstrap, "genes_per_step": o.genes_per_step,
        "hidden": c.hidden, "layers": c.layers, "gene_embedding": format!("{:?}", c.gene_embedding),
        "aggregation": format!("{:?}", c.aggregation), "pooling": format!("{:?}", c.pooling), "decoder": format!("{:?}", c.decoder),
        "query_skip": c.query_skip, "attention_focus": c.attention_focus, "attention_hops": c.attention_hops, "learned_vectors": c.learned_vectors, "features": spec, "head_hidden": c.head_hidden, "edge_trust": c.edge_trust,
        "target_mode": format!("{:?}", s.target_mode), "model": format!("{:?}", s.model),
    });
    if !s.other_contexts.is_empty() {
        parameters["other_contexts"] = serde_json::json!(s.other_contexts.iter().map(|d| d.display().to_string()).collect::<Vec<_>>());
    }
    let mut manifest = Manifest::new("train", hashed, parameters);
    let report = fit.report;
    manifest.summary = serde_json::json!({
        "n_train_conditions": report.n_train, "n_validation_conditions": report.n_validation, "n_params": fit.n_params,
        "best_epoch": report.best_epoch, "epochs": report.history.len(),
        "final_train_loss": report.history.last().map(|h| h.1), "best_validation_l2": report.best_validation_l2(),
        "device": fit.selected.description, "model": fit.config.name(),
        "programs": fit.index.programs.as_ref().map(|p| p.1), "edges_supported_by_singles": fit.inputs.edge_support.len(),
        WEIGHTS_SHA256: perturb_core::manifest::sha256_file(&staged.output(WEIGHTS))?.0,
    });
    staged.write_manifest(manifest)
}

/// The program of every graph node: node, program, whether it is a measured gene.
fn write_programs(path: &Path, nodes: &[String], programs: &[usize], output_nodes: &[usize]) -> Result<()> {
    let mut measured = vec![false; nodes.len()];
    output_nodes.iter().for_each(|&n| measured[n] = true);
    let rows: Vec<GeneProgramRow> =
        nodes.iter().zip(programs).zip(measured).map(|((gene, &p), measured)| GeneProgramRow { gene: gene.clone(), program: p as i64, measured }).collect();
    learned::write_programs(&rows, path)
}

/// Every prior edge by gene name, with whether its source gene's single perturbation was
/// in the training data (only those edges had direct evidence).
fn prior_edges(nodes: &[String], edges: &[Edge], trained_singles: &[String]) -> Vec<PriorEdge> {
    let perturbed: std::collections::HashSet<&str> = trained_singles.iter().map(String::as_str).collect();
    edges
        .iter()
        .map(|e| PriorEdge {
            source: nodes[e.source].clone(),
            target: nodes[e.target].clone(),
            prior_weight: f64::from(e.weight),
            prior_sign: e.sign as i64,
            source_perturbed: perturbed.contains(nodes[e.source].as_str()),
        })
        .collect()
}

/// Numbers a module's parameters 0, 1, 2, … in the order burn walks them. burn gives each
/// parameter a random id, which the burnpack file stores: renumbered, the same seed
/// writes the same `model.bpk` bytes, so its sha256 in the manifest is reproducible too.
/// Loading matches tensors by name, so the ids play no part in predictions.
struct SequentialParamIds(u64);

impl SequentialParamIds {
    fn next(&mut self) -> burn::module::ParamId {
        self.0 += 1;
        burn::module::ParamId::from(self.0)
    }
}

impl burn::module::ModuleMapper for SequentialParamIds {
    fn map_float<const D: usize>(&mut self, mut param: burn::module::Param<Tensor<D>>) -> burn::module::Param<Tensor<D>> {
        param.id = self.next();
        param
    }

    fn map_int<const D: usize>(&mut self, mut param: burn::module::Param<Tensor<D, Int>>) -> burn::module::Param<Tensor<D, Int>> {
        param.id = self.next();
        param
    }

    fn map_bool<const D: usize>(&mut self, mut param: burn::module::Param<Tensor<D, Bool>>) -> burn::module::Param<Tensor<D, Bool>> {
        param.id = self.next();
        param
    }
}

fn save_model(staged: &StagedDir, config: &ModelConfig, model: &Model, index: &GeneIndex, edges: &[Edge], singles: &HashMap<String, Vec<f32>>) -> Result<()> {
    let json = serde_json::to_vec_pretty(config).expect("config serialises");
    perturb_core::table::write_bytes_atomically(&staged.output(CONFIG), &json)?;
    let mut store = BurnpackStore::from_file(staged.output(WEIGHTS));
    model
        .clone()
        .map(&mut SequentialParamIds(0))
        .save_into(&mut store)
        .map_err(|e| Error::Other(format!("{}: cannot save the model ({e:?})", staged.output(WEIGHTS).display())))?;
    let json = serde_json::to_vec(index).expect("index serialises");
    perturb_core::table::write_bytes_atomically(&staged.output(INDEX), &json)?;
    Table::new()
        .with(me::SOURCE, Column::I64(edges.iter().map(|e| e.source as i64).collect()))
        .with(me::TARGET, Column::I64(edges.iter().map(|e| e.target as i64).collect()))
        .with(me::WEIGHT, Column::F64(edges.iter().map(|e| f64::from(e.weight)).collect()))
        .with(me::SIGN, Column::F64(edges.iter().map(|e| f64::from(e.sign)).collect()))
        .write_parquet(&staged.output(EDGES))?;
    write_effects(&staged.output(SINGLES), singles, &index.outputs)
}

/// Single effects by perturbed gene, long form (single, gene, lfc) over the output genes,
/// singles sorted by name.
fn write_effects(path: &Path, effects: &HashMap<String, Vec<f32>>, outputs: &[String]) -> Result<()> {
    let mut names: Vec<String> = effects.keys().cloned().collect();
    names.sort();
    let values = names.iter().map(|s| effects[s].as_slice()).collect();
    profiles::write_single_effects(&Profiles { labels: &names, genes: outputs, values }, path)
}

/// What [`write_effects`] wrote, each single's effects covering every output gene.
fn read_effects(path: &Path, n_outputs: usize) -> Result<HashMap<String, Vec<f32>>> {
    let mut effects: HashMap<String, Vec<f32>> = HashMap::new();
    for row in profiles::read_single_effects(path)? {
        effects.entry(row.single).or_default().push(row.lfc as f32);
    }
    if effects.values().any(|v| v.len() != n_outputs) {
        return Err(Error::bad_input(path, "a single's effects do not cover every output gene"));
    }
    Ok(effects)
}

/// Each gene's single effect (log-fold change over `outputs`, by name) in the other
/// contexts of the screen, averaged over the contexts that perturbed it alone. Every output
/// gene must be measured in each.
fn context_effects(outputs: &[String], dirs: &[PathBuf]) -> Result<HashMap<String, Vec<f32>>> {
    let elsewhere = perturb_core::ingested::effects_elsewhere(dirs, outputs)?;
    Ok(elsewhere.into_values().filter(|e| e.targets.len() == 1).map(|e| (e.targets[0].clone(), e.effect.into_iter().map(|v| v as f32).collect())).collect())
}

pub struct LoadedModel {
    pub model: Model,
    pub index: GeneIndex,
    pub inputs: ModelInputs,
    /// Training singles' effects (residual and gated models), by gene.
    pub singles: HashMap<String, Vec<f32>>,
}

/// Reads a model config. A config without a `"model"` tag was written before the siblings
/// existed and is APP's. A field added to `AppConfig` after the model was trained takes
/// its default (which is always the behaviour before the field existed), so older model
/// folders keep loading.
fn read_config(path: &Path) -> Result<ModelConfig> {
    let bad = |m: String| Error::bad_input(path, format!("not a model config ({m})"));
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let stored: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let serde_json::Value::Object(mut stored) = stored else { return Err(bad("not a JSON object".into())) };
    match stored.remove("model").as_ref().and_then(|m| m.as_str()).unwrap_or("app") {
        "app" => {
            let mut merged = serde_json::to_value(AppConfig::new(0, 0)).map_err(|e| bad(e.to_string()))?;
            let serde_json::Value::Object(fields) = &mut merged else { return Err(bad("defaults are not an object".into())) };
            for (k, v) in stored {
                fields.insert(k, v);
            }
            serde_json::from_value(merged).map(ModelConfig::App).map_err(|e| bad(e.to_string()))
        }
        "modules" => serde_json::from_value(serde_json::Value::Object(stored)).map(ModelConfig::Modules).map_err(|e| bad(e.to_string())),
        "grn_vae" => serde_json::from_value(serde_json::Value::Object(stored)).map(ModelConfig::GrnVae).map_err(|e| bad(e.to_string())),
        other => Err(bad(format!("unknown model '{other}'"))),
    }
}

pub fn load(dir: &Path, device: &Device) -> Result<LoadedModel> {
    for f in [CONFIG, WEIGHTS, INDEX, EDGES, SINGLES] {
        if !dir.join(f).is_file() {
            return Err(Error::bad_input(dir.join(f), "missing: --model must be a folder written by `perturb train`"));
        }
    }
    verify_weights(dir)?;
    let config = read_config(&dir.join(CONFIG))?;
    let bytes = std::fs::read(dir.join(INDEX)).map_err(|e| Error::io(dir.join(INDEX), e))?;
    let index: GeneIndex = serde_json::from_slice(&bytes).map_err(|e| Error::bad_input(dir.join(INDEX), format!("not a gene index ({e})")))?;
    let (head_width, local_genes) = match &config {
        ModelConfig::App(c) => (c.head_features, c.local_genes),
        _ => (0, 0),
    };
    let programs_agree = match (&config, &index.programs) {
        (ModelConfig::Modules(c), Some((p, k))) => c.programs == *k && p.len() == index.nodes.len() && p.iter().all(|&x| x < *k),
        (ModelConfig::Modules(_), None) => false,
        _ => true,
    };
    if index.outputs.len() != config.n_outputs()
        || index.nodes.len() != config.n_genes()
        || index.features.head_width() != head_width
        || index.features.local_genes != local_genes
        || !programs_agree
    {
        return Err(Error::bad_input(dir.join(INDEX), format!("does not match {} (from another model?)", dir.join(CONFIG).display())));
    }
    let ep = dir.join(EDGES);
    let t = Table::read_parquet(&ep)?;
    let (s, tg, w, sign) = (t.ints(me::SOURCE, &ep)?, t.ints(me::TARGET, &ep)?, t.floats(me::WEIGHT, &ep)?, t.floats(me::SIGN, &ep)?);
    let n = index.nodes.len() as i64;
    if s.iter().chain(tg).any(|&i| i < 0 || i >= n) {
        return Err(Error::bad_input(&ep, format!("an edge names a node outside 0..{n}")));
    }
    let edges: Vec<Edge> = (0..s.len()).map(|i| Edge { source: s[i] as usize, target: tg[i] as usize, weight: w[i] as f32, sign: sign[i] as f32 }).collect();
    let singles = read_effects(&dir.join(SINGLES), index.outputs.len())?;
    let context = if index.features.context_effects {
        let path = dir.join(CONTEXT_EFFECTS);
        if !path.is_file() {
            return Err(Error::bad_input(path, "missing: the model reads other contexts' effects (--other-context) and they were saved here"));
        }
        read_effects(&path, index.outputs.len())?
    } else {
        HashMap::new()
    };
    if let ModelConfig::GrnVae(c) = &config {
        if c.n_edges != edges.len() {
            return Err(Error::bad_input(&ep, format!("has {} edges but the model's GRN has {}", edges.len(), c.n_edges)));
        }
    }
    let mut model = config.init(&vec![0.0; edges.len()], device);
    let mut store = BurnpackStore::from_file(dir.join(WEIGHTS));
    // burn's error lists every tensor; the user needs to know only that the files disagree.
    model.load_from(&mut store).map_err(|e| {
        tracing::debug!("burnpack load error: {e:?}");
        Error::bad_input(dir.join(WEIGHTS), format!("its tensors do not match {} (from another model?; -vv shows burn's message)", dir.join(CONFIG).display()))
    })?;
    let inputs = model_inputs(&index, edges, &singles, &context);
    Ok(LoadedModel { model, index, inputs, singles })
}

/// Checks `model.bpk` against the sha256 its manifest recorded: a damaged or replaced
/// weights file would otherwise load and predict different numbers without a word.
/// Model folders from before the hash was recorded load unchecked.
fn verify_weights(dir: &Path) -> Result<()> {
    let manifest_path = dir.join(schema::MANIFEST);
    if !manifest_path.is_file() {
        return Err(Error::bad_input(&manifest_path, "missing: --model must be a folder written by `perturb train`"));
    }
    let manifest = Manifest::read(&manifest_path)?;
    let Some(expected) = manifest.summary.get(WEIGHTS_SHA256).and_then(|v| v.as_str()) else { return Ok(()) };
    let weights = dir.join(WEIGHTS);
    let (found, _) = perturb_core::manifest::sha256_file(&weights)?;
    if found != expected {
        return Err(Error::bad_input(
            &weights,
            format!("sha256 {found} differs from {expected} recorded in manifest.json: the weights were changed or damaged; retrain"),
        ));
    }
    Ok(())
}

/// Parses `"A+B,C"` into node-index lists, with close names for unknown genes.
pub fn parse_perturbations(text: &str, index: &GeneIndex, option: &str) -> Result<Vec<(String, Vec<usize>)>> {
    let ni: HashMap<&str, usize> = index.nodes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let mut out = Vec::new();
    for label in text.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        let c = Condition::parse_canonical(label).map_err(|m| Error::bad_option(option, m))?;
        if c.is_control() {
            return Err(Error::bad_option(option, "the control is not a perturbation"));
        }
        let genes = c
            .genes()
            .iter()
            .map(|g| {
                ni.get(g.as_str()).copied().ok_or_else(|| {
                    let close = perturb_core::names::close_names(g, &index.nodes, 5);
                    Error::bad_option(option, format!("gene '{g}' is not in the model's graph (closest: {})", close.join(", ")))
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        out.push((c.canonical(), genes));
    }
    if out.is_empty() {
        return Err(Error::bad_option(option, "no perturbation given"));
    }
    Ok(out)
}

/// Predicted log-fold changes (and attention) of a loaded model for parsed perturbations.
pub fn predict_parsed(loaded: &LoadedModel, parsed: &[(String, Vec<usize>)], device: &Device) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let lists: Vec<Vec<usize>> = parsed.iter().map(|p| p.1.clone()).collect();
    let (mut lfc, attention) = predict_with_attention(&loaded.model, &loaded.inputs, &lists, PREDICTION_BATCH, device);
    if loaded.index.target_mode == TargetMode::ResidualOverAdditive {
        // The model predicted the deviation from additivity: add the singles' sum back.
        for (row, (_, genes)) in lfc.iter_mut().zip(parsed) {
            let names: Vec<String> = genes.iter().map(|&g| loaded.index.nodes[g].clone()).collect();
            if let Some(add) = additive_part(&loaded.singles, &names) {
                row.iter_mut().zip(add).for_each(|(y, a)| *y += a);
            }
        }
    }
    (lfc, attention)
}

/// Writes the long-form prediction table (perturbation, gene, lfc) and, if asked, the
/// attention table (perturbation, gene, attention) beside it as `<out>.attention.parquet`.
/// The two appear together or not at all; without `attention`, an attention table left
/// there by an earlier run is removed, so the pair on disk always comes from one run.
/// `option` names where the perturbations came from, for error messages.
pub fn run_predict(model_dir: &Path, perturbations: &str, option: &str, out: &Path, attention: bool, device: &Device) -> Result<usize> {
    let loaded = load(model_dir, device)?;
    if attention && !loaded.model.has_attention() {
        return Err(Error::bad_option("--attention", format!("{} has no attention (it does not pool over genes)", model_dir.display())));
    }
    let parsed = parse_perturbations(perturbations, &loaded.index, option)?;
    let (lfc, weights) = predict_parsed(&loaded, &parsed, device);
    let labels: Vec<String> = parsed.iter().map(|p| p.0.clone()).collect();
    let side = perturb_core::schema::attention::file_beside(out);
    let finals: Vec<PathBuf> = if attention { vec![out.to_path_buf(), side.clone()] } else { vec![out.to_path_buf()] };
    let staged = StagedFiles::new(&finals)?;
    let predictions = Profiles { labels: &labels, genes: &loaded.index.outputs, values: lfc.iter().map(Vec::as_slice).collect() };
    profiles::write_predictions(&predictions, &staged.path(out))?;
    if attention {
        let weights = Profiles { labels: &labels, genes: &loaded.index.nodes, values: weights.iter().map(Vec::as_slice).collect() };
        profiles::write_attention(&weights, &staged.path(&side))?;
    } else if side.is_file() {
        std::fs::remove_file(&side).map_err(|e| Error::io(&side, e))?;
    }
    staged.commit()?;
    Ok(parsed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config written before a field existed loads with that field's default.
    #[test]
    fn an_older_config_without_a_newer_field_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG);
        let mut v = serde_json::to_value(AppConfig::new(7, 5).with_query_skip(true)).unwrap();
        v.as_object_mut().unwrap().remove("attention_focus");
        std::fs::write(&path, v.to_string()).unwrap();
        let ModelConfig::App(c) = read_config(&path).unwrap() else { panic!("an untagged config is APP's") };
        assert_eq!((c.n_genes, c.n_outputs, c.query_skip, c.attention_focus), (7, 5, true, false));
        // The siblings' configs round-trip through their tag.
        std::fs::write(&path, serde_json::to_vec(&ModelConfig::GrnVae(GrnVaeConfig::new(7, 5, 3).with_hops(2))).unwrap()).unwrap();
        assert!(matches!(read_config(&path).unwrap(), ModelConfig::GrnVae(c) if c.hops == 2 && c.n_edges == 3));
        std::fs::write(&path, r#"{"model": "gears"}"#).unwrap();
        assert!(read_config(&path).unwrap_err().to_string().contains("unknown model 'gears'"));
        std::fs::write(&path, "[1, 2]").unwrap();
        assert!(read_config(&path).unwrap_err().to_string().contains("not a model config"));
    }
}

//! `perturb train` and `perturb predict`: the model folder and the prediction table.
//!
//! A model folder holds `config.json` (the burn `AppConfig`), `model.bpk` (burnpack
//! weights), `index.json` (output genes, graph nodes, feature choices, control means,
//! node features), `edges.parquet` (the network the model reads, by node index),
//! `singles.parquet` (training singles' effects, when the model adds them back) and
//! `manifest.json`. Everything `perturb predict` needs is in it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{BurnpackStore, ModuleSnapshot};
use perturb_core::manifest::{InputFile, Manifest};
use perturb_core::metrics::top_expressed_genes;
use perturb_core::schema;
use perturb_core::staging::StagedDir;
use perturb_core::timing::{self, peak_rss_bytes, ModelTiming};
use perturb_core::{Column, Condition, Error, Result, Table};
use serde::{Deserialize, Serialize};

use crate::data::{additive_part, examples, single_effects, split_conditions, GraphData, TargetMode, Targets};
use crate::device::Selected;
use crate::features::{node_features, Edge, FeatureSpec, HeadInputs};
use crate::model::{Aggregation, App, AppConfig, Decoder, GeneEmbedding, Pooling};
use crate::train::{predict_with_attention, train, ModelInputs, TrainOptions, TrainReport};

const CONFIG: &str = "config.json";
const WEIGHTS: &str = "model.bpk";
const INDEX: &str = "index.json";
const EDGES: &str = "edges.parquet";
const SINGLES: &str = "singles.parquet";

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
}

#[derive(Debug, Clone)]
pub struct TrainStage {
    pub data: PathBuf,
    pub graph: PathBuf,
    pub split: PathBuf,
    pub out: PathBuf,
    pub config: AppConfigChoice,
    pub options: TrainOptions,
    pub target_mode: TargetMode,
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
    /// Learned per-gene vectors as GNN input (`--gene-features learned`).
    pub learned_vectors: bool,
    pub features: FeatureSpec,
    pub head_hidden: usize,
}

impl Default for AppConfigChoice {
    fn default() -> Self {
        AppConfigChoice {
            hidden: 64,
            layers: 2,
            gene_embedding: GeneEmbedding::Gnn,
            aggregation: Aggregation::Mean,
            pooling: Pooling::Attention,
            decoder: Decoder::Linear,
            query_skip: false,
            attention_focus: false,
            learned_vectors: true,
            features: FeatureSpec::default(),
            head_hidden: 32,
        }
    }
}

impl AppConfigChoice {
    fn config(&self, n_nodes: usize, n_outputs: usize) -> AppConfig {
        AppConfig::new(n_nodes, n_outputs)
            .with_hidden(self.hidden)
            .with_layers(self.layers)
            .with_gene_embedding(self.gene_embedding)
            .with_aggregation(self.aggregation)
            .with_pooling(self.pooling)
            .with_decoder(self.decoder)
            .with_query_skip(self.query_skip)
            .with_attention_focus(self.attention_focus)
            .with_learned_vectors(self.learned_vectors)
            .with_node_features(self.features.node_width())
            .with_head_features(self.features.head_width())
            .with_head_hidden(self.head_hidden)
    }
}

/// Milliseconds per perturbation predicted one at a time and in one batch, measured on
/// up to 64 of `perturbations` after a warm-up call; also the batch size.
pub fn latency(model: &App, inputs: &ModelInputs, perturbations: &[Vec<usize>], device: &Device) -> (f64, f64, usize) {
    let sample: Vec<Vec<usize>> = perturbations.iter().take(64).cloned().collect();
    if sample.is_empty() {
        return (f64::NAN, f64::NAN, 0);
    }
    let _ = predict_with_attention(model, inputs, &sample[..1], 1, device);
    let started = std::time::Instant::now();
    let _ = predict_with_attention(model, inputs, &sample, 1, device);
    let single = started.elapsed().as_secs_f64() * 1e3 / sample.len() as f64;
    let started = std::time::Instant::now();
    let _ = predict_with_attention(model, inputs, &sample, sample.len(), device);
    let batched = started.elapsed().as_secs_f64() * 1e3 / sample.len() as f64;
    (single, batched, sample.len())
}

/// What `perturb train` reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub report: TrainReport,
    pub n_params: usize,
}

/// Builds the model's fixed inputs from the graph, the control profile and the training
/// singles' effects.
fn model_inputs(index: &GeneIndex, edges: Vec<Edge>, singles: &HashMap<String, Vec<f32>>) -> ModelInputs {
    let node_of: HashMap<&str, usize> = index.nodes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let head = index.features.has_head().then(|| {
        let by_node: HashMap<usize, Vec<f32>> = singles.iter().filter_map(|(g, v)| node_of.get(g.as_str()).map(|&n| (n, v.clone()))).collect();
        let control: Vec<f32> = index.control_mean.iter().map(|&c| c as f32).collect();
        HeadInputs::new(&index.features, index.nodes.len(), &edges, &index.output_nodes, &control, by_node)
    });
    ModelInputs {
        n_nodes: index.nodes.len(),
        edges,
        outputs: index.output_nodes.clone(),
        node_features: index.node_features.clone(),
        node_width: index.features.node_width(),
        head,
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
    let train_examples = examples(&targets, &graph, &train_conditions, &singles, &s.split, s.target_mode)?;
    if train_examples.is_empty() {
        return Err(Error::bad_input(&s.split, "the training split has no perturbed conditions"));
    }
    let val_examples = examples(&targets, &graph, &val_conditions, &singles, &s.split, s.target_mode)?;

    let spec = s.config.features.clone();
    let mut control: Vec<Option<(f64, f64)>> = vec![None; graph.nodes.len()];
    for (o, &n) in output_nodes.iter().enumerate() {
        control[n] = Some((targets.control_mean[o], targets.control_variance[o]));
    }
    let index = GeneIndex {
        outputs: targets.genes.clone(),
        nodes: graph.nodes.clone(),
        output_nodes,
        control_mean: targets.control_mean.clone(),
        node_features: node_features(&spec, graph.nodes.len(), &graph.edges, &control),
        features: spec.clone(),
        target_mode: s.target_mode,
    };
    let kept_singles = spec.additive_gate || s.target_mode == TargetMode::ResidualOverAdditive;
    let singles = if kept_singles { singles } else { HashMap::new() };
    let inputs = model_inputs(&index, graph.edges.clone(), &singles);
    let config = s.config.config(graph.nodes.len(), targets.genes.len());
    let scored = top_expressed_genes(&targets.control_mean, 1000.min(targets.genes.len()));

    let staged = StagedDir::new(&s.out)?;
    let (model, report) = train(&config, &inputs, &train_examples, &val_examples, &scored, &s.options, device);
    let n_params = model.num_params();
    save_model(&staged, &config, &model, &index, &graph.edges, &singles)?;
    let hashed = [s.data.join(schema::pseudobulk::FILE), s.graph.join(schema::edges::FILE), s.split.clone()]
        .iter()
        .map(|p| InputFile::hash(p))
        .collect::<Result<Vec<_>>>()?;
    let o = &s.options;
    let c = &s.config;
    let parameters = serde_json::json!({
        "seed": o.seed, "learning_rate": o.learning_rate, "max_epochs": o.max_epochs, "patience": o.patience,
        "batch_size": o.batch_size, "validation_share": o.validation_share, "bootstrap": o.bootstrap, "genes_per_step": o.genes_per_step,
        "hidden": c.hidden, "layers": c.layers, "gene_embedding": format!("{:?}", c.gene_embedding),
        "aggregation": format!("{:?}", c.aggregation), "pooling": format!("{:?}", c.pooling), "decoder": format!("{:?}", c.decoder),
        "query_skip": c.query_skip, "attention_focus": c.attention_focus, "learned_vectors": c.learned_vectors, "features": &spec, "head_hidden": c.head_hidden,
        "target_mode": format!("{:?}", s.target_mode),
    });
    let mut manifest = Manifest::new("train", hashed, parameters);
    manifest.summary = serde_json::json!({
        "n_train_conditions": report.n_train, "n_validation_conditions": report.n_validation, "n_params": n_params,
        "best_epoch": report.best_epoch, "epochs": report.history.len(),
        "final_train_loss": report.history.last().map(|h| h.1), "best_validation_l2": report.best_validation_l2(),
        "device": selected.description,
    });
    manifest.outputs = [CONFIG, WEIGHTS, INDEX, EDGES, SINGLES].iter().map(|f| f.to_string()).collect();
    manifest.write(&staged.path(schema::MANIFEST))?;
    let lists: Vec<Vec<usize>> = train_examples.iter().map(|e| e.genes.clone()).collect();
    let (single, batched, batch) = latency(&model, &inputs, &lists, device);
    let timing = ModelTiming {
        n_params,
        epochs: report.history.len(),
        train_seconds: report.seconds,
        predict_ms_single: single,
        predict_ms_batched: batched,
        batch,
        peak_rss_bytes: peak_rss_bytes().unwrap_or(0),
        device: selected.name.clone(),
    };
    timing.write(&staged.path(timing::FILE))?;
    staged.commit()?;
    Ok(TrainSummary { report, n_params })
}

fn save_model(staged: &StagedDir, config: &AppConfig, model: &App, index: &GeneIndex, edges: &[Edge], singles: &HashMap<String, Vec<f32>>) -> Result<()> {
    config.save(staged.path(CONFIG)).map_err(|e| Error::io(staged.path(CONFIG), e))?;
    let mut store = BurnpackStore::from_file(staged.path(WEIGHTS));
    model.save_into(&mut store).map_err(|e| Error::Other(format!("{}: cannot save the model ({e:?})", staged.path(WEIGHTS).display())))?;
    let json = serde_json::to_vec(index).expect("index serialises");
    perturb_core::table::write_bytes_atomically(&staged.path(INDEX), &json)?;
    Table::new()
        .with("source", Column::I64(edges.iter().map(|e| e.source as i64).collect()))
        .with("target", Column::I64(edges.iter().map(|e| e.target as i64).collect()))
        .with("weight", Column::F64(edges.iter().map(|e| f64::from(e.weight)).collect()))
        .with("sign", Column::F64(edges.iter().map(|e| f64::from(e.sign)).collect()))
        .write_parquet(&staged.path(EDGES))?;
    let mut names: Vec<&String> = singles.keys().collect();
    names.sort();
    let n = index.outputs.len();
    Table::new()
        .with("single", Column::Str(names.iter().flat_map(|s| std::iter::repeat_n((*s).clone(), n)).collect()))
        .with("gene", Column::Str(names.iter().flat_map(|_| index.outputs.iter().cloned()).collect()))
        .with("lfc", Column::F64(names.iter().flat_map(|s| singles[*s].iter().map(|&v| f64::from(v))).collect()))
        .write_parquet(&staged.path(SINGLES))
}

pub struct LoadedModel {
    pub model: App,
    pub index: GeneIndex,
    pub inputs: ModelInputs,
    /// Training singles' effects (residual and gated models), by gene.
    pub singles: HashMap<String, Vec<f32>>,
}

/// Reads a model config. A field added to `AppConfig` after the model was trained takes its
/// default (which is always the behaviour before the field existed), so older model
/// folders keep loading.
fn read_config(path: &Path) -> Result<AppConfig> {
    let bad = |m: String| Error::bad_input(path, format!("not a model config ({m})"));
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let stored: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let serde_json::Value::Object(stored) = stored else { return Err(bad("not a JSON object".into())) };
    let mut merged = serde_json::to_value(AppConfig::new(0, 0)).map_err(|e| bad(e.to_string()))?;
    let serde_json::Value::Object(fields) = &mut merged else { return Err(bad("defaults are not an object".into())) };
    for (k, v) in stored {
        fields.insert(k, v);
    }
    serde_json::from_value(merged).map_err(|e| bad(e.to_string()))
}

pub fn load(dir: &Path, device: &Device) -> Result<LoadedModel> {
    for f in [CONFIG, WEIGHTS, INDEX, EDGES, SINGLES] {
        if !dir.join(f).is_file() {
            return Err(Error::bad_input(dir.join(f), "missing: --model must be a folder written by `perturb train`"));
        }
    }
    let config = read_config(&dir.join(CONFIG))?;
    let bytes = std::fs::read(dir.join(INDEX)).map_err(|e| Error::io(dir.join(INDEX), e))?;
    let index: GeneIndex = serde_json::from_slice(&bytes).map_err(|e| Error::bad_input(dir.join(INDEX), format!("not a gene index ({e})")))?;
    if index.outputs.len() != config.n_outputs || index.nodes.len() != config.n_genes || index.features.head_width() != config.head_features {
        return Err(Error::bad_input(dir.join(INDEX), format!("does not match {} (from another model?)", dir.join(CONFIG).display())));
    }
    let ep = dir.join(EDGES);
    let t = Table::read_parquet(&ep)?;
    let (s, tg, w, sign) = (t.ints("source", &ep)?, t.ints("target", &ep)?, t.floats("weight", &ep)?, t.floats("sign", &ep)?);
    let n = index.nodes.len() as i64;
    if s.iter().chain(tg).any(|&i| i < 0 || i >= n) {
        return Err(Error::bad_input(&ep, format!("an edge names a node outside 0..{n}")));
    }
    let edges: Vec<Edge> = (0..s.len()).map(|i| Edge { source: s[i] as usize, target: tg[i] as usize, weight: w[i] as f32, sign: sign[i] as f32 }).collect();
    let sp = dir.join(SINGLES);
    let t = Table::read_parquet(&sp)?;
    let (names, values) = (t.strings("single", &sp)?, t.floats("lfc", &sp)?);
    let mut singles: HashMap<String, Vec<f32>> = HashMap::new();
    for (name, v) in names.iter().zip(values) {
        singles.entry(name.clone()).or_default().push(*v as f32);
    }
    if singles.values().any(|v| v.len() != index.outputs.len()) {
        return Err(Error::bad_input(&sp, "a single's effects do not cover every output gene"));
    }
    let mut model = config.init(device);
    let mut store = BurnpackStore::from_file(dir.join(WEIGHTS));
    model.load_from(&mut store).map_err(|e| Error::bad_input(dir.join(WEIGHTS), format!("cannot load the weights ({e:?})")))?;
    let inputs = model_inputs(&index, edges, &singles);
    Ok(LoadedModel { model, index, inputs, singles })
}

/// Parses `"A+B,C"` into node-index lists, with close names for unknown genes.
pub fn parse_perturbations(text: &str, index: &GeneIndex) -> Result<Vec<(String, Vec<usize>)>> {
    let ni: HashMap<&str, usize> = index.nodes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let mut out = Vec::new();
    for label in text.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        let c = Condition::parse_canonical(label).map_err(|m| Error::bad_option("--perturbations", m))?;
        if c.is_control() {
            return Err(Error::bad_option("--perturbations", "the control is not a perturbation"));
        }
        let genes = c
            .genes()
            .iter()
            .map(|g| {
                ni.get(g.as_str()).copied().ok_or_else(|| {
                    let close = perturb_core::names::close_names(g, &index.nodes, 5);
                    Error::bad_option("--perturbations", format!("gene '{g}' is not in the model's graph (closest: {})", close.join(", ")))
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        out.push((c.canonical(), genes));
    }
    if out.is_empty() {
        return Err(Error::bad_option("--perturbations", "no perturbation given"));
    }
    Ok(out)
}

/// Predicted log-fold changes (and attention) of a loaded model for parsed perturbations.
pub fn predict_parsed(loaded: &LoadedModel, parsed: &[(String, Vec<usize>)], device: &Device) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let lists: Vec<Vec<usize>> = parsed.iter().map(|p| p.1.clone()).collect();
    let (mut lfc, attention) = predict_with_attention(&loaded.model, &loaded.inputs, &lists, 64, device);
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
pub fn run_predict(model_dir: &Path, perturbations: &str, out: &Path, attention: bool, device: &Device) -> Result<usize> {
    let loaded = load(model_dir, device)?;
    let parsed = parse_perturbations(perturbations, &loaded.index)?;
    let (lfc, weights) = predict_parsed(&loaded, &parsed, device);
    let n = loaded.index.outputs.len();
    let table = Table::new()
        .with("perturbation", Column::Str(parsed.iter().flat_map(|p| std::iter::repeat_n(p.0.clone(), n)).collect()))
        .with("gene", Column::Str(parsed.iter().flat_map(|_| loaded.index.outputs.iter().cloned()).collect()))
        .with("lfc", Column::F64(lfc.iter().flat_map(|r| r.iter().map(|&v| f64::from(v))).collect()));
    if attention {
        let m = loaded.index.nodes.len();
        Table::new()
            .with("perturbation", Column::Str(parsed.iter().flat_map(|p| std::iter::repeat_n(p.0.clone(), m)).collect()))
            .with("gene", Column::Str(parsed.iter().flat_map(|_| loaded.index.nodes.iter().cloned()).collect()))
            .with("attention", Column::F64(weights.iter().flat_map(|r| r.iter().map(|&v| f64::from(v))).collect()))
            .write_parquet(&attention_path(out))?;
    }
    table.write_parquet(out)?;
    Ok(parsed.len())
}

/// Where `perturb predict --attention` writes the attention table for `out`.
pub fn attention_path(out: &Path) -> PathBuf {
    out.with_extension("attention.parquet")
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
        let c = read_config(&path).unwrap();
        assert_eq!((c.n_genes, c.n_outputs, c.query_skip, c.attention_focus), (7, 5, true, false));
        std::fs::write(&path, "[1, 2]").unwrap();
        assert!(read_config(&path).unwrap_err().to_string().contains("not a model config"));
    }
}

//! `perturb train` and `perturb predict`: the model folder and the prediction table.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{BurnpackStore, ModuleSnapshot};
use perturb_core::manifest::{InputFile, Manifest};
use perturb_core::schema;
use perturb_core::staging::StagedDir;
use perturb_core::{Column, Condition, Error, Result, Table};
use serde::{Deserialize, Serialize};

use crate::data::{additive_part, examples, single_effects, split_conditions, GraphData, TargetMode, Targets};
use crate::model::{App, AppConfig};
use crate::train::{predict, train, TrainOptions, TrainReport};

const CONFIG: &str = "config.json";
const WEIGHTS: &str = "model.bpk";
const INDEX: &str = "index.json";

/// Which genes the model reads (graph nodes, with the network) and writes (outputs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneIndex {
    pub outputs: Vec<String>,
    pub nodes: Vec<String>,
    pub edges: Vec<(usize, usize, f32)>,
    pub target_mode: TargetMode,
    /// Training singles' observed log-fold changes (used by residual-over-additive).
    #[serde(default)]
    pub single_lfc: std::collections::HashMap<String, Vec<f32>>,
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
    pub gene_embedding: crate::model::GeneEmbedding,
    pub aggregation: crate::model::Aggregation,
    pub pooling: crate::model::Pooling,
    pub decoder: crate::model::Decoder,
    pub query_skip: bool,
}

impl Default for AppConfigChoice {
    fn default() -> Self {
        AppConfigChoice {
            hidden: 64,
            layers: 2,
            gene_embedding: crate::model::GeneEmbedding::Gnn,
            aggregation: crate::model::Aggregation::Mean,
            pooling: crate::model::Pooling::Attention,
            decoder: crate::model::Decoder::Linear,
            query_skip: false,
        }
    }
}

pub fn run_train(s: &TrainStage, device: &Device) -> Result<(TrainReport, usize)> {
    let targets = Targets::read(&s.data)?;
    let graph = GraphData::read(&s.graph)?;
    let train_conditions = split_conditions(&s.split, "train")?;
    let examples = examples(&targets, &graph, &train_conditions, &s.split, s.target_mode)?;
    let c = &s.config;
    let config = AppConfig::new(graph.nodes.len(), targets.genes.len())
        .with_hidden(c.hidden)
        .with_layers(c.layers)
        .with_gene_embedding(c.gene_embedding)
        .with_aggregation(c.aggregation)
        .with_pooling(c.pooling)
        .with_decoder(c.decoder)
        .with_query_skip(c.query_skip);
    let staged = StagedDir::new(&s.out)?;
    let (model, report) = train(&config, &graph.edges, &examples, &s.options, device);
    let n_params = model.num_params();
    config.save(staged.path(CONFIG)).map_err(|e| Error::io(staged.path(CONFIG), e))?;
    let mut store = BurnpackStore::from_file(staged.path(WEIGHTS));
    model.save_into(&mut store).map_err(|e| Error::Other(format!("{}: cannot save the model ({e:?})", staged.path(WEIGHTS).display())))?;
    let single_lfc = if s.target_mode == TargetMode::ResidualOverAdditive { single_effects(&targets, &train_conditions) } else { Default::default() };
    let index = GeneIndex { outputs: targets.genes.clone(), nodes: graph.nodes.clone(), edges: graph.edges.clone(), target_mode: s.target_mode, single_lfc };
    let json = serde_json::to_vec(&index).expect("index serialises");
    perturb_core::table::write_bytes_atomically(&staged.path(INDEX), &json)?;
    let inputs = [s.data.join(schema::pseudobulk::FILE), s.graph.join(schema::edges::FILE), s.split.clone()]
        .iter()
        .map(|p| InputFile::hash(p))
        .collect::<Result<Vec<_>>>()?;
    let parameters = serde_json::json!({
        "seed": s.options.seed, "learning_rate": s.options.learning_rate, "max_epochs": s.options.max_epochs,
        "patience": s.options.patience, "batch_size": s.options.batch_size, "validation_share": s.options.validation_share,
        "hidden": c.hidden, "layers": c.layers, "gene_embedding": format!("{:?}", c.gene_embedding),
        "aggregation": format!("{:?}", c.aggregation), "pooling": format!("{:?}", c.pooling), "decoder": format!("{:?}", c.decoder), "query_skip": c.query_skip,
        "target_mode": format!("{:?}", s.target_mode),
    });
    let mut manifest = Manifest::new("train", inputs, parameters);
    manifest.summary = serde_json::json!({
        "n_train_conditions": examples.len(), "n_params": n_params, "best_epoch": report.best_epoch,
        "epochs": report.history.len(),
        "final_train_loss": report.history.last().map(|h| h.1), "best_validation_loss": report.history.get(report.best_epoch.saturating_sub(1)).map(|h| h.2),
    });
    manifest.outputs = vec![CONFIG.into(), WEIGHTS.into(), INDEX.into()];
    manifest.write(&staged.path(schema::MANIFEST))?;
    staged.commit()?;
    Ok((report, n_params))
}

pub struct LoadedModel {
    pub model: App,
    pub index: GeneIndex,
}

pub fn load(dir: &Path, device: &Device) -> Result<LoadedModel> {
    let config = AppConfig::load(dir.join(CONFIG)).map_err(|e| Error::bad_input(dir.join(CONFIG), format!("not a model config ({e})")))?;
    let bytes = std::fs::read(dir.join(INDEX)).map_err(|e| Error::io(dir.join(INDEX), e))?;
    let index: GeneIndex = serde_json::from_slice(&bytes).map_err(|e| Error::bad_input(dir.join(INDEX), format!("not a gene index ({e})")))?;
    let mut model = config.init(device);
    let mut store = BurnpackStore::from_file(dir.join(WEIGHTS));
    model.load_from(&mut store).map_err(|e| Error::bad_input(dir.join(WEIGHTS), format!("cannot load the weights ({e:?})")))?;
    Ok(LoadedModel { model, index })
}

/// Parses `"A+B,C"` into node-index lists, with close names for unknown genes.
pub fn parse_perturbations(text: &str, index: &GeneIndex) -> Result<Vec<(String, Vec<usize>)>> {
    let ni: std::collections::HashMap<&str, usize> = index.nodes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
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

/// Writes the long-form prediction table (perturbation, gene, lfc) and, if asked, the
/// attention table (perturbation, gene, attention) beside it.
pub fn run_predict(model_dir: &Path, perturbations: &str, out: &Path, attention: bool, device: &Device) -> Result<usize> {
    let loaded = load(model_dir, device)?;
    let parsed = parse_perturbations(perturbations, &loaded.index)?;
    let lists: Vec<Vec<usize>> = parsed.iter().map(|p| p.1.clone()).collect();
    let mut lfc = predict(&loaded.model, &loaded.index.edges, loaded.index.nodes.len(), &lists, device);
    if loaded.index.target_mode == TargetMode::ResidualOverAdditive {
        // The model predicted the deviation from additivity: add the singles' sum back.
        for (row, (_, genes)) in lfc.iter_mut().zip(&parsed) {
            let names: Vec<String> = genes.iter().map(|&g| loaded.index.nodes[g].clone()).collect();
            if let Some(add) = additive_part(&loaded.index.single_lfc, &names) {
                row.iter_mut().zip(add).for_each(|(y, a)| *y += a);
            }
        }
    }
    let n = loaded.index.outputs.len();
    let table = Table::new()
        .with("perturbation", Column::Str(parsed.iter().flat_map(|p| std::iter::repeat_n(p.0.clone(), n)).collect()))
        .with("gene", Column::Str(parsed.iter().flat_map(|_| loaded.index.outputs.iter().cloned()).collect()))
        .with("lfc", Column::F64(lfc.iter().flat_map(|r| r.iter().map(|&v| f64::from(v))).collect()));
    if attention {
        let weights = crate::train::attention(&loaded.model, &loaded.index.edges, loaded.index.nodes.len(), &lists, device);
        let m = loaded.index.nodes.len();
        let path = out.with_extension("attention.parquet");
        Table::new()
            .with("perturbation", Column::Str(parsed.iter().flat_map(|p| std::iter::repeat_n(p.0.clone(), m)).collect()))
            .with("gene", Column::Str(parsed.iter().flat_map(|_| loaded.index.nodes.iter().cloned()).collect()))
            .with("attention", Column::F64(weights.iter().flat_map(|r| r.iter().map(|&v| f64::from(v))).collect()))
            .write_parquet(&path)?;
    }
    table.write_parquet(out)?;
    Ok(parsed.len())
}

//! The three models behind one interface, so that training, prediction, the model folder
//! and the evaluation treat them alike: APP (`model`), the module-inductive model
//! (`modules`) and the GRN-aligned VAE (`grn_vae`).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::{App, AppConfig};
use crate::grn_vae::{GrnVae, GrnVaeConfig};
use crate::inputs::{GraphTensors, PerturbationBatch};

/// The backends' random generator is process-global, so two models initialised at once
/// (tests, an ablation runner's threads) would draw from one interleaved stream.
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
use crate::modules::{ModulesConfig, ModulesNet};

/// Which model a folder holds, with its burn `Config`. Stored as `config.json`, tagged by
/// `"model"`; a config without the tag (written before the siblings existed) is APP's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum ModelConfig {
    App(AppConfig),
    Modules(ModulesConfig),
    GrnVae(GrnVaeConfig),
}

// One model per process, so the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    App(App),
    Modules(ModulesNet),
    GrnVae(GrnVae),
}

/// A forward pass's results.
pub struct ModelOutput {
    /// Predicted log-fold changes, [B, outputs] (or the batch's columns).
    pub lfc: Tensor<2>,
    /// Weight of every graph node in the pooled state, [B, N] (models that pool).
    pub attention: Option<Tensor<2>>,
    /// Regularisation to add to the training loss (latent-variable and GRN terms).
    pub penalty: Option<Tensor<1>>,
}

impl ModelConfig {
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::App(_) => "app",
            ModelConfig::Modules(_) => "modules",
            ModelConfig::GrnVae(_) => "grn_vae",
        }
    }

    pub fn n_genes(&self) -> usize {
        match self {
            ModelConfig::App(c) => c.n_genes,
            ModelConfig::Modules(c) => c.n_genes,
            ModelConfig::GrnVae(c) => c.n_genes,
        }
    }

    pub fn n_outputs(&self) -> usize {
        match self {
            ModelConfig::App(c) => c.n_outputs,
            ModelConfig::Modules(c) => c.n_outputs,
            ModelConfig::GrnVae(c) => c.n_outputs,
        }
    }

    /// Initialises on the CPU backend seeded by `seed`, holding a process-wide lock so the
    /// result depends on the seed alone, then forks the parameters to `device`: the same
    /// seed gives the same starting weights on every backend. `prior` holds the signed
    /// weight of every graph edge, where the GRN VAE starts its matrix.
    pub fn init_seeded(&self, seed: u64, prior: &[f32], device: &Device) -> Model {
        let cpu = Device::flex();
        let model = {
            let _guard = INIT_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            cpu.seed(seed);
            let model = self.init(prior, &cpu);
            // Parameters are drawn lazily, on first use: draw them now, under the lock.
            model.draw_parameters();
            model
        };
        let model = model.fork(device);
        if device.is_autodiff() {
            model.train()
        } else {
            model
        }
    }

    /// A model whose weights will be loaded from a file.
    pub fn init(&self, prior: &[f32], device: &Device) -> Model {
        match self {
            ModelConfig::App(c) => Model::App(c.init(device)),
            ModelConfig::Modules(c) => Model::Modules(c.init(device)),
            ModelConfig::GrnVae(c) => Model::GrnVae(c.init_with_prior(prior, device)),
        }
    }
}

impl AppConfig {
    /// A seeded model, the same on every backend (see `ModelConfig::init_seeded`).
    pub fn init_seeded(&self, seed: u64, device: &Device) -> App {
        match ModelConfig::App(self.clone()).init_seeded(seed, &[], device) {
            Model::App(app) => app,
            _ => unreachable!("an APP config makes an APP model"),
        }
    }
}

impl Model {
    fn draw_parameters(&self) {
        match self {
            Model::App(m) => m.draw_parameters(),
            Model::Modules(m) => m.draw_parameters(),
            Model::GrnVae(m) => m.draw_parameters(),
        }
    }

    /// What does not depend on the perturbation (gene embeddings or encodings), computed
    /// once per step or once for all prediction batches.
    pub fn embed(&self, graph: &GraphTensors) -> Tensor<2> {
        match self {
            Model::App(m) => m.embed(graph),
            Model::Modules(m) => m.embed(graph),
            Model::GrnVae(m) => m.embed(graph),
        }
    }

    pub fn forward_embedded(&self, h: Tensor<2>, graph: &GraphTensors, batch: &PerturbationBatch) -> ModelOutput {
        match self {
            Model::App(m) => {
                let out = m.forward_embedded(h, graph, batch);
                ModelOutput { lfc: out.lfc, attention: Some(out.attention), penalty: m.trust_penalty() }
            }
            Model::Modules(m) => {
                let (lfc, attention) = m.forward_embedded(h, graph, batch);
                ModelOutput { lfc, attention: Some(attention), penalty: None }
            }
            Model::GrnVae(m) => {
                let out = m.forward_embedded(h, graph, batch);
                ModelOutput { lfc: out.lfc, attention: None, penalty: Some(out.penalty) }
            }
        }
    }

    pub fn forward(&self, graph: &GraphTensors, batch: &PerturbationBatch) -> ModelOutput {
        self.forward_embedded(self.embed(graph), graph, batch)
    }

    /// A loss term that compares predictions with targets beyond the squared error (the
    /// modules model's structure alignment).
    pub fn structure_loss(&self, graph: &GraphTensors, lfc: Tensor<2>, target: Tensor<2>) -> Option<Tensor<1>> {
        match self {
            Model::Modules(m) => m.structure_loss(graph, lfc, target),
            _ => None,
        }
    }

    /// Width of the latent draws a training batch needs (0: none).
    pub fn latent_width(&self) -> usize {
        match self {
            Model::GrnVae(m) => m.latent(),
            _ => 0,
        }
    }

    pub fn has_attention(&self) -> bool {
        !matches!(self, Model::GrnVae(_))
    }

    /// The learned signed weight of every graph edge (the GRN VAE).
    pub fn learned_grn(&self) -> Option<Vec<f32>> {
        match self {
            Model::GrnVae(m) => Some(m.grn_weights()),
            _ => None,
        }
    }

    /// The learned trust of every prior edge (APP with `--edge-trust`).
    pub fn edge_trust(&self) -> Option<Vec<f32>> {
        match self {
            Model::App(m) => m.edge_trust(),
            _ => None,
        }
    }
}

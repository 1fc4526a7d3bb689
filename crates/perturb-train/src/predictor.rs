//! The three models behind one interface, so that training, prediction, the model folder
//! and the evaluation treat them alike: APP (`model`), the module-inductive model
//! (`modules`) and the GRN-aligned VAE (`grn_vae`).

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::{App, AppConfig};
use crate::grn_vae::{GrnVae, GrnVaeConfig};
use crate::inputs::{GraphTensors, PerturbationBatch};
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
            let _guard = crate::lock_global_rng();
            cpu.seed(seed);
            let model = self.init(prior, &cpu);
            // Parameters are drawn lazily, on first use: draw them now, under the lock, in
            // the models' field order.
            model.visit(&mut DrawEveryParameter);
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

/// Draws every lazily initialised parameter it visits (burn visits a module's fields in
/// declaration order), so that no parameter of a model is left to be drawn later, outside
/// the seeded lock.
struct DrawEveryParameter;

impl ModuleVisitor for DrawEveryParameter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        let _ = param.val();
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        let _ = param.val();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the parameters a model holds and how many of them are drawn.
    #[derive(Default)]
    struct DrawnCount {
        parameters: usize,
        drawn: usize,
    }

    impl ModuleVisitor for DrawnCount {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.parameters += 1;
            self.drawn += usize::from(param.is_initialized());
        }
    }

    /// Every parameter's values, in visiting order.
    fn values(model: &Model) -> Vec<f32> {
        struct Values(Vec<f32>);
        impl ModuleVisitor for Values {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.extend(param.val().into_data().try_to_vec::<f32>().unwrap());
            }
        }
        let mut all = Values(Vec::new());
        model.visit(&mut all);
        all.0
    }

    /// A seeded model leaves no parameter to be drawn later, outside the seeded lock, and
    /// the same seed gives the same weights; every optional part of APP is switched on.
    #[test]
    fn a_seeded_model_has_every_parameter_drawn_and_the_seed_fixes_them() {
        let d = Device::flex();
        let app = AppConfig::new(5, 4)
            .with_hidden(8)
            .with_attention_focus(true)
            .with_attention_hops(1)
            .with_decoder(crate::app::Decoder::Mlp)
            .with_node_features(3)
            .with_head_features(2)
            .with_trust_edges(6);
        let configs = [
            ModelConfig::App(app),
            ModelConfig::Modules(ModulesConfig::new(5, 4).with_programs(2).with_hidden(8)),
            ModelConfig::GrnVae(GrnVaeConfig::new(5, 4, 2).with_hidden(4).with_latent(2).with_node_features(3)),
        ];
        for config in &configs {
            let prior = [0.5, -0.5];
            let model = config.init_seeded(7, &prior, &d);
            let mut count = DrawnCount::default();
            model.visit(&mut count);
            assert!(count.parameters >= 6, "{config:?}: {} parameters", count.parameters);
            assert_eq!(count.drawn, count.parameters, "{config:?}");
            let again = config.init_seeded(7, &prior, &d);
            assert_eq!(values(&model), values(&again), "{config:?}");
            let lazy = config.init(&prior, &d);
            let mut count = DrawnCount::default();
            lazy.visit(&mut count);
            // Only what is set from data (the GRN VAE's prior weights) exists before the draw.
            assert!(count.drawn <= 1 && count.drawn < count.parameters, "{config:?}: init alone drew {} of {}", count.drawn, count.parameters);
        }
    }
}

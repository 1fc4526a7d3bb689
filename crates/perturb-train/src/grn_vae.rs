//! The GRN-aligned VAE (`grn_vae`, GPO-VAE-style): latent perturbation effects pushed
//! through a learnable gene-regulatory matrix.
//!
//! - **Encoder.** Each perturbed gene is encoded from its fixed node features (control
//!   expression, network degrees) plus a learned per-gene vector into a Gaussian latent
//!   effect z (mean and log-variance; sampled with the reparameterisation trick while
//!   training, its mean when predicting).
//! - **Direct effects.** z sets the perturbed gene's own shift, and a linear map of the
//!   perturbation's mean z adds a direct change on every gene (its bias is the effect every
//!   perturbation shares).
//! - **Regulation.** The direct effects x0 propagate K hops through a sparse signed matrix A
//!   whose support is the prior graph's edges and whose weights are learned, initialised at
//!   the prior's signed weights: x ← x0 + a ⊙ tanh(Aᵀx), with a learned per-gene
//!   amplitude a. The saturating response lets two perturbations reaching the same gene
//!   interact.
//! - **Losses** besides the reconstruction: the KL divergence of z from N(0, I), an L1
//!   sparsity term on A, and a GRN-alignment term pulling the weight of each edge out of a
//!   training single towards the change that single caused at the edge's target, relative
//!   to its own change (see `data::edge_support`).
//!
//! The learned A is exported with the model (`grn.parquet`), a network that can be fed
//! back to `perturb graph --source edges:PATH`. With `learn_grn` off, A stays at the prior.

use burn::module::Param;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::IndexingUpdateOp;

use std::collections::HashMap;

use crate::features::Edge;
use crate::inputs::{GraphTensors, PerturbationBatch};

/// The learned matrix starts at this multiple of each edge's signed prior weight (an edge
/// of unknown sign starts at 0): a weight-1 edge then passes half of a small change on.
pub const PRIOR_SCALE: f32 = 0.5;

/// The alignment targets: for every edge out of a gene whose single perturbation was
/// measured in training (and whose own change is clear), the change of the edge's target
/// relative to the change of its source, clipped to [-1, 1] — or 0 when the target's
/// change is within that single's noise (three times its median absolute change over all
/// genes). `output_of[node]` is the output position of a measured node; `singles` the
/// training singles' effects over the outputs, by perturbed node.
pub fn edge_support(edges: &[Edge], output_of: &[Option<usize>], singles: &HashMap<usize, Vec<f32>>) -> Vec<(usize, f32)> {
    let mut noise: HashMap<usize, f32> = HashMap::new();
    for (&node, effect) in singles {
        let mut magnitudes: Vec<f32> = effect.iter().map(|v| v.abs()).collect();
        magnitudes.sort_by(f32::total_cmp);
        noise.insert(node, 3.0 * magnitudes.get(magnitudes.len() / 2).copied().unwrap_or(0.0));
    }
    let mut support = Vec::new();
    for (i, e) in edges.iter().enumerate() {
        let (Some(effect), Some(Some(s)), Some(Some(t))) = (singles.get(&e.source), output_of.get(e.source), output_of.get(e.target)) else { continue };
        let (own, downstream) = (effect[*s], effect[*t]);
        if own.abs() <= noise[&e.source] || own == 0.0 {
            continue;
        }
        let value = if downstream.abs() <= noise[&e.source] { 0.0 } else { (downstream / own).clamp(-1.0, 1.0) };
        support.push((i, value));
    }
    support
}

#[derive(Config, Debug)]
pub struct GrnVaeConfig {
    /// Graph nodes.
    pub n_genes: usize,
    /// Genes whose log-fold change is predicted.
    pub n_outputs: usize,
    /// Edges of the prior graph: the support of the learned matrix.
    pub n_edges: usize,
    #[config(default = 8)]
    pub latent: usize,
    #[config(default = 32)]
    pub hidden: usize,
    /// Propagation steps through the GRN.
    #[config(default = 3)]
    pub hops: usize,
    /// Width of the fixed node features the encoder reads (0 = none).
    #[config(default = 0)]
    pub node_features: usize,
    /// Learn the GRN weights (off: the matrix stays at the prior, an ablation).
    #[config(default = true)]
    pub learn_grn: bool,
    #[config(default = 1e-3)]
    pub kl_weight: f64,
    #[config(default = 1e-4)]
    pub sparsity_weight: f64,
    #[config(default = 1e-2)]
    pub alignment_weight: f64,
}

#[derive(Module, Debug)]
pub struct GrnVae {
    // Parameters are drawn from the seeded generator in this order (see
    // `ModelConfig::init_seeded`): moving a randomly initialised field changes every
    // seed's starting weights (`grn`, set from the prior, and `amplitude`, ones, draw nothing).
    gene_vectors: Param<Tensor<2>>,
    encoder: Linear,
    mean: Linear,
    log_variance: Linear,
    shift: Linear,
    direct: Linear,
    feature_projection: Option<Linear>,
    /// Signed weight of every prior edge, [E, 1].
    grn: Param<Tensor<2>>,
    /// Per-gene response amplitude, [N, 1].
    amplitude: Param<Tensor<2>>,
    #[module(skip)]
    hops: usize,
    #[module(skip)]
    learn_grn: bool,
    #[module(skip)]
    kl_weight: f64,
    #[module(skip)]
    sparsity_weight: f64,
    #[module(skip)]
    alignment_weight: f64,
}

/// What a forward pass returns besides the prediction: the regularisation to add to the
/// training loss.
pub struct VaeOutput {
    pub lfc: Tensor<2>,
    pub penalty: Tensor<1>,
}

impl GrnVaeConfig {
    /// A model whose GRN starts at `prior` (signed weight per edge; zeros when the weights
    /// will be loaded from a file).
    pub fn init_with_prior(&self, prior: &[f32], device: &Device) -> GrnVae {
        assert_eq!(prior.len(), self.n_edges, "one prior weight per edge");
        let h = self.hidden;
        GrnVae {
            gene_vectors: Initializer::Normal { mean: 0.0, std: 0.1 }.init([self.n_genes, h], device),
            feature_projection: (self.node_features > 0).then(|| LinearConfig::new(self.node_features, h).init(device)),
            encoder: LinearConfig::new(h, h).init(device),
            mean: LinearConfig::new(h, self.latent).init(device),
            log_variance: LinearConfig::new(h, self.latent).init(device),
            shift: LinearConfig::new(self.latent, 1).init(device),
            direct: LinearConfig::new(self.latent, self.n_genes).with_initializer(Initializer::Zeros).init(device),
            grn: Param::from_tensor(Tensor::from_data(TensorData::new(prior.to_vec(), [self.n_edges, 1]), device)),
            amplitude: Initializer::Ones.init([self.n_genes, 1], device),
            hops: self.hops,
            learn_grn: self.learn_grn,
            kl_weight: self.kl_weight,
            sparsity_weight: self.sparsity_weight,
            alignment_weight: self.alignment_weight,
        }
    }
}

impl GrnVae {
    pub fn latent(&self) -> usize {
        self.mean.weight.dims()[1]
    }

    /// The GRN as used: learned, or the prior held fixed.
    fn weights(&self) -> Tensor<2> {
        if self.learn_grn {
            self.grn.val()
        } else {
            self.grn.val().detach()
        }
    }

    /// The signed weight of every edge.
    pub fn grn_weights(&self) -> Vec<f32> {
        self.grn.val().into_data().try_to_vec::<f32>().expect("f32 weights")
    }

    /// Per-gene encodings, [N, hidden]; they do not depend on the perturbation.
    pub fn embed(&self, graph: &GraphTensors) -> Tensor<2> {
        let h = self.gene_vectors.val();
        match (&self.feature_projection, &graph.node_features) {
            (Some(p), Some(f)) => relu(p.forward(f.clone()) + h),
            _ => relu(h),
        }
    }

    pub fn forward_embedded(&self, h: Tensor<2>, graph: &GraphTensors, batch: &PerturbationBatch) -> VaeOutput {
        let [b, width] = batch.genes.dims();
        let n = graph.n_nodes;
        let slots = b * width;
        let encoded = relu(self.encoder.forward(h.select(0, batch.genes.clone().reshape([slots]))));
        let mean = self.mean.forward(encoded.clone());
        let log_variance = self.log_variance.forward(encoded).clamp(-8.0, 4.0);
        let latent = mean.dims()[1];
        let z = match &batch.noise {
            Some(noise) => mean.clone() + (log_variance.clone() * 0.5).exp() * noise.clone(),
            None => mean.clone(),
        };
        let used = batch.weights.clone().greater_elem(0.0).float(); // [B, w]
        let shift = self.shift.forward(z.clone()).reshape([b, width]) * used;
        let pooled = (z.reshape([b, width, latent]) * batch.weights.clone().unsqueeze_dim::<3>(2)).sum_dim(1).reshape([b, latent]);
        let x0 = Tensor::zeros([b, n], &pooled.device()).scatter(1, batch.genes.clone(), shift, IndexingUpdateOp::Add) + self.direct.forward(pooled);
        let x0 = x0.transpose(); // [N, B]
        let weights = self.weights();
        let amplitude = self.amplitude.val();
        let mut x = x0.clone();
        for _ in 0..self.hops {
            x = x0.clone() + amplitude.clone() * crate::kernels::tanh(graph.propagate(x, weights.clone()));
        }
        let outputs = match &batch.columns {
            Some(c) => graph.outputs.clone().select(0, c.clone()),
            None => graph.outputs.clone(),
        };
        let lfc = x.select(0, outputs).transpose();

        let kl = ((log_variance.clone().exp() + mean.powi_scalar(2) - log_variance - 1.0) * 0.5).mean();
        let mut penalty = kl * self.kl_weight;
        if self.learn_grn {
            penalty = penalty + weights.clone().abs().mean() * self.sparsity_weight;
            if let Some((edges, supported)) = &graph.edge_support {
                let n_supported = supported.dims()[0];
                let alignment = (weights.select(0, edges.clone()).reshape([n_supported]) - supported.clone()).powi_scalar(2).mean();
                penalty = penalty + alignment * self.alignment_weight;
            }
        }
        VaeOutput { lfc, penalty }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::inputs::fixtures::values;

    #[test]
    fn effects_travel_along_the_grn_only() {
        let _rng = crate::lock_global_rng();
        // 0 -> 1 (activating), 2 isolated. With the direct map at zero, perturbing gene 0
        // moves genes 0 and 1 only, and 1 in the sign of the edge.
        let d = Device::flex();
        let graph = GraphTensors::new(3, &[(0, 1, 1.0)], &[0, 1, 2], None, &d);
        let model = GrnVaeConfig::new(3, 3, 1).with_hidden(4).with_latent(2).with_hops(2).init_with_prior(&[0.8], &d);
        let out = model.forward_embedded(model.embed(&graph), &graph, &PerturbationBatch::new(&[vec![0]], &d));
        let lfc = values(out.lfc);
        let shift = lfc[0];
        assert!(shift.abs() > 1e-4, "{lfc:?}");
        // x1 = tanh(0.8 * x0) after the second hop too (x0 is clamped by the direct effect).
        assert!((lfc[1] - (0.8 * shift).tanh()).abs() < 1e-5, "{lfc:?}");
        assert_eq!(lfc[2], 0.0);
        assert!(values(out.penalty)[0] >= 0.0);
        let reversed = GrnVaeConfig::new(3, 3, 1).with_hidden(4).with_latent(2).with_hops(2).init_with_prior(&[-0.8], &d);
        let lfc2 = values(reversed.forward_embedded(reversed.embed(&graph), &graph, &PerturbationBatch::new(&[vec![0]], &d)).lfc);
        assert!((lfc2[1] + (0.8 * lfc2[0]).tanh()).abs() < 1e-5, "{lfc2:?}");
    }

    #[test]
    fn support_is_the_relative_change_of_clear_effects_only() {
        let e = |source, target| Edge { source, target, weight: 1.0, sign: 0.0 };
        // Nodes 0..8 measured at outputs 0..8; node 8 is not measured.
        let output_of: Vec<Option<usize>> = (0..8).map(Some).chain([None]).collect();
        // Single of node 0 (noise 3 × 0.01): itself -2, node 1 +1 (supported, ratio -0.5),
        // node 2 at noise level (supported weight 0), node 3 +6 (clipped to -1).
        let quiet = [0.01f32; 4];
        let singles: HashMap<usize, Vec<f32>> =
            [(0, [[-2.0, 1.0, 0.01, 6.0], quiet].concat()), (1, [[0.0, 0.001, 0.002, 0.003], [0.002; 4]].concat())].into_iter().collect();
        let edges = [e(0, 1), e(0, 2), e(0, 3), e(0, 8), e(1, 2), e(2, 3)];
        // Edge 3 reaches an unmeasured node; node 1's own change is noise; node 2 has no single.
        assert_eq!(edge_support(&edges, &output_of, &singles), vec![(0, -0.5), (1, 0.0), (2, -1.0)]);
    }

    #[test]
    fn a_fixed_grn_gets_no_gradient() {
        let _rng = crate::lock_global_rng();
        let d = Device::flex().autodiff();
        let graph = GraphTensors::new(3, &[(0, 1, 1.0), (1, 2, 1.0)], &[0, 1, 2], None, &d);
        for (learn, expect_gradient) in [(true, true), (false, false)] {
            let model = GrnVaeConfig::new(3, 3, 2).with_hidden(4).with_latent(2).with_learn_grn(learn).init_with_prior(&[0.5, -0.5], &d).train();
            let out = model.forward_embedded(model.embed(&graph), &graph, &PerturbationBatch::new(&[vec![0]], &d));
            let grads = (out.lfc.sum() + out.penalty).backward();
            assert_eq!(model.grn.val().grad(&grads).is_some(), expect_gradient, "learn_grn {learn}");
        }
    }
}

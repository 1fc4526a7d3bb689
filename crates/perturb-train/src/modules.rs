//! The module-inductive model (`modules`, scBIG-style): genes grouped into programs.
//!
//! Gene tokens come from learned vectors refined by GNN layers over the prior network, as
//! in APP. The programs (`programs.rs`, fixed before training) add structure on top:
//! - every program has a token: the mean of its genes' tokens plus a learned vector;
//! - the perturbation's query is the mean of its genes' tokens plus the tokens of their
//!   programs (cluster-aware);
//! - within each program an additive attention, queried by the perturbation and started on
//!   the perturbed genes, pools the program's gene tokens into a program state;
//! - across programs a second attention pools the program states into a global state;
//! - every gene's log-fold change reads its own program's state (a per-gene readout
//!   vector) plus a linear map of the global state and the query.
//!
//! Training adds two structure-alignment losses over the programs of the output genes:
//! pathway consistency (each program's mean predicted change matches its observed mean) and
//! within-program correlation (inside a program, predicted changes correlate with the
//! observed ones; weighted by how much the observed changes vary there). With one program
//! and both losses off, what remains is APP with a query skip.

use burn::module::Param;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::IndexingUpdateOp;

use crate::inputs::{GraphTensors, PerturbationBatch};
use crate::layers::{AdditiveAttention, Aggregation, GnnLayer};

#[derive(Config, Debug)]
pub struct ModulesConfig {
    /// Graph nodes.
    pub n_genes: usize,
    /// Genes whose log-fold change is predicted.
    pub n_outputs: usize,
    /// Gene programs (K); the programs themselves are an input of the forward pass.
    #[config(default = 16)]
    pub programs: usize,
    #[config(default = 64)]
    pub hidden: usize,
    #[config(default = 2)]
    pub layers: usize,
    #[config(default = 16)]
    pub attention_hidden: usize,
    /// Weight of the within-program correlation loss.
    #[config(default = 0.01)]
    pub coherence_weight: f64,
    /// Weight of the pathway-consistency loss.
    #[config(default = 1.0)]
    pub pathway_weight: f64,
}

#[derive(Module, Debug)]
pub struct ModulesNet {
    // Parameters are drawn from the seeded generator in this order (see
    // `ModelConfig::init_seeded`): moving a field changes every seed's starting weights.
    gene_vectors: Param<Tensor<2>>,
    program_vectors: Param<Tensor<2>>,
    /// Score bonus of the perturbed genes in their program's attention (starts at ln of the
    /// mean program size, like APP's attention focus).
    focus: Param<Tensor<1>>,
    /// Per output gene: how it reads its program's state, [G, d].
    readout: Param<Tensor<2>>,
    /// Global state and query to every output gene.
    global: Linear,
    within: AdditiveAttention,
    across: AdditiveAttention,
    gnn: Vec<GnnLayer>,
    #[module(skip)]
    coherence_weight: f64,
    #[module(skip)]
    pathway_weight: f64,
}

impl ModulesConfig {
    pub fn init(&self, device: &Device) -> ModulesNet {
        let d = self.hidden;
        let k = self.programs.max(1);
        let normal = |std: f64| Initializer::Normal { mean: 0.0, std };
        ModulesNet {
            gene_vectors: normal(1.0 / (d as f64).sqrt()).init([self.n_genes, d], device),
            gnn: (0..self.layers).map(|_| GnnLayer::new(d, device)).collect(),
            program_vectors: normal(1.0 / (d as f64).sqrt()).init([k, d], device),
            within: AdditiveAttention::new(d, self.attention_hidden, device),
            focus: Initializer::Constant { value: ((self.n_genes as f64 / k as f64).max(2.0)).ln() }.init([1], device),
            across: AdditiveAttention::new(d, self.attention_hidden, device),
            readout: normal(1.0 / (d as f64).sqrt()).init([self.n_outputs, d], device),
            global: LinearConfig::new(d, self.n_outputs).init(device),
            coherence_weight: self.coherence_weight,
            pathway_weight: self.pathway_weight,
        }
    }
}

fn membership(graph: &GraphTensors) -> Tensor<2> {
    graph.membership.clone().expect("the modules model needs gene programs in its graph")
}

impl ModulesNet {
    /// Gene tokens, [N, d].
    pub fn embed(&self, graph: &GraphTensors) -> Tensor<2> {
        let mut h = self.gene_vectors.val();
        for layer in &self.gnn {
            h = layer.forward(h, graph, Aggregation::Mean);
        }
        h
    }

    /// Predicted log-fold changes [B, G] (or [B, S] with columns) and the weight of every
    /// gene in the pooled states, [B, N]: its within-program weight times its program's
    /// weight across programs (rows sum to 1).
    pub fn forward_embedded(&self, h: Tensor<2>, graph: &GraphTensors, batch: &PerturbationBatch) -> (Tensor<2>, Tensor<2>) {
        let [n, d] = h.dims();
        let [b, width] = batch.genes.dims();
        let members = membership(graph); // [N, K]
        let k = members.dims()[1];
        let sizes = members.clone().sum_dim(0).clamp_min(1.0); // [1, K]
        let tokens = members.clone().transpose().matmul(h.clone()) / sizes.transpose() + self.program_vectors.val(); // [K, d]

        let flat_genes = batch.genes.clone().reshape([b * width]);
        let slot_weights = batch.weights.clone().unsqueeze_dim::<3>(2); // [B, w, 1]
        let picked = h.clone().select(0, flat_genes.clone()).reshape([b, width, d]);
        let target_programs = (members.clone().select(0, flat_genes).reshape([b, width, k]) * slot_weights.clone()).sum_dim(1).reshape([b, k]);
        let query = (picked * slot_weights).sum_dim(1).reshape([b, d]) + target_programs.matmul(tokens.clone());

        // Within programs: a softmax over each program's genes.
        let marks = batch.weights.clone().greater_elem(0.0).float();
        let perturbed = Tensor::zeros([b, n], &h.device()).scatter(1, batch.genes.clone(), marks, IndexingUpdateOp::Add);
        let scores = self.within.scores(query.clone(), h.clone().unsqueeze_dim::<3>(0)) + perturbed * self.focus.val().unsqueeze_dim::<2>(0);
        let top = scores.clone().max_dim(1).detach();
        let e = (scores - top).exp();
        let denominator = e.clone().matmul(members.clone()).clamp_min(1e-30); // [B, K]
        let omega = e / denominator.matmul(members.clone().transpose()); // [B, N]
                                                                         // S[b, k] = Σ_i ω[b, i] M[i, k] h[i]: one [B·K, N] × [N, d] product.
        let spread = omega.clone().unsqueeze_dim::<3>(1) * members.clone().transpose().unsqueeze_dim::<3>(0); // [B, K, N]
        let states = spread.reshape([b * k, n]).matmul(h).reshape([b, k, d]) + tokens.unsqueeze_dim::<3>(0); // [B, K, d]

        // Across programs.
        let beta = softmax(self.across.scores(query.clone(), states.clone()), 1); // [B, K]
        let global = (beta.clone().unsqueeze_dim::<3>(2) * states.clone()).sum_dim(1).reshape([b, d]);

        let (programs, readout) = match &batch.columns {
            Some(c) => (graph.output_programs.clone().expect("programs").select(0, c.clone()), self.readout.val().select(0, c.clone())),
            None => (graph.output_programs.clone().expect("programs"), self.readout.val()),
        };
        let g = programs.dims()[0];
        let own = (states.select(1, programs) * readout.unsqueeze_dim::<3>(0)).sum_dim(2).reshape([b, g]);
        let shared = self.global.forward(global + query);
        let shared = match &batch.columns {
            Some(c) => shared.select(1, c.clone()),
            None => shared,
        };
        let attention = omega * beta.matmul(members.transpose());
        (own + shared, attention)
    }

    /// The structure-alignment losses for predictions and targets [B, G] over all output
    /// genes (the model never subsamples genes).
    pub fn structure_loss(&self, graph: &GraphTensors, lfc: Tensor<2>, target: Tensor<2>) -> Option<Tensor<1>> {
        if self.coherence_weight == 0.0 && self.pathway_weight == 0.0 {
            return None;
        }
        let members = graph.output_membership.clone().expect("the modules model needs gene programs in its graph"); // [G, K]
        let g = members.dims()[0] as f64;
        let sizes = members.clone().sum_dim(0).clamp_min(1.0); // [1, K]
        let predicted_mean = lfc.clone().matmul(members.clone()) / sizes.clone();
        let observed_mean = target.clone().matmul(members.clone()) / sizes.clone();
        let pathway = ((predicted_mean.clone() - observed_mean.clone()).powi_scalar(2) * sizes).sum_dim(1).mean() / g;
        let p = lfc - predicted_mean.matmul(members.clone().transpose());
        let o = target - observed_mean.matmul(members.clone().transpose());
        let covariance = (p.clone() * o.clone()).matmul(members.clone());
        let variance_p = p.powi_scalar(2).matmul(members.clone());
        let variance_o = o.powi_scalar(2).matmul(members);
        let correlation = covariance / (variance_p * variance_o.clone() + 1e-12).sqrt();
        let coherence = ((correlation.neg() + 1.0) * variance_o.clone()).sum() / (variance_o.sum() + 1e-12);
        Some(pathway * self.pathway_weight + coherence * self.coherence_weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::inputs::fixtures::values;

    /// 6 genes in programs [0, 0, 0, 1, 1, 1], a chain of edges, every gene an output.
    fn graph(d: &Device) -> GraphTensors {
        let edges: Vec<(usize, usize, f32)> = (0..5).map(|i| (i, i + 1, 1.0)).collect();
        let outputs: Vec<usize> = (0..6).collect();
        GraphTensors::new(6, &edges, &outputs, None, d).with_programs(&[0, 0, 0, 1, 1, 1], 2, &outputs, d)
    }

    #[test]
    fn attention_sums_to_one_and_shapes_hold() {
        let _rng = crate::lock_global_rng();
        let d = Device::flex();
        let model = ModulesConfig::new(6, 6).with_programs(2).with_hidden(8).init(&d);
        let g = graph(&d);
        let (lfc, attention) = model.forward_embedded(model.embed(&g), &g, &PerturbationBatch::new(&[vec![0], vec![2, 4]], &d));
        assert_eq!(lfc.dims(), [2, 6]);
        for row in values(attention).chunks(6) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
        }
    }

    #[test]
    fn structure_losses_vanish_on_a_perfect_prediction_and_see_program_errors() {
        let _rng = crate::lock_global_rng();
        let d = Device::flex();
        let model = ModulesConfig::new(6, 6).with_programs(2).with_hidden(8).with_coherence_weight(1.0).with_pathway_weight(1.0).init(&d);
        let g = graph(&d);
        let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [1, 6]), &d);
        let target = vec![1.0, 2.0, 3.0, 0.0, -1.0, 1.0];
        let perfect = values(model.structure_loss(&g, t(target.clone()), t(target.clone())).unwrap())[0];
        assert!(perfect.abs() < 1e-5, "{perfect}");
        // Same within-program shape, program 0 shifted by 1: pathway error 3 * 1² / 6 only.
        let shifted = values(model.structure_loss(&g, t(vec![2.0, 3.0, 4.0, 0.0, -1.0, 1.0]), t(target.clone())).unwrap())[0];
        assert!((shifted - 0.5).abs() < 1e-5, "{shifted}");
        // Reversed order inside program 0: correlation -1 there.
        let reversed = values(model.structure_loss(&g, t(vec![3.0, 2.0, 1.0, 0.0, -1.0, 1.0]), t(target)).unwrap())[0];
        assert!(reversed > 0.5, "{reversed}");
        let off = ModulesConfig::new(6, 6).with_programs(2).with_hidden(8).with_coherence_weight(0.0).with_pathway_weight(0.0).init(&d);
        assert!(off.structure_loss(&g, t(vec![0.0; 6]), t(vec![1.0; 6])).is_none());
    }
}

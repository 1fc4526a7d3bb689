//! The AdaptivePerturbPredictor (APP).
//!
//! GNN layers over the gene network give every gene a contextual embedding; the
//! embeddings of the perturbed gene(s) are averaged into a query; an additive (tanh)
//! attention over all genes, softmax-normalised, pools a cell-state vector; a decoder maps
//! it to per-gene log-fold changes versus control. Ablations swap the gene embedding
//! (random or identity instead of the GNN), the pooling (mean instead of attention) and
//! the decoder (MLP instead of linear). The graph is passed to `forward` as an edge list
//! and aggregated with gather / scatter: no dense n × n adjacency is ever built.
//!
//! Beyond the seed design, each a switch that is off by default:
//! - `query_skip`: the perturbation query joins the pooled state before decoding;
//! - a gene-wise head (`head_features > 0`): a small MLP shared by all output genes that
//!   reads, per (perturbation, gene), the decoder's output, the gene's attention weight, a
//!   projection of its embedding and the features `features.rs` builds (how the
//!   perturbation reaches the gene through the network, the measured singles' effects on
//!   it); its output is added to a per-(perturbation, gene) base (the measured singles'
//!   sum when the additive gate is on, else zero).

use burn::module::Param;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid, softmax};
use burn::tensor::IndexingUpdateOp;
use serde::{Deserialize, Serialize};

use crate::inputs::{GraphTensors, PerturbationBatch};
use crate::layers::{Aggregation, GnnLayer};

/// How genes get their embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GeneEmbedding {
    /// Initial gene vectors refined by GNN layers over the network (the seed design).
    Gnn,
    /// Fixed random vectors, no graph (ablation).
    Random,
    /// Learned per-gene vectors, no graph — one-hot identity followed by a linear map
    /// (ablation).
    Identity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pooling {
    /// Additive attention queried by the perturbation (the seed design).
    Attention,
    /// Scaled dot-product attention queried by the perturbation: e_bi = (W_q c_b)ᵀ(W_k h_i)/√a.
    /// The additive score vᵀtanh(W_c c_b + W_h h_i) is, while tanh is near linear (as at
    /// initialisation), vᵀW_c c_b + vᵀW_h h_i: the query's part is the same for every gene
    /// and cancels in the softmax, so the weights start, and near the mean solution stay,
    /// independent of the perturbation. The dot product depends on the query at first order.
    Dot,
    /// Cosine attention with a learned temperature: e_bi = τ · cos(W_q c_b, W_k h_i), τ
    /// starting at ln(genes). The dot product's scores start so small (|e| ~ 1e-3) that
    /// the weights are uniform in all but name, and training settles on the mean effect
    /// (best validation epoch 2) before they can grow; bounded cosines scaled by ln N
    /// spread the weights over a factor of up to N² from the first step.
    Cosine,
    /// Uniform weights (ablation: the pooled state no longer depends on the perturbation).
    Mean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decoder {
    Linear,
    /// One hidden ReLU layer of the embedding width (ablation).
    Mlp,
}

#[derive(Config, Debug)]
pub struct AppConfig {
    /// Nodes of the graph (genes that can be embedded and perturbed).
    pub n_genes: usize,
    /// Genes whose log-fold change is predicted.
    pub n_outputs: usize,
    #[config(default = 64)]
    pub hidden: usize,
    #[config(default = 2)]
    pub layers: usize,
    /// Width of the additive attention's tanh layer (its cost is batch × genes × this).
    #[config(default = 16)]
    pub attention_hidden: usize,
    #[config(default = "GeneEmbedding::Gnn")]
    pub gene_embedding: GeneEmbedding,
    #[config(default = "Aggregation::Mean")]
    pub aggregation: Aggregation,
    #[config(default = "Pooling::Attention")]
    pub pooling: Pooling,
    #[config(default = "Decoder::Linear")]
    pub decoder: Decoder,
    /// Adds the perturbation query to the pooled state before decoding (the decoder then
    /// sees which genes were perturbed even when the attention is still flat).
    #[config(default = false)]
    pub query_skip: bool,
    /// Starts the attention on the perturbed genes: a learnable bonus, initially ln(genes),
    /// is added to their scores, so the pooled state depends on the perturbation from the
    /// first step (without it the attention starts flat and training settles on the mean
    /// effect). The model can still learn to spread its attention elsewhere.
    #[config(default = false)]
    pub attention_focus: bool,
    /// Starts the attention on the perturbed genes' network neighbourhood: a learnable
    /// bonus, initially ln(genes), is added to the scores of the genes reached from them
    /// within this many hops along the graph's edges (0 = off). A perturbation with no
    /// such gene keeps the attention over all genes, the learned fallback.
    #[config(default = 0)]
    pub attention_hops: usize,
    /// GNN input: learned per-gene vectors (the seed design).
    #[config(default = true)]
    pub learned_vectors: bool,
    /// GNN input: width of fixed per-node features (control statistics, network degrees),
    /// projected to the embedding width and added to the learned vectors; 0 = none.
    #[config(default = 0)]
    pub node_features: usize,
    /// Width of the per-(perturbation, gene) features of the gene-wise head; 0 = no head
    /// (the seed design's decoder alone).
    #[config(default = 0)]
    pub head_features: usize,
    #[config(default = 32)]
    pub head_hidden: usize,
    /// Genes per perturbation the attention and the head run on (`--local-genes K`; 0 =
    /// all): the batch's candidates ([`PerturbationBatch::candidates`]). The prediction is
    /// then the decoder's output plus the base everywhere, and the head's output added at
    /// the candidates, so that a step costs O(perturbations × K) there, not × all genes.
    #[config(default = 0)]
    pub local_genes: usize,
    /// Learned trust in the prior's edges (`--edge-trust`): the number of edges of the
    /// graph (0 = off). The gene-wise head's propagation features are then computed in the
    /// model, over edge weights each multiplied by 2σ(gain · ℓ_e): ℓ_e starts at 0 (the prior as
    /// it is) and `trust_weight` · mean ℓ² holds it there unless the training
    /// perturbations' responses pull it away, so that they can switch off the edges they
    /// contradict (off, the features come fixed from `features.rs`).
    #[config(default = 0)]
    pub trust_edges: usize,
    /// Hops of those propagation features (the head's `--propagation K`).
    #[config(default = 0)]
    pub trust_hops: usize,
    #[config(default = 0.01)]
    pub trust_weight: f64,
}

/// Width of the projection of each output gene's embedding that the head reads.
const HEAD_EMBEDDING: usize = 8;

/// The gene-wise head: an MLP applied to every (perturbation, output gene).
#[derive(Module, Debug)]
pub struct GeneHead {
    embedding: Linear,
    hidden_1: Linear,
    hidden_2: Linear,
    out: Linear,
}

#[derive(Module, Debug)]
pub struct App {
    // Parameters are drawn from the seeded generator in this order (see
    // `ModelConfig::init_seeded`): moving a field changes every seed's starting weights.
    gene_vectors: Param<Tensor<2>>,
    attention_focus: Option<Param<Tensor<1>>>,
    attention_reach: Option<Param<Tensor<1>>>,
    attention_temperature: Option<Param<Tensor<1>>>,
    edge_trust: Option<Param<Tensor<1>>>,
    attention_query: Linear,
    attention_key: Linear,
    attention_score: Linear,
    decoder_out: Linear,
    gnn: Vec<GnnLayer>,
    node_projection: Option<Linear>,
    decoder_hidden: Option<Linear>,
    head: Option<GeneHead>,
    #[module(skip)]
    trust_hops: usize,
    #[module(skip)]
    trust_weight: f64,
    #[module(skip)]
    gene_embedding: GeneEmbedding,
    #[module(skip)]
    aggregation: Aggregation,
    #[module(skip)]
    pooling: Pooling,
    #[module(skip)]
    query_skip: bool,
    #[module(skip)]
    attention_hops: usize,
    #[module(skip)]
    learned_vectors: bool,
    #[module(skip)]
    local_genes: usize,
}

impl AppConfig {
    pub fn init(&self, device: &Device) -> App {
        let d = self.hidden;
        let vectors = Initializer::Normal { mean: 0.0, std: 1.0 / (d as f64).sqrt() }.init([self.n_genes, d], device);
        let gnn = self.gene_embedding == GeneEmbedding::Gnn;
        let layers = if gnn { self.layers } else { 0 };
        let head = (self.head_features > 0).then(|| {
            let h = self.head_hidden;
            GeneHead {
                embedding: LinearConfig::new(d, HEAD_EMBEDDING).init(device),
                hidden_1: LinearConfig::new(self.head_features + 2 + HEAD_EMBEDDING, h).init(device),
                hidden_2: LinearConfig::new(h, h).init(device),
                out: LinearConfig::new(h, 1).init(device),
            }
        });
        App {
            gene_vectors: vectors,
            node_projection: (gnn && self.node_features > 0).then(|| LinearConfig::new(self.node_features, d).init(device)),
            gnn: (0..layers).map(|_| GnnLayer::new(d, device)).collect(),
            attention_query: LinearConfig::new(d, self.attention_hidden).with_bias(false).init(device),
            attention_key: LinearConfig::new(d, self.attention_hidden).init(device),
            attention_score: LinearConfig::new(self.attention_hidden, 1).with_bias(false).init(device),
            attention_focus: self.attention_focus.then(|| Initializer::Constant { value: (self.n_genes.max(2) as f64).ln() }.init([1], device)),
            attention_temperature: (self.pooling == Pooling::Cosine)
                .then(|| Initializer::Constant { value: (self.n_genes.max(2) as f64).ln() }.init([1], device)),
            attention_reach: (self.attention_hops > 0).then(|| Initializer::Constant { value: (self.n_genes.max(2) as f64).ln() }.init([1], device)),
            decoder_hidden: (self.decoder == Decoder::Mlp).then(|| LinearConfig::new(d, d).init(device)),
            decoder_out: LinearConfig::new(d, self.n_outputs).init(device),
            head,
            edge_trust: (self.trust_edges > 0).then(|| Initializer::Zeros.init([self.trust_edges], device)),
            trust_hops: self.trust_hops,
            trust_weight: self.trust_weight,
            gene_embedding: self.gene_embedding,
            aggregation: self.aggregation,
            pooling: self.pooling,
            query_skip: self.query_skip,
            attention_hops: self.attention_hops,
            // Without a GNN there is nothing but the vectors (identity / random ablations).
            learned_vectors: self.learned_vectors || !gnn || self.node_features == 0,
            local_genes: self.local_genes,
        }
    }
}

/// What a forward pass returns.
pub struct AppOutput {
    /// Predicted log-fold changes, [B, n_outputs].
    pub lfc: Tensor<2>,
    /// Pooling weights over genes, [B, N] (rows sum to 1).
    pub attention: Tensor<2>,
}

impl App {
    /// Contextual gene embeddings, [N, d].
    pub fn embed(&self, graph: &GraphTensors) -> Tensor<2> {
        let mut h = self.gene_vectors.val();
        if self.gene_embedding == GeneEmbedding::Random {
            // Fixed random features: no gradient reaches them.
            return h.detach();
        }
        if let (Some(projection), Some(features)) = (&self.node_projection, &graph.node_features) {
            let projected = projection.forward(features.clone());
            h = if self.learned_vectors { h + projected } else { projected };
        }
        for layer in &self.gnn {
            h = layer.forward(h, graph, self.aggregation);
        }
        h
    }

    pub fn forward(&self, graph: &GraphTensors, batch: &PerturbationBatch) -> AppOutput {
        self.forward_embedded(self.embed(graph), graph, batch)
    }

    /// The attention scores of every gene for every perturbation, [B, N], before the softmax.
    fn attention_scores(&self, h: &Tensor<2>, query: &Tensor<2>, graph: &GraphTensors, batch: &PerturbationBatch) -> Tensor<2> {
        let [n, _] = h.dims();
        let b = query.dims()[0];
        let q = self.attention_query.forward(query.clone()); // [B, a]
        let k = self.attention_key.forward(h.clone()); // [N, a]
        let scores = if self.pooling == Pooling::Dot {
            let a = q.dims()[1];
            q.matmul(k.transpose()) / (a as f64).sqrt()
        } else if let Some(temperature) = &self.attention_temperature {
            // The epsilon sits inside the root: a zero row (a gene whose GNN output is all
            // zero) would otherwise give the root an infinite gradient.
            let unit = |x: Tensor<2>| x.clone() / (x.powi_scalar(2).sum_dim(1) + 1e-8).sqrt();
            unit(q).matmul(unit(k).transpose()) * temperature.val().unsqueeze_dim::<2>(0)
        } else {
            // e_bi = vᵀ tanh(W_c c_b + W_h h_i + b), softmax over genes i.
            crate::kernels::additive_scores(&self.attention_score, &q, &k)
                .unwrap_or_else(|| self.attention_score.forward(crate::kernels::tanh(q.unsqueeze_dim::<3>(1) + k.unsqueeze_dim::<3>(0))).reshape([b, n]))
        };
        if self.attention_reach.is_none() && self.attention_focus.is_none() {
            return scores;
        }
        // 1 at each perturbed gene (padding slots carry weight 0).
        let marks = batch.weights.clone().greater_elem(0.0).float();
        let perturbed = Tensor::zeros([b, n], &h.device()).scatter(1, batch.genes.clone(), marks, IndexingUpdateOp::Add).clamp_max(1.0);
        let mut scores = scores;
        if let Some(reach) = &self.attention_reach {
            let reached = reach_within(perturbed.clone(), graph, self.attention_hops);
            scores = scores + (reached - perturbed.clone()).clamp_min(0.0) * reach.val().unsqueeze_dim::<2>(0);
        }
        if let Some(focus) = &self.attention_focus {
            scores = scores + perturbed * focus.val().unsqueeze_dim::<2>(0);
        }
        scores
    }

    /// The forward pass from gene embeddings computed earlier by [`App::embed`]: they do
    /// not depend on the perturbation, so prediction computes them once for all batches.
    pub fn forward_embedded(&self, h: Tensor<2>, graph: &GraphTensors, batch: &PerturbationBatch) -> AppOutput {
        let [n, d] = h.dims();
        let [b, width] = batch.genes.dims();
        // Query: the weighted mean of the perturbed genes' embeddings, [B, d].
        let picked = h.clone().select(0, batch.genes.clone().reshape([b * width])).reshape([b, width, d]);
        let query = (picked * batch.weights.clone().unsqueeze_dim::<3>(2)).sum_dim(1).reshape([b, d]);
        if self.local_genes > 0 {
            let candidates = batch.candidates.as_ref().expect("a local model's batches carry candidates (HeadInputs::rows)");
            return self.forward_local(h, query, graph, batch, candidates);
        }
        let attention = match self.pooling {
            Pooling::Attention | Pooling::Dot | Pooling::Cosine => softmax(self.attention_scores(&h, &query, graph, batch), 1),
            Pooling::Mean => Tensor::ones([b, n], &h.device()) / n as f64,
        };
        let pooled = attention.clone().matmul(h.clone()); // [B, d]
        let state = if self.query_skip { pooled + query } else { pooled };
        let state = match &self.decoder_hidden {
            Some(hidden) => relu(hidden.forward(state)),
            None => state,
        };
        let lfc = self.decoder_out.forward(state);
        let (lfc, output_nodes) = match &batch.columns {
            Some(columns) => (lfc.select(1, columns.clone()), graph.outputs.clone().select(0, columns.clone())),
            None => (lfc, graph.outputs.clone()),
        };
        let lfc = match &self.head {
            Some(head) => {
                let features = batch.features.clone().expect("a model with a gene-wise head needs head features in every batch");
                let features = match &self.edge_trust {
                    Some(logit) => with_trusted_propagation(features, logit.val(), graph, batch, output_nodes.clone(), self.trust_hops),
                    None => features,
                };
                let g = features.dims()[1];
                let own = head.embedding.forward(h.select(0, output_nodes.clone()));
                // Attention scaled by the gene count: 1 = no more than uniform.
                let weight = attention.clone().select(1, output_nodes) * n as f64;
                let layers = [&head.hidden_1, &head.hidden_2, &head.out];
                let y = crate::kernels::gene_head(layers, &lfc, &weight, &features, &own).unwrap_or_else(|| {
                    let own = own.unsqueeze_dim::<3>(0).expand([b, g, HEAD_EMBEDDING]);
                    let x = Tensor::cat(vec![lfc.unsqueeze_dim::<3>(2), weight.unsqueeze_dim::<3>(2), features, own], 2);
                    head.out.forward(relu(head.hidden_2.forward(relu(head.hidden_1.forward(x))))).reshape([b, g])
                });
                match &batch.base {
                    Some(base) => y + base.clone(),
                    None => y,
                }
            }
            None => lfc,
        };
        AppOutput { lfc, attention }
    }
}

impl App {
    /// The forward pass of a local model (`local_genes`): additive attention over each
    /// perturbation's candidates only, the head on them only, its output added to the
    /// decoder's there; the attention comes back over all N nodes (zero off the candidates).
    fn forward_local(&self, h: Tensor<2>, query: Tensor<2>, graph: &GraphTensors, batch: &PerturbationBatch, candidates: &Tensor<2, Int>) -> AppOutput {
        let [n, d] = h.dims();
        let [b, k] = candidates.dims();
        let head = self.head.as_ref().expect("a local model has a gene-wise head");
        let nodes = graph.outputs.clone().select(0, candidates.clone().reshape([b * k])); // [B·K]
        let picked = h.select(0, nodes.clone()); // [B·K, d]
        let q = self.attention_query.forward(query.clone()); // [B, a]
        let a = q.dims()[1];
        let keys = self.attention_key.forward(picked.clone()).reshape([b, k, a]);
        let scores = self.attention_score.forward(crate::kernels::tanh(q.unsqueeze_dim::<3>(1) + keys)).reshape([b, k]);
        let weights = softmax(scores, 1); // [B, K]
        let pooled = (picked.clone().reshape([b, k, d]) * weights.clone().unsqueeze_dim::<3>(2)).sum_dim(1).reshape([b, d]);
        let state = if self.query_skip { pooled + query } else { pooled };
        let state = match &self.decoder_hidden {
            Some(hidden) => relu(hidden.forward(state)),
            None => state,
        };
        let decoded = self.decoder_out.forward(state); // [B, G]
        let features = batch.features.clone().expect("a model with a gene-wise head needs head features in every batch");
        let own = head.embedding.forward(picked).reshape([b, k, HEAD_EMBEDDING]);
        // Attention scaled by the candidate count: 1 = no more than uniform over them.
        let weight = weights.clone() * k as f64;
        let at_candidates = decoded.clone().gather(1, candidates.clone());
        let x = Tensor::cat(vec![at_candidates.unsqueeze_dim::<3>(2), weight.unsqueeze_dim::<3>(2), features, own], 2);
        let delta = head.out.forward(relu(head.hidden_2.forward(relu(head.hidden_1.forward(x))))).reshape([b, k]);
        let lfc = decoded.scatter(1, candidates.clone(), delta, IndexingUpdateOp::Add);
        let lfc = match &batch.base {
            Some(base) => lfc + base.clone(),
            None => lfc,
        };
        let attention = Tensor::zeros([b, n], &weights.device()).scatter(1, nodes.reshape([b, k]), weights, IndexingUpdateOp::Add);
        AppOutput { lfc, attention }
    }

    /// What holds the edge trust near the prior: `trust_weight` · mean ℓ² (None without it).
    pub fn trust_penalty(&self) -> Option<Tensor<1>> {
        self.edge_trust.as_ref().map(|logit| (logit.val() * TRUST_GAIN).powi_scalar(2).mean() * self.trust_weight)
    }

    /// The learned trust 2σ(gain · ℓ) of every edge (None without `--edge-trust`).
    pub fn edge_trust(&self) -> Option<Vec<f32>> {
        self.edge_trust.as_ref().map(|logit| (sigmoid(logit.val() * TRUST_GAIN) * 2.0).into_data().try_to_vec::<f32>().expect("f32 trust"))
    }
}

/// The trust is 2σ(gain · ℓ): Adam moves ℓ by about the learning rate per step whatever
/// the gradient's size, so the gain sets how far a consistent pull can take an edge's
/// trust within a training run (at 1, a few hundred steps move it by a few percent).
const TRUST_GAIN: f64 = 10.0;

/// Signed log compression, as `features::squash`: keeps sign and order, tames hub counts.
fn squash<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone().sign() * x.abs().log1p()
}

/// `features` [B, G, F] with its propagation columns (1 .. 1 + 3·hops: signed, weighted
/// sum and weighted mean per hop, as `features::HeadInputs::build` lays them out)
/// replaced by the same quantities over edge weights scaled by the trust 2σ(gain · logit).
fn with_trusted_propagation(
    features: Tensor<3>,
    logit: Tensor<1>,
    graph: &GraphTensors,
    batch: &PerturbationBatch,
    outputs: Tensor<1, Int>,
    hops: usize,
) -> Tensor<3> {
    let [b, _, f] = features.dims();
    let (n, e) = (graph.n_nodes, graph.source.dims()[0]);
    let device = logit.device();
    let marks = batch.weights.clone().greater_elem(0.0).float();
    let indicator = Tensor::<2>::zeros([b, n], &device).scatter(1, batch.genes.clone(), marks, IndexingUpdateOp::Add).clamp_max(1.0);
    let weight = graph.weight.clone().reshape([e]) * (sigmoid(logit * TRUST_GAIN) * 2.0);
    let sign = graph.sign.clone().expect("a model with edge trust reads the edges' signs (GraphTensors::with_signs)");
    // The mean divides by the prior's incoming weight, as the fixed features do.
    let inverse_in = graph.in_weight.clone().recip().reshape([n]).select(0, graph.target.clone());
    let targets = graph.target.clone().unsqueeze_dim::<2>(0).repeat_dim(0, b); // [B, E]
    let mut columns = Vec::with_capacity(3 * hops);
    for channel in [weight.clone() * sign, weight.clone(), weight * inverse_in] {
        let channel = channel.unsqueeze_dim::<2>(0); // [1, E]
        let mut x = indicator.clone();
        for _ in 0..hops {
            let from = x.select(1, graph.source.clone()) * channel.clone();
            x = Tensor::zeros([b, n], &device).scatter(1, targets.clone(), from, IndexingUpdateOp::Add);
            columns.push(squash(x.clone().select(1, outputs.clone())));
        }
    }
    let propagated = Tensor::stack::<3>(columns, 2);
    let rest = 1 + 3 * hops;
    Tensor::cat(vec![features.clone().narrow(2, 0, 1), propagated, features.narrow(2, rest, f - rest)], 2)
}

/// 1 at every node reached from a marked one ([B, N], 0/1) within `hops` steps along the
/// graph's edges (source -> target), the marked nodes included.
fn reach_within(marked: Tensor<2>, graph: &GraphTensors, hops: usize) -> Tensor<2> {
    let [b, n] = marked.dims();
    let e = graph.source.dims()[0];
    if e == 0 {
        return marked;
    }
    let targets = graph.target.clone().unsqueeze_dim::<2>(0).repeat_dim(0, b); // [B, E]
    let mut reached = marked;
    for _ in 0..hops {
        let from = reached.clone().select(1, graph.source.clone()); // [B, E]
        let spread = Tensor::zeros([b, n], &reached.device()).scatter(1, targets.clone(), from, IndexingUpdateOp::Add);
        reached = (reached + spread).clamp_max(1.0);
    }
    reached.detach()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    use crate::inputs::fixtures::{graph, values};

    #[test]
    fn shapes_and_attention_rows_sum_to_one() {
        let d = device();
        let model = AppConfig::new(4, 4).with_hidden(8).init_seeded(1, &d);
        let out = model.forward(&graph(&d), &PerturbationBatch::new(&[vec![0], vec![1, 2], vec![3]], &d));
        assert_eq!(out.lfc.dims(), [3, 4]);
        assert_eq!(out.attention.dims(), [3, 4]);
        for row in values(out.attention).chunks(4) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
            assert!(row.iter().all(|&a| a > 0.0));
        }
    }

    #[test]
    fn attention_focus_starts_on_the_perturbed_genes_with_one_more_parameter() {
        let d = device();
        let plain = AppConfig::new(4, 4).with_hidden(8).init_seeded(1, &d);
        let focused = AppConfig::new(4, 4).with_hidden(8).with_attention_focus(true).init_seeded(1, &d);
        assert_eq!(focused.num_params(), plain.num_params() + 1);
        let batch = PerturbationBatch::new(&[vec![2], vec![0, 3]], &d);
        let (flat, focus) = (values(plain.forward(&graph(&d), &batch).attention), values(focused.forward(&graph(&d), &batch).attention));
        // The bonus is ln 4: a perturbed gene's weight is multiplied by 4 before normalising.
        for (row, genes) in [(0usize, vec![2usize]), (1, vec![0, 3])] {
            let (p, f) = (&flat[row * 4..row * 4 + 4], &focus[row * 4..row * 4 + 4]);
            let z: f32 = (0..4).map(|i| p[i] * if genes.contains(&i) { 4.0 } else { 1.0 }).sum();
            for i in 0..4 {
                let expected = p[i] * if genes.contains(&i) { 4.0 } else { 1.0 } / z;
                assert!((f[i] - expected).abs() < 1e-5, "row {row} gene {i}: {} vs {expected}", f[i]);
            }
        }
    }

    #[test]
    fn reach_bonus_lifts_the_genes_downstream_of_the_perturbed_one() {
        let d = device();
        // Edges 0 -> 2, 1 -> 2, 2 -> 3: from gene 0, one hop reaches 2, two hops reach 2 and 3.
        let marked = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 0.0], [1, 4]), &d);
        assert_eq!(values(reach_within(marked.clone(), &graph(&d), 1)), [1.0, 0.0, 1.0, 0.0]);
        assert_eq!(values(reach_within(marked, &graph(&d), 2)), [1.0, 0.0, 1.0, 1.0]);
        let plain = AppConfig::new(4, 4).with_hidden(8).init_seeded(1, &d);
        let reaching = AppConfig::new(4, 4).with_hidden(8).with_attention_hops(2).init_seeded(1, &d);
        assert_eq!(reaching.num_params(), plain.num_params() + 1);
        let batch = PerturbationBatch::new(&[vec![0]], &d);
        let (p, r) = (values(plain.forward(&graph(&d), &batch).attention), values(reaching.forward(&graph(&d), &batch).attention));
        // Genes 2 and 3 (not the perturbed gene itself) get the ln 4 bonus.
        let z: f32 = (0..4).map(|i| p[i] * if i >= 2 { 4.0 } else { 1.0 }).sum();
        for i in 0..4 {
            let expected = p[i] * if i >= 2 { 4.0 } else { 1.0 } / z;
            assert!((r[i] - expected).abs() < 1e-5, "gene {i}: {} vs {expected}", r[i]);
        }
    }

    #[test]
    fn dot_attention_depends_on_the_perturbation_at_initialisation() {
        let d = device();
        let batch = PerturbationBatch::new(&[vec![0], vec![3]], &d);
        let spread = |pooling: Pooling| {
            let a = values(AppConfig::new(4, 4).with_hidden(8).with_pooling(pooling).init_seeded(1, &d).forward(&graph(&d), &batch).attention);
            (0..4).map(|i| (a[i] - a[4 + i]).abs()).fold(0.0f32, f32::max)
        };
        // Both start near uniform, but the additive rows differ only through tanh's
        // curvature (second order in the query), the dot-product rows at first order.
        let (dot, additive) = (spread(Pooling::Dot), spread(Pooling::Attention));
        assert!(dot > 0.0 && dot > 10.0 * additive, "dot {dot} vs additive {additive}");
        // Bounded cosines scaled by ln N move the weights an order of magnitude more again.
        let cosine = spread(Pooling::Cosine);
        assert!(cosine > 10.0 * dot, "cosine {cosine} vs dot {dot}");
        assert_eq!(spread(Pooling::Mean), 0.0);
    }

    #[test]
    fn ablations_change_the_parameter_count_as_expected() {
        let d = device();
        let (n, out, h) = (10, 6, 8);
        let count = |c: AppConfig| c.with_attention_hidden(h).init_seeded(0, &d).num_params();
        let base = count(AppConfig::new(n, out).with_hidden(h));
        let embeddings = n * h;
        let gnn = 2 * (2 * h * h + h);
        let attention = h * h + (h * h + h) + h;
        let decoder = h * out + out;
        assert_eq!(base, embeddings + gnn + attention + decoder);
        // No GNN layers without the graph.
        assert_eq!(count(AppConfig::new(n, out).with_hidden(h).with_gene_embedding(GeneEmbedding::Identity)), base - gnn);
        assert_eq!(count(AppConfig::new(n, out).with_hidden(h).with_gene_embedding(GeneEmbedding::Random)), base - gnn);
        // The MLP decoder adds one hidden layer.
        assert_eq!(count(AppConfig::new(n, out).with_hidden(h).with_decoder(Decoder::Mlp)), base + h * h + h);
        // Mean pooling keeps the (unused) attention parameters: same count.
        assert_eq!(count(AppConfig::new(n, out).with_hidden(h).with_pooling(Pooling::Mean)), base);
        // Node features add their projection; the head its four layers.
        assert_eq!(count(AppConfig::new(n, out).with_hidden(h).with_node_features(5)), base + 5 * h + h);
        let (f, hh) = (7, 4);
        let head = (h * HEAD_EMBEDDING + HEAD_EMBEDDING) + ((f + 2 + HEAD_EMBEDDING) * hh + hh) + (hh * hh + hh) + (hh + 1);
        assert_eq!(count(AppConfig::new(n, out).with_hidden(h).with_head_features(f).with_head_hidden(hh)), base + head);
    }

    #[test]
    fn same_seed_same_model_on_cpu() {
        let run = || {
            let d = device();
            let model = AppConfig::new(4, 4).with_hidden(8).init_seeded(42, &d);
            values(model.forward(&graph(&d), &PerturbationBatch::new(&[vec![0, 1]], &d)).lfc)
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn mean_pooling_ignores_the_perturbation_unless_the_query_skips_to_the_decoder() {
        let d = device();
        let batch = PerturbationBatch::new(&[vec![0], vec![3]], &d);
        for (skip, differ) in [(false, false), (true, true)] {
            let model = AppConfig::new(4, 4).with_hidden(8).with_pooling(Pooling::Mean).with_query_skip(skip).init_seeded(3, &d);
            let out = values(model.forward(&graph(&d), &batch).lfc);
            let (a, b) = out.split_at(4);
            assert_eq!(a != b, differ, "query_skip {skip}: {a:?} vs {b:?}");
        }
    }

    /// Edges 0 -(+)-> 1 -(-)-> 2 and 3 -(unsigned, w 0.5)-> 2 (as in `features`' tests),
    /// with the fixed head features of `perturbed` over K hops.
    fn trust_problem(perturbed: &[usize], hops: usize, d: &Device) -> (GraphTensors, PerturbationBatch, Vec<f32>) {
        use crate::features::{Edge, FeatureSpec, HeadInputs};
        let edges = [
            Edge { source: 0, target: 1, weight: 1.0, sign: 1.0 },
            Edge { source: 1, target: 2, weight: 1.0, sign: -1.0 },
            Edge { source: 3, target: 2, weight: 0.5, sign: 0.0 },
        ];
        let spec = FeatureSpec { propagation_hops: hops, ..Default::default() };
        let head = HeadInputs::new(&spec, 4, &edges, &[0, 1, 2, 3], &[1.0, 2.0, 3.0, 4.0], Default::default());
        let (fixed, _) = head.build(perturbed);
        let w = spec.head_width();
        // The model fills the propagation columns: hand it zeros there.
        let blank: Vec<f32> = fixed.iter().enumerate().map(|(i, &v)| if (1..1 + 3 * hops).contains(&(i % w)) { 0.0 } else { v }).collect();
        let tuples: Vec<(usize, usize, f32)> = edges.iter().map(|e| (e.source, e.target, e.weight)).collect();
        let signs: Vec<f32> = edges.iter().map(|e| e.sign).collect();
        let graph = GraphTensors::new(4, &tuples, &[0, 1, 2, 3], None, d).with_signs(&signs, d);
        (graph, PerturbationBatch::new(&[perturbed.to_vec()], d).with_features(blank, 4, w, d), fixed)
    }

    #[test]
    fn trusted_propagation_at_the_prior_equals_the_fixed_features() {
        let d = device();
        for perturbed in [vec![0], vec![1, 3], vec![0, 3]] {
            let (graph, batch, fixed) = trust_problem(&perturbed, 2, &d);
            let features = batch.features.clone().unwrap();
            let got = values(with_trusted_propagation(features, Tensor::zeros([3], &d), &graph, &batch, graph.outputs.clone(), 2));
            assert_eq!(got.len(), fixed.len());
            for (i, (a, b)) in got.iter().zip(&fixed).enumerate() {
                assert!((a - b).abs() < 1e-5, "{perturbed:?} value {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn only_the_edges_a_perturbation_reaches_get_a_trust_gradient_and_distrust_removes_an_edge() {
        let d = device().autodiff();
        let (graph, batch, _) = trust_problem(&[0], 1, &d);
        let logit = Tensor::<1>::zeros([3], &d).require_grad();
        let grads = with_trusted_propagation(batch.features.clone().unwrap(), logit.clone(), &graph, &batch, graph.outputs.clone(), 1).sum().backward();
        let grad = logit.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        // One hop from gene 0 runs over edge 0 -> 1 only.
        assert!(grad[0] != 0.0 && grad[1] == 0.0 && grad[2] == 0.0, "{grad:?}");
        // An edge trusted at ~0 carries nothing: gene 1's propagation columns vanish.
        let d = device();
        let (graph, batch, _) = trust_problem(&[0], 1, &d);
        let off = Tensor::<1>::from_data(TensorData::new(vec![-30.0f32, 0.0, 0.0], [3]), &d);
        let f = values(with_trusted_propagation(batch.features.clone().unwrap(), off, &graph, &batch, graph.outputs.clone(), 1));
        assert!(f[5 + 1..5 + 4].iter().all(|v| v.abs() < 1e-6), "{f:?}");
    }

    #[test]
    fn a_local_model_attends_and_corrects_only_at_its_candidates() {
        let d = device();
        let model = AppConfig::new(4, 4).with_hidden(8).with_head_features(2).with_local_genes(2).init_seeded(5, &d);
        let run = |candidates: [usize; 2], features: Vec<f32>| {
            let batch = PerturbationBatch::new(&[vec![0]], &d).with_features(features, 2, 2, &d).with_base(vec![1.0, 2.0, 3.0, 4.0], 4, &d).with_candidates(
                &candidates,
                2,
                &d,
            );
            let out = model.forward(&graph(&d), &batch);
            (values(out.lfc), values(out.attention))
        };
        let (lfc, attention) = run([0, 2], vec![0.0; 4]);
        assert!((attention.iter().sum::<f32>() - 1.0).abs() < 1e-5 && attention[1] == 0.0 && attention[3] == 0.0, "{attention:?}");
        assert!(attention[0] > 0.0 && attention[2] > 0.0);
        // Other features at the candidates move them and nothing else.
        let (moved, _) = run([0, 2], vec![1.0; 4]);
        assert!(moved[0] != lfc[0] && moved[2] != lfc[2], "{moved:?} vs {lfc:?}");
        assert_eq!((moved[1], moved[3]), (lfc[1], lfc[3]));
    }

    #[test]
    fn the_head_reads_its_features_and_adds_the_base() {
        let d = device();
        let model = AppConfig::new(4, 4).with_hidden(8).with_head_features(2).init_seeded(5, &d);
        let run = |features: Vec<f32>, base: Option<Vec<f32>>| {
            let mut batch = PerturbationBatch::new(&[vec![0]], &d).with_features(features, 4, 2, &d);
            if let Some(b) = base {
                batch = batch.with_base(b, 4, &d);
            }
            values(model.forward(&graph(&d), &batch).lfc)
        };
        let plain = run(vec![0.0; 8], None);
        let shifted = run(vec![0.0; 8], Some(vec![1.0, 2.0, 3.0, 4.0]));
        for (k, (p, s)) in plain.iter().zip(&shifted).enumerate() {
            assert!((s - p - (k + 1) as f32).abs() < 1e-5, "the base is added as is");
        }
        assert_ne!(plain, run(vec![1.0; 8], None), "the features reach the output");
    }
}

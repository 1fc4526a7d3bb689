//! The AdaptivePerturbPredictor (APP).
//!
//! GNN layers over the gene network give every gene a contextual embedding; the
//! embeddings of the perturbed gene(s) are averaged into a query; an additive (tanh)
//! attention over all genes, softmax-normalised, pools a cell-state vector; a decoder maps
//! it to per-gene log-fold changes versus control. Ablations swap the gene embedding
//! (random or identity instead of the GNN), the pooling (mean instead of attention) and
//! the decoder (MLP instead of linear). The graph is passed to `forward` as an edge list
//! and aggregated with gather / scatter-add: no dense n × n adjacency is ever built.

use burn::module::Param;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax};
use burn::tensor::IndexingUpdateOp;
use serde::{Deserialize, Serialize};

/// How genes get their embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GeneEmbedding {
    /// Learned per-gene vectors refined by GNN layers over the network (the seed design).
    Gnn,
    /// Fixed random vectors, no graph (ablation).
    Random,
    /// Learned per-gene vectors, no graph — one-hot identity followed by a linear map
    /// (ablation).
    Identity,
}

/// How neighbours' embeddings are combined in a GNN layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregation {
    /// Edge-weighted mean.
    Mean,
    /// Edge-weighted sum.
    Sum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pooling {
    /// Additive attention queried by the perturbation (the seed design).
    Attention,
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
    #[config(default = "GeneEmbedding::Gnn")]
    pub gene_embedding: GeneEmbedding,
    #[config(default = "Aggregation::Mean")]
    pub aggregation: Aggregation,
    #[config(default = "Pooling::Attention")]
    pub pooling: Pooling,
    #[config(default = "Decoder::Linear")]
    pub decoder: Decoder,
    /// Adds the perturbation query to the pooled state before decoding (an improvement
    /// option beyond the seed design: the decoder then sees which genes were perturbed
    /// even when the attention is still flat).
    #[config(default = false)]
    pub query_skip: bool,
}

/// One message-passing layer: h' = relu(W [h ‖ AGG_j h_j] + b).
#[derive(Module, Debug)]
pub struct GnnLayer {
    linear: Linear,
}

#[derive(Module, Debug)]
pub struct App {
    gene_vectors: Param<Tensor<2>>,
    gnn: Vec<GnnLayer>,
    attention_query: Linear,
    attention_key: Linear,
    attention_score: Linear,
    decoder_hidden: Option<Linear>,
    decoder_out: Linear,
    #[module(skip)]
    gene_embedding: GeneEmbedding,
    #[module(skip)]
    aggregation: Aggregation,
    #[module(skip)]
    pooling: Pooling,
    #[module(skip)]
    query_skip: bool,
}

/// The gene network as the model consumes it.
#[derive(Debug, Clone)]
pub struct GraphTensors {
    /// Edge sources and targets (node indices), messages flow source -> target.
    pub source: Tensor<1, Int>,
    pub target: Tensor<1, Int>,
    /// Edge weights, [E, 1].
    pub weight: Tensor<2>,
    /// Sum of incoming edge weights per node, [N, 1] (for the mean; 1 where none).
    pub in_weight: Tensor<2>,
    pub n_nodes: usize,
}

impl GraphTensors {
    pub fn new(n_nodes: usize, edges: &[(usize, usize, f32)], device: &Device) -> GraphTensors {
        let source: Vec<i64> = edges.iter().map(|e| e.0 as i64).collect();
        let target: Vec<i64> = edges.iter().map(|e| e.1 as i64).collect();
        let weight: Vec<f32> = edges.iter().map(|e| e.2).collect();
        let mut in_weight = vec![0.0f32; n_nodes];
        for e in edges {
            in_weight[e.1] += e.2;
        }
        let in_weight: Vec<f32> = in_weight.into_iter().map(|w| if w > 0.0 { w } else { 1.0 }).collect();
        let n_edges = edges.len();
        GraphTensors {
            source: Tensor::from_data(TensorData::new(source, [n_edges]), device),
            target: Tensor::from_data(TensorData::new(target, [n_edges]), device),
            weight: Tensor::from_data(TensorData::new(weight, [n_edges, 1]), device),
            in_weight: Tensor::from_data(TensorData::new(in_weight, [n_nodes, 1]), device),
            n_nodes,
        }
    }
}

/// A batch of perturbations: up to `width` genes each, as node indices with the weight
/// each gets in the mean (1/k for a k-gene perturbation, 0 for padding).
#[derive(Debug, Clone)]
pub struct PerturbationBatch {
    pub genes: Tensor<2, Int>,
    pub weights: Tensor<2>,
}

impl PerturbationBatch {
    pub fn new(perturbations: &[Vec<usize>], device: &Device) -> PerturbationBatch {
        let width = perturbations.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let b = perturbations.len();
        let mut genes = Vec::with_capacity(b * width);
        let mut weights = Vec::with_capacity(b * width);
        for p in perturbations {
            for k in 0..width {
                genes.push(p.get(k).or(p.first()).copied().unwrap_or(0) as i64);
                weights.push(if k < p.len() { 1.0 / p.len() as f32 } else { 0.0 });
            }
        }
        PerturbationBatch {
            genes: Tensor::from_data(TensorData::new(genes, [b, width]), device),
            weights: Tensor::from_data(TensorData::new(weights, [b, width]), device),
        }
    }
}

/// The backends' random generator is process-global, so two models initialised at once
/// (tests, an ablation runner's threads) would draw from one interleaved stream.
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl AppConfig {
    /// Initialises with the backend seeded by `seed`, holding a process-wide lock so the
    /// result depends on the seed alone.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> App {
        let _guard = INIT_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        device.seed(seed);
        let model = self.init(device);
        // Parameters are drawn lazily, on first use: draw them now, under the lock.
        model.draw_parameters();
        model
    }

    pub fn init(&self, device: &Device) -> App {
        let d = self.hidden;
        let vectors = Initializer::Normal { mean: 0.0, std: 1.0 / (d as f64).sqrt() }.init([self.n_genes, d], device);
        let layers = if self.gene_embedding == GeneEmbedding::Gnn { self.layers } else { 0 };
        App {
            gene_vectors: vectors,
            gnn: (0..layers).map(|_| GnnLayer { linear: LinearConfig::new(2 * d, d).init(device) }).collect(),
            attention_query: LinearConfig::new(d, d).with_bias(false).init(device),
            attention_key: LinearConfig::new(d, d).init(device),
            attention_score: LinearConfig::new(d, 1).with_bias(false).init(device),
            decoder_hidden: (self.decoder == Decoder::Mlp).then(|| LinearConfig::new(d, d).init(device)),
            decoder_out: LinearConfig::new(d, self.n_outputs).init(device),
            gene_embedding: self.gene_embedding,
            aggregation: self.aggregation,
            pooling: self.pooling,
            query_skip: self.query_skip,
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

fn touch(linear: &Linear) {
    let _ = linear.weight.val();
    if let Some(b) = &linear.bias {
        let _ = b.val();
    }
}

impl App {
    /// Forces every lazily initialised parameter to be drawn.
    fn draw_parameters(&self) {
        let _ = self.gene_vectors.val();
        for layer in &self.gnn {
            touch(&layer.linear);
        }
        for l in [&self.attention_query, &self.attention_key, &self.attention_score, &self.decoder_out] {
            touch(l);
        }
        if let Some(h) = &self.decoder_hidden {
            touch(h);
        }
    }

    /// Contextual gene embeddings, [N, d].
    pub fn embed(&self, graph: &GraphTensors) -> Tensor<2> {
        let mut h = self.gene_vectors.val();
        if self.gene_embedding == GeneEmbedding::Random {
            // Fixed random features: no gradient reaches them.
            h = h.detach();
        }
        for layer in &self.gnn {
            let d = h.dims()[1];
            let messages = h.clone().select(0, graph.source.clone()) * graph.weight.clone();
            let summed = Tensor::zeros([graph.n_nodes, d], &h.device()).select_assign(0, graph.target.clone(), messages, IndexingUpdateOp::Add);
            let aggregated = match self.aggregation {
                Aggregation::Sum => summed,
                Aggregation::Mean => summed / graph.in_weight.clone(),
            };
            h = relu(layer.linear.forward(Tensor::cat(vec![h, aggregated], 1)));
        }
        h
    }

    pub fn forward(&self, graph: &GraphTensors, batch: &PerturbationBatch) -> AppOutput {
        let h = self.embed(graph);
        let [n, d] = h.dims();
        let [b, width] = batch.genes.dims();
        // Query: the weighted mean of the perturbed genes' embeddings, [B, d].
        let picked = h.clone().select(0, batch.genes.clone().reshape([b * width])).reshape([b, width, d]);
        let query = (picked * batch.weights.clone().unsqueeze_dim::<3>(2)).sum_dim(1).reshape([b, d]);
        let attention = match self.pooling {
            Pooling::Attention => {
                // e_bi = vᵀ tanh(W_c c_b + W_h h_i + b), softmax over genes i.
                let q = self.attention_query.forward(query.clone()).unsqueeze_dim::<3>(1); // [B, 1, d]
                let k = self.attention_key.forward(h.clone()).unsqueeze_dim::<3>(0); // [1, N, d]
                let scores = self.attention_score.forward((q + k).tanh()).reshape([b, n]);
                softmax(scores, 1)
            }
            Pooling::Mean => Tensor::ones([b, n], &h.device()) / n as f64,
        };
        let pooled = attention.clone().matmul(h); // [B, d]
        let state = if self.query_skip { pooled + query.clone() } else { pooled };
        let state = match &self.decoder_hidden {
            Some(hidden) => relu(hidden.forward(state)),
            None => state,
        };
        AppOutput { lfc: self.decoder_out.forward(state), attention }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// 4 genes; edges 0->2 (w 1), 1->2 (w 3), 2->3 (w 1).
    fn graph(d: &Device) -> GraphTensors {
        GraphTensors::new(4, &[(0, 2, 1.0), (1, 2, 3.0), (2, 3, 1.0)], d)
    }

    #[test]
    fn shapes_and_attention_rows_sum_to_one() {
        let d = device();
        let model = AppConfig::new(4, 7).with_hidden(8).init_seeded(1, &d);
        let out = model.forward(&graph(&d), &PerturbationBatch::new(&[vec![0], vec![1, 2], vec![3]], &d));
        assert_eq!(out.lfc.dims(), [3, 7]);
        assert_eq!(out.attention.dims(), [3, 4]);
        for row in values(out.attention).chunks(4) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
            assert!(row.iter().all(|&a| a > 0.0));
        }
    }

    #[test]
    fn mean_and_sum_aggregation_match_hand_computation() {
        let d = device();
        let g = graph(&d);
        // h = [[1],[2],[3],[4]]: gene 2 receives 1*1 + 3*2 = 7 (mean 7/4), gene 3 receives 3.
        let h = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [4, 1]), &d);
        let messages = h.clone().select(0, g.source.clone()) * g.weight.clone();
        let summed = Tensor::<2>::zeros([4, 1], &d).select_assign(0, g.target.clone(), messages, IndexingUpdateOp::Add);
        assert_eq!(values(summed.clone()), [0.0, 0.0, 7.0, 3.0]);
        assert_eq!(values(summed / g.in_weight.clone()), [0.0, 0.0, 1.75, 3.0]);
    }

    #[test]
    fn ablations_change_the_parameter_count_as_expected() {
        let d = device();
        let (n, out, h) = (10, 6, 8);
        let count = |c: AppConfig| c.init_seeded(0, &d).num_params();
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
    }

    #[test]
    fn same_seed_same_model_on_cpu() {
        let run = || {
            let d = device();
            let model = AppConfig::new(4, 3).with_hidden(8).init_seeded(42, &d);
            values(model.forward(&graph(&d), &PerturbationBatch::new(&[vec![0, 1]], &d)).lfc)
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn mean_pooling_ignores_the_perturbation_unless_the_query_skips_to_the_decoder() {
        let d = device();
        let batch = PerturbationBatch::new(&[vec![0], vec![3]], &d);
        for (skip, differ) in [(false, false), (true, true)] {
            let model = AppConfig::new(4, 5).with_hidden(8).with_pooling(Pooling::Mean).with_query_skip(skip).init_seeded(3, &d);
            let out = values(model.forward(&graph(&d), &batch).lfc);
            let (a, b) = out.split_at(5);
            assert_eq!(a != b, differ, "query_skip {skip}: {a:?} vs {b:?}");
        }
    }
}

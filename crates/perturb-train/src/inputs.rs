//! What every model's forward pass reads besides its parameters: the gene network as
//! tensors ([`GraphTensors`], built once per training run or prediction) and a batch of
//! perturbations ([`PerturbationBatch`]). Depends on no model.

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use std::sync::Arc;

use crate::kernels::FixedEdges;

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
    /// Edge signs (+1, -1, 0), [E], for models that propagate signed effects themselves.
    pub sign: Option<Tensor<1>>,
    /// Node index of every output gene, [G].
    pub outputs: Tensor<1, Int>,
    /// Fixed per-node features, [N, F0], when the model reads them.
    pub node_features: Option<Tensor<2>>,
    pub n_nodes: usize,
    /// Gene programs (the `modules` model): one-hot membership of every node, [N, K].
    pub membership: Option<Tensor<2>>,
    /// The program of every output gene, [G].
    pub output_programs: Option<Tensor<1, Int>>,
    /// One-hot program membership of every output gene, [G, K].
    pub output_membership: Option<Tensor<2>>,
    /// GRN alignment (the `grn_vae` model): edges whose weight the training singles
    /// support, and the weight they support, ([S], [S]).
    pub edge_support: Option<(Tensor<1, Int>, Tensor<1>)>,
    /// The same edges and weights on the host, for the CPU kernel of the GNN's sum and mean.
    pub fixed_edges: Arc<FixedEdges>,
}

impl GraphTensors {
    /// `outputs`: the node of each output gene; `node_features`: row-major [N, F0].
    pub fn new(n_nodes: usize, edges: &[(usize, usize, f32)], outputs: &[usize], node_features: Option<(&[f32], usize)>, device: &Device) -> GraphTensors {
        let source: Vec<i64> = edges.iter().map(|e| e.0 as i64).collect();
        let target: Vec<i64> = edges.iter().map(|e| e.1 as i64).collect();
        let weight: Vec<f32> = edges.iter().map(|e| e.2).collect();
        let mut in_weight = vec![0.0f32; n_nodes];
        for e in edges {
            in_weight[e.1] += e.2;
        }
        let in_weight: Vec<f32> = in_weight.into_iter().map(|w| if w > 0.0 { w } else { 1.0 }).collect();
        let n_edges = edges.len();
        let outputs: Vec<i64> = outputs.iter().map(|&o| o as i64).collect();
        GraphTensors {
            source: Tensor::from_data(TensorData::new(source, [n_edges]), device),
            target: Tensor::from_data(TensorData::new(target, [n_edges]), device),
            weight: Tensor::from_data(TensorData::new(weight, [n_edges, 1]), device),
            in_weight: Tensor::from_data(TensorData::new(in_weight, [n_nodes, 1]), device),
            outputs: Tensor::from_data(TensorData::new(outputs.clone(), [outputs.len()]), device),
            node_features: node_features.map(|(values, width)| Tensor::from_data(TensorData::new(values.to_vec(), [n_nodes, width]), device)),
            n_nodes,
            sign: None,
            membership: None,
            output_programs: None,
            output_membership: None,
            edge_support: None,
            fixed_edges: Arc::new(FixedEdges::new(n_nodes, edges)),
        }
    }

    /// Adds the program of every node (`programs[node]` < `k`); `outputs` as in `new`.
    pub fn with_programs(mut self, programs: &[usize], k: usize, outputs: &[usize], device: &Device) -> GraphTensors {
        let one_hot = |of: &[usize]| {
            let values: Vec<f32> = of.iter().flat_map(|&p| (0..k).map(move |j| if j == p { 1.0f32 } else { 0.0 })).collect();
            Tensor::from_data(TensorData::new(values, [of.len(), k]), device)
        };
        let of_outputs: Vec<usize> = outputs.iter().map(|&o| programs[o]).collect();
        self.membership = Some(one_hot(programs));
        self.output_membership = Some(one_hot(&of_outputs));
        let of_outputs: Vec<i64> = of_outputs.iter().map(|&p| p as i64).collect();
        self.output_programs = Some(Tensor::from_data(TensorData::new(of_outputs, [outputs.len()]), device));
        self
    }

    /// Adds the sign of every edge, in the order of `new`'s edges.
    pub fn with_signs(mut self, signs: &[f32], device: &Device) -> GraphTensors {
        self.sign = Some(Tensor::from_data(TensorData::new(signs.to_vec(), [signs.len()]), device));
        self
    }

    /// Adds the GRN alignment targets: (edge position, supported weight) pairs.
    pub fn with_edge_support(mut self, support: &[(usize, f32)], device: &Device) -> GraphTensors {
        if !support.is_empty() {
            let index: Vec<i64> = support.iter().map(|s| s.0 as i64).collect();
            let value: Vec<f32> = support.iter().map(|s| s.1).collect();
            self.edge_support =
                Some((Tensor::from_data(TensorData::new(index, [support.len()]), device), Tensor::from_data(TensorData::new(value, [support.len()]), device)));
        }
        self
    }

    /// Per-edge values [E, w] summed at each edge's target, [N, w].
    pub(crate) fn scatter_add(&self, values: Tensor<2>) -> Tensor<2> {
        let w = values.dims()[1];
        Tensor::zeros([self.n_nodes, w], &values.device()).select_assign(0, self.target.clone(), values, IndexingUpdateOp::Add)
    }

    /// `propagate` over the graph's own (fixed) weights: one kernel on the CPU backend, the
    /// same values as burn's ops (see `kernels`).
    pub(crate) fn propagate_fixed(&self, x: Tensor<2>) -> Tensor<2> {
        match crate::kernels::propagate(&x, &self.fixed_edges) {
            Some(y) => y,
            None => self.propagate(x, self.weight.clone()),
        }
    }

    /// Values of the nodes passed along the edges with per-edge weights and summed at each
    /// target: for x [N, w] and weights [E, 1], y[t] = Σ over edges s→t of weight · x[s].
    /// The GNN's sum and mean use the graph's weights; the GRN VAE its learned ones.
    pub fn propagate(&self, x: Tensor<2>, weights: Tensor<2>) -> Tensor<2> {
        self.scatter_add(x.select(0, self.source.clone()) * weights)
    }
}

/// A batch of perturbations: up to `width` genes each, as node indices with the weight
/// each gets in the mean (1/k for a k-gene perturbation, 0 for padding), plus what the
/// gene-wise head reads.
#[derive(Debug, Clone)]
pub struct PerturbationBatch {
    pub genes: Tensor<2, Int>,
    pub weights: Tensor<2>,
    /// Per (perturbation, output gene) features, [B, G, F].
    pub features: Option<Tensor<3>>,
    /// Added to the head's output, [B, G].
    pub base: Option<Tensor<2>>,
    /// When set, the forward pass computes only these output genes (positions in the
    /// model's output list, [S]); `features` and `base` then hold those S genes only.
    pub columns: Option<Tensor<1, Int>>,
    /// With `--local-genes K`: per perturbation, the K output positions the attention and
    /// the head run on, [B, K]; `features` then holds those genes only ([B, K, F]) and
    /// `base` every output gene.
    pub candidates: Option<Tensor<2, Int>>,
    /// Standard normal draws for a latent-variable model while training, [B × width, L]
    /// (None: use the latent means).
    pub noise: Option<Tensor<2>>,
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
            features: None,
            base: None,
            columns: None,
            candidates: None,
            noise: None,
        }
    }

    /// Restricts the forward pass to the output genes at `positions`.
    pub fn with_columns(mut self, positions: &[usize], device: &Device) -> Self {
        let values: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
        self.columns = Some(Tensor::from_data(TensorData::new(values, [positions.len()]), device));
        self
    }

    /// The output positions the head runs on per perturbation, row-major [B, K].
    pub fn with_candidates(mut self, positions: &[usize], k: usize, device: &Device) -> Self {
        let b = self.genes.dims()[0];
        let values: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
        self.candidates = Some(Tensor::from_data(TensorData::new(values, [b, k]), device));
        self
    }

    /// Standard normal draws, row-major [B × width, latent].
    pub fn with_noise(mut self, values: Vec<f32>, latent: usize, device: &Device) -> Self {
        let rows = values.len() / latent.max(1);
        self.noise = Some(Tensor::from_data(TensorData::new(values, [rows, latent]), device));
        self
    }

    /// Head features, row-major [B, G, F].
    pub fn with_features(mut self, values: Vec<f32>, n_outputs: usize, width: usize, device: &Device) -> Self {
        let b = self.genes.dims()[0];
        self.features = Some(Tensor::from_data(TensorData::new(values, [b, n_outputs, width]), device));
        self
    }

    /// The base the head's output is added to, row-major [B, G].
    pub fn with_base(mut self, values: Vec<f32>, n_outputs: usize, device: &Device) -> Self {
        let b = self.genes.dims()[0];
        self.base = Some(Tensor::from_data(TensorData::new(values, [b, n_outputs]), device));
        self
    }
}

/// What the models' tests share: a small graph and a way to read a tensor back.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A tensor's values, row-major.
    pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// 4 genes; edges 0->2 (w 1), 1->2 (w 3), 2->3 (w 1); every gene is an output.
    pub fn graph(d: &Device) -> GraphTensors {
        GraphTensors::new(4, &[(0, 2, 1.0), (1, 2, 3.0), (2, 3, 1.0)], &[0, 1, 2, 3], None, d)
    }
}

//! The layers more than one model is built from: the GNN layer over the gene network
//! (and how it aggregates its messages) and the additive attention.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::IndexingUpdateOp;
use serde::{Deserialize, Serialize};

use crate::inputs::GraphTensors;

/// How neighbours' embeddings are combined in a GNN layer (messages are weighted by the
/// edge weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregation {
    /// Sum of weighted messages over the sum of incoming weights.
    Mean,
    /// Sum of weighted messages.
    Sum,
    /// Element-wise maximum of weighted messages (0 for a gene without inputs).
    Max,
}

/// Weighted messages of every edge aggregated at its target, [N, d] (the GNN layer's AGG).
pub fn aggregate(graph: &GraphTensors, h: Tensor<2>, how: Aggregation) -> Tensor<2> {
    match how {
        Aggregation::Sum => graph.propagate_fixed(h),
        Aggregation::Mean => graph.propagate_fixed(h) / graph.in_weight.clone(),
        Aggregation::Max => {
            // Scatter-max on detached values gives the result; the gradient reaches the
            // message(s) that won, shared among ties. (burn's own Max backward assumes
            // unique indices, and many edges share a target.)
            let d = h.dims()[1];
            let messages = h.select(0, graph.source.clone()) * graph.weight.clone();
            let plain = messages.clone().detach();
            let best = Tensor::full([graph.n_nodes, d], -1e30, &plain.device()).select_assign(0, graph.target.clone(), plain.clone(), IndexingUpdateOp::Max);
            let won = plain.equal(best.select(0, graph.target.clone())).float();
            let winners = graph.scatter_add(won.clone()).clamp_min(1.0);
            graph.scatter_add(messages * won) / winners
        }
    }
}

/// One message-passing layer: h' = relu(W [h ‖ AGG_j h_j] + b).
#[derive(Module, Debug)]
pub struct GnnLayer {
    linear: Linear,
}

impl GnnLayer {
    pub(crate) fn new(d: usize, device: &Device) -> GnnLayer {
        GnnLayer { linear: LinearConfig::new(2 * d, d).init(device) }
    }

    pub(crate) fn forward(&self, h: Tensor<2>, graph: &GraphTensors, how: Aggregation) -> Tensor<2> {
        let aggregated = aggregate(graph, h.clone(), how);
        relu(self.linear.forward(Tensor::cat(vec![h, aggregated], 1)))
    }
}

/// An additive (tanh) attention: score = vᵀ tanh(W_q q + W_k k + b).
#[derive(Module, Debug)]
pub struct AdditiveAttention {
    query: Linear,
    key: Linear,
    score: Linear,
}

impl AdditiveAttention {
    pub(crate) fn new(d: usize, a: usize, device: &Device) -> AdditiveAttention {
        AdditiveAttention {
            query: LinearConfig::new(d, a).with_bias(false).init(device),
            key: LinearConfig::new(d, a).init(device),
            score: LinearConfig::new(a, 1).with_bias(false).init(device),
        }
    }

    /// Scores of keys [B, M, d] (or [1, M, d], shared) for queries [B, d]: [B, M].
    pub(crate) fn scores(&self, query: Tensor<2>, keys: Tensor<3>) -> Tensor<2> {
        let b = query.dims()[0];
        let m = keys.dims()[1];
        let q = self.query.forward(query).unsqueeze_dim::<3>(1);
        let k = self.key.forward(keys);
        self.score.forward(crate::kernels::tanh(q + k)).reshape([b, m])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::inputs::fixtures::{graph, values};

    #[test]
    fn mean_sum_and_max_aggregation_match_hand_computation() {
        let d = Device::flex();
        let g = graph(&d);
        // h = [[1, -1],[2, -5],[3, 0],[4, 1]]. Gene 2 receives 1*h0 and 3*h1: sum [7, -16],
        // mean over weight 4 [1.75, -4], max [6, -1]; gene 3 receives h2 = [3, 0]; genes 0
        // and 1 receive nothing.
        let h = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -1.0, 2.0, -5.0, 3.0, 0.0, 4.0, 1.0], [4, 2]), &d);
        assert_eq!(values(aggregate(&g, h.clone(), Aggregation::Sum)), [0.0, 0.0, 0.0, 0.0, 7.0, -16.0, 3.0, 0.0]);
        assert_eq!(values(aggregate(&g, h.clone(), Aggregation::Mean)), [0.0, 0.0, 0.0, 0.0, 1.75, -4.0, 3.0, 0.0]);
        assert_eq!(values(aggregate(&g, h, Aggregation::Max)), [0.0, 0.0, 0.0, 0.0, 6.0, -1.0, 3.0, 0.0]);
    }

    #[test]
    fn max_aggregation_sends_the_gradient_to_the_winning_message() {
        let d = Device::flex().autodiff();
        let g = graph(&d);
        let h = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [4, 1]), &d).require_grad();
        let grads = aggregate(&g, h.clone(), Aggregation::Max).sum().backward();
        // Gene 2 takes max(1*1, 3*2) = 6 from gene 1 (d/dh1 = 3); gene 3 takes h2 (d/dh2 = 1).
        let grad = h.grad(&grads).unwrap();
        assert_eq!(grad.into_data().try_to_vec::<f32>().unwrap(), [0.0, 3.0, 1.0, 0.0]);
    }
}

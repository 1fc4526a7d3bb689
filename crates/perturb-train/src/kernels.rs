//! Two of burn's operations rewritten for the CPU backend, each with its own backward
//! pass, because written with burn's ops they were most of APP's training time. Both give
//! the values and gradients of burn's form bit for bit (tests check it), so models and
//! metrics do not change; other backends (wgpu) keep burn's ops.
//!
//! - [`propagate`], the GNN's message passing over the prior's fixed edge weights. As
//!   y = scatter_add(select(x, source) · w) it materialises the messages, an [edges × width]
//!   tensor (118 MB per layer on a 19,000-gene graph), and its backward pass two more. Here
//!   each node's row y[target] sums w · x[source] over its incoming edges directly, in
//!   the order burn's scatter adds them, rounding the same products and sums.
//! - [`tanh`], the additive attention's nonlinearity over every (perturbation, gene,
//!   attention unit). burn's autodiff keeps the input and computes tanh again in the
//!   backward pass (1 − tanh², in four tensor passes); this keeps the output instead, so
//!   tanh runs once a step, and forms the gradient in one pass. The values themselves come
//!   from [`crate::fdlibm_tanh`], the C library's `tanhf` vectorised, with or without
//!   autodiff.

use std::sync::Arc;

use burn::prelude::*;
use burn::tensor::DType;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_flex::{Flex, FlexTensor};

/// burn's autodiff over the CPU backend, as `Device::flex().autodiff()` makes it.
type TrackedFlex = Autodiff<Flex, NoCheckpointing>;

/// The graph's edges on the host, from [`crate::inputs::GraphTensors::new`]'s list,
/// grouped by the node they add into: by target for the forward pass, by source for the
/// transpose (the gradient).
#[derive(Debug)]
pub struct FixedEdges {
    by_target: Incoming,
    by_source: Incoming,
    n_nodes: usize,
}

/// Per receiving node, the edges that add into it (CSR), in the order of the edge list:
/// the order burn's scatter adds them in, so each node's sum rounds as burn's does. One
/// node's row is then summed while it is in cache, instead of every edge writing into a
/// row anywhere in the output.
#[derive(Debug)]
struct Incoming {
    /// Node `i`'s edges are `start[i]..start[i + 1]`.
    start: Vec<usize>,
    /// The node each edge comes from.
    from: Vec<usize>,
    weight: Vec<f32>,
}

impl Incoming {
    /// Edges (from, into, weight) grouped by `into`, a stable counting sort.
    fn new(n_nodes: usize, edges: impl Iterator<Item = (usize, usize, f32)> + Clone) -> Incoming {
        let mut start = vec![0usize; n_nodes + 1];
        edges.clone().for_each(|(_, into, _)| start[into + 1] += 1);
        for i in 0..n_nodes {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut from = vec![0usize; start[n_nodes]];
        let mut weight = vec![0.0f32; start[n_nodes]];
        for (f, into, w) in edges {
            (from[next[into]], weight[next[into]]) = (f, w);
            next[into] += 1;
        }
        Incoming { start, from, weight }
    }

    /// y[node] = Σ w · x[from] over the node's edges in order, for x row-major [N, d].
    fn sum_rows_of_width(&self, x: &[f32], d: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; (self.start.len() - 1) * d];
        for (node, row) in y.chunks_exact_mut(d).enumerate() {
            for k in self.start[node]..self.start[node + 1] {
                let (f, w) = (self.from[k], self.weight[k]);
                for (out, &value) in row.iter_mut().zip(&x[f * d..(f + 1) * d]) {
                    // Two roundings (a product, then a sum), as burn's mul and scatter-add
                    // do: no fused multiply-add, so the result is theirs bit for bit.
                    *out += value * w;
                }
            }
        }
        y
    }

    /// [`Incoming::sum_rows_of_width`] for a width known when compiling.
    fn sum_rows<const D: usize>(&self, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0f32; (self.start.len() - 1) * D];
        for (node, out) in y.chunks_exact_mut(D).enumerate() {
            let mut row = [0.0f32; D];
            for k in self.start[node]..self.start[node + 1] {
                let (f, w) = (self.from[k], self.weight[k]);
                let message: &[f32; D] = x[f * D..(f + 1) * D].try_into().expect("a row of D values");
                for (sum, &value) in row.iter_mut().zip(message) {
                    // As above: a product, then a sum, no fused multiply-add.
                    *sum += value * w;
                }
            }
            out.copy_from_slice(&row);
        }
        y
    }
}

impl FixedEdges {
    /// `edges`: (source, target, weight), nodes below `n_nodes`.
    pub fn new(n_nodes: usize, edges: &[(usize, usize, f32)]) -> FixedEdges {
        FixedEdges {
            by_target: Incoming::new(n_nodes, edges.iter().copied()),
            by_source: Incoming::new(n_nodes, edges.iter().map(|&(s, t, w)| (t, s, w))),
            n_nodes,
        }
    }

    /// For x row-major [N, d]: y[to] += w · x[from] over the edges in order, where (from,
    /// to) is (source, target), or (target, source) for the transpose (the gradient).
    fn apply(&self, x: &[f32], d: usize, transpose: bool) -> Vec<f32> {
        let incoming = if transpose { &self.by_source } else { &self.by_target };
        match d {
            // The GNN's usual widths: the row's sum stays in registers.
            32 => incoming.sum_rows::<32>(x),
            64 => incoming.sum_rows::<64>(x),
            128 => incoming.sum_rows::<128>(x),
            _ => incoming.sum_rows_of_width(x, d),
        }
    }

    fn apply_flex(&self, x: FlexTensor, transpose: bool) -> FlexTensor {
        let x = x.to_contiguous();
        let d = x.layout().shape()[1];
        let start = x.layout().start_offset();
        let values = &x.storage::<f32>()[start..start + self.n_nodes * d];
        FlexTensor::from_data(TensorData::new(self.apply(values, d, transpose), [self.n_nodes, d]))
    }
}

/// The backward pass: the gradient of y = A x with respect to x is Aᵀ ∂y.
#[derive(Debug)]
struct Propagate;

impl Backward<Flex, 1> for Propagate {
    type State = Arc<FixedEdges>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let edges = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| edges.apply_flex(grad, true));
    }
}

/// y[t] = Σ over edges s→t of w · x[s] for x [N, d] on the CPU backend (with or without
/// autodiff); None on any other backend or dtype, where the caller uses burn's ops.
pub fn propagate(x: &Tensor<2>, edges: &Arc<FixedEdges>) -> Option<Tensor<2>> {
    if x.dtype() != DType::F32 || x.dims()[0] != edges.n_nodes {
        return None;
    }
    if let Ok(plain) = x.clone().try_into_primitive::<Flex>() {
        return Some(Tensor::from_primitive::<Flex>(edges.apply_flex(plain, false)));
    }
    let tracked = x.clone().try_into_primitive::<TrackedFlex>().ok()?;
    let node = tracked.node();
    let y = edges.apply_flex(tracked.into_primitive(), false);
    let y = match Propagate.prepare::<NoCheckpointing>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(Arc::clone(edges), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(Tensor::from_primitive::<TrackedFlex>(y))
}

/// tanh's backward pass from the output it keeps: ∂x = ∂y · (1 − y²) in one pass. burn
/// computes the slope as (−(y · y)) + 1, which IEEE arithmetic rounds exactly as 1 − y · y,
/// in four passes over the tensor.
#[derive(Debug)]
struct TanhFromOutput;

impl Backward<Flex, 1> for TanhFromOutput {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let output = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| times_tanh_slope(grad, &output));
    }
}

/// ∂y · (1 − y²) element-wise, for ∂y and y of one shape.
fn times_tanh_slope(grad: FlexTensor, output: &FlexTensor) -> FlexTensor {
    let shape = grad.layout().shape().clone();
    let n = shape.num_elements();
    let (grad, output) = (grad.to_contiguous(), output.to_contiguous());
    let g = &grad.storage::<f32>()[grad.layout().start_offset()..][..n];
    let y = &output.storage::<f32>()[output.layout().start_offset()..][..n];
    let values: Vec<f32> = g.iter().zip(y).map(|(&g, &y)| g * (1.0 - y * y)).collect();
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// tanh of every value, with fdlibm's arithmetic vectorised ([`crate::fdlibm_tanh`]): the
/// values of burn's `float_tanh`, which calls the C library's `tanhf` once per value.
fn tanh_flex(x: FlexTensor) -> FlexTensor {
    let x = x.to_contiguous();
    let shape = x.layout().shape().clone();
    let n = shape.num_elements();
    let values = &x.storage::<f32>()[x.layout().start_offset()..][..n];
    let mut out = vec![0.0f32; n];
    crate::fdlibm_tanh::tanh_into(values, &mut out);
    FlexTensor::from_data(TensorData::new(out, shape))
}

/// Element-wise tanh; on the CPU backend vectorised, and under autodiff computed once per
/// step (see the module's note); elsewhere burn's.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() != DType::F32 {
        return x.tanh();
    }
    if let Ok(plain) = x.clone().try_into_primitive::<Flex>() {
        return Tensor::from_primitive::<Flex>(tanh_flex(plain));
    }
    let Ok(tracked) = x.clone().try_into_primitive::<TrackedFlex>() else {
        return x.tanh();
    };
    let node = tracked.node();
    let y = tanh_flex(tracked.into_primitive());
    let y = match TanhFromOutput.prepare::<NoCheckpointing>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(y.clone(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive::<TrackedFlex>(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::IndexingUpdateOp;
    use rand::{Rng, SeedableRng};

    /// burn's tensor-op form, which the kernel must reproduce exactly.
    fn with_tensor_ops(x: Tensor<2>, edges: &[(usize, usize, f32)], n: usize) -> Tensor<2> {
        let device = x.device();
        let index = |f: fn(&(usize, usize, f32)) -> usize| {
            let values: Vec<i64> = edges.iter().map(|e| f(e) as i64).collect();
            Tensor::<1, Int>::from_data(TensorData::new(values, [edges.len()]), &device)
        };
        let weight: Vec<f32> = edges.iter().map(|e| e.2).collect();
        let weight = Tensor::<2>::from_data(TensorData::new(weight, [edges.len(), 1]), &device);
        let d = x.dims()[1];
        let messages = x.select(0, index(|e| e.0)) * weight;
        Tensor::zeros([n, d], &device).select_assign(0, index(|e| e.1), messages, IndexingUpdateOp::Add)
    }

    fn random_graph(n: usize, e: usize, seed: u64) -> Vec<(usize, usize, f32)> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // Many edges per target, repeated pairs and a self-loop or two: the order of the
        // additions matters.
        (0..e).map(|_| (rng.random_range(0..n), rng.random_range(0..n), rng.random_range(-1.5f32..2.0))).collect()
    }

    fn bits(t: Tensor<2>) -> Vec<u32> {
        t.into_data().try_to_vec::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
    }

    #[test]
    fn the_kernel_and_its_gradient_are_burns_bit_for_bit() {
        // Any width, and the widths with a row summed in registers.
        for d in [5, 32, 64, 128] {
            kernel_and_gradient_match_burn(37, d);
        }
    }

    fn kernel_and_gradient_match_burn(n: usize, d: usize) {
        let _rng = crate::lock_global_rng();
        let edges = random_graph(n, 400, 7);
        let fixed = Arc::new(FixedEdges::new(n, &edges));
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::random([n, d], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        // Downstream weights so the incoming gradient is not all ones.
        let w = Tensor::<2>::random([n, d], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let grad_of = |y: Tensor<2>, x: &Tensor<2>| {
            let grads = (y * w.clone()).powi_scalar(2).sum().backward();
            x.grad(&grads).unwrap()
        };
        let (x1, x2) = (x.clone().detach().require_grad(), x.detach().require_grad());
        let ours = propagate(&x1, &fixed).expect("the CPU backend takes the kernel");
        let theirs = with_tensor_ops(x2.clone(), &edges, n);
        assert_eq!(bits(ours.clone()), bits(theirs.clone()));
        assert_eq!(bits(grad_of(ours, &x1)), bits(grad_of(theirs, &x2)));
    }

    #[test]
    fn without_autodiff_the_kernel_gives_the_same_values() {
        let _rng = crate::lock_global_rng();
        let (n, d) = (20, 3);
        let edges = random_graph(n, 90, 3);
        let device = Device::flex();
        let x = Tensor::<2>::random([n, d], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let ours = propagate(&x, &Arc::new(FixedEdges::new(n, &edges))).unwrap();
        assert_eq!(bits(ours), bits(with_tensor_ops(x, &edges, n)));
    }

    #[test]
    fn a_tensor_of_another_size_is_left_to_burn() {
        let x = Tensor::<2>::zeros([4, 2], &Device::flex());
        assert!(propagate(&x, &Arc::new(FixedEdges::new(5, &[(0, 1, 1.0)]))).is_none());
    }

    #[test]
    fn tanh_and_its_gradient_are_burns_bit_for_bit() {
        let _rng = crate::lock_global_rng();
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::random([9, 7], burn::tensor::Distribution::Normal(0.0, 2.0), &device);
        let w = Tensor::<2>::random([9, 7], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let (x1, x2) = (x.clone().detach().require_grad(), x.detach().require_grad());
        // Inputs that are outputs of other ops, as the attention's are.
        let (ours, theirs) = (tanh(x1.clone() * 1.5), (x2.clone() * 1.5).tanh());
        assert_eq!(bits(ours.clone()), bits(theirs.clone()));
        let grad = |y: Tensor<2>, x: &Tensor<2>| bits(x.grad(&(y * w.clone()).powi_scalar(2).sum().backward()).unwrap());
        assert_eq!(grad(ours, &x1), grad(theirs, &x2));
    }
}

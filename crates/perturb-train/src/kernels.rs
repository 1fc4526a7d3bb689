//! burn's operations rewritten for the CPU backend, because written with burn's ops they
//! were most of APP's training or prediction time: two with their own backward pass, and
//! the attention's scores and the gene-wise head for inference. Each gives the values
//! (and gradients) of burn's form bit for bit (tests check it), so models and metrics do
//! not change; other backends (wgpu) keep burn's ops.
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
//! - [`gene_head`], the gene-wise head's MLP at prediction (no autodiff) over every
//!   (perturbation, output gene). burn builds its [rows × 27] input with a concatenation
//!   and each layer's [rows × 32] output as a fresh tensor, which burn-flex zeroes and then
//!   copies to realign before the product writes it; at 19,000 genes those passes over
//!   tens of megabytes cost more than the products. Here a block of rows at a time goes
//!   through all three layers in cache, with gemm called as burn-flex calls it;
//!   [`additive_scores`] does the same for the additive attention's scores.

use std::sync::Arc;

use burn::nn::Linear;
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
                if let Some(&ahead) = self.from.get(k + PREFETCH_EDGES) {
                    prefetch_row(&x[ahead * d..(ahead + 1) * d]);
                }
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
                if let Some(&ahead) = self.from.get(k + PREFETCH_EDGES) {
                    prefetch_row(&x[ahead * D..(ahead + 1) * D]);
                }
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

/// How many edges ahead the message passing asks for the row it will read. The rows come
/// from anywhere in x (4.9 MB at 19,000 genes × 64, beyond a core's L2), and a node's
/// sum waits on each in turn; asked for early, they arrive while the sums before them
/// are formed. A 460,941-edge pass at width 64 (a throwaway probe, 5 alternating pairs
/// of 30 passes, medians): 4.19 → 2.84 ms forward, 3.87 → 2.32 ms transposed; 16 and 32
/// ahead were no faster than 8, 4 slower.
const PREFETCH_EDGES: usize = 8;

/// Asks the cache for `row`'s lines; changes no value.
fn prefetch_row(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in row.chunks(16) {
        // SAFETY: a prefetch hint only names an address; it reads nothing and cannot fault.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
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
        FlexTensor::from_data(TensorData::new(self.apply(host_values(&x), d, transpose), [self.n_nodes, d]))
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
    let (grad, output) = (grad.to_contiguous(), output.to_contiguous());
    let values: Vec<f32> = host_values(&grad).iter().zip(host_values(&output)).map(|(&g, &y)| g * (1.0 - y * y)).collect();
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// tanh of every value, with fdlibm's arithmetic vectorised ([`crate::fdlibm_tanh`]): the
/// values of burn's `float_tanh`, which calls the C library's `tanhf` once per value.
fn tanh_flex(x: FlexTensor) -> FlexTensor {
    let x = x.to_contiguous();
    let shape = x.layout().shape().clone();
    let mut out = vec![0.0f32; shape.num_elements()];
    crate::fdlibm_tanh::tanh_into(host_values(&x), &mut out);
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

/// Rows of (perturbation, gene) one pass of [`gene_head`] or [`additive_scores`] takes
/// through its steps: their activations (16 to 32 wide) stay in the core's cache.
const BLOCK_ROWS: usize = 1024;

/// Below this many genes [`gene_head`] and [`additive_scores`] leave their work to burn. gemm computes a
/// product of at most 256 values, or of one row, with other kernels that round
/// differently; burn may multiply one perturbation's G rows at a time and the kernel
/// takes blocks of at least half of [`BLOCK_ROWS`] rows, so from 512 genes on neither
/// reaches those kernels (the last layer has one output column).
const MIN_KERNEL_GENES: usize = 512;

/// The gene-wise head y = out(relu(hidden_2(relu(hidden_1(x))))) for every (perturbation
/// b, output gene i) of a batch, where x is [decoded[b, i], weight[b, i], features[b, i, ..],
/// own[i, ..]], as burn computes it bit for bit: the same gemm calls per row (a product's
/// value at a row does not depend on the other rows), then the bias added and the ReLU
/// taken as burn's ops do. [B, G]; None under autodiff, on another backend or dtype, or
/// for fewer than [`MIN_KERNEL_GENES`] genes, where the caller runs burn's layers.
pub fn gene_head(layers: [&Linear; 3], decoded: &Tensor<2>, weight: &Tensor<2>, features: &Tensor<3>, own: &Tensor<2>) -> Option<Tensor<2>> {
    let [b, g, f] = features.dims();
    let e = own.dims()[1];
    if g < MIN_KERNEL_GENES || decoded.dims() != [b, g] || weight.dims() != [b, g] || own.dims()[0] != g {
        return None;
    }
    let (decoded_t, weight_t, features_t, own_t) = (on_host(decoded)?, on_host(weight)?, on_host(features)?, on_host(own)?);
    let params: Vec<(FlexTensor, Option<FlexTensor>)> = layers.iter().map(|l| layer_on_host(l)).collect::<Option<_>>()?;
    let dense: Vec<DenseLayer> = params
        .iter()
        .map(|(w, bias)| DenseLayer { weight: host_values(w), bias: bias.as_ref().map(host_values), d_in: w.layout().shape()[0], d_out: w.layout().shape()[1] })
        .collect();
    if dense[0].d_in != 2 + f + e || dense[1].d_in != dense[0].d_out || dense[2].d_in != dense[1].d_out || dense[2].d_out != 1 {
        return None;
    }
    let inputs = HeadInputsHost {
        decoded: host_values(&decoded_t),
        weight: host_values(&weight_t),
        features: host_values(&features_t),
        own: host_values(&own_t),
        g,
        f,
        e,
    };
    let head = |rows: std::ops::Range<usize>, out: &mut [f32]| head_block(&inputs, &dense, rows, out);
    Some(Tensor::from_data(TensorData::new(on_cores(b * g, &head), [b, g]), &decoded.device()))
}

/// A linear layer's weight and bias (if it has one) as [`on_host`] gives them.
fn layer_on_host(layer: &Linear) -> Option<(FlexTensor, Option<FlexTensor>)> {
    let bias = match &layer.bias {
        Some(bias) => Some(on_host(&bias.val())?),
        None => None,
    };
    Some((on_host(&layer.weight.val())?, bias))
}

/// A plain CPU-backend f32 tensor, contiguous (None under autodiff, elsewhere, other dtypes).
fn on_host<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    let flex = t.clone().try_into_primitive::<Flex>().ok()?;
    (flex.dtype() == DType::F32).then(|| flex.to_contiguous())
}

/// One value per row of `rows`, computed by `block` on [`row_blocks`]' blocks shared among
/// the cores (each block's values do not depend on which thread computes it).
fn on_cores(rows: usize, block: &(dyn Fn(std::ops::Range<usize>, &mut [f32]) + Sync)) -> Vec<f32> {
    let mut y = vec![0.0f32; rows];
    let blocks = row_blocks(rows);
    let share = blocks.len().div_ceil(crate::cores()).max(1);
    std::thread::scope(|scope| {
        let mut rest = y.as_mut_slice();
        for group in blocks.chunks(share) {
            let first = group[0].start;
            let (part, tail) = rest.split_at_mut(group[group.len() - 1].end - first);
            rest = tail;
            scope.spawn(move || {
                for rows in group {
                    block(rows.clone(), &mut part[rows.start - first..rows.end - first]);
                }
            });
        }
    });
    y
}

/// The additive attention's scores e[b, i] = score · tanh(q[b] + k[i]) for queries q [B, a]
/// and keys k [N, a], as burn computes them bit for bit ([B, N]): the same sums, the same
/// tanh, the score's product by the gemm call burn-flex makes, on blocks of
/// [`BLOCK_ROWS`] (perturbation, gene) rows in cache instead of [B, N, a] tensors. None
/// where [`gene_head`] would leave its work to burn, or for a score with a bias.
pub fn additive_scores(score: &Linear, q: &Tensor<2>, k: &Tensor<2>) -> Option<Tensor<2>> {
    let ([b, a], [n, a_k]) = (q.dims(), k.dims());
    if n < MIN_KERNEL_GENES || a != a_k || score.bias.is_some() || score.weight.dims() != [a, 1] {
        return None;
    }
    let device = q.device();
    let (q_t, k_t, w_t) = (on_host(q)?, on_host(k)?, on_host(&score.weight.val())?);
    let (q, k, w) = (host_values(&q_t), host_values(&k_t), host_values(&w_t));
    let block_scores = |block: std::ops::Range<usize>, out: &mut [f32]| {
        let mut x = vec![0.0f32; block.len() * a];
        for (row, r) in x.chunks_exact_mut(a).zip(block.clone()) {
            let (query, key) = (&q[(r / n) * a..(r / n + 1) * a], &k[(r % n) * a..(r % n + 1) * a]);
            row.iter_mut().zip(query.iter().zip(key)).for_each(|(x, (q, k))| *x = q + k);
        }
        let mut t = vec![0.0f32; x.len()];
        crate::fdlibm_tanh::tanh_into(&x, &mut t);
        // SAFETY: t is [rows, a], w [a, 1] and out [rows, 1] row-major.
        unsafe { gemm_row_major(block.len(), a, 1, &t, w, out) };
    };
    Some(Tensor::from_data(TensorData::new(on_cores(b * n, &block_scores), [b, n]), &device))
}

/// A contiguous f32 tensor's values.
fn host_values(t: &FlexTensor) -> &[f32] {
    &t.storage::<f32>()[t.layout().start_offset()..][..t.layout().num_elements()]
}

/// A linear layer's parameters on the host: weight row-major [d_in, d_out], as burn keeps it.
struct DenseLayer<'a> {
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    d_in: usize,
    d_out: usize,
}

/// [`gene_head`]'s inputs on the host, row-major.
struct HeadInputsHost<'a> {
    decoded: &'a [f32],
    weight: &'a [f32],
    features: &'a [f32],
    own: &'a [f32],
    g: usize,
    f: usize,
    e: usize,
}

/// Consecutive blocks of [`BLOCK_ROWS`] rows covering `rows`, the last merged into the one
/// before when it would be shorter than half a block.
fn row_blocks(rows: usize) -> Vec<std::ops::Range<usize>> {
    let mut starts: Vec<usize> = (0..rows).step_by(BLOCK_ROWS).collect();
    if starts.len() > 1 && rows - starts[starts.len() - 1] < BLOCK_ROWS / 2 {
        starts.pop();
    }
    starts.iter().enumerate().map(|(i, &start)| start..starts.get(i + 1).copied().unwrap_or(rows)).collect()
}

/// The head on rows `block` of the flattened [B · G] batch into `out`.
fn head_block(inputs: &HeadInputsHost, layers: &[DenseLayer], block: std::ops::Range<usize>, out: &mut [f32]) {
    let (m, width) = (block.len(), 2 + inputs.f + inputs.e);
    let mut x = vec![0.0f32; m * width];
    for (row, r) in x.chunks_exact_mut(width).zip(block.clone()) {
        row[0] = inputs.decoded[r];
        row[1] = inputs.weight[r];
        row[2..2 + inputs.f].copy_from_slice(&inputs.features[r * inputs.f..(r + 1) * inputs.f]);
        let gene = r % inputs.g;
        row[2 + inputs.f..].copy_from_slice(&inputs.own[gene * inputs.e..(gene + 1) * inputs.e]);
    }
    for (i, layer) in layers.iter().enumerate() {
        let mut y = vec![0.0f32; m * layer.d_out];
        // SAFETY: x is [m, d_in] and y [m, d_out] row-major, the weight [d_in, d_out].
        unsafe { gemm_row_major(m, layer.d_in, layer.d_out, &x, layer.weight, &mut y) };
        if let Some(bias) = layer.bias {
            for row in y.chunks_exact_mut(layer.d_out) {
                row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
            }
        }
        if i + 1 < layers.len() {
            // burn-flex's ReLU: NaN passes, everything not above zero becomes +0.
            y.iter_mut().for_each(|v| *v = if v.is_nan() || *v > 0.0 { *v } else { 0.0 });
        }
        x = y;
    }
    out.copy_from_slice(&x);
}

/// y [m, n] = x [m, k] · w [k, n], all row-major and contiguous, with the arguments
/// burn-flex's 2-D and batched matmuls give gemm (no accumulation into y, one thread).
///
/// # Safety
/// The slices must hold m·k, k·n and m·n values.
unsafe fn gemm_row_major(m: usize, k: usize, n: usize, x: &[f32], w: &[f32], y: &mut [f32]) {
    assert!(x.len() >= m * k && w.len() >= k * n && y.len() >= m * n, "gemm_row_major: operands too short");
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            y.as_mut_ptr(),
            1,
            n as isize,
            false,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
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

    /// The head as burn computes it: the concatenated input through three linear layers.
    fn head_with_burns_ops(layers: [&Linear; 3], decoded: &Tensor<2>, weight: &Tensor<2>, features: &Tensor<3>, own: &Tensor<2>) -> Tensor<2> {
        let [b, g, _] = features.dims();
        let e = own.dims()[1];
        let own = own.clone().unsqueeze_dim::<3>(0).expand([b, g, e]);
        let x = Tensor::cat(vec![decoded.clone().unsqueeze_dim::<3>(2), weight.clone().unsqueeze_dim::<3>(2), features.clone(), own], 2);
        let relu = burn::tensor::activation::relu;
        layers[2].forward(relu(layers[1].forward(relu(layers[0].forward(x))))).reshape([b, g])
    }

    #[test]
    fn the_head_kernel_is_burns_head_bit_for_bit() {
        use burn::nn::LinearConfig;
        let _rng = crate::lock_global_rng();
        let d = Device::flex();
        let normal = |shape: Vec<usize>, sd: f64| Tensor::<2>::random([shape[0], shape[1]], burn::tensor::Distribution::Normal(0.0, sd), &d);
        // Batches of 2 and 16 perturbations (prediction's pieces), gene counts that leave a
        // short last block or none, the head's widths (17 features, 8 of embedding, 32 hidden).
        for (b, g, f, e, hidden) in [(2, 512, 17, 8, 32), (16, 1300, 17, 8, 32), (3, 2049, 5, 8, 16)] {
            let layers = [LinearConfig::new(2 + f + e, hidden).init(&d), LinearConfig::new(hidden, hidden).init(&d), LinearConfig::new(hidden, 1).init(&d)];
            let layers = [&layers[0], &layers[1], &layers[2]];
            // Inputs on the scales the head sees, with some exact zeros (unreached genes).
            let features = normal(vec![b * g, f], 2.0).clamp_min(-1.0).reshape([b, g, f]);
            let (decoded, weight, own) = (normal(vec![b, g], 0.5), normal(vec![b, g], 1.0).abs(), normal(vec![g, e], 1.0));
            let ours = gene_head(layers, &decoded, &weight, &features, &own).expect("the CPU backend takes the kernel");
            assert_eq!(bits(ours), bits(head_with_burns_ops(layers, &decoded, &weight, &features, &own)), "b {b} g {g}");
        }
    }

    #[test]
    fn the_attention_scores_are_burns_bit_for_bit() {
        use burn::nn::LinearConfig;
        let _rng = crate::lock_global_rng();
        let d = Device::flex();
        for (b, n, a) in [(2, 512, 16), (16, 1300, 16), (3, 2049, 8)] {
            let score = LinearConfig::new(a, 1).with_bias(false).init(&d);
            let q = Tensor::<2>::random([b, a], burn::tensor::Distribution::Normal(0.0, 1.0), &d);
            let k = Tensor::<2>::random([n, a], burn::tensor::Distribution::Normal(0.0, 1.0), &d);
            let theirs = score.forward(tanh(q.clone().unsqueeze_dim::<3>(1) + k.clone().unsqueeze_dim::<3>(0))).reshape([b, n]);
            let ours = additive_scores(&score, &q, &k).expect("the CPU backend takes the kernel");
            assert_eq!(bits(ours), bits(theirs), "b {b} n {n} a {a}");
        }
        // A score with a bias, few genes and autodiff stay with burn.
        let (q, k) = (Tensor::<2>::zeros([2, 4], &d), Tensor::<2>::zeros([MIN_KERNEL_GENES, 4], &d));
        assert!(additive_scores(&LinearConfig::new(4, 1).init(&d), &q, &k).is_none());
        assert!(additive_scores(&LinearConfig::new(4, 1).with_bias(false).init(&d), &q, &k.clone().narrow(0, 0, 100)).is_none());
        let tracked = Device::flex().autodiff();
        let (q, k) = (Tensor::<2>::zeros([2, 4], &tracked), Tensor::<2>::zeros([MIN_KERNEL_GENES, 4], &tracked));
        assert!(additive_scores(&LinearConfig::new(4, 1).with_bias(false).init(&tracked), &q, &k).is_none());
    }

    #[test]
    fn the_head_kernel_leaves_few_genes_and_autodiff_to_burn() {
        use burn::nn::LinearConfig;
        let tiny = |d: &Device, g: usize| {
            let layers = [LinearConfig::new(5, 4).init(d), LinearConfig::new(4, 4).init(d), LinearConfig::new(4, 1).init(d)];
            let (decoded, features, own) = (Tensor::<2>::zeros([2, g], d), Tensor::<3>::zeros([2, g, 2], d), Tensor::<2>::zeros([g, 1], d));
            gene_head([&layers[0], &layers[1], &layers[2]], &decoded, &decoded, &features, &own).is_some()
        };
        assert!(tiny(&Device::flex(), MIN_KERNEL_GENES));
        assert!(!tiny(&Device::flex(), MIN_KERNEL_GENES - 1));
        assert!(!tiny(&Device::flex().autodiff(), MIN_KERNEL_GENES));
    }

    #[test]
    fn row_blocks_cover_the_rows_with_none_shorter_than_half_a_block() {
        for rows in [1, 511, 1024, 1535, 1536, 19_000 * 16] {
            let blocks = row_blocks(rows);
            assert_eq!((blocks[0].start, blocks[blocks.len() - 1].end), (0, rows));
            assert!(blocks.windows(2).all(|w| w[0].end == w[1].start), "{rows}: {blocks:?}");
            assert!(blocks.len() == 1 || blocks.iter().all(|b| b.len() >= BLOCK_ROWS / 2), "{rows}: {blocks:?}");
        }
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

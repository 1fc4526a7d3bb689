//! Fixed inputs the model reads besides its learned vectors.
//!
//! - Node features (`--gene-features control,prior`): per graph node, control-expression
//!   statistics and network degrees, standardised per column; the GNN reads them.
//! - Head features (`--propagation K`, `--additive-gate`, `--other-context`): per
//!   (perturbation, output gene), computed from the perturbation, the network, the
//!   measured singles and the same perturbations' effects in other contexts of the screen;
//!   the gene-wise head reads them. They are the same at training and prediction time, and
//!   depend only on training data.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Which fixed features the model reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// GNN input: control mean, control variance, control rank and a measured flag.
    pub control_node_features: bool,
    /// GNN input: in/out degree and weight, shares of activating and repressing out-edges.
    pub prior_node_features: bool,
    /// Head input: how the perturbation reaches each gene through the network, 1..=K hops.
    pub propagation_hops: usize,
    /// Head input: the measured singles' effects on each gene, and their sum as the base
    /// the head's output is added to (perturbations of two or more genes only).
    pub additive_gate: bool,
    /// Head input: the perturbed genes' single effects measured in other contexts of the
    /// screen (`--other-context`), summed, and the share of them measured there.
    #[serde(default)]
    pub context_effects: bool,
    /// Genes the head and the attention run on per perturbation (`--local-genes K`; 0 =
    /// all): the perturbed genes, then those the perturbation reaches most strongly
    /// (propagation, measured singles), then the most expressed. The others keep the
    /// decoder's output plus the base.
    #[serde(default)]
    pub local_genes: usize,
    /// Of the local genes, how many are always the most expressed in control
    /// (`--local-expressed E`, below `local_genes`): the genes whose changes are measured
    /// most precisely, and those the metric of record scores. The perturbed and the most
    /// reached genes fill the rest.
    /// (Left out of the JSON at 0: the artifacts of every model without it stay as they were.)
    #[serde(default, skip_serializing_if = "is_zero")]
    pub local_expressed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Propagation channels per hop: signed (sign × weight), weighted sum, weighted mean.
const CHANNELS: usize = 3;
/// Singles' features: sum, product, max, min, sum of magnitudes, share measured.
const SINGLES: usize = 6;
/// Other contexts' features: the perturbed genes' summed effect there, share measured.
const CONTEXT: usize = 2;
pub const CONTROL_NODE_FEATURES: usize = 4;
pub const PRIOR_NODE_FEATURES: usize = 6;

impl FeatureSpec {
    pub fn has_head(&self) -> bool {
        self.propagation_hops > 0 || self.additive_gate || self.context_effects
    }

    /// Width of the head features: self indicator, propagation, singles, other contexts,
    /// control mean.
    pub fn head_width(&self) -> usize {
        if !self.has_head() {
            return 0;
        }
        self.context_column() + if self.context_effects { CONTEXT } else { 0 } + 1
    }

    /// The first column of the other contexts' features.
    fn context_column(&self) -> usize {
        1 + CHANNELS * self.propagation_hops + if self.additive_gate { SINGLES } else { 0 }
    }

    /// The local genes on a screen of `n_outputs` genes: 0 (every gene) when as many.
    pub fn local_genes_for(&self, n_outputs: usize) -> usize {
        if self.local_genes >= n_outputs {
            0
        } else {
            self.local_genes
        }
    }

    pub fn node_width(&self) -> usize {
        (if self.control_node_features { CONTROL_NODE_FEATURES } else { 0 }) + (if self.prior_node_features { PRIOR_NODE_FEATURES } else { 0 })
    }
}

/// A directed edge as the features see it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub source: usize,
    pub target: usize,
    pub weight: f32,
    /// +1 activation, -1 repression, 0 unknown.
    pub sign: f32,
}

/// Node features, row-major [nodes, spec.node_width()]. `control` holds, per node, the
/// control mean and variance of a measured gene (None for a node that is not measured).
pub fn node_features(spec: &FeatureSpec, n_nodes: usize, edges: &[Edge], control: &[Option<(f64, f64)>]) -> Vec<f32> {
    let width = spec.node_width();
    let mut columns: Vec<Vec<f64>> = Vec::new();
    if spec.control_node_features {
        let means: Vec<f64> = control.iter().map(|c| c.map_or(0.0, |c| c.0)).collect();
        let mut order: Vec<usize> = (0..n_nodes).filter(|&i| control[i].is_some()).collect();
        order.sort_by(|&a, &b| means[b].total_cmp(&means[a]).then(a.cmp(&b)));
        let mut quantile = vec![1.0; n_nodes];
        for (r, &i) in order.iter().enumerate() {
            quantile[i] = r as f64 / order.len().max(1) as f64;
        }
        columns.push(means);
        columns.push(control.iter().map(|c| c.map_or(0.0, |c| c.1.max(0.0).ln_1p())).collect());
        columns.push(quantile);
        columns.push(control.iter().map(|c| if c.is_some() { 1.0 } else { 0.0 }).collect());
    }
    if spec.prior_node_features {
        let mut cols = vec![vec![0.0f64; n_nodes]; PRIOR_NODE_FEATURES];
        for e in edges {
            cols[0][e.target] += 1.0;
            cols[1][e.source] += 1.0;
            cols[2][e.target] += f64::from(e.weight);
            cols[3][e.source] += f64::from(e.weight);
            if e.sign > 0.0 {
                cols[4][e.source] += 1.0;
            } else if e.sign < 0.0 {
                cols[5][e.source] += 1.0;
            }
        }
        for i in 0..n_nodes {
            let out = cols[1][i].max(1.0);
            cols[4][i] /= out;
            cols[5][i] /= out;
            for c in cols.iter_mut().take(4) {
                c[i] = c[i].ln_1p();
            }
        }
        columns.extend(cols);
    }
    // Standardised per column, so no statistic dominates the projection by its scale.
    for c in &mut columns {
        let mean = c.iter().sum::<f64>() / n_nodes.max(1) as f64;
        let sd = (c.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n_nodes.max(1) as f64).sqrt();
        c.iter_mut().for_each(|v| *v = if sd > 0.0 { (*v - mean) / sd } else { 0.0 });
    }
    let mut out = vec![0.0f32; n_nodes * width];
    for (j, c) in columns.iter().enumerate() {
        for i in 0..n_nodes {
            out[i * width + j] = c[i] as f32;
        }
    }
    out
}

/// Builds the head's features and base for any perturbation.
#[derive(Debug, Clone)]
pub struct HeadInputs {
    spec: FeatureSpec,
    n_nodes: usize,
    /// Node of each output gene.
    outputs: Vec<usize>,
    /// Outgoing edges per node (CSR): targets, weights, signs.
    out_start: Vec<usize>,
    out_target: Vec<usize>,
    out_weight: Vec<f32>,
    out_sign: Vec<f32>,
    /// 1 / (sum of incoming weights) per node, 0 for a node without inputs.
    inverse_in_weight: Vec<f32>,
    /// Control mean of each output gene.
    control_mean: Vec<f32>,
    /// Measured singles' log-fold changes over the outputs, by perturbed node.
    singles: HashMap<usize, Vec<f32>>,
    /// The same in the screen's other contexts (`--other-context`), by perturbed node.
    context: HashMap<usize, Vec<f32>>,
    /// With `local_genes`: output positions by control mean, highest first.
    by_expression: Vec<usize>,
    /// With `local_genes`: whether each output is among the `local_expressed` first of
    /// `by_expression`, a candidate of every perturbation.
    always_candidate: Vec<bool>,
    /// With `local_genes`: each node's propagation once asked for ([`HeadInputs::propagation_from`]).
    propagation: Vec<OnceLock<Vec<f64>>>,
}

/// Signed log compression: keeps sign and order, tames multi-hop counts through hubs.
/// (Zero, most entries far from the perturbation, skips the logarithm: the same value.)
fn squash(v: f64) -> f32 {
    if v == 0.0 {
        return v as f32;
    }
    (v.signum() * v.abs().ln_1p()) as f32
}

/// One perturbation's head inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadRows {
    /// Row-major [genes, width]: every output gene, or the `candidates` only.
    pub features: Vec<f32>,
    /// Per output gene (all of them): the measured singles' sum the prediction is added
    /// to (the additive gate), None without the gate.
    pub base: Option<Vec<f32>>,
    /// With `--local-genes K`: the K output positions the head runs on, ascending.
    pub candidates: Option<Vec<usize>>,
}

impl HeadInputs {
    pub fn new(spec: &FeatureSpec, n_nodes: usize, edges: &[Edge], outputs: &[usize], control_mean: &[f32], singles: HashMap<usize, Vec<f32>>) -> HeadInputs {
        let mut order: Vec<usize> = (0..edges.len()).collect();
        order.sort_by_key(|&e| (edges[e].source, edges[e].target));
        let mut out_start = vec![0usize; n_nodes + 1];
        let mut in_weight = vec![0.0f32; n_nodes];
        for e in edges {
            out_start[e.source + 1] += 1;
            in_weight[e.target] += e.weight;
        }
        for i in 0..n_nodes {
            out_start[i + 1] += out_start[i];
        }
        let local = spec.local_genes_for(outputs.len()) > 0;
        let by_expression = if local { by_expression(control_mean) } else { Vec::new() };
        let mut always_candidate = vec![false; by_expression.len()];
        by_expression.iter().take(spec.local_expressed.min(spec.local_genes)).for_each(|&o| always_candidate[o] = true);
        HeadInputs {
            spec: spec.clone(),
            n_nodes,
            outputs: outputs.to_vec(),
            out_start,
            out_target: order.iter().map(|&e| edges[e].target).collect(),
            out_weight: order.iter().map(|&e| edges[e].weight).collect(),
            out_sign: order.iter().map(|&e| edges[e].sign).collect(),
            inverse_in_weight: in_weight.iter().map(|&w| if w > 0.0 { 1.0 / w } else { 0.0 }).collect(),
            control_mean: control_mean.to_vec(),
            singles,
            context: HashMap::new(),
            by_expression,
            always_candidate,
            propagation: if local { (0..n_nodes).map(|_| OnceLock::new()).collect() } else { Vec::new() },
        }
    }

    /// The perturbed genes' single effects in other contexts, by node (read when
    /// `spec.context_effects`).
    pub fn with_context(mut self, context: HashMap<usize, Vec<f32>>) -> HeadInputs {
        self.context = context;
        self
    }

    pub fn width(&self) -> usize {
        self.spec.head_width()
    }

    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Whether the head runs on each perturbation's candidates (`--local-genes` below the
    /// gene count) rather than on every output gene.
    pub fn is_local(&self) -> bool {
        self.spec.local_genes_for(self.outputs.len()) > 0
    }

    /// Output genes in each perturbation's rows: the candidates with `local_genes`, else all.
    pub fn row_genes(&self) -> usize {
        match self.spec.local_genes_for(self.outputs.len()) {
            0 => self.outputs.len(),
            k => k,
        }
    }

    /// One hop of all three channels (signed, weighted sum, weighted mean), interleaved
    /// per node. Scattering from the nodes already reached keeps the first hops cheap.
    fn hop(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0f64; self.n_nodes * CHANNELS];
        for s in 0..self.n_nodes {
            let v = &x[s * CHANNELS..(s + 1) * CHANNELS];
            if v.iter().all(|&a| a == 0.0) {
                continue;
            }
            for e in self.out_start[s]..self.out_start[s + 1] {
                let (t, w) = (self.out_target[e], f64::from(self.out_weight[e]));
                let row = &mut y[t * CHANNELS..(t + 1) * CHANNELS];
                row[0] += w * f64::from(self.out_sign[e]) * v[0];
                row[1] += w * v[1];
                row[2] += w * f64::from(self.inverse_in_weight[t]) * v[2];
            }
        }
        y
    }

    /// The head's inputs for one perturbation: every output gene's features (or, with
    /// `local_genes`, the candidates') and the base.
    pub fn rows(&self, perturbed: &[usize]) -> HeadRows {
        let k = self.spec.local_genes_for(self.outputs.len());
        if k == 0 {
            let (features, base) = self.build(perturbed);
            return HeadRows { features, base, candidates: None };
        }
        self.local_rows(perturbed, k)
    }

    /// The `k` candidates' rows, without the full [outputs, width] table: an output gene
    /// the perturbation does not touch (not perturbed, not reached, no measured effect)
    /// ranks by control expression alone, an order known in advance.
    fn local_rows(&self, perturbed: &[usize], k: usize) -> HeadRows {
        let reach = self.reach(perturbed);
        let w = self.width();
        // The most expressed first, then the rest of the k by rank.
        let expressed = self.spec.local_expressed.min(k);
        let (k, always) = (k - expressed, &self.always_candidate);
        let mut touched: Vec<RankKey> =
            (0..self.outputs.len()).filter(|&o| !always[o]).map(|o| self.rank_key(o, &reach)).filter(|key| key.perturbed || key.strength != 0.0).collect();
        let mut candidates: Vec<usize> = if touched.len() > k {
            touched.select_nth_unstable_by(k, RankKey::order);
            touched[..k].iter().map(|t| t.output).collect()
        } else {
            let mut chosen = always.clone();
            touched.iter().for_each(|t| chosen[t.output] = true);
            let rest = self.by_expression.iter().copied().filter(|&o| !chosen[o]).take(k - touched.len());
            touched.iter().map(|t| t.output).chain(rest).collect()
        };
        candidates.extend_from_slice(&self.by_expression[..expressed]);
        candidates.sort_unstable();
        let mut features = vec![0.0f32; candidates.len() * w];
        for (row, &o) in features.chunks_mut(w).zip(&candidates) {
            self.fill_row(o, &reach, row);
        }
        HeadRows { features, base: self.base(&reach), candidates: Some(candidates) }
    }

    /// What one perturbation reaches: the propagation at each output gene after each hop
    /// (by linearity, the sum of each perturbed gene's own) and the measured effects the
    /// head reads (the singles only for two or more perturbed genes).
    fn reach(&self, perturbed: &[usize]) -> Reach<'_> {
        let measured = self.measured(perturbed);
        let propagation = measured.nodes.iter().map(|&node| Cow::Borrowed(self.propagation_from(node))).collect();
        Reach { propagation, ..measured }
    }

    /// The perturbation's nodes and measured effects, no propagation yet.
    fn measured(&self, perturbed: &[usize]) -> Reach<'_> {
        let mut nodes = perturbed.to_vec();
        nodes.sort_unstable();
        nodes.dedup();
        let singles = if self.spec.additive_gate && perturbed.len() >= 2 { perturbed.iter().filter_map(|p| self.singles.get(p)).collect() } else { Vec::new() };
        let context = if self.spec.context_effects { perturbed.iter().filter_map(|p| self.context.get(p)).collect() } else { Vec::new() };
        Reach {
            n_perturbed: perturbed.len(),
            nodes,
            n_outputs: self.outputs.len(),
            hops: self.spec.propagation_hops,
            propagation: Vec::new(),
            singles,
            context,
        }
    }

    /// One gene's propagation, [hop][output][channel], computed once: a double's genes
    /// recur across a screen's perturbations, and each hop walks every edge reached.
    fn propagation_from(&self, node: usize) -> &[f64] {
        self.propagation[node].get_or_init(|| self.propagate(&[node]))
    }

    /// The perturbed genes propagated together, [hop][output][channel].
    fn propagate(&self, perturbed: &[usize]) -> Vec<f64> {
        let (g, hops) = (self.outputs.len(), self.spec.propagation_hops);
        let mut x = vec![0.0f64; self.n_nodes * CHANNELS];
        for &p in perturbed {
            x[p * CHANNELS..(p + 1) * CHANNELS].fill(1.0);
        }
        let mut out = vec![0.0f64; hops * g * CHANNELS];
        for k in 0..hops {
            x = self.hop(&x);
            for (o, &n) in self.outputs.iter().enumerate() {
                out[(k * g + o) * CHANNELS..(k * g + o + 1) * CHANNELS].copy_from_slice(&x[n * CHANNELS..(n + 1) * CHANNELS]);
            }
        }
        out
    }

    /// How output `o` ranks as a candidate (one logarithm per gene, not one per column:
    /// every gene is ranked, only the candidates get their rows).
    fn rank_key(&self, o: usize, reach: &Reach) -> RankKey {
        let propagated: f64 = (0..reach.hops).map(|k| reach.at(k, o).iter().map(|v| v.abs()).sum::<f64>()).sum();
        let singles: f32 = reach.singles.iter().map(|m| m[o].abs()).sum::<f32>() + reach.singles.iter().map(|m| m[o]).sum::<f32>().abs();
        let context: f32 = reach.context.iter().map(|m| m[o]).sum::<f32>().abs();
        RankKey {
            output: o,
            perturbed: reach.nodes.contains(&self.outputs[o]),
            strength: squash(propagated) + singles + context,
            control_mean: self.control_mean[o],
        }
    }

    /// Output `o`'s head features (a row of [`HeadInputs::build`]'s table).
    fn fill_row(&self, o: usize, reach: &Reach, row: &mut [f32]) {
        let hops = self.spec.propagation_hops;
        row.fill(0.0);
        for k in 0..hops {
            let x = reach.at(k, o);
            for c in 0..CHANNELS {
                row[1 + c * hops + k] = squash(x[c]);
            }
        }
        self.fill_measured(o, reach, row);
    }

    /// Output `o`'s columns besides the propagation: whether it is perturbed, the measured
    /// singles' and other contexts' effects on it, its control mean.
    fn fill_measured(&self, o: usize, reach: &Reach, row: &mut [f32]) {
        let (w, node, hops) = (row.len(), self.outputs[o], self.spec.propagation_hops);
        row[0] = if reach.nodes.contains(&node) { 1.0 } else { 0.0 };
        row[w - 1] = self.control_mean[o];
        let col = 1 + CHANNELS * hops;
        if !reach.singles.is_empty() {
            // One pass over the singles with std's folds written out (its f32 sum starts at
            // -0, its product at 1), rather than five iterator passes per gene.
            let (mut sum, mut product, mut max, mut min, mut magnitude) = (-0.0f32, 1.0f32, f32::NEG_INFINITY, f32::INFINITY, -0.0f32);
            for m in &reach.singles {
                let v = m[o];
                (sum, product, max, min, magnitude) = (sum + v, product * v, max.max(v), min.min(v), magnitude + v.abs());
            }
            let cells = &mut row[col..col + SINGLES];
            cells[0] = sum;
            cells[1] = if reach.singles.len() >= 2 { product } else { 0.0 };
            cells[2] = max;
            cells[3] = min;
            cells[4] = magnitude;
            cells[5] = reach.singles.len() as f32 / reach.n_perturbed as f32;
        }
        if !reach.context.is_empty() {
            let col = self.spec.context_column();
            row[col] = reach.context.iter().map(|m| m[o]).sum();
            row[col + 1] = reach.context.len() as f32 / reach.n_perturbed as f32;
        }
    }

    /// The additive gate's base over every output gene, as [`HeadInputs::build`] gives it.
    fn base(&self, reach: &Reach) -> Option<Vec<f32>> {
        self.spec.additive_gate.then(|| (0..self.outputs.len()).map(|o| reach.singles.iter().map(|m| m[o]).sum()).collect())
    }

    /// Features, row-major [outputs, width], and the base (the measured singles' sum when
    /// the additive gate is on and the perturbation has two or more genes).
    pub fn build(&self, perturbed: &[usize]) -> (Vec<f32>, Option<Vec<f32>>) {
        let reach = self.joint_reach(perturbed);
        let (w, g, hops) = (self.width(), self.outputs.len(), self.spec.propagation_hops);
        // The rows start at zero, so only the propagation's nonzero values are written:
        // `fill_row`'s values bit for bit, since squash keeps the +0 that `Reach::at`
        // makes of a ±0.
        let mut f = vec![0.0f32; g * w];
        let [propagation] = &reach.propagation[..] else { unreachable!("a joint reach has one propagation") };
        for k in 0..hops {
            let at_hop = &propagation[k * g * CHANNELS..(k + 1) * g * CHANNELS];
            for (row, x) in f.chunks_exact_mut(w).zip(at_hop.chunks_exact(CHANNELS)) {
                for c in (0..CHANNELS).filter(|&c| x[c] != 0.0) {
                    row[1 + c * hops + k] = squash(x[c]);
                }
            }
        }
        for (o, row) in f.chunks_exact_mut(w).enumerate() {
            self.fill_measured(o, &reach, row);
        }
        (f, self.base(&reach))
    }

    /// As [`HeadInputs::reach`], with the perturbed genes propagated together rather than
    /// each once and summed (the full table's propagation; the same to rounding).
    fn joint_reach(&self, perturbed: &[usize]) -> Reach<'_> {
        Reach { propagation: vec![Cow::Owned(self.propagate(perturbed))], ..self.measured(perturbed) }
    }
}

/// One perturbation's propagation and measured effects ([`HeadInputs::reach`]).
struct Reach<'a> {
    n_perturbed: usize,
    /// The perturbed nodes, each once.
    nodes: Vec<usize>,
    n_outputs: usize,
    hops: usize,
    /// Each perturbed node's propagation, [hop][output][channel] (or, from
    /// [`HeadInputs::joint_reach`], one for all of them).
    propagation: Vec<Cow<'a, [f64]>>,
    /// The perturbed genes' measured singles (two or more perturbed, additive gate).
    singles: Vec<&'a Vec<f32>>,
    /// The perturbed genes' effects in other contexts.
    context: Vec<&'a Vec<f32>>,
}

impl Reach<'_> {
    /// The three channels at output `o` after hop `k + 1`, summed over the perturbed
    /// nodes (propagation is linear).
    fn at(&self, k: usize, o: usize) -> [f64; CHANNELS] {
        let i = (k * self.n_outputs + o) * CHANNELS;
        let mut sum = [0.0f64; CHANNELS];
        for x in &self.propagation {
            sum.iter_mut().zip(&x[i..i + CHANNELS]).for_each(|(s, v)| *s += v);
        }
        sum
    }
}

/// How a candidate output gene ranks: perturbed first, then the strongest reached — the
/// log-compressed total propagation over every hop and channel, plus the magnitudes of
/// the measured singles and of their sum, plus that of the other contexts' summed effect
/// — then the most expressed in control (where the metric of record looks), then the
/// lower position.
#[derive(Debug, Clone, Copy)]
struct RankKey {
    output: usize,
    perturbed: bool,
    strength: f32,
    control_mean: f32,
}

impl RankKey {
    fn order(a: &RankKey, b: &RankKey) -> std::cmp::Ordering {
        b.perturbed.cmp(&a.perturbed).then(b.strength.total_cmp(&a.strength)).then(b.control_mean.total_cmp(&a.control_mean)).then(a.output.cmp(&b.output))
    }
}

/// Output positions by control mean, highest first, then the lower position: the order
/// of the genes a perturbation does not touch.
fn by_expression(control_mean: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..control_mean.len()).collect();
    order.sort_unstable_by(|&a, &b| control_mean[b].total_cmp(&control_mean[a]).then(a.cmp(&b)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_contexts_effects_are_summed_with_the_share_measured() {
        let spec = FeatureSpec { context_effects: true, ..Default::default() };
        assert_eq!(spec.head_width(), 1 + CONTEXT + 1);
        let context: HashMap<usize, Vec<f32>> = [(0, vec![1.0, -2.0]), (1, vec![0.5, 0.5])].into_iter().collect();
        let inputs = HeadInputs::new(&spec, 3, &[], &[0, 1], &[3.0, 4.0], HashMap::new()).with_context(context);
        let w = spec.head_width();
        let (f, base) = inputs.build(&[0, 2]);
        assert!(base.is_none(), "only the additive gate adds a base");
        // Output 0: node 0 is perturbed; node 2 has no effect measured elsewhere.
        assert_eq!(&f[..w], &[1.0, 1.0, 0.5, 3.0]);
        assert_eq!(&f[w..], &[0.0, -2.0, 0.5, 4.0]);
        let (f, _) = inputs.build(&[2]);
        assert_eq!(&f[..w], &[0.0, 0.0, 0.0, 3.0], "nothing measured elsewhere: zeros");
        let old: FeatureSpec =
            serde_json::from_str(r#"{"control_node_features":false,"prior_node_features":false,"propagation_hops":3,"additive_gate":true}"#).unwrap();
        assert!(!old.context_effects, "a model folder from before the option reads without it");
    }

    /// 0 -(+)-> 1 -(-)-> 2, and 3 -(unsigned, w 0.5)-> 2; outputs are nodes 0..4.
    fn inputs(spec: &FeatureSpec, singles: HashMap<usize, Vec<f32>>) -> HeadInputs {
        let edges = [
            Edge { source: 0, target: 1, weight: 1.0, sign: 1.0 },
            Edge { source: 1, target: 2, weight: 1.0, sign: -1.0 },
            Edge { source: 3, target: 2, weight: 0.5, sign: 0.0 },
        ];
        HeadInputs::new(spec, 4, &edges, &[0, 1, 2, 3], &[1.0, 2.0, 3.0, 4.0], singles)
    }

    #[test]
    fn propagation_follows_signs_and_hops() {
        let spec = FeatureSpec { propagation_hops: 2, ..Default::default() };
        assert_eq!(spec.head_width(), 1 + 3 * 2 + 1);
        let (f, base) = inputs(&spec, HashMap::new()).build(&[0]);
        assert!(base.is_none());
        let w = spec.head_width();
        let row = |o: usize| &f[o * w..(o + 1) * w];
        // Columns: self, signed h1, signed h2, sum h1, sum h2, mean h1, mean h2, control mean.
        let l2 = 2f32.ln(); // squash(1)
        assert_eq!(row(0), [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(row(1), [0.0, l2, 0.0, l2, 0.0, l2, 0.0, 2.0]);
        // Two hops reach gene 2 through a repression: signed -1; its mean divides by 1.5.
        let r2 = row(2);
        assert_eq!(r2[1], 0.0);
        assert!((r2[2] + l2).abs() < 1e-6 && (r2[4] - l2).abs() < 1e-6, "{r2:?}");
        assert!((r2[6] - (1.0f64 / 1.5).ln_1p() as f32).abs() < 1e-6, "{r2:?}");
        assert_eq!(row(3)[..7], [0.0; 7]);
    }

    #[test]
    fn the_gate_uses_only_other_conditions_singles() {
        let spec = FeatureSpec { additive_gate: true, ..Default::default() };
        let singles: HashMap<usize, Vec<f32>> = [(0, vec![1.0, 0.5, -1.0, 0.0]), (3, vec![2.0, -0.5, 0.5, 0.0])].into_iter().collect();
        let h = inputs(&spec, singles);
        let w = spec.head_width();
        // A single never sees its own measured effect.
        let (f, base) = h.build(&[0]);
        assert_eq!(base, Some(vec![0.0; 4]));
        assert!(f.chunks(w).all(|r| r[1..1 + SINGLES] == [0.0; SINGLES]));
        // A double of two measured singles: sum, product, max, min, |.| sum, share.
        let (f, base) = h.build(&[0, 3]);
        assert_eq!(base, Some(vec![3.0, 0.0, -0.5, 0.0]));
        assert_eq!(&f[w + 1..w + 1 + SINGLES], [0.0, -0.25, 0.5, -0.5, 1.0, 1.0]);
        // One of two measured: its effect, no product, share 1/2.
        let (f, base) = h.build(&[0, 2]);
        assert_eq!(base, Some(vec![1.0, 0.5, -1.0, 0.0]));
        assert_eq!(&f[1..1 + SINGLES], [1.0, 0.0, 1.0, 1.0, 1.0, 0.5]);
    }

    #[test]
    fn local_rows_keep_the_perturbed_then_the_reached_then_the_most_expressed_genes() {
        let singles: HashMap<usize, Vec<f32>> = [(0, vec![1.0, 0.5, -1.0, 0.0]), (3, vec![2.0, -0.5, 0.5, 0.0])].into_iter().collect();
        let full = FeatureSpec { propagation_hops: 1, additive_gate: true, ..Default::default() };
        let w = full.head_width();
        let (all, all_base) = inputs(&full, singles.clone()).build(&[0]);
        let local = |k: usize, perturbed: &[usize]| inputs(&FeatureSpec { local_genes: k, ..full.clone() }, singles.clone()).rows(perturbed);
        // Gene 0 is perturbed, gene 1 one hop downstream; of the unreached 2 and 3, gene 3
        // is the more expressed in control (4 against 3).
        let rows = local(2, &[0]);
        assert_eq!(rows.candidates.as_deref(), Some(&[0usize, 1][..]));
        assert_eq!(rows.features, all[..2 * w]);
        assert_eq!(rows.base, all_base, "the base covers every output gene");
        let rows = local(3, &[0]);
        assert_eq!(rows.candidates.as_deref(), Some(&[0usize, 1, 3][..]));
        assert_eq!(rows.features[2 * w..], all[3 * w..]);
        // A double: both perturbed genes, then gene 2, one hop from gene 3 and moved more
        // by the two measured singles (-1 and 0.5) than gene 1 (0.5 and -0.5).
        assert_eq!(local(3, &[0, 3]).candidates.as_deref(), Some(&[0usize, 2, 3][..]));
        assert_eq!(local(2, &[1]).candidates.as_deref(), Some(&[1usize, 2][..]), "gene 1 represses gene 2");
        // The most expressed gene (3) always among them: the perturbed gene keeps its place,
        // the reached gene 1 gives up its own, and the rows are still the full table's.
        let expressed = |k: usize, e: usize| inputs(&FeatureSpec { local_genes: k, local_expressed: e, ..full.clone() }, singles.clone()).rows(&[0]);
        let rows = expressed(2, 1);
        assert_eq!(rows.candidates.as_deref(), Some(&[0usize, 3][..]));
        assert_eq!((&rows.features[..w], &rows.features[w..]), (&all[..w], &all[3 * w..]));
        assert_eq!(expressed(3, 1).candidates.as_deref(), Some(&[0usize, 1, 3][..]));
        assert_eq!(expressed(3, 2).candidates.as_deref(), Some(&[0usize, 2, 3][..]));
        // As many candidates as genes, or none asked: every gene, no candidates.
        assert_eq!((full.local_genes_for(4), FeatureSpec { local_genes: 3, ..full.clone() }.local_genes_for(4)), (0, 3));
        assert_eq!(FeatureSpec { local_genes: 5, ..full.clone() }.local_genes_for(4), 0, "more asked than there are genes: every gene");
        let every = local(4, &[0]);
        assert_eq!((every.candidates, every.features), (None, all.clone()));
        assert_eq!(inputs(&full, singles).rows(&[0]).features, all);
    }

    /// The candidates and their rows, as ranking every output gene gives them.
    fn local_by_the_full_table(h: &HeadInputs, perturbed: &[usize], k: usize) -> HeadRows {
        let reach = h.reach(perturbed);
        let w = h.width();
        let mut all = vec![0.0f32; h.n_outputs() * w];
        all.chunks_mut(w).enumerate().for_each(|(o, row)| h.fill_row(o, &reach, row));
        // The table is build's: exactly for one gene, to rounding for several (their
        // propagations are summed rather than propagated together).
        let (built, base) = h.build(perturbed);
        for (a, b) in all.iter().zip(&built) {
            assert!(if perturbed.len() == 1 { a == b } else { (a - b).abs() <= 1e-6 * b.abs().max(1.0) }, "{perturbed:?}: {a} against {b}");
        }
        let mut keys: Vec<RankKey> = (0..h.n_outputs()).map(|o| h.rank_key(o, &reach)).collect();
        keys.sort_by(RankKey::order);
        let mut candidates: Vec<usize> = keys[..k].iter().map(|key| key.output).collect();
        candidates.sort_unstable();
        let features = candidates.iter().flat_map(|&o| all[o * w..(o + 1) * w].iter().copied()).collect();
        HeadRows { features, base, candidates: Some(candidates) }
    }

    #[test]
    fn local_rows_equal_the_full_tables_best_rows() {
        // 60 nodes, 40 of them outputs, sparse signed edges, tied control means, singles
        // measured for some nodes and effects elsewhere for others.
        let mut state = 7u64;
        let mut next = move |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let edges: Vec<Edge> = (0..45)
            .map(|_| Edge { source: next(60) as usize, target: next(60) as usize, weight: 0.25 + next(4) as f32 / 4.0, sign: next(3) as f32 - 1.0 })
            .collect();
        let outputs: Vec<usize> = (0..40).map(|o| o + 20).collect();
        let control: Vec<f32> = (0..40).map(|_| next(5) as f32).collect();
        let mut effect = |_| (0..40).map(|_| if next(3) == 0 { 0.0 } else { next(9) as f32 / 4.0 - 1.0 }).collect::<Vec<f32>>();
        let singles: HashMap<usize, Vec<f32>> = (0..60).filter(|n| n % 3 == 0).map(|n| (n, effect(n))).collect();
        let context: HashMap<usize, Vec<f32>> = (0..60).filter(|n| n % 4 == 0).map(|n| (n, effect(n))).collect();
        let perturbations: Vec<Vec<usize>> = vec![vec![0], vec![25], vec![59], vec![3, 6], vec![21, 40], vec![1, 2], vec![24, 30, 33]];
        for spec in [
            FeatureSpec { propagation_hops: 2, ..Default::default() },
            FeatureSpec { propagation_hops: 3, additive_gate: true, ..Default::default() },
            FeatureSpec { propagation_hops: 1, additive_gate: true, context_effects: true, ..Default::default() },
        ] {
            for k in [1, 2, 5, 17, 39] {
                let spec = FeatureSpec { local_genes: k, ..spec.clone() };
                let h = HeadInputs::new(&spec, 60, &edges, &outputs, &control, singles.clone()).with_context(context.clone());
                for p in &perturbations {
                    assert_eq!(h.rows(p), local_by_the_full_table(&h, p, k), "{spec:?} {p:?}");
                }
            }
        }
    }

    #[test]
    fn the_full_table_is_every_rows_fill_bit_for_bit() {
        // Signed edges into a cycle, singles with signed zeros, doubles and a triple: the
        // table's own loops (nonzero propagation only, two singles unrolled) against
        // filling each row in turn.
        let edges: Vec<Edge> =
            (0..12).map(|i| Edge { source: i % 6, target: (i * 5 + 1) % 6, weight: 0.3 + i as f32 / 7.0, sign: (i % 3) as f32 - 1.0 }).collect();
        let singles: HashMap<usize, Vec<f32>> =
            [(0, vec![-0.0, 0.0, 1.5, -2.0, 0.25, -0.0]), (1, vec![-0.0, -0.0, -1.5, 3.0, 0.0, 7.0]), (2, vec![0.0, 1.0, -0.0, 2.5, -4.0, 0.0])]
                .into_iter()
                .collect();
        let context: HashMap<usize, Vec<f32>> = [(1, vec![0.5, -0.0, 0.0, 1.0, -1.0, 2.0])].into_iter().collect();
        let spec = FeatureSpec { propagation_hops: 3, additive_gate: true, context_effects: true, ..Default::default() };
        let h = HeadInputs::new(&spec, 6, &edges, &[0, 1, 2, 3, 4, 5], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], singles).with_context(context);
        let w = h.width();
        for perturbed in [vec![0], vec![0, 1], vec![1, 2], vec![2, 4], vec![0, 1, 2]] {
            let reach = h.joint_reach(&perturbed);
            let mut rows = vec![1.0f32; 6 * w];
            rows.chunks_mut(w).enumerate().for_each(|(o, row)| h.fill_row(o, &reach, row));
            let bits = |v: &[f32]| v.iter().map(|a| a.to_bits()).collect::<Vec<u32>>();
            assert_eq!(bits(&h.build(&perturbed).0), bits(&rows), "{perturbed:?}");
        }
    }

    #[test]
    fn the_singles_columns_are_stds_folds_bit_for_bit() {
        // Signed zeros, mixed signs, two and three measured singles: the one-pass loop
        // against std's sum, product, max and min over the same values in the same order.
        let columns = [vec![-0.0f32, -0.0, 1.5, 0.0], vec![-0.0, 0.0, -2.0, -0.0], vec![-0.0, -0.0, 0.25, 3.0]];
        let singles: HashMap<usize, Vec<f32>> = columns.iter().cloned().enumerate().collect();
        let spec = FeatureSpec { additive_gate: true, ..Default::default() };
        let h = HeadInputs::new(&spec, 4, &[], &[0, 1, 2, 3], &[1.0; 4], singles);
        let w = spec.head_width();
        let bits = |v: &[f32]| v.iter().map(|a| a.to_bits()).collect::<Vec<u32>>();
        for perturbed in [vec![0, 1], vec![1, 0], vec![0, 1, 2]] {
            let (f, _) = h.build(&perturbed);
            for o in 0..4 {
                let v: Vec<f32> = perturbed.iter().map(|&p| columns[p][o]).collect();
                let expected = [
                    v.iter().copied().sum::<f32>(),
                    v.iter().copied().product::<f32>(),
                    v.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                    v.iter().copied().fold(f32::INFINITY, f32::min),
                    v.iter().map(|x| x.abs()).sum::<f32>(),
                ];
                assert_eq!(bits(&f[o * w + 1..o * w + 6]), bits(&expected), "{perturbed:?} gene {o}");
            }
        }
    }

    #[test]
    fn node_features_are_standardised_columns() {
        let spec = FeatureSpec { control_node_features: true, prior_node_features: true, ..Default::default() };
        let edges = [Edge { source: 0, target: 1, weight: 1.0, sign: 1.0 }, Edge { source: 0, target: 2, weight: 1.0, sign: -1.0 }];
        let f = node_features(&spec, 3, &edges, &[Some((2.0, 1.0)), Some((1.0, 0.5)), None]);
        let w = spec.node_width();
        assert_eq!(f.len(), 3 * w);
        for j in 0..w {
            let col: Vec<f32> = (0..3).map(|i| f[i * w + j]).collect();
            let mean: f32 = col.iter().sum::<f32>() / 3.0;
            assert!(mean.abs() < 1e-5, "column {j}: {col:?}");
        }
        // The measured flag separates the unmeasured node.
        let flag: Vec<f32> = (0..3).map(|i| f[i * w + 3]).collect();
        assert!(flag[0] == flag[1] && flag[2] < flag[0]);
    }
}

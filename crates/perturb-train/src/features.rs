//! Fixed inputs the model reads besides its learned vectors.
//!
//! - Node features (`--gene-features control,prior`): per graph node, control-expression
//!   statistics and network degrees, standardised per column; the GNN reads them.
//! - Head features (`--propagation K`, `--additive-gate`, `--other-context`): per
//!   (perturbation, output gene), computed from the perturbation, the network, the
//!   measured singles and the same perturbations' effects in other contexts of the screen;
//!   the gene-wise head reads them. They are the same at training and prediction time, and
//!   depend only on training data.

use std::collections::HashMap;

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
}

/// Signed log compression: keeps sign and order, tames multi-hop counts through hubs.
fn squash(v: f64) -> f32 {
    (v.signum() * v.abs().ln_1p()) as f32
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

    /// Features, row-major [outputs, width], and the base (the measured singles' sum when
    /// the additive gate is on and the perturbation has two or more genes).
    pub fn build(&self, perturbed: &[usize]) -> (Vec<f32>, Option<Vec<f32>>) {
        let (g, w) = (self.outputs.len(), self.width());
        let mut f = vec![0.0f32; g * w];
        let mut indicator = vec![0.0f64; self.n_nodes];
        for &p in perturbed {
            indicator[p] = 1.0;
        }
        for (o, &node) in self.outputs.iter().enumerate() {
            f[o * w] = indicator[node] as f32;
            f[o * w + w - 1] = self.control_mean[o];
        }
        // Columns: channel-major, hop-minor (signed h1..hK, sum h1..hK, mean h1..hK).
        let hops = self.spec.propagation_hops;
        let mut x: Vec<f64> = indicator.iter().flat_map(|&v| [v; CHANNELS]).collect();
        for k in 0..hops {
            x = self.hop(&x);
            for (o, &node) in self.outputs.iter().enumerate() {
                for c in 0..CHANNELS {
                    f[o * w + 1 + c * hops + k] = squash(x[node * CHANNELS + c]);
                }
            }
        }
        let col = 1 + CHANNELS * hops;
        let mut base = None;
        if self.spec.additive_gate {
            let measured: Vec<&Vec<f32>> = if perturbed.len() >= 2 { perturbed.iter().filter_map(|p| self.singles.get(p)).collect() } else { Vec::new() };
            if !measured.is_empty() {
                let share = measured.len() as f32 / perturbed.len() as f32;
                let mut sum = vec![0.0f32; g];
                for o in 0..g {
                    let v = measured.iter().map(|m| m[o]);
                    let s: f32 = v.clone().sum();
                    let row = &mut f[o * w + col..o * w + col + SINGLES];
                    row[0] = s;
                    row[1] = if measured.len() >= 2 { v.clone().product() } else { 0.0 };
                    row[2] = v.clone().fold(f32::NEG_INFINITY, f32::max);
                    row[3] = v.clone().fold(f32::INFINITY, f32::min);
                    row[4] = v.map(f32::abs).sum();
                    row[5] = share;
                    sum[o] = s;
                }
                base = Some(sum);
            }
            // A perturbation without measured singles still gets a (zero) base, so every
            // batch of a gated model carries one.
            base = base.or_else(|| Some(vec![0.0; g]));
        }
        if self.spec.context_effects {
            let measured: Vec<&Vec<f32>> = perturbed.iter().filter_map(|p| self.context.get(p)).collect();
            if !measured.is_empty() {
                let share = measured.len() as f32 / perturbed.len() as f32;
                let col = self.spec.context_column();
                for o in 0..g {
                    f[o * w + col] = measured.iter().map(|m| m[o]).sum();
                    f[o * w + col + 1] = share;
                }
            }
        }
        (f, base)
    }
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

//! The calibration report: the simulated screen measured with the benchmark's own
//! definitions, beside the real Norman 2019 figures.

use perturb_core::metrics::{additive_prediction, l2_over, top_expressed_genes};
use serde::Serialize;

use crate::design::{Calibration, Design, Modality};
use crate::sample::{CellPlan, Sampled};
use crate::truth::PriorEdge;

/// Real Replogle 2022 figures for how informative the regulon prior is.
const REPLOGLE_PRIOR_ENRICHMENT: &str = include_str!("../../../data/calibration/replogle2022_prior_enrichment.json");

#[derive(Debug, Clone, serde::Deserialize)]
struct RealEnrichment {
    universe_genes: usize,
    list_length: usize,
    min_targets: usize,
    k562: RealLine,
    rpe1: RealLine,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct RealLine {
    pooled_enrichment: f64,
}

/// The prior targets of every measured gene (indices into the screen's genes).
pub fn prior_targets(prior: &[PriorEdge], n_genes: usize) -> Vec<Vec<usize>> {
    let mut targets = vec![Vec::new(); n_genes];
    for e in prior {
        targets[e.source].push(e.target);
    }
    targets
}

/// Replogle's statistic on the simulated singles: over perturbed regulators with at least
/// `min_targets` prior targets, Σ (prior targets among the regulator's top-N responders) /
/// Σ (expected by chance), with N the same share of the measured genes as Replogle's
/// 1,000 of 7,225. Replogle's lists hold the genes that go *up* after a knockdown; after
/// an activation the mirror image is the genes that go *down*. Returns (regulators, pooled).
fn prior_enrichment(design: &Design, genes: &[String], pb: &[Vec<f64>], prior_targets: &[Vec<usize>], real: &RealEnrichment) -> (usize, f64) {
    let n_genes = genes.len();
    let index: std::collections::HashMap<&str, usize> = genes.iter().enumerate().map(|(i, g)| (g.as_str(), i)).collect();
    let list_length = ((n_genes as f64) * real.list_length as f64 / real.universe_genes as f64).round().max(1.0) as usize;
    let direction = match design.preset.modality() {
        Modality::Interference => 1.0,
        Modality::Activation => -1.0,
    };
    let (mut hits, mut expected, mut regulators) = (0.0, 0.0, 0usize);
    for (c, condition) in design.conditions.iter().enumerate() {
        let [target] = condition.targets.as_slice() else { continue };
        let Some(&t) = index.get(target.as_str()) else { continue };
        let targets: std::collections::HashSet<usize> = prior_targets[t].iter().copied().filter(|&g| g != t).collect();
        if targets.len() < real.min_targets {
            continue;
        }
        let mut responders: Vec<usize> = (0..n_genes).filter(|&g| g != t).collect();
        responders.sort_by(|&a, &b| (direction * (pb[c][b] - pb[0][b])).total_cmp(&(direction * (pb[c][a] - pb[0][a]))).then(a.cmp(&b)));
        hits += responders[..list_length.min(responders.len())].iter().filter(|g| targets.contains(g)).count() as f64;
        expected += targets.len() as f64 * list_length as f64 / (n_genes - 1) as f64;
        regulators += 1;
    }
    (regulators, if expected > 0.0 { hits / expected } else { f64::NAN })
}

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    pub n_cells: usize,
    pub n_genes: usize,
    pub n_doubles: usize,
    pub mean_l2_no_change: f64,
    pub mean_l2_additive: f64,
    /// no-change / additive (real Norman: 5.616 / 2.766 = 2.03).
    pub l2_ratio: f64,
    pub real_l2_ratio: f64,
    /// Share of double x top-1000-gene entries beyond the local-FDR thresholds on
    /// observed - additive (real: 4.1%).
    pub non_additive_share: f64,
    pub real_non_additive_share: f64,
    /// Kolmogorov-Smirnov distance between the simulated control means of the top genes
    /// and the real K562 control baseline (same number of genes).
    pub control_mean_ks: f64,
    pub median_umis_per_cell: f64,
    pub median_genes_per_cell: f64,
    /// Perturbed regulators with enough prior targets for the enrichment statistic.
    pub enrichment_regulators: usize,
    /// Enrichment of a perturbed regulator's prior targets among its top responders.
    pub prior_enrichment: f64,
    pub real_prior_enrichment_k562: f64,
    pub real_prior_enrichment_rpe1: f64,
}

/// Pseudobulk (mean of log1p of counts normalised to 1e4) per condition.
pub fn pseudobulk(sampled: &Sampled, plan: &[CellPlan], n_conditions: usize, n_genes: usize) -> Vec<Vec<f64>> {
    let mut sums = vec![vec![0.0; n_genes]; n_conditions];
    let mut cells = vec![0usize; n_conditions];
    for (c, &cond) in plan.iter().enumerate() {
        let (lo, hi) = (sampled.indptr[c] as usize, sampled.indptr[c + 1] as usize);
        let total: f64 = sampled.counts[lo..hi].iter().map(|&v| f64::from(v)).sum();
        cells[cond as usize] += 1;
        if total == 0.0 {
            continue;
        }
        let row = &mut sums[cond as usize];
        for k in lo..hi {
            row[sampled.indices[k] as usize] += (f64::from(sampled.counts[k]) * 1e4 / total).ln_1p();
        }
    }
    for (row, &n) in sums.iter_mut().zip(&cells) {
        row.iter_mut().for_each(|v| *v /= n.max(1) as f64);
    }
    sums
}

pub fn measure(
    design: &Design,
    genes: &[String],
    sampled: &Sampled,
    plan: &[CellPlan],
    calibration: &Calibration,
    prior_targets: &[Vec<usize>],
) -> CalibrationReport {
    let n_genes = design.n_genes;
    let pb = pseudobulk(sampled, plan, design.conditions.len(), n_genes);
    let control = &pb[0];
    let top = top_expressed_genes(control, 1000.min(n_genes));
    let single_of = |gene: &str| design.conditions.iter().position(|c| c.targets.len() == 1 && c.targets[0] == gene);
    let thresholds = &calibration.non_additive_thresholds;
    let (mut l2_nc, mut l2_add, mut beyond, mut entries, mut n_doubles) = (0.0, 0.0, 0usize, 0usize, 0usize);
    for (i, c) in design.conditions.iter().enumerate() {
        if c.targets.len() != 2 {
            continue;
        }
        let (Some(a), Some(b)) = (single_of(&c.targets[0]), single_of(&c.targets[1])) else { continue };
        let additive = additive_prediction(&pb[a], &pb[b], control);
        l2_nc += l2_over(&pb[i], control, &top);
        l2_add += l2_over(&pb[i], &additive, &top);
        for &g in &top {
            let diff = pb[i][g] - additive[g];
            if diff > thresholds.synergy_above || diff < thresholds.buffering_below {
                beyond += 1;
            }
            entries += 1;
        }
        n_doubles += 1;
    }
    let nd = n_doubles.max(1) as f64;
    // Control-mean distribution over as many top genes as the real baseline has.
    let k = calibration.k562_control_baseline_genes.min(n_genes);
    let mut sim: Vec<f64> = top_expressed_genes(control, k).iter().map(|&g| control[g]).collect();
    sim.sort_by(f64::total_cmp);
    let ks = sim
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let real_cdf = cdf_from_quantiles(&calibration.k562_control_baseline_quantiles, v);
            let lo = i as f64 / sim.len() as f64;
            let hi = (i + 1) as f64 / sim.len() as f64;
            (real_cdf - lo).abs().max((real_cdf - hi).abs())
        })
        .fold(0.0, f64::max);
    let mut umis: Vec<f64> =
        (0..plan.len()).map(|c| sampled.counts[sampled.indptr[c] as usize..sampled.indptr[c + 1] as usize].iter().map(|&v| f64::from(v)).sum()).collect();
    let mut detected: Vec<f64> = (0..plan.len()).map(|c| (sampled.indptr[c + 1] - sampled.indptr[c]) as f64).collect();
    let real_enrichment: RealEnrichment = serde_json::from_str(REPLOGLE_PRIOR_ENRICHMENT).expect("embedded Replogle figures parse");
    let (enrichment_regulators, prior_enrichment) = prior_enrichment(design, genes, &pb, prior_targets, &real_enrichment);
    let real = &calibration.published_l2_mean;
    let real_ratio = real.get("no_change").copied().unwrap_or(f64::NAN) / real.get("additive_model").copied().unwrap_or(f64::NAN);
    CalibrationReport {
        n_cells: plan.len(),
        n_genes,
        n_doubles,
        mean_l2_no_change: l2_nc / nd,
        mean_l2_additive: l2_add / nd,
        l2_ratio: l2_nc / l2_add,
        real_l2_ratio: real_ratio,
        non_additive_share: beyond as f64 / entries.max(1) as f64,
        real_non_additive_share: calibration.non_additive_share,
        control_mean_ks: ks,
        median_umis_per_cell: median(&mut umis),
        median_genes_per_cell: median(&mut detected),
        enrichment_regulators,
        prior_enrichment,
        real_prior_enrichment_k562: real_enrichment.k562.pooled_enrichment,
        real_prior_enrichment_rpe1: real_enrichment.rpe1.pooled_enrichment,
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The CDF of a distribution given by equally spaced quantiles, at `x`.
fn cdf_from_quantiles(q: &[f64], x: f64) -> f64 {
    if x <= q[0] {
        return 0.0;
    }
    if x >= q[q.len() - 1] {
        return 1.0;
    }
    let i = q.partition_point(|&v| v <= x) - 1;
    let span = q[i + 1] - q[i];
    let frac = if span > 0.0 { (x - q[i]) / span } else { 0.0 };
    (i as f64 + frac) / (q.len() - 1) as f64
}

impl CalibrationReport {
    /// Human-readable lines, each figure beside the real one.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!("calibration on {} cells x {} genes, {} doubles with both singles", self.n_cells, self.n_genes, self.n_doubles),
            format!(
                "  mean L2 (top-1000 genes): no-change {:.3}, additive {:.3}; ratio {:.2} (real Norman {:.2}, off by {:+.0}%)",
                self.mean_l2_no_change,
                self.mean_l2_additive,
                self.l2_ratio,
                self.real_l2_ratio,
                100.0 * (self.l2_ratio / self.real_l2_ratio - 1.0)
            ),
            format!(
                "  non-additive double x gene entries: {:.2}% (real {:.2}%, off by {:+.2} points)",
                100.0 * self.non_additive_share,
                100.0 * self.real_non_additive_share,
                100.0 * (self.non_additive_share - self.real_non_additive_share)
            ),
            format!("  control-mean distribution vs real K562 baseline: KS distance {:.3}", self.control_mean_ks),
            format!("  median UMIs per cell {:.0}, genes detected per cell {:.0}", self.median_umis_per_cell, self.median_genes_per_cell),
            format!(
                "  prior targets among a perturbed regulator's top responders: {:.2}x chance over {} regulators (real Replogle K562 {:.2}x, off by {:+.0}%; RPE1 {:.2}x, off by {:+.0}%)",
                self.prior_enrichment,
                self.enrichment_regulators,
                self.real_prior_enrichment_k562,
                100.0 * (self.prior_enrichment / self.real_prior_enrichment_k562 - 1.0),
                self.real_prior_enrichment_rpe1,
                100.0 * (self.prior_enrichment / self.real_prior_enrichment_rpe1 - 1.0)
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::quantile_at;

    #[test]
    fn prior_enrichment_counts_prior_targets_among_the_top_responders_in_the_modality_s_direction() {
        use crate::design::{ConditionDesign, Preset};
        let genes: Vec<String> = (0..200).map(|g| format!("G{g}")).collect();
        let conditions = vec![ConditionDesign { targets: vec![], n_cells: 10 }, ConditionDesign { targets: vec!["G0".into()], n_cells: 10 }];
        let mut pb = vec![vec![0.0; 200]; 2];
        (1..=20).for_each(|g| pb[1][g] = 1.0);
        let prior: Vec<PriorEdge> = (1..=20).map(|t| PriorEdge { source: 0, target: t, sign: -1 }).collect();
        let targets = prior_targets(&prior, 200);
        let real: RealEnrichment = serde_json::from_str(REPLOGLE_PRIOR_ENRICHMENT).unwrap();
        // A knockdown whose 20 prior targets all go up: N = 28 of 199 genes, so all 20 are hits.
        let knockdown = Design { preset: Preset::ReplogleLike, n_genes: 200, conditions: conditions.clone() };
        let (n, pooled) = prior_enrichment(&knockdown, &genes, &pb, &targets, &real);
        assert_eq!(n, 1);
        assert!((pooled - 20.0 / (20.0 * 28.0 / 199.0)).abs() < 1e-9, "{pooled}");
        // After an activation the statistic reads the genes that go down: none of them.
        let activation = Design { preset: Preset::NormanLike, n_genes: 200, conditions };
        assert_eq!(prior_enrichment(&activation, &genes, &pb, &targets, &real).1, 0.0);
    }

    #[test]
    fn cdf_inverts_quantile_table() {
        let q = [0.0, 1.0, 3.0];
        assert_eq!(cdf_from_quantiles(&q, 1.0), 0.5);
        assert_eq!(cdf_from_quantiles(&q, 2.0), 0.75);
        assert!((quantile_at(&q, 0.75) - 2.0).abs() < 1e-12);
    }
}

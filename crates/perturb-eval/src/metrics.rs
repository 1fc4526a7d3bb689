//! The field's metrics, per test perturbation.

use perturb_core::metrics::l2_over;

/// Pearson correlation of two vectors over `genes` (NaN when either is constant).
pub fn pearson_over(a: &[f64], b: &[f64], genes: &[usize]) -> f64 {
    let n = genes.len() as f64;
    let ma = genes.iter().map(|&g| a[g]).sum::<f64>() / n;
    let mb = genes.iter().map(|&g| b[g]).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for &g in genes {
        let (x, y) = (a[g] - ma, b[g] - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    if saa == 0.0 || sbb == 0.0 {
        f64::NAN
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// The `k` genes most differentially expressed between a condition and the control by
/// Welch's t statistic (|t|, ties by gene index); genes with no variance are skipped.
pub fn top_de_genes(mean: &[f64], var: &[f64], n: f64, control: &[f64], control_var: &[f64], n_control: f64, k: usize) -> Vec<usize> {
    let mut t: Vec<(f64, usize)> = (0..mean.len())
        .filter_map(|g| {
            let se = (var[g] / n + control_var[g] / n_control).sqrt();
            (se > 0.0 && se.is_finite()).then(|| (((mean[g] - control[g]) / se).abs(), g))
        })
        .collect();
    t.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    t.into_iter().take(k).map(|(_, g)| g).collect()
}

pub fn mse_over(a: &[f64], b: &[f64], genes: &[usize]) -> f64 {
    if genes.is_empty() {
        return f64::NAN;
    }
    genes.iter().map(|&g| (a[g] - b[g]).powi(2)).sum::<f64>() / genes.len() as f64
}

/// Rank (1 = best) of the true perturbation `truth` among `observed` effects by L1
/// distance to the predicted effect, over `genes`.
pub fn discrimination_rank(predicted_effect: &[f64], observed_effects: &[Vec<f64>], truth: usize, genes: &[usize]) -> usize {
    let d = |o: &Vec<f64>| genes.iter().map(|&g| (predicted_effect[g] - o[g]).abs()).sum::<f64>();
    let own = d(&observed_effects[truth]);
    1 + observed_effects.iter().enumerate().filter(|(j, o)| *j != truth && d(o) < own).count()
}

pub fn l2(a: &[f64], b: &[f64], genes: &[usize]) -> f64 {
    l2_over(a, b, genes)
}

/// Mean absolute error between two profiles over every gene (cell-eval's `mae`).
pub fn mae(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len().max(1) as f64
}

/// The `n` genes with the largest |effect|, ties by gene index.
pub fn top_by_magnitude(effect: &[f64], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..effect.len()).collect();
    order.sort_by(|&a, &b| effect[b].abs().total_cmp(&effect[a].abs()).then(a.cmp(&b)));
    order.truncate(n);
    order
}

/// DE-gene overlap at `n` (the Virtual Cell Challenge's DES, with the top-`n` genes by
/// |effect| standing in for its Wilcoxon-significant genes): the share of the truth's
/// top-`n` genes that are also among the prediction's top-`n`. A gene the prediction does
/// not move at all is never among its top genes (so `no_change` scores 0, as cell-eval
/// scores a prediction with no DE genes), rather than filling the list in gene order.
pub fn des_overlap(predicted_effect: &[f64], true_top: &[usize], n: usize) -> f64 {
    if true_top.is_empty() {
        return f64::NAN;
    }
    let predicted: std::collections::HashSet<usize> = top_by_magnitude(predicted_effect, n).into_iter().filter(|&g| predicted_effect[g] != 0.0).collect();
    true_top.iter().filter(|g| predicted.contains(g)).count() as f64 / true_top.len() as f64
}

/// cell-eval's L1 perturbation discrimination score: [`discrimination_rank`] over `genes`
/// (every gene but the perturbation's own targets), as 1 − (number strictly closer) / N
/// rather than normalised to [0, 1]. 1 is best; a prediction closest to every other
/// perturbation scores 1/N.
pub fn pds_l1(predicted_effect: &[f64], observed_effects: &[Vec<f64>], truth: usize, genes: &[usize]) -> f64 {
    let closer = discrimination_rank(predicted_effect, observed_effects, truth, genes) - 1;
    1.0 - closer as f64 / observed_effects.len() as f64
}

/// The Virtual Cell Challenge's score against a baseline (cell-eval's
/// `score_agg_metrics`): MAE as 1 − model / baseline, PDS and DES as
/// (model − baseline) / (1 − baseline), each undefined one counted 0 and negatives clipped
/// to 0, then averaged. Inputs are means over the same perturbations.
pub fn vcc_score(model: VccInputs, baseline: VccInputs) -> f64 {
    let clip = |v: f64| if v.is_nan() { 0.0 } else { v.max(0.0) };
    let mae = clip(1.0 - model.mae / baseline.mae);
    let pds = clip((model.pds_l1 - baseline.pds_l1) / (1.0 - baseline.pds_l1));
    let des = clip((model.des - baseline.des) / (1.0 - baseline.des));
    (mae + pds + des) / 3.0
}

/// The three means [`vcc_score`] combines.
#[derive(Debug, Clone, Copy)]
pub struct VccInputs {
    pub mae: f64,
    pub pds_l1: f64,
    pub des: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_hand_computed() {
        let a = [1.0, 2.0, 3.0, 100.0];
        let b = [2.0, 4.0, 7.0, 0.0];
        // Over the first three: r = 0.9933...
        let r = pearson_over(&a, &b, &[0, 1, 2]);
        assert!((r - 0.993_399_267_798_783).abs() < 1e-12, "{r}");
        assert!(pearson_over(&[1.0, 1.0], &[0.0, 1.0], &[0, 1]).is_nan());
    }

    #[test]
    fn welch_picks_the_most_significant_genes() {
        let control = [1.0, 1.0, 1.0];
        let cvar = [0.1, 0.1, 0.1];
        // gene 0 moves by 1 with little noise, gene 1 by 2 with much noise, gene 2 not at all
        let top = top_de_genes(&[2.0, 3.0, 1.0], &[0.1, 10.0, 0.1], 10.0, &control, &cvar, 10.0, 2);
        assert_eq!(top, [0, 1]);
    }

    #[test]
    fn des_overlap_counts_shared_top_genes() {
        let truth = top_by_magnitude(&[3.0, -2.0, 0.1, 0.0], 2);
        assert_eq!(truth, [0, 1]);
        assert_eq!(des_overlap(&[0.0, -5.0, 4.0, 0.0], &truth, 2), 0.5);
        assert_eq!(des_overlap(&[1.0, 1.0, 0.0, 0.0], &truth, 2), 1.0);
        assert_eq!(des_overlap(&[0.0; 4], &truth, 2), 0.0, "no change moves no gene");
        assert_eq!(des_overlap(&[0.0, 0.0, 0.0, 2.0], &truth, 2), 0.0, "unmoved genes do not pad the list");
    }

    #[test]
    fn pds_leaves_the_targets_out_and_scores_one_for_the_closest() {
        let observed = vec![vec![0.0, 0.0, 9.0], vec![1.0, 1.0, -9.0], vec![5.0, 5.0, 0.0]];
        // Without gene 2 the prediction is closest to perturbation 1; with it, to 0.
        assert_eq!(pds_l1(&[0.9, 1.1, 9.0], &observed, 1, &[0, 1]), 1.0);
        assert!((pds_l1(&[0.9, 1.1, 9.0], &observed, 1, &[0, 1, 2]) - (1.0 - 2.0 / 3.0)).abs() < 1e-12);
    }

    #[test]
    fn vcc_score_normalises_and_clips() {
        let base = VccInputs { mae: 0.2, pds_l1: 0.5, des: 0.2 };
        let model = VccInputs { mae: 0.1, pds_l1: 0.75, des: 0.1 };
        // mae 0.5, pds 0.5, des clipped to 0.
        assert!((vcc_score(model, base) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(vcc_score(base, base), 0.0);
    }

    #[test]
    fn discrimination_rank_counts_closer_perturbations() {
        let observed = vec![vec![0.0, 0.0], vec![1.0, 1.0], vec![5.0, 5.0]];
        assert_eq!(discrimination_rank(&[0.9, 1.1], &observed, 1, &[0, 1]), 1);
        assert_eq!(discrimination_rank(&[0.1, 0.0], &observed, 1, &[0, 1]), 2);
        assert_eq!(discrimination_rank(&[0.1, 0.0], &observed, 2, &[0, 1]), 3);
    }
}

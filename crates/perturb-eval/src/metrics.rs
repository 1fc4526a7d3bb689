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
    fn discrimination_rank_counts_closer_perturbations() {
        let observed = vec![vec![0.0, 0.0], vec![1.0, 1.0], vec![5.0, 5.0]];
        assert_eq!(discrimination_rank(&[0.9, 1.1], &observed, 1, &[0, 1]), 1);
        assert_eq!(discrimination_rank(&[0.1, 0.0], &observed, 1, &[0, 1]), 2);
        assert_eq!(discrimination_rank(&[0.1, 0.0], &observed, 2, &[0, 1]), 3);
    }
}

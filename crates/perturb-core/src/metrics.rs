//! The benchmark's definitions, shared by every stage that reports them (the simulator's
//! calibration report and the evaluator), so that a figure means the same everywhere.

/// Indices of the `k` genes with the highest control mean, highest first, ties by index
/// ("the 1,000 genes most expressed in control" of Ahlmann-Eltze et al. 2025).
pub fn top_expressed_genes(control_mean: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..control_mean.len()).collect();
    order.sort_by(|&a, &b| control_mean[b].total_cmp(&control_mean[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// Euclidean distance between two profiles over the genes in `genes`.
pub fn l2_over(a: &[f64], b: &[f64], genes: &[usize]) -> f64 {
    genes.iter().map(|&g| (a[g] - b[g]).powi(2)).sum::<f64>().sqrt()
}

/// The additive prediction of a double from its singles: `A + B - control`.
pub fn additive_prediction(single_a: &[f64], single_b: &[f64], control: &[f64]) -> Vec<f64> {
    single_a.iter().zip(single_b).zip(control).map(|((a, b), c)| a + b - c).collect()
}

/// numpy's median (NaN if any value is NaN, like `np.median`).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() || v.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_genes_break_ties_by_index() {
        assert_eq!(top_expressed_genes(&[1.0, 3.0, 3.0, 0.5], 3), [1, 2, 0]);
    }

    #[test]
    fn l2_uses_only_the_chosen_genes() {
        assert_eq!(l2_over(&[0.0, 3.0, 100.0], &[0.0, 0.0, 0.0], &[0, 1]), 3.0);
    }

    #[test]
    fn additive_is_sum_of_shifts() {
        assert_eq!(additive_prediction(&[2.0], &[3.0], &[1.0]), [4.0]);
    }
}

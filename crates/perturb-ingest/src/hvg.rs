//! Highly-variable genes with scanpy's semantics (`sc.pp.highly_variable_genes`,
//! scanpy 1.11), for the flavors `seurat`, `cell_ranger` and `seurat_v3`.
//!
//! The functions here work on per-gene moments that the ingest pass has already
//! accumulated, so that selecting HVGs never needs the matrix in memory:
//! - `seurat` expects the mean and variance (ddof = 1) of *normalised counts*
//!   (scanpy takes `expm1` of the log-normalised matrix first);
//! - `cell_ranger` expects the mean and variance of the *log-normalised* values (scanpy
//!   applies no `expm1` for it);
//! - `seurat_v3` expects the mean and variance of *raw counts*, fits a LOESS trend of
//!   log10 variance on log10 mean, and then needs one more pass over the counts for the
//!   clipped sums ([`SeuratV3Trend::clip`] gives the clip value of each gene).
//!
//! Where scanpy would fail (duplicate percentile edges in `cell_ranger`), the edges are
//! de-duplicated instead, as `pd.cut(..., duplicates="drop")` would.

use perturb_core::metrics::median;

use crate::loess;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HvgFlavor {
    Seurat,
    CellRanger,
    SeuratV3,
}

perturb_core::named_enum!(HvgFlavor, "HVG flavor", as_str, { Seurat => "seurat", CellRanger => "cell_ranger", SeuratV3 => "seurat_v3" });

/// How genes are selected: the `n` with the highest normalised dispersion/variance, or
/// scanpy's cutoffs on mean and normalised dispersion (dispersion-based flavors only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HvgSelection {
    TopGenes(usize),
    Cutoffs { min_mean: f64, max_mean: f64, min_disp: f64, max_disp: f64 },
}

impl HvgSelection {
    /// scanpy's default cutoffs.
    pub const SCANPY_CUTOFFS: HvgSelection = HvgSelection::Cutoffs { min_mean: 0.0125, max_mean: 3.0, min_disp: 0.5, max_disp: f64::INFINITY };
}

/// The per-gene output, in scanpy's column names; NaN where a flavor does not define it.
#[derive(Debug, Clone, PartialEq)]
pub struct HvgTable {
    pub means: Vec<f64>,
    pub dispersions: Vec<f64>,
    pub dispersions_norm: Vec<f64>,
    pub variances: Vec<f64>,
    pub variances_norm: Vec<f64>,
    pub highly_variable: Vec<bool>,
    pub highly_variable_rank: Vec<f64>,
}

impl HvgTable {
    fn nan(n: usize) -> HvgTable {
        HvgTable {
            means: vec![f64::NAN; n],
            dispersions: vec![f64::NAN; n],
            dispersions_norm: vec![f64::NAN; n],
            variances: vec![f64::NAN; n],
            variances_norm: vec![f64::NAN; n],
            highly_variable: vec![false; n],
            highly_variable_rank: vec![f64::NAN; n],
        }
    }

    pub fn n_selected(&self) -> usize {
        self.highly_variable.iter().filter(|&&b| b).count()
    }
}

/// `seurat` or `cell_ranger`: dispersion = variance / mean, normalised within bins of
/// mean expression (20 equal-width bins of log1p(mean) for seurat; the 10th, 15th, …,
/// 100th percentiles of the mean for cell_ranger).
pub fn dispersion_based(flavor: HvgFlavor, mean: &[f64], var: &[f64], selection: HvgSelection, n_bins: usize) -> HvgTable {
    assert!(flavor != HvgFlavor::SeuratV3, "seurat_v3 is variance-based");
    let n = mean.len();
    let mut means: Vec<f64> = mean.iter().map(|&m| if m == 0.0 { 1e-12 } else { m }).collect();
    let mut dispersions: Vec<f64> = means.iter().zip(var).map(|(&m, &v)| v / m).collect();
    if flavor == HvgFlavor::Seurat {
        for d in &mut dispersions {
            *d = if *d == 0.0 { f64::NAN } else { d.ln() };
        }
        for m in &mut means {
            *m = m.ln_1p();
        }
    }
    let bins = match flavor {
        HvgFlavor::Seurat => equal_width_bins(&means, n_bins),
        _ => percentile_bins(&means),
    };
    let n_groups = bins.iter().copied().max().map_or(0, |b| b + 1);
    let mut members: Vec<Vec<f64>> = vec![Vec::new(); n_groups];
    for (g, &b) in bins.iter().enumerate() {
        members[b].push(dispersions[g]);
    }
    // (avg, dev) per bin, as pandas' groupby would compute them.
    let stats: Vec<(f64, f64)> = members
        .iter()
        .map(|d| match flavor {
            HvgFlavor::Seurat => {
                let finite: Vec<f64> = d.iter().copied().filter(|x| !x.is_nan()).collect();
                let (avg, dev) = mean_and_std(&finite);
                // A bin with a single gene has no standard deviation; scanpy then sets its
                // normalised dispersion to 1 by dividing the dispersion by itself.
                if dev.is_nan() {
                    (0.0, avg)
                } else {
                    (avg, dev)
                }
            }
            _ => {
                let med = median(d);
                let abs_dev: Vec<f64> = d.iter().map(|x| (x - med).abs()).collect();
                (med, median(&abs_dev) / MAD_NORMAL_CONSTANT)
            }
        })
        .collect();
    let dispersions_norm: Vec<f64> = (0..n).map(|g| (dispersions[g] - stats[bins[g]].0) / stats[bins[g]].1).collect();
    let highly_variable = match selection {
        HvgSelection::Cutoffs { min_mean, max_mean, min_disp, max_disp } => (0..n)
            .map(|g| {
                let d = nan_to_num(dispersions_norm[g], 0.0);
                means[g] > min_mean && means[g] < max_mean && d > min_disp && d < max_disp
            })
            .collect(),
        HvgSelection::TopGenes(k) => {
            let mut finite: Vec<f64> = dispersions_norm.iter().copied().filter(|x| !x.is_nan()).collect();
            if finite.is_empty() {
                vec![false; n]
            } else {
                finite.sort_by(|a, b| b.total_cmp(a));
                let cutoff = finite[k.min(n).min(finite.len()).max(1) - 1];
                dispersions_norm.iter().map(|&d| nan_to_num(d, f64::NEG_INFINITY) >= cutoff).collect()
            }
        }
    };
    HvgTable { means, dispersions, dispersions_norm, highly_variable, ..HvgTable::nan(n) }
}

/// statsmodels' `robust.mad` scale: the MAD of a standard normal sample (Φ⁻¹(3/4)).
const MAD_NORMAL_CONSTANT: f64 = 0.674_489_750_196_081_7;

/// `np.nan_to_num(x, nan=nan)`: NaN becomes `nan`, ±∞ the largest finite magnitudes.
fn nan_to_num(x: f64, nan: f64) -> f64 {
    if x.is_nan() {
        nan
    } else if x == f64::INFINITY {
        f64::MAX
    } else if x == f64::NEG_INFINITY {
        f64::MIN
    } else {
        x
    }
}

/// `pd.cut(x, bins=n)`: n equal-width, right-closed bins over [min, max], the first edge
/// lowered by 0.1% of the range so that the minimum falls inside. Returns dense bin ids
/// (only bins that hold a gene get an id, like `groupby(observed=True)`).
fn equal_width_bins(x: &[f64], n_bins: usize) -> Vec<usize> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in x {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let mut edges: Vec<f64>;
    if lo == hi {
        // pandas widens a zero-width range by 0.1% on each side.
        let adj = if lo != 0.0 { lo.abs() * 0.001 } else { 0.001 };
        let step = 2.0 * adj / n_bins as f64;
        edges = (0..=n_bins).map(|i| i as f64 * step + (lo - adj)).collect();
        edges[n_bins] = hi + adj;
    } else {
        // np.linspace(lo, hi, n + 1): i * step + lo, with the last edge exactly hi.
        let step = (hi - lo) / n_bins as f64;
        edges = (0..=n_bins).map(|i| i as f64 * step + lo).collect();
        edges[n_bins] = hi;
        edges[0] -= (hi - lo) * 0.001;
    }
    densify(x.iter().map(|&v| right_closed_bin(&edges, v)).collect())
}

/// `pd.cut(x, [-inf, p10, p15, …, p100, inf])` with numpy's linear percentiles.
fn percentile_bins(x: &[f64]) -> Vec<usize> {
    let mut sorted = x.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mut edges = vec![f64::NEG_INFINITY];
    for k in (10..105).step_by(5) {
        edges.push(percentile_linear(&sorted, k as f64 / 100.0));
    }
    edges.push(f64::INFINITY);
    edges.dedup();
    densify(x.iter().map(|&v| right_closed_bin(&edges, v)).collect())
}

/// numpy's `method="linear"` quantile of sorted data, including its two-sided lerp.
fn percentile_linear(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let index = (n - 1) as f64 * q;
    let lo = index.floor();
    let t = index - lo;
    let lo = lo as usize;
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Index of the right-closed bin (edges[i], edges[i+1]] holding v.
fn right_closed_bin(edges: &[f64], v: f64) -> usize {
    let j = edges.partition_point(|&e| e < v);
    j.saturating_sub(1).min(edges.len() - 2)
}

fn densify(bins: Vec<usize>) -> Vec<usize> {
    let mut used: Vec<usize> = bins.clone();
    used.sort_unstable();
    used.dedup();
    bins.into_iter().map(|b| used.binary_search(&b).expect("present")).collect()
}

/// Mean and sample standard deviation; NaN std for fewer than two values.
fn mean_and_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, f64::NAN);
    }
    let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// The mean-variance trend of `seurat_v3` and the clip value it implies per gene.
#[derive(Debug, Clone)]
pub struct SeuratV3Trend {
    pub reg_std: Vec<f64>,
    pub clip: Vec<f64>,
}

/// Fits the trend from the raw-count mean and variance (ddof = 1) over `n_obs` cells.
pub fn seurat_v3_trend(mean: &[f64], var: &[f64], n_obs: usize, span: f64) -> Result<SeuratV3Trend, loess::LoessError> {
    let not_const: Vec<usize> = (0..mean.len()).filter(|&g| var[g] > 0.0).collect();
    let x: Vec<f64> = not_const.iter().map(|&g| mean[g].log10()).collect();
    let y: Vec<f64> = not_const.iter().map(|&g| var[g].log10()).collect();
    let fitted = loess::loess_fitted(&x, &y, span, 2)?;
    let mut estimated = vec![0.0; mean.len()];
    for (&g, f) in not_const.iter().zip(fitted) {
        estimated[g] = f;
    }
    let reg_std: Vec<f64> = estimated.iter().map(|&e| 10f64.powf(e).sqrt()).collect();
    let vmax = (n_obs as f64).sqrt();
    let clip = reg_std.iter().zip(mean).map(|(&s, &m)| s * vmax + m).collect();
    Ok(SeuratV3Trend { reg_std, clip })
}

/// Finishes `seurat_v3` from the sums of clipped counts (`min(x, clip)`) and of their
/// squares over the same cells.
pub fn seurat_v3_select(
    trend: &SeuratV3Trend,
    mean: &[f64],
    var: &[f64],
    n_obs: usize,
    clipped_sum: &[f64],
    clipped_sum_sq: &[f64],
    n_top_genes: usize,
) -> HvgTable {
    let n = mean.len();
    let nf = n_obs as f64;
    let norm: Vec<f64> = (0..n)
        .map(|g| {
            let s = trend.reg_std[g];
            (1.0 / ((nf - 1.0) * s * s)) * (nf * mean[g] * mean[g] + clipped_sum_sq[g] - 2.0 * clipped_sum[g] * mean[g])
        })
        .collect();
    // Rank 0 = most variable; NaN last; ties by gene order.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| match (norm[a].is_nan(), norm[b].is_nan()) {
        (false, false) => norm[b].total_cmp(&norm[a]),
        (x, y) => x.cmp(&y),
    });
    let mut rank = vec![f64::NAN; n];
    let mut highly_variable = vec![false; n];
    for (r, &g) in order.iter().enumerate() {
        if r < n_top_genes {
            rank[g] = r as f64;
            highly_variable[g] = true;
        }
    }
    HvgTable { means: mean.to_vec(), variances: var.to_vec(), variances_norm: norm, highly_variable, highly_variable_rank: rank, ..HvgTable::nan(n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_numpy_linear() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_linear(&s, 0.5), 2.5);
        assert_eq!(percentile_linear(&s, 1.0), 4.0);
        assert!((percentile_linear(&s, 0.1) - 1.3).abs() < 1e-15);
    }

    #[test]
    fn equal_width_bins_are_right_closed_and_cover_the_minimum() {
        // Edges 0(-0.004), 1, 2, 3, 4: 1.0 falls in the first bin, 1.5 in the second.
        let b = equal_width_bins(&[0.0, 1.0, 1.5, 4.0], 4);
        assert_eq!(b, vec![0, 0, 1, 2]);
    }

    #[test]
    fn single_gene_bin_gets_normalised_dispersion_one() {
        // Two genes far apart in mean land in separate bins, one gene each.
        let t = dispersion_based(HvgFlavor::Seurat, &[0.1, 100.0], &[0.5, 900.0], HvgSelection::TopGenes(1), 20);
        assert_eq!(t.dispersions_norm, vec![1.0, 1.0]);
    }

    #[test]
    fn top_genes_pick_the_highest_normalised_dispersion() {
        let mean = [1.0, 1.0, 1.0, 1.0];
        let var = [1.0, 2.0, 4.0, 8.0];
        let t = dispersion_based(HvgFlavor::CellRanger, &mean, &var, HvgSelection::TopGenes(2), 20);
        assert_eq!(t.highly_variable, vec![false, false, true, true]);
        assert_eq!(t.n_selected(), 2);
    }
}

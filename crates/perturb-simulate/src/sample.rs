//! Per-cell count sampling: library size, CRISPR efficiency, a shared cell-state program
//! and negative-binomial noise. Cells are drawn in fixed chunks, each with its own
//! random stream, so the result is the same for any number of threads.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, Poisson};

/// Everything the sampler needs about genes and conditions.
pub struct CellModel<'a> {
    /// Expected counts per gene in a control cell of average depth.
    pub rate: &'a [f64],
    /// Negative-binomial dispersion per gene (variance = m + phi m^2).
    pub dispersion: &'a [f64],
    /// Loading of each gene on the cell-state program (0 for most genes).
    pub program: &'a [f64],
    /// Per condition, per efficiency level: log-expression deviation per gene.
    pub deviation: &'a [Vec<Vec<f32>>],
    /// Efficiency levels' probabilities (same order as `deviation`'s inner vectors).
    pub level_weights: &'a [f64],
    /// Log-scale standard deviation of library size.
    pub depth_spread: f64,
}

/// One cell to draw: its condition index.
pub type CellPlan = u16;

/// The sampled cells in CSR form.
pub struct Sampled {
    pub indptr: Vec<i64>,
    pub indices: Vec<i32>,
    pub counts: Vec<f32>,
}

const CHUNK: usize = 512;

pub fn sample_cells(model: &CellModel<'_>, plan: &[CellPlan], seed: u64, threads: usize) -> Sampled {
    let chunks: Vec<&[CellPlan]> = plan.chunks(CHUNK).collect();
    let mut parts: Vec<Option<(Vec<u32>, Vec<i32>, Vec<f32>)>> = (0..chunks.len()).map(|_| None).collect();
    let threads = threads.max(1);
    std::thread::scope(|scope| {
        let mut slots: Vec<&mut Option<(Vec<u32>, Vec<i32>, Vec<f32>)>> = parts.iter_mut().collect();
        let mut per_thread: Vec<Vec<(usize, &mut Option<_>)>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, slot) in slots.drain(..).enumerate() {
            per_thread[i % threads].push((i, slot));
        }
        for work in per_thread {
            let chunks = &chunks;
            scope.spawn(move || {
                for (i, slot) in work {
                    *slot = Some(sample_chunk(model, chunks[i], seed, i as u64));
                }
            });
        }
    });
    let mut indptr = Vec::with_capacity(plan.len() + 1);
    indptr.push(0i64);
    let total: usize = parts.iter().map(|p| p.as_ref().map_or(0, |p| p.1.len())).sum();
    let (mut indices, mut counts) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for part in parts.into_iter().flatten() {
        let base = *indptr.last().expect("starts with 0");
        indptr.extend(part.0.iter().map(|&n| base + n as i64));
        indices.extend(part.1);
        counts.extend(part.2);
    }
    Sampled { indptr, indices, counts }
}

/// Returns per-cell cumulative non-zero counts (local), gene indices and counts.
fn sample_chunk(model: &CellModel<'_>, cells: &[CellPlan], seed: u64, chunk: u64) -> (Vec<u32>, Vec<i32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(chunk + 1);
    let n_genes = model.rate.len();
    let (mut ends, mut idx, mut val) = (Vec::with_capacity(cells.len()), Vec::new(), Vec::new());
    let total_weight: f64 = model.level_weights.iter().sum();
    for &cond in cells {
        let depth = (model.depth_spread * standard_normal(&mut rng)).exp();
        let score = standard_normal(&mut rng);
        let mut u = rng.random::<f64>() * total_weight;
        let mut level = 0;
        while level + 1 < model.level_weights.len() && u >= model.level_weights[level] {
            u -= model.level_weights[level];
            level += 1;
        }
        let dev = &model.deviation[cond as usize][level];
        for g in 0..n_genes {
            let m = model.rate[g] * depth * (f64::from(dev[g]) + score * model.program[g]).exp();
            let k = negative_binomial(&mut rng, m, model.dispersion[g]);
            if k > 0 {
                idx.push(g as i32);
                val.push(k as f32);
            }
        }
        ends.push(idx.len() as u32);
    }
    (ends, idx, val)
}

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    rand_distr::StandardNormal.sample(rng)
}

/// NB(mean m, dispersion phi). Small means (most genes) by inverting the CDF from zero,
/// which takes one uniform and, mostly, no loop; large means as a gamma-Poisson mixture.
pub fn negative_binomial(rng: &mut ChaCha8Rng, m: f64, phi: f64) -> u64 {
    if m <= 0.0 {
        return 0;
    }
    let r = 1.0 / phi;
    if m < 8.0 {
        let p = m * phi / (1.0 + m * phi);
        let mut pk = (-r * (m * phi).ln_1p()).exp();
        let mut cdf = pk;
        let u = rng.random::<f64>();
        let mut k = 0u64;
        while u > cdf && k < 10_000 {
            pk *= (k as f64 + r) / (k as f64 + 1.0) * p;
            k += 1;
            cdf += pk;
            if pk < 1e-300 {
                break;
            }
        }
        return k;
    }
    let lambda = Gamma::new(r, m / r).expect("positive shape and scale").sample(rng);
    if lambda <= 0.0 {
        return 0;
    }
    Poisson::new(lambda).map_or(0, |d| d.sample(rng) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_binomial_has_the_right_mean_and_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (m, phi) in [(0.3, 0.2), (3.0, 0.3), (40.0, 0.1)] {
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| negative_binomial(&mut rng, m, phi) as f64).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let want_var = m + phi * m * m;
            assert!((mean - m).abs() < 0.02 * m + 0.01, "mean {mean} vs {m}");
            assert!((var - want_var).abs() < 0.06 * want_var, "var {var} vs {want_var}");
        }
    }

    #[test]
    fn sampling_is_identical_for_any_thread_count() {
        let rate = vec![0.5, 5.0, 50.0];
        let dispersion = vec![0.2; 3];
        let program = vec![0.0, 0.1, 0.0];
        let deviation = vec![vec![vec![0.0f32; 3]], vec![vec![1.0f32, 0.0, -1.0]]];
        let model = CellModel { rate: &rate, dispersion: &dispersion, program: &program, deviation: &deviation, level_weights: &[1.0], depth_spread: 0.3 };
        let plan: Vec<u16> = (0..2000).map(|i| (i % 2) as u16).collect();
        let a = sample_cells(&model, &plan, 11, 1);
        let b = sample_cells(&model, &plan, 11, 3);
        assert_eq!(a.indptr, b.indptr);
        assert_eq!(a.counts, b.counts);
        let c = sample_cells(&model, &plan, 12, 1);
        assert_ne!(a.counts, c.counts);
    }
}

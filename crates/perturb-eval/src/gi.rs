//! Genetic interactions in the double task.
//!
//! Each test double × top gene has an observed deviation from additivity,
//! `d = y_AB − (y_A + y_B − y_ctrl)`. A two-group model labels the deviations: most are
//! null (measurement noise around 0), a few are real synergy (d > 0) or buffering (d < 0).
//! The null is a normal fitted to the centre of the data (median, MAD), the mixture
//! density a smoothed histogram, and the local false discovery rate
//! `lfdr(d) = π0 φ(d) / f(d)`; entries with lfdr below `max_lfdr` are interactions (the
//! thresholds Norman's data give are about +0.195 / −0.205). A model is then judged by how
//! well its own predicted deviations rank the synergistic entries: the TPR-vs-FDP curve.

/// The fitted two-group model.
#[derive(Debug, Clone)]
pub struct TwoGroup {
    pub null_mean: f64,
    pub null_sd: f64,
    pub pi0: f64,
    /// Smallest positive deviation called synergy (NaN if none).
    pub synergy_above: f64,
    /// Largest negative deviation called buffering (NaN if none).
    pub buffering_below: f64,
}

fn normal_pdf(x: f64, mean: f64, sd: f64) -> f64 {
    let z = (x - mean) / sd;
    (-0.5 * z * z).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl TwoGroup {
    pub fn fit(deviations: &[f64], max_lfdr: f64) -> TwoGroup {
        let mut s: Vec<f64> = deviations.iter().copied().filter(|d| d.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        let median = quantile(&s, 0.5);
        let mut abs: Vec<f64> = s.iter().map(|d| (d - median).abs()).collect();
        abs.sort_by(f64::total_cmp);
        let sd = (quantile(&abs, 0.5) * 1.482_602_218_505_602).max(1e-12);
        // π0 from the share of data within one null SD (a null puts 68.27% there).
        let inside = s.iter().filter(|d| (*d - median).abs() <= sd).count() as f64 / s.len() as f64;
        let pi0 = (inside / 0.682_689_492_137_086).min(1.0);
        // Mixture density: histogram over ±8 SD, smoothed with a small Gaussian kernel.
        let (lo, hi) = (median - 8.0 * sd, median + 8.0 * sd);
        let bins = 400;
        let width = (hi - lo) / bins as f64;
        let mut hist = vec![0.0; bins];
        for &d in &s {
            let b = (((d - lo) / width).floor() as isize).clamp(0, bins as isize - 1) as usize;
            hist[b] += 1.0;
        }
        let kernel: Vec<f64> = (-6..=6).map(|k| (-0.5 * (k as f64 / 3.0).powi(2)).exp()).collect();
        let ksum: f64 = kernel.iter().sum();
        let density: Vec<f64> = (0..bins)
            .map(|b| {
                let c: f64 = kernel.iter().enumerate().map(|(j, w)| w * hist.get((b + j).wrapping_sub(6)).copied().unwrap_or(0.0)).sum();
                c / ksum / (s.len() as f64 * width)
            })
            .collect();
        let lfdr = |d: f64| {
            let b = (((d - lo) / width).floor() as isize).clamp(0, bins as isize - 1) as usize;
            (pi0 * normal_pdf(d, median, sd) / density[b].max(1e-300)).min(1.0)
        };
        let synergy_above = s.iter().copied().filter(|&d| d > median && lfdr(d) < max_lfdr).fold(f64::NAN, f64::min);
        let buffering_below = s.iter().copied().filter(|&d| d < median && lfdr(d) < max_lfdr).fold(f64::NAN, f64::max);
        TwoGroup { null_mean: median, null_sd: sd, pi0, synergy_above, buffering_below }
    }

    pub fn is_synergy(&self, d: f64) -> bool {
        !self.synergy_above.is_nan() && d >= self.synergy_above
    }

    pub fn is_buffering(&self, d: f64) -> bool {
        !self.buffering_below.is_nan() && d <= self.buffering_below
    }
}

/// TPR and FDP along a ranking of entries by predicted deviation (largest first), for
/// finding the entries labelled true in `is_positive`. Ties in the score are taken as a
/// block, so a model that predicts no deviation at all gets one point, not a lucky order.
pub fn tpr_fdp_curve(predicted: &[f64], is_positive: &[bool]) -> Vec<(f64, f64)> {
    let positives = is_positive.iter().filter(|&&p| p).count().max(1) as f64;
    let mut order: Vec<usize> = (0..predicted.len()).collect();
    order.sort_by(|&a, &b| predicted[b].total_cmp(&predicted[a]));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut curve = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let score = predicted[order[i]];
        while i < order.len() && predicted[order[i]] == score {
            if is_positive[order[i]] {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        curve.push((tp / positives, fp / (tp + fp)));
    }
    curve
}

/// The best TPR reached while the FDP stays at or below `max_fdp`.
pub fn tpr_at_fdp(curve: &[(f64, f64)], max_fdp: f64) -> f64 {
    curve.iter().filter(|(_, fdp)| *fdp <= max_fdp).map(|(tpr, _)| *tpr).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::Distribution;

    #[test]
    fn two_group_finds_planted_interactions() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let noise = rand_distr::Normal::new(0.0, 0.07).unwrap();
        let mut d: Vec<f64> = (0..20_000).map(|_| noise.sample(&mut rng)).collect();
        d.extend((0..400).map(|i| 0.5 + i as f64 * 0.001));
        d.extend((0..600).map(|i| -0.5 - i as f64 * 0.001));
        let m = TwoGroup::fit(&d, 0.2);
        assert!((m.null_sd - 0.07).abs() < 0.01, "{m:?}");
        assert!(m.synergy_above > 0.15 && m.synergy_above <= 0.5, "{m:?}");
        assert!(m.buffering_below < -0.15 && m.buffering_below >= -0.5, "{m:?}");
        // Planted effects are all called, and at most a handful of the 20,000 null values.
        assert!(d[20_000..].iter().all(|&x| m.is_synergy(x) || m.is_buffering(x)));
        assert!(d[..20_000].iter().filter(|&&x| m.is_synergy(x) || m.is_buffering(x)).count() < 20);
    }

    #[test]
    fn curve_of_a_perfect_and_a_blind_ranking() {
        let truth = [true, true, false, false];
        let perfect = tpr_fdp_curve(&[4.0, 3.0, 2.0, 1.0], &truth);
        assert_eq!(perfect[1], (1.0, 0.0));
        assert_eq!(tpr_at_fdp(&perfect, 0.0), 1.0);
        let blind = tpr_fdp_curve(&[0.0; 4], &truth);
        assert_eq!(blind, vec![(1.0, 0.5)]);
        assert_eq!(tpr_at_fdp(&blind, 0.25), 0.0);
    }
}

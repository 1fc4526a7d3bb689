//! Paired comparisons: a model against a baseline on the perturbations both predicted.
//!
//! Two means over different perturbation sets are not a comparison, and two means over
//! the same set without an interval are not a verdict. For every (task, model, baseline)
//! this takes the (seed, perturbation) pairs both were scored on, the paired differences
//! of L2 (model − baseline: below 0 means the model is closer to the truth), their mean,
//! a 95% interval from a seeded bootstrap that resamples perturbations within each seed
//! (the seeds are strata: each split is its own draw of test perturbations), and the
//! share of perturbations the model wins. A verdict is given only when the interval
//! excludes 0.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::MetricRow;

/// Bootstrap resamples per comparison.
pub const RESAMPLES: usize = 2000;

/// The metrics compared: L2, and L2 without the perturbed genes (whose own change
/// dominates L2 and says nothing of how the other genes respond).
pub const COMPARED: [(&str, fn(&MetricRow) -> f64); 2] = [("l2", |r| r.l2), ("l2_no_target", |r| r.l2_no_target)];

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub task: String,
    /// The perturbation set the rows came from (see `coverage`).
    pub perturbation_set: String,
    pub model: String,
    pub baseline: String,
    /// `l2` or `l2_no_target` (see [`COMPARED`]).
    pub metric: &'static str,
    /// (seed, perturbation) pairs both were scored on.
    pub n_pairs: usize,
    pub mean_model: f64,
    pub mean_baseline: f64,
    /// Mean of model − baseline L2.
    pub mean_difference: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Share of pairs where the model's L2 is lower.
    pub win_share: f64,
}

impl Comparison {
    /// `lower L2` / `higher L2` when the 95% interval excludes 0, else `no clear difference`.
    pub fn verdict(&self) -> &'static str {
        if self.ci_high < 0.0 {
            "lower L2"
        } else if self.ci_low > 0.0 {
            "higher L2"
        } else {
            "no clear difference"
        }
    }
}

/// Every model of `rows` (the rows of perturbation set `set`) against every one of
/// `baselines` present in the same task, on each metric of [`COMPARED`].
pub fn compare(rows: &[MetricRow], baselines: &[&str], set: &str) -> Vec<Comparison> {
    COMPARED.iter().flat_map(|(metric, value)| compare_on(rows, baselines, set, metric, *value)).collect()
}

fn compare_on(rows: &[MetricRow], baselines: &[&str], set: &str, metric: &'static str, value: fn(&MetricRow) -> f64) -> Vec<Comparison> {
    let mut by: BTreeMap<(&str, &str), BTreeMap<(u64, &str), f64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| value(r).is_finite()) {
        by.entry((r.task.as_str(), r.model.as_str())).or_default().insert((r.seed, r.perturbation.as_str()), value(r));
    }
    let tasks: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.task.as_str()).collect();
    let mut out = Vec::new();
    for task in tasks {
        let models: std::collections::BTreeSet<&str> =
            rows.iter().filter(|r| r.task == task && !baselines.contains(&r.model.as_str())).map(|r| r.model.as_str()).collect();
        for baseline in baselines.iter().filter(|b| by.contains_key(&(task, **b))) {
            for model in &models {
                let Some(ours) = by.get(&(task, *model)) else { continue };
                if let Some(c) = pair(task, model, baseline, metric, ours, &by[&(task, *baseline)]) {
                    out.push(Comparison { perturbation_set: set.to_string(), ..c });
                }
            }
        }
    }
    out
}

fn pair(
    task: &str,
    model: &str,
    baseline: &str,
    metric: &'static str,
    ours: &BTreeMap<(u64, &str), f64>,
    theirs: &BTreeMap<(u64, &str), f64>,
) -> Option<Comparison> {
    let mut strata: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    let (mut sum_model, mut sum_baseline, mut wins) = (0.0, 0.0, 0usize);
    for (key, &m) in ours {
        let Some(&b) = theirs.get(key) else { continue };
        strata.entry(key.0).or_default().push(m - b);
        sum_model += m;
        sum_baseline += b;
        wins += usize::from(m < b);
    }
    let n: usize = strata.values().map(Vec::len).sum();
    if n == 0 {
        return None;
    }
    let differences: Vec<f64> = strata.values().flatten().copied().collect();
    let (ci_low, ci_high) = bootstrap_interval(&strata, &seed_for(&[task, model, baseline, metric]));
    Some(Comparison {
        task: task.to_string(),
        perturbation_set: String::new(),
        model: model.to_string(),
        baseline: baseline.to_string(),
        metric,
        n_pairs: n,
        mean_model: sum_model / n as f64,
        mean_baseline: sum_baseline / n as f64,
        mean_difference: differences.iter().sum::<f64>() / n as f64,
        ci_low,
        ci_high,
        win_share: wins as f64 / n as f64,
    })
}

/// The 2.5% and 97.5% quantiles of the mean difference over stratified resamples.
fn bootstrap_interval(strata: &BTreeMap<u64, Vec<f64>>, seed: &[u8; 32]) -> (f64, f64) {
    let mut rng = ChaCha8Rng::from_seed(*seed);
    let n: usize = strata.values().map(Vec::len).sum();
    let mut means: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let total: f64 = strata.values().map(|d| (0..d.len()).map(|_| d[rng.random_range(0..d.len())]).sum::<f64>()).sum();
            total / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
    (at(0.025), at(0.975))
}

/// A seed of its own for each comparison (FNV-1a over its names: stable across platforms
/// and versions), so adding a model changes no other interval.
fn seed_for(names: &[&str]) -> [u8; 32] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in names.iter().flat_map(|p| p.bytes().chain([0u8])) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&h.to_le_bytes());
    seed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seed: u64, model: &str, perturbation: &str, l2: f64) -> MetricRow {
        crate::example_metric_row("double", seed, model, perturbation, l2)
    }

    #[test]
    fn only_common_perturbations_are_paired_and_the_interval_decides_the_verdict() {
        let mut rows = Vec::new();
        for seed in 1..=2 {
            for p in 0..30 {
                let name = format!("P{p}");
                rows.push(row(seed, "additive", &name, 2.0 + (p % 3) as f64));
                // Always 0.5 better, with noise; and a model no different from additive.
                rows.push(row(seed, "good", &name, 1.5 + (p % 3) as f64 + 0.05 * ((p * 7 % 5) as f64 - 2.0)));
                rows.push(row(seed, "same", &name, 2.0 + (p % 3) as f64 + 0.3 * ((p * 7 % 5) as f64 - 2.0)));
            }
        }
        // A perturbation only the model predicted is left out of the pairs.
        rows.push(row(1, "good", "EXTRA", 100.0));
        let c = compare(&rows, &["additive"], "all");
        assert_eq!(c.iter().filter(|c| c.metric == "l2_no_target").count(), 2, "both metrics are compared");
        let c: Vec<Comparison> = c.into_iter().filter(|c| c.metric == "l2").collect();
        let good = c.iter().find(|c| c.model == "good").unwrap();
        assert_eq!(good.n_pairs, 60);
        assert!((good.mean_difference + 0.5).abs() < 1e-9, "{good:?}");
        assert!(good.ci_high < 0.0 && good.win_share == 1.0 && good.verdict() == "lower L2", "{good:?}");
        let same = c.iter().find(|c| c.model == "same").unwrap();
        assert!(same.ci_low < 0.0 && same.ci_high > 0.0 && same.verdict() == "no clear difference", "{same:?}");
        // Seeded: the same rows give the same intervals.
        assert_eq!(c, compare(&rows, &["additive"], "all").into_iter().filter(|c| c.metric == "l2").collect::<Vec<_>>());
    }
}

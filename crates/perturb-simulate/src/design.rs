//! Presets: which genes are perturbed, how, in which combinations, with how many cells,
//! over how many measured genes.

use std::path::Path;

use perturb_core::{Error, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

/// CRISPRa raises the target's expression, CRISPRi lowers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modality {
    Activation,
    Interference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Norman et al. 2019: CRISPRa in K562, the real 105 singles and 131 doubles' genes.
    NormanLike,
    /// Adamson et al. 2016: CRISPRi singles.
    AdamsonLike,
    /// Replogle et al. 2022 (K562 essential): many CRISPRi singles.
    ReplogleLike,
}

perturb_core::named_enum!(Preset, "preset", name, { NormanLike => "norman-like", AdamsonLike => "adamson-like", ReplogleLike => "replogle-like" });

impl Preset {
    pub fn modality(self) -> Modality {
        match self {
            Preset::NormanLike => Modality::Activation,
            _ => Modality::Interference,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Seconds: 2,000 genes, ~200 cells per condition.
    Quick,
    /// Norman-size: ~85,000 cells x ~19,000 genes.
    Full,
}

perturb_core::named_enum!(Scale, "scale", name, { Quick => "quick", Full => "full" });

/// The calibration summary shipped in data/calibration/norman2019.json (derived from the
/// published Norman 2019 source data by xtask/python/calibration_summary.py).
#[derive(Debug, Clone, Deserialize)]
pub struct Calibration {
    pub norman_conditions: Vec<String>,
    pub cells_per_condition_quantiles: Vec<f64>,
    pub k562_control_baseline_quantiles: Vec<f64>,
    pub k562_control_baseline_genes: usize,
    pub published_l2_mean: std::collections::BTreeMap<String, f64>,
    pub non_additive_share: f64,
    pub non_additive_thresholds: Thresholds,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Thresholds {
    pub synergy_above: f64,
    pub buffering_below: f64,
}

impl Calibration {
    pub fn read(path: &Path) -> Result<Calibration> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::bad_input(path, format!("not a calibration summary ({e})")))
    }
}

/// Linear interpolation in a quantile table (equally spaced probabilities).
pub fn quantile_at(quantiles: &[f64], p: f64) -> f64 {
    let pos = p.clamp(0.0, 1.0) * (quantiles.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(quantiles.len() - 1);
    quantiles[lo] + (quantiles[hi] - quantiles[lo]) * (pos - lo as f64)
}

/// One perturbation condition: its target genes (empty = control) and cell count.
#[derive(Debug, Clone)]
pub struct ConditionDesign {
    pub targets: Vec<String>,
    pub n_cells: usize,
}

impl ConditionDesign {
    /// GEARS spelling: `ctrl`, `A+ctrl`, `A+B`.
    pub fn gears_label(&self) -> String {
        match self.targets.as_slice() {
            [] => "ctrl".to_string(),
            [a] => format!("{a}+ctrl"),
            many => many.join("+"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Design {
    pub preset: Preset,
    pub n_genes: usize,
    /// Control first.
    pub conditions: Vec<ConditionDesign>,
}

impl Design {
    pub fn targets(&self) -> Vec<String> {
        let mut t: Vec<String> = self.conditions.iter().flat_map(|c| c.targets.iter().cloned()).collect();
        t.sort();
        t.dedup();
        t
    }

    pub fn n_cells(&self) -> usize {
        self.conditions.iter().map(|c| c.n_cells).sum()
    }
}

/// Overrides of a preset's sizes.
#[derive(Debug, Clone, Default)]
pub struct Sizes {
    pub n_genes: Option<usize>,
    pub n_cells: Option<usize>,
}

/// Builds the design of `preset` at `scale`. `regulators` are the network's regulators,
/// most targets first (used to pick CRISPRi targets); `calibration` supplies Norman's
/// conditions and cell-count distribution.
pub fn build(preset: Preset, scale: Scale, sizes: &Sizes, calibration: &Calibration, regulators: &[String], rng: &mut ChaCha8Rng) -> Result<Design> {
    let n_genes = sizes.n_genes.unwrap_or(match scale {
        Scale::Quick => 2_000,
        Scale::Full => 19_000,
    });
    if n_genes < 50 {
        return Err(Error::bad_option("--n-genes", format!("{n_genes} is too few (at least 50)")));
    }
    let perturbations: Vec<Vec<String>> = match preset {
        Preset::NormanLike => calibration
            .norman_conditions
            .iter()
            .map(|c| {
                let mut g: Vec<String> = c.split('+').filter(|g| *g != "ctrl").map(str::to_string).collect();
                g.sort();
                g
            })
            .collect(),
        Preset::AdamsonLike | Preset::ReplogleLike => {
            let n = match (preset, scale) {
                (Preset::AdamsonLike, _) => 87,
                (_, Scale::Quick) => 200,
                (_, Scale::Full) => 1_000,
            };
            // Strong regulators plus a random draw of the rest, as essential-gene screens hit both.
            let mut pool: Vec<String> = regulators.iter().take(n * 3).cloned().collect();
            pool.shuffle(rng);
            pool.truncate(n);
            pool.sort();
            pool.into_iter().map(|g| vec![g]).collect()
        }
    };
    // Cells per condition: Norman's distribution (quick) or scaled up to the full size.
    let draws: Vec<f64> = perturbations.iter().map(|_| quantile_at(&calibration.cells_per_condition_quantiles, rng.random::<f64>())).collect();
    let (n_control, per_condition): (usize, Vec<usize>) = match (scale, sizes.n_cells) {
        // Real Norman conditions hold ~300 cells (91,205 cells / 237 conditions in the
        // GEARS release); the published table's 59-99 are a subsample. Quick keeps the
        // table's shape at three times its size, so that per-condition noise is near
        // the real screen's.
        (Scale::Quick, None) => (3_000, draws.iter().map(|d| (3.0 * d).round() as usize).collect()),
        (_, total) => {
            let total = total.unwrap_or(85_000);
            if total < 10 * (perturbations.len() + 1) {
                return Err(Error::bad_option("--n-cells", format!("{total} is too few for {} conditions", perturbations.len() + 1)));
            }
            let n_control = total / 10;
            let sum: f64 = draws.iter().sum();
            let rest = (total - n_control) as f64;
            (n_control, draws.iter().map(|d| ((d / sum) * rest).round().max(5.0) as usize).collect())
        }
    };
    let mut conditions = vec![ConditionDesign { targets: vec![], n_cells: n_control }];
    conditions.extend(perturbations.into_iter().zip(per_condition).map(|(targets, n_cells)| ConditionDesign { targets, n_cells }));
    Ok(Design { preset, n_genes, conditions })
}

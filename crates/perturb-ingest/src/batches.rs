//! `--batch-key`: effects against the controls of the same batch (a 10x lane, a
//! `gem_group`), then averaged over the condition's cells.
//!
//! Lanes shift every gene's baseline; a condition whose cells sit mostly in one lane would
//! inherit that lane's shift as a fake effect if compared with the pooled control. So the
//! matrix is accumulated per (condition, batch), and each cell's value is read against its
//! batch's control mean: a cell x in batch b counts as x − control_b + control, where
//! control is the mean over all control cells. A condition's pseudobulk mean is then the
//! control's plus the cell-weighted average of its batch-matched effects, and its variance
//! is that of the adjusted values; the control's own row is the pooled control mean. Every
//! batch that holds perturbed cells needs control cells of its own.

use std::collections::BTreeMap;

use perturb_core::{Error, Result};

use crate::accumulate::{ConditionSums, PassResult, NO_CONDITION};
use crate::{covariate_column, h5ad, IngestOptions};

/// Every cell's batch (`None`: the value is missing) and the batch names, sorted.
#[derive(Clone)]
pub(crate) struct CellBatches {
    pub key: String,
    pub names: Vec<String>,
    pub cell: Vec<Option<u32>>,
}

/// The cells' batches, or `None` without `--batch-key`.
pub(crate) fn read(file: &h5ad::H5ad, opts: &IngestOptions, columns: &[String], condition_key: &str, labels: &[Option<String>]) -> Result<Option<CellBatches>> {
    let n_obs = labels.len();
    let Some(key) = &opts.batch_key else { return Ok(None) };
    let values = covariate_column(file, opts, "--batch-key", key, columns, condition_key, "a batch is another column (a lane, a gem_group)", n_obs)?;
    let missing = values.iter().zip(labels).filter(|(v, l)| v.is_none() && l.is_some()).count();
    if missing > 0 {
        return Err(Error::bad_input(
            &opts.input,
            format!("--batch-key {key}: {missing} cells with a condition have no value in obs/{key}; every cell needs its batch"),
        ));
    }
    let names: Vec<String> =
        values.iter().flatten().map(String::as_str).collect::<std::collections::BTreeSet<&str>>().into_iter().map(str::to_string).collect();
    let index: BTreeMap<&str, u32> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
    let cell = values.iter().map(|v| v.as_deref().map(|v| index[v])).collect();
    Ok(Some(CellBatches { key: key.clone(), names, cell }))
}

/// The (condition, batch) groups the matrix is accumulated over.
pub(crate) struct Groups {
    /// Each cell's group ([`NO_CONDITION`] for cells without a condition).
    pub cell_group: Vec<u32>,
    condition: Vec<u32>,
    batch: Vec<u32>,
    n_conditions: usize,
}

impl Groups {
    /// Groups for cells with these conditions and batches; a cell without a batch has no
    /// group (it is left out and counted by the caller).
    pub fn new(cell_condition: &[u32], batches: &CellBatches, n_conditions: usize) -> Groups {
        let mut index: BTreeMap<(u32, u32), u32> = BTreeMap::new();
        for (c, b) in cell_condition.iter().zip(&batches.cell) {
            if let (true, Some(b)) = (*c != NO_CONDITION, b) {
                let next = index.len() as u32;
                index.entry((*c, *b)).or_insert(next);
            }
        }
        let mut condition = vec![0; index.len()];
        let mut batch = vec![0; index.len()];
        for (&(c, b), &g) in &index {
            condition[g as usize] = c;
            batch[g as usize] = b;
        }
        let cell_group = cell_condition
            .iter()
            .zip(&batches.cell)
            .map(|(c, b)| match (*c != NO_CONDITION, b) {
                (true, Some(b)) => index[&(*c, *b)],
                _ => NO_CONDITION,
            })
            .collect();
        Groups { cell_group, condition, batch, n_conditions }
    }

    pub fn n_groups(&self) -> usize {
        self.condition.len()
    }

    /// The pass over groups turned into a pass over conditions, each cell read against
    /// its batch's control (module docs). Fails on a batch with perturbed cells and no
    /// control cells (after filtering).
    pub fn collapse(&self, pass: PassResult, batches: &CellBatches, input: &std::path::Path, control: &str) -> Result<PassResult> {
        let n_genes = pass.n_genes;
        let n_batches = batches.names.len();
        // Control sums per batch; the control is condition 0.
        let mut control_sum = vec![0.0; n_batches * n_genes];
        let mut control_cells = vec![0u64; n_batches];
        for g in (0..self.n_groups()).filter(|&g| self.condition[g] == 0) {
            let b = self.batch[g] as usize;
            control_cells[b] += pass.conditions.cells[g];
            for j in 0..n_genes {
                control_sum[b * n_genes + j] += pass.conditions.sum(g * n_genes + j);
            }
        }
        for g in (0..self.n_groups()).filter(|&g| self.condition[g] != 0 && pass.conditions.cells[g] > 0) {
            let b = self.batch[g] as usize;
            if control_cells[b] == 0 {
                let perturbed: u64 =
                    (0..self.n_groups()).filter(|&h| self.batch[h] as usize == b && self.condition[h] != 0).map(|h| pass.conditions.cells[h]).sum();
                return Err(Error::bad_input(
                    input,
                    format!(
                        "--batch-key {}: batch '{}' has {perturbed} perturbed cells and no control cells (label '{control}'); effects are read against each batch's own controls",
                        batches.key, batches.names[b]
                    ),
                ));
            }
        }
        let n_control: u64 = control_cells.iter().sum();
        let pooled: Vec<f64> = (0..n_genes).map(|j| (0..n_batches).map(|b| control_sum[b * n_genes + j]).sum::<f64>() / n_control as f64).collect();
        let mut moments = crate::accumulate::written_zeros(self.n_conditions * n_genes);
        let mut cells = vec![0u64; self.n_conditions];
        let mut filtered = vec![0u64; self.n_conditions];
        for g in 0..self.n_groups() {
            let (c, b, n) = (self.condition[g] as usize, self.batch[g] as usize, pass.conditions.cells[g]);
            cells[c] += n;
            filtered[c] += pass.conditions.filtered[g];
            if n == 0 {
                continue;
            }
            for j in 0..n_genes {
                // d: what moves a value of batch b onto the pooled control's baseline.
                let d = pooled[j] - control_sum[b * n_genes + j] / control_cells[b] as f64;
                let (s, ss) = (pass.conditions.sum(g * n_genes + j), pass.conditions.sum_sq(g * n_genes + j));
                let m = &mut moments[c * n_genes + j];
                m[0] += s + n as f64 * d;
                m[1] += ss + 2.0 * d * s + n as f64 * d * d;
            }
        }
        Ok(PassResult { conditions: ConditionSums { moments, cells, filtered }, ..pass })
    }
}

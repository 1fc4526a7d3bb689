//! The streaming pass: normalisation, log1p and every per-condition and per-gene sum the
//! artifacts need, accumulated block by block so that the cells × genes matrix is never
//! held densely. Memory is O(conditions × genes) for the pseudobulk sums plus one block.

use std::path::Path;

use perturb_core::{Error, Result};

use crate::source::{Block, BlockSource, Orientation};

/// What the matrix values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueScale {
    /// Raw UMI counts: normalise each cell to `target_sum`, then log1p (scanpy's
    /// `normalize_total` + `log1p`).
    Counts,
    /// Already `log1p(normalize_total(...))` (GEARS files): used as they are.
    LogNormalized,
}

impl ValueScale {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueScale::Counts => "counts",
            ValueScale::LogNormalized => "lognorm",
        }
    }
}

/// Marks a cell that belongs to no condition (missing label).
pub const NO_CONDITION: u32 = u32::MAX;

/// Which per-gene moments to keep beside the pseudobulk sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneMoments {
    /// Of normalised counts (seurat HVG).
    Normalized,
    /// Of raw counts (seurat_v3 HVG).
    Raw,
    /// None beyond the log-normalised ones implied by the pseudobulk sums.
    None,
}

pub struct PassConfig<'a> {
    pub path: &'a Path,
    pub matrix_name: &'a str,
    pub gene_names: &'a [String],
    pub cell_condition: &'a [u32],
    pub n_conditions: usize,
    /// `None`: decide from the first block.
    pub scale: Option<ValueScale>,
    pub target_sum: f64,
    /// Cells with fewer total counts are dropped (raw counts only).
    pub min_counts: f64,
    pub moments: GeneMoments,
}

/// Everything one pass accumulates.
pub struct PassResult {
    pub scale: ValueScale,
    pub n_genes: usize,
    /// Per condition × gene (row-major by condition) sum and sum of squares of the
    /// log-normalised values.
    pub cond_sum: Vec<f64>,
    pub cond_sum_sq: Vec<f64>,
    pub cond_cells: Vec<u64>,
    /// Cells per condition dropped by `min_counts`.
    pub cond_filtered: Vec<u64>,
    /// Per-gene sum and sum of squares of the moments asked for.
    pub gene_sum: Vec<f64>,
    pub gene_sum_sq: Vec<f64>,
    pub detected: Vec<u64>,
    /// Whether each cell was kept (has a condition and passed `min_counts`).
    pub kept: Vec<bool>,
    /// Per kept cell: total counts (counts) or total of expm1 (log-normalised).
    pub cell_totals: Vec<f64>,
}

impl PassResult {
    pub fn n_kept(&self) -> u64 {
        self.cond_cells.iter().sum()
    }
}

struct Pass<'a> {
    cfg: &'a PassConfig<'a>,
    scale: Option<ValueScale>,
    n_genes: usize,
    cond_sum: Vec<f64>,
    cond_sum_sq: Vec<f64>,
    gene_sum: Vec<f64>,
    gene_sum_sq: Vec<f64>,
    detected: Vec<u64>,
}

impl<'a> Pass<'a> {
    fn bad_value(&self, cell: usize, gene: usize, what: String) -> Error {
        let name = self.cfg.gene_names.get(gene).map_or("?", String::as_str);
        Error::bad_input(self.cfg.path, format!("{}: {what} at cell {cell}, gene {name}", self.cfg.matrix_name))
    }

    /// Decides the scale from the first block: raw counts if every value is a
    /// non-negative integer.
    fn resolve_scale(&mut self, values: &[f64]) -> ValueScale {
        *self.scale.get_or_insert_with(|| {
            if values.iter().all(|&v| v >= 0.0 && v.fract() == 0.0) { ValueScale::Counts } else { ValueScale::LogNormalized }
        })
    }

    fn check(&self, scale: ValueScale, cell: usize, gene: usize, v: f64) -> Result<()> {
        if !v.is_finite() {
            return Err(self.bad_value(cell, gene, format!("non-finite value {v}")));
        }
        if v < 0.0 {
            return Err(self.bad_value(
                cell,
                gene,
                format!("negative value {v} (expected raw counts or log-normalised expression; choose another matrix with --layer)"),
            ));
        }
        if scale == ValueScale::Counts && v.fract() != 0.0 {
            return Err(self.bad_value(
                cell,
                gene,
                format!("non-integer value {v} in a matrix read as raw counts (pass --assume lognorm if it is log-normalised)"),
            ));
        }
        Ok(())
    }

    #[inline]
    fn add(&mut self, cond: usize, gene: usize, v: f64, factor: f64, scale: ValueScale) {
        let (normalized, logv) = match scale {
            ValueScale::Counts => {
                let n = v * factor;
                (n, n.ln_1p())
            }
            ValueScale::LogNormalized => (v.exp_m1(), v),
        };
        let k = cond * self.n_genes + gene;
        self.cond_sum[k] += logv;
        self.cond_sum_sq[k] += logv * logv;
        match self.cfg.moments {
            GeneMoments::Normalized => {
                self.gene_sum[gene] += normalized;
                self.gene_sum_sq[gene] += normalized * normalized;
            }
            GeneMoments::Raw => {
                self.gene_sum[gene] += v;
                self.gene_sum_sq[gene] += v * v;
            }
            GeneMoments::None => {}
        }
        if v != 0.0 {
            self.detected[gene] += 1;
        }
    }
}

/// The factor that scales a cell's counts to `target_sum` (0 for an empty cell, which
/// scanpy leaves at zero).
fn size_factor(total: f64, target_sum: f64) -> f64 {
    if total > 0.0 { target_sum / total } else { 0.0 }
}

/// Streams the matrix once (twice for column-major storage, which needs the cell totals
/// before it can normalise).
pub fn accumulate(source: &dyn BlockSource, cfg: &PassConfig<'_>) -> Result<PassResult> {
    let n_obs = source.n_obs();
    let n_genes = source.n_vars();
    let n_cond = cfg.n_conditions;
    let mut pass = Pass {
        cfg,
        scale: cfg.scale,
        n_genes,
        cond_sum: vec![0.0; n_cond * n_genes],
        cond_sum_sq: vec![0.0; n_cond * n_genes],
        gene_sum: vec![0.0; n_genes],
        gene_sum_sq: vec![0.0; n_genes],
        detected: vec![0; n_genes],
    };
    let mut totals = vec![0.0f64; n_obs];
    let mut kept = vec![false; n_obs];

    match source.orientation() {
        Orientation::Rows => {
            source.visit(&mut |block: Block<'_>| {
                let scale = pass.resolve_scale(block.values);
                let n_rows = block.indptr.len() - 1;
                for i in 0..n_rows {
                    let cell = block.first + i;
                    let (lo, hi) = (block.indptr[i], block.indptr[i + 1]);
                    let mut total = 0.0;
                    for k in lo..hi {
                        let v = block.values[k];
                        pass.check(scale, cell, block.indices[k] as usize, v)?;
                        total += match scale {
                            ValueScale::Counts => v,
                            ValueScale::LogNormalized => v.exp_m1(),
                        };
                    }
                    totals[cell] = total;
                    let cond = cfg.cell_condition[cell];
                    let keep = cond != NO_CONDITION && (scale == ValueScale::LogNormalized || total >= cfg.min_counts);
                    kept[cell] = keep;
                    if keep {
                        let factor = size_factor(total, cfg.target_sum);
                        for k in lo..hi {
                            pass.add(cond as usize, block.indices[k] as usize, block.values[k], factor, scale);
                        }
                    }
                }
                Ok(())
            })?;
        }
        Orientation::Columns => {
            // First pass: validate and total each cell.
            source.visit(&mut |block: Block<'_>| {
                let scale = pass.resolve_scale(block.values);
                for j in 0..block.indptr.len() - 1 {
                    let gene = block.first + j;
                    for k in block.indptr[j]..block.indptr[j + 1] {
                        let (cell, v) = (block.indices[k] as usize, block.values[k]);
                        pass.check(scale, cell, gene, v)?;
                        totals[cell] += match scale {
                            ValueScale::Counts => v,
                            ValueScale::LogNormalized => v.exp_m1(),
                        };
                    }
                }
                Ok(())
            })?;
            let scale = pass.scale.unwrap_or(ValueScale::Counts);
            for cell in 0..n_obs {
                kept[cell] = cfg.cell_condition[cell] != NO_CONDITION
                    && (scale == ValueScale::LogNormalized || totals[cell] >= cfg.min_counts);
            }
            let factors: Vec<f64> = totals.iter().map(|&t| size_factor(t, cfg.target_sum)).collect();
            source.visit(&mut |block: Block<'_>| {
                for j in 0..block.indptr.len() - 1 {
                    let gene = block.first + j;
                    for k in block.indptr[j]..block.indptr[j + 1] {
                        let cell = block.indices[k] as usize;
                        if kept[cell] {
                            let cond = cfg.cell_condition[cell] as usize;
                            pass.add(cond, gene, block.values[k], factors[cell], scale);
                        }
                    }
                }
                Ok(())
            })?;
        }
    }

    let scale = pass.scale.unwrap_or(ValueScale::Counts);
    let mut cond_cells = vec![0u64; n_cond];
    let mut cond_filtered = vec![0u64; n_cond];
    let mut cell_totals = Vec::new();
    for cell in 0..n_obs {
        let cond = cfg.cell_condition[cell];
        if cond == NO_CONDITION {
            continue;
        }
        if kept[cell] {
            cond_cells[cond as usize] += 1;
            cell_totals.push(totals[cell]);
        } else {
            cond_filtered[cond as usize] += 1;
        }
    }
    Ok(PassResult {
        scale,
        n_genes,
        cond_sum: pass.cond_sum,
        cond_sum_sq: pass.cond_sum_sq,
        cond_cells,
        cond_filtered,
        gene_sum: pass.gene_sum,
        gene_sum_sq: pass.gene_sum_sq,
        detected: pass.detected,
        kept,
        cell_totals,
    })
}

/// Sums of `min(x, clip[gene])` and of its square over the kept cells: the second pass
/// `seurat_v3` needs. Zeros contribute nothing, so only stored entries are visited.
pub fn clipped_sums(source: &dyn BlockSource, kept: &[bool], clip: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = source.n_vars();
    let (mut sum, mut sum_sq) = (vec![0.0; n], vec![0.0; n]);
    let orientation = source.orientation();
    source.visit(&mut |block: Block<'_>| {
        for i in 0..block.indptr.len() - 1 {
            let major = block.first + i;
            for k in block.indptr[i]..block.indptr[i + 1] {
                let minor = block.indices[k] as usize;
                let (cell, gene) = match orientation {
                    Orientation::Rows => (major, minor),
                    Orientation::Columns => (minor, major),
                };
                if kept[cell] {
                    let x = block.values[k].min(clip[gene]);
                    sum[gene] += x;
                    sum_sq[gene] += x * x;
                }
            }
        }
        Ok(())
    })?;
    Ok((sum, sum_sq))
}

/// Mean and sample variance (ddof = 1) from a sum and a sum of squares over `n` values.
pub fn mean_var(sum: f64, sum_sq: f64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let nf = n as f64;
    let mean = sum / nf;
    if n < 2 {
        return (mean, f64::NAN);
    }
    let var = ((sum_sq - sum * mean) / (nf - 1.0)).max(0.0);
    (mean, var)
}

//! The streaming pass: normalisation, log1p and every per-condition and per-gene sum the
//! artifacts need, accumulated block by block so that the cells × genes matrix is never
//! held densely. Memory is O(conditions × genes) for the pseudobulk sums plus one block.

use std::path::Path;

use perturb_core::{Error, Result};

use crate::source::{Block, BlockSource, Orientation, OwnedBlock};

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
    pub conditions: ConditionSums,
    pub genes: GeneSums,
    pub cells: KeptCells,
}

/// Per condition × gene (row-major by condition): sum and sum of squares of the
/// log-normalised values; per condition: its cells.
pub struct ConditionSums {
    /// [sum, sum of squares] per entry, as the pass accumulated them (kept interleaved:
    /// splitting them would copy the largest table of the run).
    pub moments: Vec<[f64; 2]>,
    pub cells: Vec<u64>,
    /// Cells dropped by `min_counts`.
    pub filtered: Vec<u64>,
}

/// Per gene: sum and sum of squares of the moments asked for, and the cells it is detected in.
pub struct GeneSums {
    pub sum: Vec<f64>,
    pub sum_sq: Vec<f64>,
    pub detected: Vec<u64>,
}

/// Which cells the pass kept.
pub struct KeptCells {
    /// Whether each cell was kept (has a condition and passed `min_counts`).
    pub kept: Vec<bool>,
    /// Per kept cell: total counts (counts) or total of expm1 (log-normalised).
    pub totals: Vec<f64>,
}

impl ConditionSums {
    /// The sum at entry `k` (condition · genes + gene).
    pub fn sum(&self, k: usize) -> f64 {
        self.moments[k][0]
    }

    /// The sum of squares at entry `k`.
    pub fn sum_sq(&self, k: usize) -> f64 {
        self.moments[k][1]
    }
}

impl PassResult {
    pub fn n_kept(&self) -> u64 {
        self.conditions.cells.iter().sum()
    }
}

/// Running sums. Each sum sits beside its sum of squares (and the gene's detection
/// count) so that one entry touches one cache line: cells arrive in no order of
/// condition, and the condition × gene table is far larger than the caches.
struct Pass<'a> {
    cfg: &'a PassConfig<'a>,
    scale: Option<ValueScale>,
    n_genes: usize,
    /// Per condition × gene: [sum, sum of squares] of log-normalised values.
    cond: Vec<[f64; 2]>,
    gene: GeneTable,
}

/// Per gene: [sum, sum of squares, cells detected] of the moments asked for.
struct GeneTable {
    moments: GeneMoments,
    rows: Vec<[f64; 3]>,
}

impl GeneTable {
    fn new(moments: GeneMoments, n_genes: usize) -> GeneTable {
        GeneTable { moments, rows: vec![[0.0; 3]; n_genes] }
    }

    /// Adds stored value `v` of `gene`, whose normalised value is `normalized`.
    #[inline]
    fn add(&mut self, gene: usize, v: f64, normalized: f64) {
        let x = match self.moments {
            GeneMoments::Normalized => normalized,
            GeneMoments::Raw => v,
            GeneMoments::None => 0.0,
        };
        let g = &mut self.rows[gene];
        g[0] += x;
        g[1] += x * x;
        g[2] += f64::from(u8::from(v != 0.0));
    }
}

impl<'a> Pass<'a> {
    fn bad_value(&self, cell: usize, gene: usize, what: String) -> Error {
        let name = self.cfg.gene_names.get(gene).map_or("?", String::as_str);
        Error::bad_input(self.cfg.path, format!("{}: {what} at cell {cell}, gene {name}", self.cfg.matrix_name))
    }

    /// Decides the scale from the first block: raw counts if every value is a
    /// non-negative integer.
    fn resolve_scale(&mut self, values: &[f64]) -> ValueScale {
        *self.scale.get_or_insert_with(|| scale_of(values))
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

    /// Adds the log-normalised value `logv` of `gene` to condition `cond`.
    #[inline]
    fn add_to_condition(&mut self, cond: usize, gene: usize, logv: f64) {
        let c = &mut self.cond[cond * self.n_genes + gene];
        c[0] += logv;
        c[1] += logv * logv;
    }
}

/// Normalised and log-normalised value of one stored entry, as scanpy computes them
/// (`v * target_sum / total`, then `log1p`) in f64.
#[inline]
fn transform(scale: ValueScale, v: f64, factor: f64) -> (f64, f64) {
    match scale {
        ValueScale::Counts => {
            let n = v * factor;
            (n, n.ln_1p())
        }
        ValueScale::LogNormalized => (v.exp_m1(), v),
    }
}

/// Counts below this are looked up per cell instead of recomputing `log1p`: most UMI
/// counts are small integers, and the table gives bit-identical values.
const SMALL_COUNTS: usize = 48;

const PREFETCH_AHEAD: usize = 12;

#[inline(always)]
fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults and reads nothing into the program.
    unsafe {
        std::arch::x86_64::_mm_prefetch(item as *const T as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

/// A block as the reader thread hands it over: besides the values, what it computed
/// while they were in its cache — the scale (decided on the first block), each row's
/// total, the first entry that is not a valid value (if any), and the kept rows in the
/// order they are summed in.
struct PreparedBlock {
    block: OwnedBlock,
    scale: ValueScale,
    row_totals: Vec<f64>,
    first_invalid: Option<usize>,
    /// Rows of kept cells, grouped by condition: consecutive cells of one condition reuse
    /// its row of the table while it is in cache.
    order: Vec<usize>,
}

/// Decides the scale from the first block: raw counts if every value is a
/// non-negative integer.
fn scale_of(values: &[f64]) -> ValueScale {
    if values.iter().all(|&v| v >= 0.0 && v.fract() == 0.0) {
        ValueScale::Counts
    } else {
        ValueScale::LogNormalized
    }
}

/// Whether `v` passes [`Pass::check`], without building its error.
fn valid(scale: ValueScale, v: f64) -> bool {
    v.is_finite() && v >= 0.0 && (scale != ValueScale::Counts || v.fract() == 0.0)
}

/// A fast validity test of many values (a value that fails it goes through [`valid`],
/// and one that fails that through [`Pass::check`] for the detailed error), written so
/// that it vectorises: for counts, `v + 2^52 - 2^52` rounds `v` to an integer (round to
/// nearest), so it equals `v` only for integers below 2^52.
/// (`&`, not `&&` or `Range::contains`: no branch per value.)
#[allow(clippy::manual_range_contains)]
fn all_plainly_valid(scale: ValueScale, values: &[f64]) -> bool {
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    match scale {
        ValueScale::Counts => values.iter().fold(true, |ok, &v| ok & (v >= 0.0) & (v < TWO_52) & ((v + TWO_52) - TWO_52 == v)),
        ValueScale::LogNormalized => values.iter().fold(true, |ok, &v| ok & (v >= 0.0) & (v < f64::INFINITY)),
    }
}

/// The reader thread's share of a block: validation, totals and the kept rows' order.
/// (The gene moments stay with the condition table: summed on the reader thread they
/// cost it more than they save the other, whose time goes to waiting for memory.)
fn prepare(block: OwnedBlock, scale: ValueScale, cfg: &PassConfig<'_>) -> PreparedBlock {
    let first_invalid = if all_plainly_valid(scale, &block.values) { None } else { block.values.iter().position(|&v| !valid(scale, v)) };
    let row_totals: Vec<f64> = block
        .indptr
        .windows(2)
        .map(|w| {
            let row = &block.values[w[0]..w[1]];
            match scale {
                // In order, one value at a time: the totals scanpy computes.
                ValueScale::Counts => row.iter().fold(0.0, |t, &v| t + v),
                ValueScale::LogNormalized => row.iter().fold(0.0, |t, &v| t + v.exp_m1()),
            }
        })
        .collect();
    let condition = |i: usize| cfg.cell_condition[block.first + i];
    let mut order: Vec<usize> =
        (0..row_totals.len()).filter(|&i| condition(i) != NO_CONDITION && (scale == ValueScale::LogNormalized || row_totals[i] >= cfg.min_counts)).collect();
    order.sort_by_key(|&i| (condition(i), i));
    PreparedBlock { block, scale, row_totals, first_invalid, order }
}

/// Streams a row-major source with reading, decoding and [`prepare`] on a reader thread
/// and `consume` on this one, so that the file work overlaps with the accumulation.
/// Blocks arrive in order.
fn visit_prepared(source: &dyn BlockSource, cfg: &PassConfig<'_>, consume: &mut dyn FnMut(PreparedBlock) -> Result<()>) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<PreparedBlock>(2);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut scale = cfg.scale;
            source.visit_owned(&mut |block: OwnedBlock| {
                let scale = *scale.get_or_insert_with(|| scale_of(&block.values));
                // A closed channel means the consumer stopped on an error of its own,
                // which is the one reported.
                if tx.send(prepare(block, scale, cfg)).is_err() {
                    return Err(Error::Other("consumer stopped".into()));
                }
                Ok(())
            })
        });
        let mut consumed: Result<()> = Ok(());
        for b in rx.iter() {
            if let Err(e) = consume(b) {
                consumed = Err(e);
                break;
            }
        }
        drop(rx);
        let read = reader.join().unwrap_or_else(|_| Err(Error::Other("reader thread panicked".into())));
        consumed?;
        read
    })
}

/// The factor that scales a cell's counts to `target_sum` (0 for an empty cell, which
/// scanpy leaves at zero).
fn size_factor(total: f64, target_sum: f64) -> f64 {
    if total > 0.0 {
        target_sum / total
    } else {
        0.0
    }
}

/// Per cell of the matrix: its total (counts, or expm1 of log-normalised values) and
/// whether it is kept (has a condition and passed `min_counts`).
struct CellTotals {
    totals: Vec<f64>,
    kept: Vec<bool>,
}

/// A zeroed table with every page written once. A zeroed allocation this large comes
/// fresh from the kernel, which maps each page to its shared zero page on the first read;
/// the accumulation reads an entry before writing it, so each page would then take a
/// second fault to be copied and a TLB flush on every core running this process (an
/// interrupt to the reader thread's core, on a virtual machine a costly one). Written
/// first, a page takes one fault and no flush.
pub(crate) fn written_zeros(len: usize) -> Vec<[f64; 2]> {
    const PER_PAGE: usize = 4096 / std::mem::size_of::<[f64; 2]>();
    let mut table = vec![[0.0; 2]; len];
    for page in table.chunks_mut(PER_PAGE) {
        // Opaque to the compiler, which would otherwise drop a store of zero to memory it
        // knows to be zero.
        page[0] = std::hint::black_box([0.0; 2]);
    }
    table
}

/// Streams the matrix once (twice for column-major storage, which needs the cell totals
/// before it can normalise).
pub fn accumulate(source: &dyn BlockSource, cfg: &PassConfig<'_>) -> Result<PassResult> {
    let n_obs = source.n_obs();
    let n_genes = source.n_vars();
    let n_cond = cfg.n_conditions;
    let mut pass = Pass { cfg, scale: cfg.scale, n_genes, cond: written_zeros(n_cond * n_genes), gene: GeneTable::new(cfg.moments, n_genes) };
    let mut cells = CellTotals { totals: vec![0.0f64; n_obs], kept: vec![false; n_obs] };
    match source.orientation() {
        Orientation::Rows => {
            let mut small = [0.0f64; SMALL_COUNTS];
            visit_prepared(source, cfg, &mut |prepared: PreparedBlock| pass.add_prepared(prepared, &mut cells, &mut small))?;
        }
        Orientation::Columns => pass.add_columns(source, &mut cells)?,
    }
    Ok(pass.finish(cells))
}

impl Pass<'_> {
    /// Adds the kept rows of a row-major block. `small` is scratch for the log-normalised
    /// values of small counts.
    fn add_prepared(&mut self, prepared: PreparedBlock, cells: &mut CellTotals, small: &mut [f64; SMALL_COUNTS]) -> Result<()> {
        let PreparedBlock { block, scale, row_totals, first_invalid, order } = prepared;
        self.scale = Some(scale);
        if let Some(k) = first_invalid {
            let i = block.indptr.partition_point(|&p| p <= k) - 1;
            self.check(scale, block.first + i, block.indices[k] as usize, block.values[k])?;
        }
        cells.totals[block.first..block.first + row_totals.len()].copy_from_slice(&row_totals);
        for &i in &order {
            let cell = block.first + i;
            cells.kept[cell] = true;
            let factor = size_factor(cells.totals[cell], self.cfg.target_sum);
            if scale == ValueScale::Counts {
                for (c, slot) in small.iter_mut().enumerate() {
                    *slot = (c as f64 * factor).ln_1p();
                }
            }
            self.add_row(&block, i, scale, factor, small);
        }
        Ok(())
    }

    /// Adds row `i` of a block: the cell's entries to its condition and to the genes.
    #[inline]
    fn add_row(&mut self, block: &OwnedBlock, i: usize, scale: ValueScale, factor: f64, small: &[f64; SMALL_COUNTS]) {
        let cond = self.cfg.cell_condition[block.first + i] as usize;
        let (lo, hi) = (block.indptr[i], block.indptr[i + 1]);
        let row = cond * self.n_genes;
        for k in lo..hi {
            // The row's entries are scattered over a table larger than the caches;
            // fetching a few entries ahead hides the latency.
            if k + PREFETCH_AHEAD < hi {
                let ahead = block.indices[k + PREFETCH_AHEAD] as usize;
                prefetch(&self.cond[row + ahead]);
            }
            let v = block.values[k];
            let (normalized, logv) =
                if scale == ValueScale::Counts && v < SMALL_COUNTS as f64 { (v * factor, small[v as usize]) } else { transform(scale, v, factor) };
            let gene = block.indices[k] as usize;
            self.add_to_condition(cond, gene, logv);
            self.gene.add(gene, v, normalized);
        }
    }

    /// Column-major storage: a first pass validates and totals each cell, a second adds
    /// the kept cells' entries.
    fn add_columns(&mut self, source: &dyn BlockSource, cells: &mut CellTotals) -> Result<()> {
        let cfg = self.cfg;
        source.visit(&mut |block: Block<'_>| {
            let scale = self.resolve_scale(block.values);
            for j in 0..block.indptr.len() - 1 {
                let gene = block.first + j;
                for k in block.indptr[j]..block.indptr[j + 1] {
                    let (cell, v) = (block.indices[k] as usize, block.values[k]);
                    self.check(scale, cell, gene, v)?;
                    cells.totals[cell] += match scale {
                        ValueScale::Counts => v,
                        ValueScale::LogNormalized => v.exp_m1(),
                    };
                }
            }
            Ok(())
        })?;
        let scale = self.scale.unwrap_or(ValueScale::Counts);
        for cell in 0..cells.kept.len() {
            cells.kept[cell] = cfg.cell_condition[cell] != NO_CONDITION && (scale == ValueScale::LogNormalized || cells.totals[cell] >= cfg.min_counts);
        }
        let factors: Vec<f64> = cells.totals.iter().map(|&t| size_factor(t, cfg.target_sum)).collect();
        source.visit(&mut |block: Block<'_>| {
            for j in 0..block.indptr.len() - 1 {
                let gene = block.first + j;
                for k in block.indptr[j]..block.indptr[j + 1] {
                    let cell = block.indices[k] as usize;
                    if cells.kept[cell] {
                        let cond = cfg.cell_condition[cell] as usize;
                        let v = block.values[k];
                        let (normalized, logv) = transform(scale, v, factors[cell]);
                        self.add_to_condition(cond, gene, logv);
                        self.gene.add(gene, v, normalized);
                    }
                }
            }
            Ok(())
        })
    }

    /// The sums, and per condition the cells kept and the cells `min_counts` dropped.
    fn finish(self, cells: CellTotals) -> PassResult {
        let cfg = self.cfg;
        let n_cond = cfg.n_conditions;
        let mut cond_cells = vec![0u64; n_cond];
        let mut cond_filtered = vec![0u64; n_cond];
        let mut kept_totals = Vec::new();
        for (cell, &cond) in cfg.cell_condition.iter().enumerate().take(cells.kept.len()) {
            if cond == NO_CONDITION {
                continue;
            }
            if cells.kept[cell] {
                cond_cells[cond as usize] += 1;
                kept_totals.push(cells.totals[cell]);
            } else {
                cond_filtered[cond as usize] += 1;
            }
        }
        PassResult {
            scale: self.scale.unwrap_or(ValueScale::Counts),
            n_genes: self.n_genes,
            conditions: ConditionSums { moments: self.cond, cells: cond_cells, filtered: cond_filtered },
            genes: GeneSums {
                sum: self.gene.rows.iter().map(|g| g[0]).collect(),
                sum_sq: self.gene.rows.iter().map(|g| g[1]).collect(),
                detected: self.gene.rows.iter().map(|g| g[2] as u64).collect(),
            },
            cells: KeptCells { kept: cells.kept, totals: kept_totals },
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vectorised_test_agrees_with_the_exact_one() {
        let values = [0.0, 1.0, 3.0, 1e15, 4_503_599_627_370_495.0, 0.5, -1.0, f64::NAN, f64::INFINITY, -0.0, 2.0f64.powi(60), 1e-300];
        for scale in [ValueScale::Counts, ValueScale::LogNormalized] {
            for &v in &values {
                // The fast test may refuse a valid value (it then goes through `valid`),
                // never pass an invalid one.
                if all_plainly_valid(scale, &[v]) {
                    assert!(valid(scale, v), "{scale:?} {v}");
                }
            }
        }
        // `valid` is `Pass::check` without its message: the reader thread relies on it.
        let names = vec!["G0".to_string()];
        let cfg = PassConfig {
            path: Path::new("x.h5ad"),
            matrix_name: "X",
            gene_names: &names,
            cell_condition: &[0],
            n_conditions: 1,
            scale: None,
            target_sum: 1e4,
            min_counts: 0.0,
            moments: GeneMoments::None,
        };
        let pass = Pass { cfg: &cfg, scale: None, n_genes: 1, cond: Vec::new(), gene: GeneTable::new(GeneMoments::None, 1) };
        for scale in [ValueScale::Counts, ValueScale::LogNormalized] {
            for &v in &values {
                assert_eq!(pass.check(scale, 0, 0, v).is_ok(), valid(scale, v), "{scale:?} {v}");
            }
        }
        assert!(all_plainly_valid(ValueScale::Counts, &[0.0, 7.0, 12345.0]));
        assert!(!all_plainly_valid(ValueScale::Counts, &[0.0, 7.5, 12345.0]));
        assert!(all_plainly_valid(ValueScale::LogNormalized, &[0.0, 7.5, 1.25]));
        assert!(!all_plainly_valid(ValueScale::LogNormalized, &[0.0, f64::NAN]));
    }

    #[test]
    fn preparing_a_block_totals_its_rows_and_finds_the_first_bad_value() {
        let block = OwnedBlock {
            orientation: Orientation::Rows,
            first: 2,
            indptr: vec![0, 2, 2, 5],
            indices: vec![0, 3, 1, 2, 3],
            values: vec![1.0, 2.0, 4.0, 0.5, -3.0],
        };
        let names: Vec<String> = (0..4).map(|g| format!("G{g}")).collect();
        let cell_condition = [0, 0, 1, NO_CONDITION, 0];
        let cfg = PassConfig {
            path: Path::new("x.h5ad"),
            matrix_name: "X",
            gene_names: &names,
            cell_condition: &cell_condition,
            n_conditions: 2,
            scale: None,
            target_sum: 1e4,
            min_counts: 0.0,
            moments: GeneMoments::Normalized,
        };
        let prepared = prepare(block, ValueScale::Counts, &cfg);
        assert_eq!(prepared.row_totals, vec![3.0, 0.0, 1.5]);
        assert_eq!(prepared.first_invalid, Some(3), "0.5 is the first value that is not a count");
        // Cell 3 has no condition; the others are grouped by condition.
        assert_eq!(prepared.order, vec![2, 0]);
    }
}

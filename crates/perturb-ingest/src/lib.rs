//! The ingestion stage: a screen (h5ad, or CSV) in, normalised pseudobulk Parquet out.
//!
//! `ingest` reads cell metadata and gene names, maps every cell's label to a canonical
//! [`Condition`], streams the matrix once (see [`accumulate`]) and writes, atomically,
//! `genes.parquet`, `conditions.parquet`, `pseudobulk.parquet` and `manifest.json`
//! (schemas in `docs/artifacts.md`). Nothing is written when the input is bad.

pub mod accumulate;
mod csv_input;
pub mod h5ad;
pub mod hvg;
pub mod loess;
pub mod source;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use perturb_core::manifest::{InputFile, Manifest};
use perturb_core::schema::{self, conditions as cs, genes as gs, pseudobulk as ps};
use perturb_core::staging::StagedDir;
use perturb_core::{Column, Condition, ConditionSyntax, Error, Result, Table};
use serde_json::json;

use accumulate::{GeneMoments, PassConfig, ValueScale, NO_CONDITION};
use hvg::{HvgFlavor, HvgSelection, HvgTable};
use source::BlockSource;

/// What kind of file the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// From the file name: `.h5ad` is AnnData, `.csv`/`.tsv` (optionally `.gz`) a
    /// cells × genes count table.
    Auto,
    H5ad,
    /// One row per cell: a condition column, optionally a cell-id column, one column per gene.
    CsvCounts,
    /// One row per condition: a condition column, optionally `n_cells`, one column per
    /// gene holding the mean log-normalised expression.
    CsvPseudobulk,
}

impl FromStr for InputFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(InputFormat::Auto),
            "h5ad" => Ok(InputFormat::H5ad),
            "csv-counts" => Ok(InputFormat::CsvCounts),
            "csv-pseudobulk" => Ok(InputFormat::CsvPseudobulk),
            _ => Err(format!("unknown input format '{s}' (valid: auto, h5ad, csv-counts, csv-pseudobulk)")),
        }
    }
}

/// What the user says the values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssumeScale {
    /// Raw counts if every value of the first block is a non-negative integer, else
    /// log-normalised.
    Auto,
    Counts,
    LogNormalized,
}

impl FromStr for AssumeScale {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(AssumeScale::Auto),
            "counts" => Ok(AssumeScale::Counts),
            "lognorm" => Ok(AssumeScale::LogNormalized),
            _ => Err(format!("unknown value scale '{s}' (valid: auto, counts, lognorm)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub input: PathBuf,
    pub out: PathBuf,
    pub format: InputFormat,
    /// `X` (default), a layer name, or `raw`.
    pub layer: Option<String>,
    /// var column with gene symbols; default `gene_name` when present, else the index.
    pub gene_key: Option<String>,
    pub condition_key: String,
    pub control: String,
    pub syntax: ConditionSyntax,
    pub assume: AssumeScale,
    pub target_sum: f64,
    pub hvg_flavor: HvgFlavor,
    pub n_top_genes: usize,
    /// Use scanpy's mean/dispersion cutoffs instead of `n_top_genes`.
    pub hvg_cutoffs: bool,
    pub min_counts: f64,
    /// CSV input: read an empty cell (how pandas writes NaN) as 0 instead of refusing
    /// the file. Spelled-out `NaN`/`inf` are refused either way.
    pub missing_as_zero: bool,
}

impl IngestOptions {
    pub fn new(input: impl Into<PathBuf>, out: impl Into<PathBuf>) -> IngestOptions {
        IngestOptions {
            input: input.into(),
            out: out.into(),
            format: InputFormat::Auto,
            layer: None,
            gene_key: None,
            condition_key: "condition".to_string(),
            control: "ctrl".to_string(),
            syntax: ConditionSyntax::Auto,
            assume: AssumeScale::Auto,
            target_sum: 1e4,
            hvg_flavor: HvgFlavor::Seurat,
            n_top_genes: 2000,
            hvg_cutoffs: false,
            min_counts: 0.0,
            missing_as_zero: false,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(self.target_sum.is_finite() && self.target_sum > 0.0) {
            return Err(Error::bad_option("--target-sum", format!("must be a positive number, got {}", self.target_sum)));
        }
        if !(self.min_counts.is_finite() && self.min_counts >= 0.0) {
            return Err(Error::bad_option("--min-counts", format!("must be ≥ 0, got {}", self.min_counts)));
        }
        if self.n_top_genes == 0 && !self.hvg_cutoffs {
            return Err(Error::bad_option("--n-top-genes", "must be ≥ 1 (or use --hvg-cutoffs)"));
        }
        if self.hvg_cutoffs && self.hvg_flavor == HvgFlavor::SeuratV3 {
            return Err(Error::bad_option("--hvg-cutoffs", "seurat_v3 selects by rank only; use --n-top-genes"));
        }
        Ok(())
    }

    fn resolved_format(&self) -> InputFormat {
        if self.format != InputFormat::Auto {
            return self.format;
        }
        let name = self.input.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".csv") || name.ends_with(".tsv") || name.ends_with(".txt") {
            InputFormat::CsvCounts
        } else {
            InputFormat::H5ad
        }
    }
}

/// What a finished ingest reports (also recorded in the manifest).
#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestSummary {
    pub out: PathBuf,
    pub n_cells: u64,
    pub n_genes: usize,
    pub n_conditions: usize,
    pub n_singles: usize,
    pub n_doubles: usize,
    pub value_scale: String,
    pub matrix: String,
    pub gene_names_from: String,
    pub n_highly_variable: usize,
    pub cells_without_condition: u64,
    pub cells_below_min_counts: u64,
    pub targets_not_measured: Vec<String>,
    pub warnings: Vec<String>,
}

/// Per-cell labels and gene names, whatever the input format.
struct CellMeta {
    labels: Vec<Option<String>>,
    genes: Vec<String>,
    gene_ids: Vec<String>,
    gene_source: String,
}

/// Runs the ingestion stage.
pub fn ingest(opts: &IngestOptions) -> Result<IngestSummary> {
    opts.validate()?;
    // Fail on a missing input before starting the hash thread.
    std::fs::metadata(&opts.input).map_err(|e| Error::io(&opts.input, e))?;
    let staged = Staged { dir: StagedDir::new(&opts.out)?, input_hash: std::cell::Cell::new(Some(InputFile::hash_in_background(&opts.input))) };
    let summary = match opts.resolved_format() {
        InputFormat::H5ad | InputFormat::Auto => {
            let file = h5ad::H5ad::open(&opts.input)?;
            let slot = h5ad::MatrixSlot::parse(opts.layer.as_deref().unwrap_or("X"));
            let names = file.gene_names(&slot, opts.gene_key.as_deref())?;
            let labels = match file.frame_column("obs", &opts.condition_key)? {
                h5ad::FrameColumn::Labels(l) => l,
                h5ad::FrameColumn::Numeric(_) => {
                    return Err(Error::bad_input(
                        &opts.input,
                        format!("obs/{} is numeric; --condition-key must name a column of condition labels", opts.condition_key),
                    ))
                }
            };
            let matrix = file.matrix(&slot)?;
            if matrix.n_obs() != labels.len() || matrix.n_vars() != names.symbols.len() {
                return Err(Error::bad_input(
                    &opts.input,
                    format!(
                        "{} is {} x {} but obs has {} rows and the gene names {} entries",
                        slot,
                        matrix.n_obs(),
                        matrix.n_vars(),
                        labels.len(),
                        names.symbols.len()
                    ),
                ));
            }
            let meta = CellMeta { labels, genes: names.symbols, gene_ids: names.ids, gene_source: names.source };
            run_cells(opts, &staged, meta, &matrix, &matrix.describe())?
        }
        InputFormat::CsvCounts => {
            let table = csv_input::read_counts(&opts.input, &opts.condition_key, opts.missing_as_zero)?;
            let meta = CellMeta {
                labels: table.labels.into_iter().map(Some).collect(),
                gene_ids: table.genes.clone(),
                genes: table.genes,
                gene_source: "CSV header".to_string(),
            };
            let describe = format!("CSV count table ({} x {})", table.matrix.n_obs, table.matrix.n_vars);
            run_cells(opts, &staged, meta, &table.matrix, &describe)?
        }
        InputFormat::CsvPseudobulk => run_pseudobulk_table(opts, &staged)?,
    };
    staged.dir.commit()?;
    Ok(summary)
}

/// Canonical conditions of a screen, and each cell's condition index.
struct ConditionIndex {
    conditions: Vec<Condition>,
    labels: Vec<Vec<String>>,
    cell_condition: Vec<u32>,
    cells_without_condition: u64,
}

fn index_conditions(opts: &IngestOptions, labels: &[Option<String>]) -> Result<ConditionIndex> {
    if labels.is_empty() {
        return Err(Error::bad_input(&opts.input, "has no cells (obs is empty)"));
    }
    let distinct: BTreeMap<&str, ()> = labels.iter().flatten().map(|l| (l.as_str(), ())).collect();
    if distinct.is_empty() {
        return Err(Error::bad_input(&opts.input, format!("has no condition labels: obs/{} is missing for all {} cells", opts.condition_key, labels.len())));
    }
    let syntax = match opts.syntax {
        ConditionSyntax::Auto => ConditionSyntax::detect(distinct.keys().copied()),
        s => s,
    };
    let mut by_label: HashMap<&str, Condition> = HashMap::new();
    for &label in distinct.keys() {
        let c = Condition::parse(label, syntax, &opts.control).map_err(|m| Error::bad_input(&opts.input, format!("obs/{}: {m}", opts.condition_key)))?;
        by_label.insert(label, c);
    }
    // The control is the label the user named (default `ctrl`), exactly: a GEARS file
    // read with `--control NT` must not silently fall back to its `ctrl` cells.
    if !distinct.contains_key(opts.control.as_str()) {
        let mut shown: Vec<&str> = distinct.keys().copied().take(8).collect();
        if distinct.len() > 8 {
            shown.push("…");
        }
        return Err(Error::bad_input(
            &opts.input,
            format!("no control cells: no label of obs/{} is '{}' (labels: {}); set --control", opts.condition_key, opts.control, shown.join(", ")),
        ));
    }
    // Order: control, singles, doubles, multi; by name within a kind.
    let mut conditions: Vec<Condition> = by_label.values().cloned().collect();
    conditions.sort_by(|a, b| (a.kind(), a).cmp(&(b.kind(), b)));
    conditions.dedup();
    if conditions.len() < 2 {
        let shown: Vec<&str> = distinct.keys().copied().take(8).collect();
        return Err(Error::bad_input(
            &opts.input,
            format!(
                "has no perturbed conditions besides the control '{}' (labels of obs/{}: {}); nothing to predict",
                opts.control,
                opts.condition_key,
                shown.join(", ")
            ),
        ));
    }
    let position: HashMap<&Condition, u32> = conditions.iter().enumerate().map(|(i, c)| (c, i as u32)).collect();
    let mut cond_labels: Vec<Vec<String>> = vec![Vec::new(); conditions.len()];
    for (&label, c) in &by_label {
        cond_labels[position[c] as usize].push(label.to_string());
    }
    for l in &mut cond_labels {
        l.sort();
    }
    let mut cells_without_condition = 0;
    let cell_condition = labels
        .iter()
        .map(|l| match l {
            Some(l) => position[&by_label[l.as_str()]],
            None => {
                cells_without_condition += 1;
                NO_CONDITION
            }
        })
        .collect();
    Ok(ConditionIndex { conditions, labels: cond_labels, cell_condition, cells_without_condition })
}

fn check_unique_genes(path: &Path, genes: &[String], source: &str) -> Result<()> {
    if genes.is_empty() {
        return Err(Error::bad_input(path, format!("has no genes ({source} is empty)")));
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(genes.len());
    let mut dups = Vec::new();
    for (i, g) in genes.iter().enumerate() {
        if let Some(first) = seen.insert(g.as_str(), i) {
            if dups.len() < 5 {
                dups.push(format!("'{g}' (genes {first} and {i})"));
            }
        }
    }
    if dups.is_empty() {
        Ok(())
    } else {
        Err(Error::bad_input(path, format!("duplicate gene names in {source}: {}; pick unique symbols with --gene-key", dups.join(", "))))
    }
}

fn run_cells(opts: &IngestOptions, staged: &Staged, meta: CellMeta, source: &dyn BlockSource, matrix: &str) -> Result<IngestSummary> {
    check_unique_genes(&opts.input, &meta.genes, &meta.gene_source)?;
    let index = index_conditions(opts, &meta.labels)?;
    let scale = match opts.assume {
        AssumeScale::Auto => None,
        AssumeScale::Counts => Some(ValueScale::Counts),
        AssumeScale::LogNormalized => Some(ValueScale::LogNormalized),
    };
    let moments = match opts.hvg_flavor {
        HvgFlavor::Seurat => GeneMoments::Normalized,
        HvgFlavor::SeuratV3 => GeneMoments::Raw,
        HvgFlavor::CellRanger => GeneMoments::None,
    };
    tracing::info!(%matrix, cells = source.n_obs(), genes = source.n_vars(), conditions = index.conditions.len(), "streaming matrix");
    let cfg = PassConfig {
        path: &opts.input,
        matrix_name: matrix,
        gene_names: &meta.genes,
        cell_condition: &index.cell_condition,
        n_conditions: index.conditions.len(),
        scale,
        target_sum: opts.target_sum,
        min_counts: opts.min_counts,
        moments,
    };
    let pass = accumulate::accumulate(source, &cfg)?;
    tracing::info!(scale = pass.scale.as_str(), kept = pass.n_kept(), "matrix streamed");

    for (c, cond) in index.conditions.iter().enumerate() {
        if pass.cond_cells[c] == 0 {
            return Err(Error::bad_input(
                &opts.input,
                format!("condition '{}' has zero cells after filtering ({} dropped by --min-counts {})", cond, pass.cond_filtered[c], opts.min_counts),
            ));
        }
    }
    if opts.hvg_flavor == HvgFlavor::SeuratV3 && pass.scale != ValueScale::Counts {
        return Err(Error::bad_input(
            &opts.input,
            format!("{matrix} holds log-normalised values but --hvg-flavor seurat_v3 needs raw counts; choose a count matrix with --layer (e.g. counts)"),
        ));
    }

    let n_kept = pass.n_kept();
    let n_genes = meta.genes.len();
    let n_cond = index.conditions.len();
    // Gene-level moments of the log-normalised values, summed from the pseudobulk sums.
    let mut log_sum = vec![0.0; n_genes];
    let mut log_sum_sq = vec![0.0; n_genes];
    for c in 0..n_cond {
        for g in 0..n_genes {
            log_sum[g] += pass.cond_sum[c * n_genes + g];
            log_sum_sq[g] += pass.cond_sum_sq[c * n_genes + g];
        }
    }
    let moments_of = |sum: &[f64], sq: &[f64]| -> (Vec<f64>, Vec<f64>) { (0..n_genes).map(|g| accumulate::mean_var(sum[g], sq[g], n_kept)).unzip() };
    let selection = if opts.hvg_cutoffs { HvgSelection::SCANPY_CUTOFFS } else { HvgSelection::TopGenes(opts.n_top_genes) };
    let hvg = match opts.hvg_flavor {
        HvgFlavor::Seurat => {
            let (m, v) = moments_of(&pass.gene_sum, &pass.gene_sum_sq);
            hvg::dispersion_based(HvgFlavor::Seurat, &m, &v, selection, 20)
        }
        HvgFlavor::CellRanger => {
            let (m, v) = moments_of(&log_sum, &log_sum_sq);
            hvg::dispersion_based(HvgFlavor::CellRanger, &m, &v, selection, 20)
        }
        HvgFlavor::SeuratV3 => {
            let (m, v) = moments_of(&pass.gene_sum, &pass.gene_sum_sq);
            let trend =
                hvg::seurat_v3_trend(&m, &v, n_kept as usize, 0.3).map_err(|e| Error::bad_input(&opts.input, format!("seurat_v3 trend fit failed: {e}")))?;
            let (cs_, cs2) = accumulate::clipped_sums(source, &pass.kept, &trend.clip)?;
            hvg::seurat_v3_select(&trend, &m, &v, n_kept as usize, &cs_, &cs2, opts.n_top_genes)
        }
    };

    let control = 0; // conditions are sorted with control first
    let control_mean: Vec<f64> = (0..n_genes).map(|g| pass.cond_sum[control * n_genes + g] / pass.cond_cells[control] as f64).collect();

    let mut warnings = Vec::new();
    if pass.scale == ValueScale::LogNormalized {
        let median = hvg::median(&pass.cell_totals);
        warnings
            .push(format!("{matrix} read as log-normalised (log1p of normalised counts); used as is. Median per-cell total of expm1(values) = {median:.1}"));
    }
    let mut pseudobulk_mean = Vec::with_capacity(n_cond * n_genes);
    let mut pseudobulk_var = Vec::with_capacity(n_cond * n_genes);
    for c in 0..n_cond {
        for g in 0..n_genes {
            let k = c * n_genes + g;
            let (m, v) = accumulate::mean_var(pass.cond_sum[k], pass.cond_sum_sq[k], pass.cond_cells[c]);
            pseudobulk_mean.push(m);
            pseudobulk_var.push(v);
        }
    }
    let detected: Vec<i64> = pass.detected.iter().map(|&d| d as i64).collect();
    let cond_cells: Vec<i64> = pass.cond_cells.iter().map(|&n| n as i64).collect();
    let cells_below_min_counts = pass.cond_filtered.iter().sum();
    let parameters = json!({
        "format": format!("{:?}", opts.resolved_format()),
        "matrix": matrix,
        "layer": opts.layer.as_deref().unwrap_or("X"),
        "gene_key": opts.gene_key,
        "condition_key": opts.condition_key,
        "control": opts.control,
        "condition_syntax": format!("{:?}", opts.syntax),
        "assume": format!("{:?}", opts.assume),
        "target_sum": opts.target_sum,
        "hvg_flavor": opts.hvg_flavor.as_str(),
        "n_top_genes": opts.n_top_genes,
        "hvg_cutoffs": opts.hvg_cutoffs,
        "min_counts": opts.min_counts,
        "missing_as_zero": opts.missing_as_zero,
    });
    write_outputs(
        opts,
        staged,
        Outputs {
            genes: &meta.genes,
            gene_ids: &meta.gene_ids,
            gene_source: &meta.gene_source,
            control_mean: &control_mean,
            detected: Some(&detected),
            hvg: Some(&hvg),
            index: &index,
            cond_cells: &cond_cells,
            pseudobulk_mean: &pseudobulk_mean,
            pseudobulk_var: &pseudobulk_var,
            value_scale: pass.scale.as_str(),
            matrix,
            cells_below_min_counts,
            warnings,
            parameters,
        },
    )
}

fn run_pseudobulk_table(opts: &IngestOptions, staged: &Staged) -> Result<IngestSummary> {
    let table = csv_input::read_pseudobulk(&opts.input, &opts.condition_key, opts.missing_as_zero)?;
    check_unique_genes(&opts.input, &table.genes, "CSV header")?;
    let labels: Vec<Option<String>> = table.labels.iter().cloned().map(Some).collect();
    let index = index_conditions(opts, &labels)?;
    if index.conditions.len() != labels.len() {
        return Err(Error::bad_input(&opts.input, "a condition appears in more than one row of the pseudobulk table"));
    }
    let n_genes = table.genes.len();
    let n_cond = index.conditions.len();
    // Rows in canonical order.
    let mut row_of = vec![0usize; n_cond];
    for (row, &c) in index.cell_condition.iter().enumerate() {
        row_of[c as usize] = row;
    }
    let mut mean = Vec::with_capacity(n_cond * n_genes);
    for &row in &row_of {
        mean.extend_from_slice(&table.values[row * n_genes..(row + 1) * n_genes]);
    }
    let cond_cells: Vec<i64> = row_of.iter().map(|&r| table.n_cells.as_ref().map_or(0, |n| n[r])).collect();
    let control_mean = mean[..n_genes].to_vec();
    let parameters = json!({
        "format": "CsvPseudobulk",
        "condition_key": opts.condition_key,
        "control": opts.control,
        "condition_syntax": format!("{:?}", opts.syntax),
        "missing_as_zero": opts.missing_as_zero,
    });
    let mut warnings = vec!["pseudobulk table: values taken as mean log-normalised expression; variances and HVGs need cells and are NaN/false".to_string()];
    if table.n_cells.is_none() {
        warnings.push("pseudobulk table has no n_cells column: n_cells written as 0 (unknown)".to_string());
    }
    write_outputs(
        opts,
        staged,
        Outputs {
            genes: &table.genes,
            gene_ids: &table.genes,
            gene_source: "CSV header",
            control_mean: &control_mean,
            detected: None,
            hvg: None,
            index: &index,
            cond_cells: &cond_cells,
            pseudobulk_mean: &mean,
            pseudobulk_var: &vec![f64::NAN; n_cond * n_genes],
            value_scale: "lognorm",
            matrix: "CSV pseudobulk table",
            cells_below_min_counts: 0,
            warnings,
            parameters,
        },
    )
}

struct Outputs<'a> {
    genes: &'a [String],
    gene_ids: &'a [String],
    gene_source: &'a str,
    control_mean: &'a [f64],
    detected: Option<&'a [i64]>,
    hvg: Option<&'a HvgTable>,
    index: &'a ConditionIndex,
    cond_cells: &'a [i64],
    pseudobulk_mean: &'a [f64],
    pseudobulk_var: &'a [f64],
    value_scale: &'a str,
    matrix: &'a str,
    cells_below_min_counts: u64,
    warnings: Vec<String>,
    parameters: serde_json::Value,
}

/// The staging folder of this run and the input's hash, computed while the run reads.
struct Staged {
    dir: StagedDir,
    input_hash: std::cell::Cell<Option<perturb_core::manifest::PendingHash>>,
}

impl Staged {
    fn path(&self, file: &str) -> PathBuf {
        self.dir.path(file)
    }
}

fn write_outputs(opts: &IngestOptions, staged: &Staged, o: Outputs<'_>) -> Result<IngestSummary> {
    let n_genes = o.genes.len();
    let n_cond = o.index.conditions.len();

    // Control rank: 1 = highest control mean, ties by input order.
    let mut order: Vec<usize> = (0..n_genes).collect();
    order.sort_by(|&a, &b| o.control_mean[b].total_cmp(&o.control_mean[a]).then(a.cmp(&b)));
    let mut control_rank = vec![0i64; n_genes];
    for (r, &g) in order.iter().enumerate() {
        control_rank[g] = r as i64 + 1;
    }
    let nan = vec![f64::NAN; n_genes];
    let hvg = o.hvg;
    let f = |pick: fn(&HvgTable) -> &Vec<f64>| Column::F64(hvg.map_or_else(|| nan.clone(), |h| pick(h).clone()));
    let genes = Table::new()
        .with(gs::GENE, Column::Str(o.genes.to_vec()))
        .with(gs::GENE_ID, Column::Str(o.gene_ids.to_vec()))
        .with(gs::CONTROL_MEAN, Column::F64(o.control_mean.to_vec()))
        .with(gs::CONTROL_RANK, Column::I64(control_rank))
        .with(gs::N_CELLS_DETECTED, Column::I64(o.detected.map_or_else(|| vec![0; n_genes], <[i64]>::to_vec)))
        .with(gs::MEANS, f(|h| &h.means))
        .with(gs::DISPERSIONS, f(|h| &h.dispersions))
        .with(gs::DISPERSIONS_NORM, f(|h| &h.dispersions_norm))
        .with(gs::VARIANCES, f(|h| &h.variances))
        .with(gs::VARIANCES_NORM, f(|h| &h.variances_norm))
        .with(gs::HIGHLY_VARIABLE, Column::Bool(hvg.map_or_else(|| vec![false; n_genes], |h| h.highly_variable.clone())))
        .with(gs::HIGHLY_VARIABLE_RANK, f(|h| &h.highly_variable_rank));
    genes.write_parquet(&staged.path(gs::FILE))?;

    let measured: std::collections::HashSet<&str> = o.genes.iter().map(String::as_str).collect();
    let mut not_measured = Vec::new();
    let flags: Vec<Vec<String>> = o
        .index
        .conditions
        .iter()
        .map(|c| {
            c.genes()
                .iter()
                .filter(|g| !measured.contains(g.as_str()))
                .map(|g| {
                    not_measured.push(g.clone());
                    format!("{}:{g}", schema::FLAG_TARGET_NOT_MEASURED)
                })
                .collect()
        })
        .collect();
    not_measured.sort();
    not_measured.dedup();
    let conditions = Table::new()
        .with(cs::CONDITION, Column::Str(o.index.conditions.iter().map(Condition::canonical).collect()))
        .with(cs::LABELS, Column::Str(o.index.labels.iter().map(|l| l.join(";")).collect()))
        .with(cs::GENES, Column::StrList(o.index.conditions.iter().map(|c| c.genes().to_vec()).collect()))
        .with(cs::N_CELLS, Column::I64(o.cond_cells.to_vec()))
        .with(cs::KIND, Column::Str(o.index.conditions.iter().map(|c| c.kind().as_str().to_string()).collect()))
        .with(cs::FLAGS, Column::StrList(flags));
    conditions.write_parquet(&staged.path(cs::FILE))?;

    // Long form, condition-major; names are stored once (dictionary columns).
    let cond_keys: Vec<u32> = (0..n_cond as u32).flat_map(|c| std::iter::repeat_n(c, n_genes)).collect();
    let gene_keys: Vec<u32> = (0..n_cond).flat_map(|_| 0..n_genes as u32).collect();
    let pseudobulk = Table::new()
        .with(ps::CONDITION, Column::Dict { values: o.index.conditions.iter().map(Condition::canonical).collect(), keys: cond_keys })
        .with(ps::GENE, Column::Dict { values: o.genes.to_vec(), keys: gene_keys })
        .with(ps::MEAN, Column::F64(o.pseudobulk_mean.to_vec()))
        .with(ps::VARIANCE, Column::F64(o.pseudobulk_var.to_vec()));
    pseudobulk.write_parquet(&staged.path(ps::FILE))?;

    let count = |k| o.index.conditions.iter().filter(|c| c.kind() == k).count();
    let mut warnings = o.warnings;
    if !not_measured.is_empty() {
        warnings.push(format!(
            "{} perturbed gene(s) are not among the measured genes (kept, flagged {}): {}",
            not_measured.len(),
            schema::FLAG_TARGET_NOT_MEASURED,
            not_measured.join(", ")
        ));
    }
    if o.index.cells_without_condition > 0 {
        warnings.push(format!("{} cells have no condition label and were left out", o.index.cells_without_condition));
    }
    let summary = IngestSummary {
        out: opts.out.clone(),
        n_cells: o.cond_cells.iter().map(|&n| n as u64).sum(),
        n_genes,
        n_conditions: n_cond,
        n_singles: count(perturb_core::ConditionKind::Single),
        n_doubles: count(perturb_core::ConditionKind::Double),
        value_scale: o.value_scale.to_string(),
        matrix: o.matrix.to_string(),
        gene_names_from: o.gene_source.to_string(),
        n_highly_variable: hvg.map_or(0, HvgTable::n_selected),
        cells_without_condition: o.index.cells_without_condition,
        cells_below_min_counts: o.cells_below_min_counts,
        targets_not_measured: not_measured,
        warnings,
    };
    let input = staged.input_hash.take().expect("the input is hashed once").wait()?;
    let mut manifest = Manifest::new("ingest", vec![input], o.parameters);
    manifest.summary = serde_json::to_value(&summary).expect("summary serialises");
    manifest.outputs = vec![gs::FILE.into(), cs::FILE.into(), ps::FILE.into()];
    manifest.write(&staged.path(schema::MANIFEST))?;
    Ok(summary)
}

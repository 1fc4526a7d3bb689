//! The ingestion stage: a screen (h5ad, or CSV) in, normalised pseudobulk Parquet out.
//!
//! `ingest` reads cell metadata and gene names, maps every cell's label to a canonical
//! [`Condition`], streams the matrix once (see [`accumulate`]) and writes, atomically,
//! `genes.parquet`, `conditions.parquet`, `pseudobulk.parquet` and `manifest.json`
//! (schemas in `docs/artifacts.md`). Nothing is written when the input is bad.
//!
//! A screen is read as it comes: without `--condition-key` the labels come from obs
//! `condition`, else the first present of [`CONDITION_COLUMNS`]; without `--control` the
//! control is the one label that is a known control label
//! ([`perturb_core::condition::CONTROL_LABELS`]). Guide-level labels (`ZAP70_1`, `ATF2g1`)
//! are refused rather than read as fake doubles or genes. `--subset KEY=VALUE` keeps one
//! context (a stimulation, a cell line); `--context-key KEY` ingests every context into a
//! folder of its own, against its own control (see [`contexts`]); without either, a
//! context column with several values ([`CONTEXT_COLUMNS`]) gets a note that its values
//! are pooled.

pub mod accumulate;
mod batches;
mod contexts;
mod csv_input;
pub mod h5ad;
pub mod hvg;
pub mod loess;
pub mod source;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use perturb_core::manifest::{InputFile, Manifest, PendingHash};
use perturb_core::schema::{self, conditions as cs, genes as gs, pseudobulk as ps};
use perturb_core::staging::StagedDir;
use perturb_core::{condition, Column, Condition, ConditionSyntax, Error, Result, Table};
use serde_json::json;

use accumulate::{GeneMoments, PassConfig, PassResult, ValueScale, NO_CONDITION};
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

perturb_core::named_enum!(InputFormat, "input format", as_str, { Auto => "auto", H5ad => "h5ad", CsvCounts => "csv-counts", CsvPseudobulk => "csv-pseudobulk" });

/// What the user says the values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssumeScale {
    /// Raw counts if every value of the first block is a non-negative integer, else
    /// log-normalised.
    Auto,
    Counts,
    LogNormalized,
}

impl AssumeScale {
    /// The scale the pass reads the values on; `None`: decided from the first block.
    fn scale(self) -> Option<ValueScale> {
        match self {
            AssumeScale::Auto => None,
            AssumeScale::Counts => Some(ValueScale::Counts),
            AssumeScale::LogNormalized => Some(ValueScale::LogNormalized),
        }
    }
}

perturb_core::named_enum!(AssumeScale, "value scale", as_str, { Auto => "auto", Counts => "counts", LogNormalized => "lognorm" });

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub input: PathBuf,
    pub out: PathBuf,
    pub format: InputFormat,
    /// `X` (default), a layer name, or `raw`.
    pub layer: Option<String>,
    /// var column with gene symbols; default `gene_name` when present, else the index.
    pub gene_key: Option<String>,
    /// obs (or CSV) column of condition labels; `None`: `condition` if present, else the
    /// first present of [`CONDITION_COLUMNS`].
    pub condition_key: Option<String>,
    /// Label of the control cells; `None`: the one label that is a known control label
    /// ([`perturb_core::condition::CONTROL_LABELS`], case-insensitively).
    pub control: Option<String>,
    /// Keep only cells whose obs column KEY equals VALUE, for every pair (h5ad only).
    pub subset: Vec<(String, String)>,
    /// obs columns whose values make a cell's context (h5ad only): each context is
    /// ingested into a folder of its own, against its own control ([`contexts`]).
    pub context_keys: Vec<String>,
    /// obs column of each cell's batch (a lane, a `gem_group`; h5ad only): effects are
    /// read against the batch's own controls ([`batches`]).
    pub batch_key: Option<String>,
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
            condition_key: None,
            control: None,
            subset: Vec::new(),
            context_keys: Vec::new(),
            batch_key: None,
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
        for (i, (key, value)) in self.subset.iter().enumerate() {
            if key.is_empty() || value.is_empty() {
                return Err(Error::bad_option("--subset", format!("'{key}={value}': expected KEY=VALUE with both parts non-empty")));
            }
            if let Some((_, other)) = self.subset[..i].iter().find(|(k, _)| k == key) {
                return Err(Error::bad_option(
                    "--subset",
                    format!("column '{key}' given twice ({key}={other} and {key}={value}); no cell can hold both values — ingest each context separately"),
                ));
            }
        }
        if !self.subset.is_empty() && self.resolved_format() != InputFormat::H5ad {
            return Err(Error::bad_option("--subset", "filters cells by obs columns of an .h5ad input; for a CSV, keep the rows you want in the file"));
        }
        for (i, key) in self.context_keys.iter().enumerate() {
            if key.trim().is_empty() {
                return Err(Error::bad_option("--context-key", "must name an obs column"));
            }
            if self.context_keys[..i].contains(key) {
                return Err(Error::bad_option("--context-key", format!("column '{key}' given twice")));
            }
            if self.condition_key.as_deref() == Some(key.as_str()) {
                return Err(Error::bad_option(
                    "--context-key",
                    format!("'{key}' is the --condition-key; a context is another column (a cell line, a stimulation)"),
                ));
            }
        }
        if let Some(key) = &self.batch_key {
            if key.trim().is_empty() {
                return Err(Error::bad_option("--batch-key", "must name an obs column"));
            }
            if self.context_keys.contains(key) {
                return Err(Error::bad_option("--batch-key", format!("'{key}' is also a --context-key; a batch is read within a context")));
            }
            if self.resolved_format() != InputFormat::H5ad {
                return Err(Error::bad_option("--batch-key", "reads batches from an obs column of an .h5ad input"));
            }
        }
        if !self.context_keys.is_empty() && self.resolved_format() != InputFormat::H5ad {
            return Err(Error::bad_option("--context-key", "reads contexts from obs columns of an .h5ad input; for a CSV, write one file per context"));
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
    /// The column the condition labels were read from (given or detected).
    pub condition_key: String,
    /// The label of the control cells (given or detected).
    pub control: String,
    pub n_highly_variable: usize,
    pub cells_without_condition: u64,
    /// Cells left out by `--subset`.
    pub cells_outside_subset: u64,
    /// With `--context-key`: this ingest's context (`None` for the whole screen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// With `--context-key`, in a context's summary: the cells of the other contexts.
    #[serde(skip_serializing_if = "is_zero")]
    pub cells_in_other_contexts: u64,
    /// With `--context-key`, in the top summary: each context's own summary.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contexts: Vec<IngestSummary>,
    pub cells_below_min_counts: u64,
    pub targets_not_measured: Vec<String>,
    pub warnings: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// obs (or CSV) columns tried in order for the condition labels when no
/// `--condition-key` is given: GEARS' `condition`, then the names screens give a
/// gene-level target column, then scPerturb's `perturbation` (last: some screens keep
/// guide labels there, e.g. `ZAP70_1`).
pub const CONDITION_COLUMNS: [&str; 6] = ["condition", "target", "target_gene", "gene", "guide_target", "perturbation"];

/// obs columns that usually hold a context (cell line, stimulation, treatment): when one
/// has several values among the cells ingested, they are pooled into every pseudobulk and
/// a note suggests `--subset`. Names are compared in lower case with ` `, `.`, `-` as `_`;
/// any name starting with `stim` counts too.
pub const CONTEXT_COLUMNS: [&str; 9] =
    ["cell_type", "celltype", "cell_line", "cellline", "perturbation_2", "treatment", "timepoint", "time_point", "culture_condition"];

/// A context column with more values than this is not taken for a context (a sample
/// or barcode-like column).
const MAX_CONTEXT_VALUES: usize = 16;

fn is_context_column(name: &str) -> bool {
    let n: String = name.trim().to_ascii_lowercase().chars().map(|c| if matches!(c, ' ' | '.' | '-') { '_' } else { c }).collect();
    CONTEXT_COLUMNS.contains(&n.as_str()) || n.starts_with("stim")
}

/// Per-cell labels and gene names, whatever the input format.
struct CellMeta {
    labels: Vec<Option<String>>,
    genes: Vec<String>,
    gene_ids: Vec<String>,
    gene_source: String,
    key: ConditionKey,
    /// Cells left out by `--subset` (their labels are `None`).
    outside_subset: u64,
    /// With `--context-key`: the context these labels keep, and the cells of the others
    /// (their labels are `None` too).
    context: Option<contexts::ContextTag>,
    other_contexts: u64,
    /// With `--batch-key`: every cell's batch.
    batches: Option<batches::CellBatches>,
    notes: Vec<String>,
}

/// Where the condition labels come from.
#[derive(Debug, Clone)]
struct ConditionKey {
    name: String,
    /// `obs/target` or `column 'target'`, for messages.
    shown: String,
    detected: bool,
    /// Other columns of [`CONDITION_COLUMNS`] the input has, for suggestions.
    alternatives: Vec<String>,
}

impl ConditionKey {
    fn new(name: &str, detected: bool, columns: &[String], frame: Option<&str>) -> ConditionKey {
        let alternatives = CONDITION_COLUMNS.iter().filter(|c| **c != name && columns.iter().any(|k| k == *c)).map(|c| c.to_string()).collect();
        let shown = match frame {
            Some(f) => format!("{f}/{name}"),
            None => format!("column '{name}'"),
        };
        ConditionKey { name: name.to_string(), shown, detected, alternatives }
    }

    /// The note saying which column was picked, when it was not given nor `condition`.
    fn note(&self) -> Option<String> {
        (self.detected && self.name != CONDITION_COLUMNS[0]).then(|| {
            format!(
                "condition labels read from {} (no --condition-key; the first present of {}); pass --condition-key to use another column",
                self.shown,
                CONDITION_COLUMNS.join(", ")
            )
        })
    }
}

/// The condition column of a table with these columns: the one given, else the first
/// present of [`CONDITION_COLUMNS`] for which `usable` holds.
fn pick_condition_key(path: &Path, opts: &IngestOptions, columns: &[String], frame: Option<&str>, usable: impl Fn(&str) -> bool) -> Result<ConditionKey> {
    if let Some(k) = &opts.condition_key {
        return Ok(ConditionKey::new(k, false, columns, frame));
    }
    match CONDITION_COLUMNS.iter().find(|c| columns.iter().any(|k| k == *c) && usable(c)) {
        Some(c) => Ok(ConditionKey::new(c, true, columns, frame)),
        None => {
            let place = frame.map_or_else(|| "the table".to_string(), str::to_string);
            Err(Error::bad_input(
                path,
                format!(
                    "{place} has no condition column: none of {} (columns: {}); name the column of perturbed genes with --condition-key",
                    CONDITION_COLUMNS.join(", "),
                    list_some(columns, 12)
                ),
            ))
        }
    }
}

/// Runs the ingestion stage.
pub fn ingest(opts: &IngestOptions) -> Result<IngestSummary> {
    opts.validate()?;
    // Fail on a missing input before starting the hash thread.
    std::fs::metadata(&opts.input).map_err(|e| Error::io(&opts.input, e))?;
    let input_hash = InputHash::start(&opts.input);
    let staged = Staged { dir: StagedDir::new(&opts.out)?, input: &input_hash };
    let summary = match opts.resolved_format() {
        InputFormat::H5ad | InputFormat::Auto => ingest_h5ad(opts, &staged)?,
        InputFormat::CsvCounts => ingest_csv_counts(opts, &staged)?,
        InputFormat::CsvPseudobulk => run_pseudobulk_table(opts, &staged)?,
    };
    staged.dir.commit()?;
    Ok(summary)
}

fn ingest_h5ad(opts: &IngestOptions, staged: &Staged) -> Result<IngestSummary> {
    let file = h5ad::H5ad::open(&opts.input)?;
    let slot = h5ad::MatrixSlot::parse(opts.layer.as_deref().unwrap_or("X"));
    let names = file.gene_names(&slot, opts.gene_key.as_deref())?;
    let columns = file.frame_keys("obs")?;
    let numeric = |k: &str| matches!(file.frame_column("obs", k), Ok(h5ad::FrameColumn::Numeric(_)));
    let key = pick_condition_key(&opts.input, opts, &columns, Some("obs"), |k| !numeric(k))?;
    let mut labels = match file.frame_column("obs", &key.name)? {
        h5ad::FrameColumn::Labels(l) => l,
        h5ad::FrameColumn::Numeric(_) => {
            return Err(Error::bad_input(&opts.input, format!("obs/{} is numeric; --condition-key must name a column of condition labels", key.name)))
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
    let mut notes: Vec<String> = key.note().into_iter().collect();
    let mask = subset_mask(&file, opts, &columns, labels.len())?;
    let outside_subset = mask.as_ref().map_or(0, |mask| drop_outside_subset(opts, &mut labels, mask, &mut notes));
    notes.extend(context_notes(&file, &columns, &key.name, &opts.context_keys, &labels));
    let cell_contexts = contexts::read(&file, opts, &columns, &key.name, labels.len())?;
    let cell_batches = batches::read(&file, opts, &columns, &key.name, &labels)?;
    let meta = CellMeta {
        labels,
        genes: names.symbols,
        gene_ids: names.ids,
        gene_source: names.source,
        key,
        outside_subset,
        context: None,
        other_contexts: 0,
        batches: cell_batches,
        notes,
    };
    match cell_contexts {
        None => run_cells(opts, staged, meta, &matrix, &matrix.describe()),
        Some(cell_contexts) => {
            let outside = mask.map_or_else(|| vec![false; meta.labels.len()], |m| m.iter().map(|keep| !keep).collect());
            contexts::run(opts, staged, meta, &cell_contexts, &outside, &matrix, &matrix.describe())
        }
    }
}

/// Clears the labels of the cells `--subset` leaves out, notes how many it keeps, and
/// returns how many it left out.
fn drop_outside_subset(opts: &IngestOptions, labels: &mut [Option<String>], mask: &[bool], notes: &mut Vec<String>) -> u64 {
    let mut outside_subset = 0;
    for (label, keep) in labels.iter_mut().zip(mask) {
        if !keep {
            *label = None;
            outside_subset += 1;
        }
    }
    let shown: Vec<String> = opts.subset.iter().map(|(k, v)| format!("{k}={v}")).collect();
    notes.push(format!("--subset {} keeps {} of {} cells", shown.join(" "), labels.len() as u64 - outside_subset, labels.len()));
    outside_subset
}

fn ingest_csv_counts(opts: &IngestOptions, staged: &Staged) -> Result<IngestSummary> {
    let columns = csv_input::header(&opts.input)?;
    let key = pick_condition_key(&opts.input, opts, &columns, None, |_| true)?;
    let table = csv_input::read_counts(&opts.input, &key.name, opts.missing_as_zero)?;
    let meta = CellMeta {
        labels: table.labels.into_iter().map(Some).collect(),
        gene_ids: table.genes.clone(),
        genes: table.genes,
        gene_source: "CSV header".to_string(),
        notes: key.note().into_iter().collect(),
        key,
        outside_subset: 0,
        context: None,
        other_contexts: 0,
        batches: None,
    };
    let describe = format!("CSV count table ({} x {})", table.matrix.n_obs(), table.matrix.n_vars);
    run_cells(opts, staged, meta, &table.matrix, &describe)
}

/// Distinct values of a label column with their cell counts, most cells first, then by name.
fn value_counts<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, u64)> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut counts: Vec<(&str, u64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
}

/// `a, b, c, … (N values)`: at most `max` names.
fn list_some(names: &[String], max: usize) -> String {
    if names.len() <= max {
        names.join(", ")
    } else {
        format!("{}, … ({} values)", names[..max].join(", "), names.len())
    }
}

/// Which cells `--subset` keeps (`None` without it); every KEY must be an obs column and
/// every VALUE one of its values.
fn subset_mask(file: &h5ad::H5ad, opts: &IngestOptions, columns: &[String], n_obs: usize) -> Result<Option<Vec<bool>>> {
    if opts.subset.is_empty() {
        return Ok(None);
    }
    let mut mask = vec![true; n_obs];
    for (key, value) in &opts.subset {
        let fail = |m: String| Error::bad_input(&opts.input, format!("--subset {key}={value}: {m}"));
        if !columns.iter().any(|c| c == key) {
            return Err(fail(format!("obs has no column '{key}' (columns: {})", list_some(columns, 24))));
        }
        let column = file.frame_column("obs", key)?;
        let matches: Vec<bool> = match &column {
            h5ad::FrameColumn::Labels(l) => l.iter().map(|v| v.as_deref() == Some(value.as_str())).collect(),
            h5ad::FrameColumn::Numeric(x) => {
                // Booleans are stored as numbers: True/False match 1/0.
                let want = match value.trim().to_ascii_lowercase().as_str() {
                    "true" => Some(1.0),
                    "false" => Some(0.0),
                    v => v.parse::<f64>().ok(),
                };
                x.iter().map(|v| Some(*v) == want).collect()
            }
        };
        if matches.len() != n_obs {
            return Err(fail(format!("obs/{key} has {} rows but the matrix {n_obs} cells", matches.len())));
        }
        if !matches.iter().any(|&m| m) {
            // The values present, counted only for the message.
            let shown: Vec<String> = match &column {
                h5ad::FrameColumn::Labels(l) => l.iter().flatten().cloned().collect(),
                h5ad::FrameColumn::Numeric(x) => x.iter().filter(|v| !v.is_nan()).map(|v| format!("{v}")).collect(),
            };
            let values: Vec<String> = value_counts(shown.iter().map(String::as_str)).into_iter().map(|(v, n)| format!("{v} ({n} cells)")).collect();
            return Err(fail(format!("no cell has the value '{value}' in obs/{key} (values: {})", list_some(&values, 12))));
        }
        for (keep, m) in mask.iter_mut().zip(matches) {
            *keep &= m;
        }
    }
    if !mask.iter().any(|&k| k) {
        let shown: Vec<String> = opts.subset.iter().map(|(k, v)| format!("{k}={v}")).collect();
        return Err(Error::bad_input(&opts.input, format!("--subset {}: no cell matches all of them", shown.join(" "))));
    }
    Ok(Some(mask))
}

/// Notes on context columns ([`CONTEXT_COLUMNS`]) whose several values, among the cells
/// ingested, are pooled into every pseudobulk.
fn context_notes(file: &h5ad::H5ad, columns: &[String], condition_key: &str, context_keys: &[String], labels: &[Option<String>]) -> Vec<String> {
    let mut notes = Vec::new();
    for key in columns.iter().filter(|k| *k != condition_key && !context_keys.contains(k) && is_context_column(k)) {
        // A column that cannot be read is not worth failing the run over: this is a note.
        let Ok(h5ad::FrameColumn::Labels(values)) = file.frame_column("obs", key) else { continue };
        if values.len() != labels.len() {
            continue;
        }
        let counts = value_counts(values.iter().zip(labels).filter(|(_, l)| l.is_some()).filter_map(|(v, _)| v.as_deref()));
        if counts.len() < 2 || counts.len() > MAX_CONTEXT_VALUES {
            continue;
        }
        let shown: Vec<String> = counts.iter().map(|(v, n)| format!("{v}: {n} cells")).collect();
        notes.push(format!(
            "obs/{key} has {} values ({}) that are pooled into every pseudobulk; to ingest each context against its own control pass --context-key {key} (or keep one with --subset {key}={})",
            counts.len(),
            list_some(&shown, 6),
            counts[0].0
        ));
    }
    notes
}

/// A covariate column of obs named by `option` (`--context-key`, `--batch-key`), as
/// labels per cell (numbers written out, NaN missing): it must exist, differ from the
/// condition column (`what_it_is`: what the option's column should hold instead) and have
/// a row per cell.
#[allow(clippy::too_many_arguments)] // the one reader behind two options; each argument is one of theirs
fn covariate_column(
    file: &h5ad::H5ad,
    opts: &IngestOptions,
    option: &str,
    key: &str,
    columns: &[String],
    condition_key: &str,
    what_it_is: &str,
    n_obs: usize,
) -> Result<Vec<Option<String>>> {
    if !columns.iter().any(|c| c == key) {
        return Err(Error::bad_input(&opts.input, format!("{option} {key}: obs has no column '{key}' (columns: {})", list_some(columns, 24))));
    }
    if key == condition_key {
        return Err(Error::bad_input(&opts.input, format!("{option} {key}: obs/{key} holds the condition labels; {what_it_is}")));
    }
    let values = match file.frame_column("obs", key)? {
        h5ad::FrameColumn::Labels(l) => l,
        h5ad::FrameColumn::Numeric(x) => x.iter().map(|v| (!v.is_nan()).then(|| format!("{v}"))).collect(),
    };
    if values.len() != n_obs {
        return Err(Error::bad_input(&opts.input, format!("{option} {key}: obs/{key} has {} rows but the matrix {n_obs} cells", values.len())));
    }
    Ok(values)
}

/// Canonical conditions of a screen, and each cell's condition index.
struct ConditionIndex {
    conditions: Vec<Condition>,
    labels: Vec<Vec<String>>,
    cell_condition: Vec<u32>,
    cells_without_condition: u64,
    /// The control label used, and whether it was detected rather than given.
    control: String,
    control_detected: bool,
    /// Other labels that are known control labels, read as perturbations (with `--control`).
    other_controls: Vec<String>,
}

/// Labels for a message: the ones that look like controls first, then the rest, by name.
fn labels_controls_first(distinct: &BTreeMap<&str, ()>) -> String {
    let (mut first, rest): (Vec<&str>, Vec<&str>) = distinct.keys().copied().partition(|l| condition::looks_like_control(l));
    first.extend(rest);
    let shown: Vec<String> = first.iter().map(|l| l.to_string()).collect();
    if shown.len() <= 10 {
        shown.join(", ")
    } else {
        format!("{}, … ({} labels)", shown[..10].join(", "), shown.len())
    }
}

fn index_conditions(opts: &IngestOptions, key: &ConditionKey, labels: &[Option<String>]) -> Result<ConditionIndex> {
    let col = &key.shown;
    if labels.is_empty() {
        return Err(Error::bad_input(&opts.input, "has no cells (obs is empty)"));
    }
    let distinct: BTreeMap<&str, ()> = labels.iter().flatten().map(|l| (l.as_str(), ())).collect();
    if distinct.is_empty() {
        return Err(Error::bad_input(&opts.input, format!("has no condition labels: {col} is missing for all {} cells", labels.len())));
    }
    let syntax = match opts.syntax {
        ConditionSyntax::Auto => ConditionSyntax::detect(distinct.keys().copied()),
        s => s,
    };
    let detected: Vec<&str> = distinct.keys().copied().filter(|l| condition::is_control_label(l)).collect();
    let (control, control_detected) = pick_control(opts, col, &detected)?;
    refuse_gears_control_beside(opts, col, syntax, &control, &distinct)?;
    refuse_guide_labels(opts, key, syntax, &control, &distinct)?;
    refuse_missing_control(opts, col, &control, &distinct)?;
    let mut by_label: HashMap<&str, Condition> = HashMap::new();
    for &label in distinct.keys() {
        let c = Condition::parse(label, syntax, &control).map_err(|m| Error::bad_input(&opts.input, format!("{col}: {m}")))?;
        by_label.insert(label, c);
    }
    // Order: control, singles, doubles, multi; by name within a kind.
    let mut conditions: Vec<Condition> = by_label.values().cloned().collect();
    conditions.sort_by(|a, b| (a.kind(), a).cmp(&(b.kind(), b)));
    conditions.dedup();
    if conditions.len() < 2 {
        let shown: Vec<&str> = distinct.keys().copied().take(8).collect();
        return Err(Error::bad_input(
            &opts.input,
            format!("has no perturbed conditions besides the control '{control}' (labels of {col}: {}); nothing to predict", shown.join(", ")),
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
    let other_controls = detected.iter().filter(|l| **l != control).map(|l| l.to_string()).collect();
    Ok(ConditionIndex { conditions, labels: cond_labels, cell_condition, cells_without_condition, control, control_detected, other_controls })
}

/// The control: the label the user named, exactly (a GEARS file read with `--control NT`
/// must not silently fall back to its `ctrl` cells); else the one label that is a known
/// control label. Whether it was detected rather than given comes with it.
fn pick_control(opts: &IngestOptions, col: &str, detected: &[&str]) -> Result<(String, bool)> {
    match &opts.control {
        Some(c) => Ok((c.clone(), false)),
        None if detected.len() > 1 => {
            let shown: Vec<String> = detected.iter().map(|l| format!("'{l}'")).collect();
            Err(Error::bad_input(
                &opts.input,
                format!("several labels of {col} are control labels ({}); set --control to the one that marks the control cells", shown.join(", ")),
            ))
        }
        None => Ok((detected.first().map_or(perturb_core::condition::CONTROL, |l| l).to_string(), true)),
    }
}

/// In GEARS syntax `ctrl` always parses as the control: with another --control its cells
/// would be merged into that control without a word. (A --control that names no label at
/// all is refused by [`refuse_missing_control`].)
fn refuse_gears_control_beside(opts: &IngestOptions, col: &str, syntax: ConditionSyntax, control: &str, distinct: &BTreeMap<&str, ()>) -> Result<()> {
    let gears_ctrl = perturb_core::condition::CONTROL;
    if syntax == ConditionSyntax::Gears && control != gears_ctrl && distinct.contains_key(gears_ctrl) && distinct.contains_key(control) {
        return Err(Error::bad_input(
            &opts.input,
            format!("{col} holds GEARS' control label '{gears_ctrl}' beside --control {control}: its cells would be pooled with the control; relabel one of them, or pass --control {gears_ctrl}"),
        ));
    }
    Ok(())
}

/// Guide-level labels would become fake doubles (`ZAP70_1` → ZAP70 + "1") or genes named
/// after guides (`ATF2g1`): refuse them before anything else.
fn refuse_guide_labels(opts: &IngestOptions, key: &ConditionKey, syntax: ConditionSyntax, control: &str, distinct: &BTreeMap<&str, ()>) -> Result<()> {
    let guides: Vec<(&str, String)> = distinct.keys().filter_map(|l| condition::guide_token(l, syntax, control).map(|t| (*l, t))).collect();
    let Some((label, token)) = guides.first() else { return Ok(()) };
    let examples: Vec<String> = guides.iter().take(3).map(|(l, _)| format!("'{l}'")).collect();
    let hint = match key.alternatives.first() {
        Some(alt) => format!("use --condition-key {alt}"),
        None => "put each cell's target gene in a column and pass it with --condition-key".to_string(),
    };
    let what = if token == label { format!("'{token}' is no gene symbol") } else { format!("'{token}' in '{label}' is no gene symbol") };
    Err(Error::bad_input(
        &opts.input,
        format!(
            "{} holds guide labels, not target genes ({} of {} labels, e.g. {}{}; {what}); {hint}",
            key.shown,
            guides.len(),
            distinct.len(),
            examples.join(", "),
            if guides.len() > 3 { ", …" } else { "" }
        ),
    ))
}

fn refuse_missing_control(opts: &IngestOptions, col: &str, control: &str, distinct: &BTreeMap<&str, ()>) -> Result<()> {
    if distinct.contains_key(control) {
        return Ok(());
    }
    let asked = match &opts.control {
        Some(c) => format!("no label of {col} is '{c}'"),
        None => format!("no label of {col} is a known control label ({}, … ignoring case)", condition::CONTROL_LABELS[..6].join(", ")),
    };
    Err(Error::bad_input(
        &opts.input,
        format!("no control cells: {asked} (labels: {}); set --control to the label of the control cells", labels_controls_first(distinct)),
    ))
}

impl ConditionIndex {
    /// Notes on the control: which label was detected (none for GEARS' own `ctrl`), and
    /// other control labels that are read as perturbations.
    fn control_notes(&self, key: &ConditionKey) -> Vec<String> {
        let mut notes = Vec::new();
        if self.control_detected && self.control != perturb_core::condition::CONTROL {
            notes.push(format!(
                "control cells: the label '{}' of {} (no --control; detected among known control labels); pass --control to name another",
                self.control, key.shown
            ));
        }
        if !self.other_controls.is_empty() {
            notes.push(format!(
                "{} also holds the control label(s) {}, read here as perturbation(s) of their own, not as control cells",
                key.shown,
                self.other_controls.iter().map(|l| format!("'{l}'")).collect::<Vec<_>>().join(", ")
            ));
        }
        notes
    }
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
    let mut index = index_conditions(opts, &meta.key, &meta.labels)?;
    index.cells_without_condition -= meta.outside_subset + meta.other_contexts;
    tracing::info!(%matrix, cells = source.n_obs(), genes = source.n_vars(), conditions = index.conditions.len(), "streaming matrix");
    let streamed = stream_cells(opts, &meta, &index, source, matrix)?;
    check_streamed(opts, &index, &streamed.pass, matrix)?;
    let hvg = select_hvg(opts, source, &streamed)?;
    let pass = &streamed.pass;
    let n_genes = meta.genes.len();
    let control = 0; // conditions are sorted with control first
    let control_mean: Vec<f64> = (0..n_genes).map(|g| pass.conditions.sum(control * n_genes + g) / pass.conditions.cells[control] as f64).collect();
    let pseudobulk = PseudobulkMoments::of(pass, index.conditions.len(), n_genes);
    let detected: Vec<i64> = pass.genes.detected.iter().map(|&d| d as i64).collect();
    let cond_cells: Vec<i64> = pass.conditions.cells.iter().map(|&n| n as i64).collect();
    write_outputs(
        staged,
        Outputs {
            context: meta.context.as_ref().map(|t| t.name.as_str()),
            cells_in_other_contexts: meta.other_contexts,
            genes: &meta.genes,
            gene_ids: &meta.gene_ids,
            gene_source: &meta.gene_source,
            control_mean: &control_mean,
            detected: Some(&detected),
            hvg: Some(&hvg),
            index: &index,
            cond_cells: &cond_cells,
            value_scale: pass.scale.as_str(),
            matrix,
            cells_below_min_counts: pass.conditions.filtered.iter().sum(),
            cells_outside_subset: meta.outside_subset,
            condition_key: &meta.key.name,
            warnings: cell_warnings(&meta, &index, pass, matrix),
            parameters: cell_parameters(opts, &meta, &index, matrix),
        },
        pseudobulk,
    )
}

/// The per-gene moments a flavour's HVG selection reads.
fn hvg_moments(flavor: HvgFlavor) -> GeneMoments {
    match flavor {
        HvgFlavor::Seurat => GeneMoments::Normalized,
        HvgFlavor::SeuratV3 => GeneMoments::Raw,
        HvgFlavor::CellRanger => GeneMoments::None,
    }
}

/// One pass over the matrix, with batch groups collapsed to conditions.
struct StreamedCells {
    /// Per condition (batch-adjusted with `--batch-key`).
    pass: PassResult,
    /// Cells kept by the pass.
    n_kept: u64,
    /// Per-gene sum and sum of squares of the log-normalised values, before any batch
    /// adjustment: highly variable genes are the data's, not the model's.
    log_sum: Vec<f64>,
    log_sum_sq: Vec<f64>,
}

fn stream_cells(opts: &IngestOptions, meta: &CellMeta, index: &ConditionIndex, source: &dyn BlockSource, matrix: &str) -> Result<StreamedCells> {
    let groups = meta.batches.as_ref().map(|b| batches::Groups::new(&index.cell_condition, b, index.conditions.len()));
    let cfg = PassConfig {
        path: &opts.input,
        matrix_name: matrix,
        gene_names: &meta.genes,
        cell_condition: groups.as_ref().map_or(&index.cell_condition, |g| &g.cell_group),
        n_conditions: groups.as_ref().map_or(index.conditions.len(), batches::Groups::n_groups),
        scale: opts.assume.scale(),
        target_sum: opts.target_sum,
        min_counts: opts.min_counts,
        moments: hvg_moments(opts.hvg_flavor),
    };
    let pass = accumulate::accumulate(source, &cfg)?;
    tracing::info!(scale = pass.scale.as_str(), kept = pass.n_kept(), "matrix streamed");
    let n_kept = pass.n_kept();
    let n_genes = meta.genes.len();
    let mut log_sum = vec![0.0; n_genes];
    let mut log_sum_sq = vec![0.0; n_genes];
    for c in 0..pass.conditions.cells.len() {
        for g in 0..n_genes {
            log_sum[g] += pass.conditions.sum(c * n_genes + g);
            log_sum_sq[g] += pass.conditions.sum_sq(c * n_genes + g);
        }
    }
    let pass = match (&groups, &meta.batches) {
        (Some(groups), Some(b)) => groups.collapse(pass, b, &opts.input, &index.control)?,
        _ => pass,
    };
    Ok(StreamedCells { pass, n_kept, log_sum, log_sum_sq })
}

/// Refuses a pass that left a condition without cells, or seurat_v3 on log-normalised values.
fn check_streamed(opts: &IngestOptions, index: &ConditionIndex, pass: &PassResult, matrix: &str) -> Result<()> {
    for (c, cond) in index.conditions.iter().enumerate() {
        if pass.conditions.cells[c] == 0 {
            return Err(Error::bad_input(
                &opts.input,
                format!("condition '{}' has zero cells after filtering ({} dropped by --min-counts {})", cond, pass.conditions.filtered[c], opts.min_counts),
            ));
        }
    }
    if opts.hvg_flavor == HvgFlavor::SeuratV3 && pass.scale != ValueScale::Counts {
        return Err(Error::bad_input(
            &opts.input,
            format!("{matrix} holds log-normalised values but --hvg-flavor seurat_v3 needs raw counts; choose a count matrix with --layer (e.g. counts)"),
        ));
    }
    Ok(())
}

/// Highly variable genes by `--hvg-flavor`, as scanpy's `highly_variable_genes` picks them.
fn select_hvg(opts: &IngestOptions, source: &dyn BlockSource, streamed: &StreamedCells) -> Result<HvgTable> {
    let pass = &streamed.pass;
    let n_kept = streamed.n_kept;
    let n_genes = pass.n_genes;
    let moments_of = |sum: &[f64], sq: &[f64]| -> (Vec<f64>, Vec<f64>) { (0..n_genes).map(|g| accumulate::mean_var(sum[g], sq[g], n_kept)).unzip() };
    let selection = if opts.hvg_cutoffs { HvgSelection::SCANPY_CUTOFFS } else { HvgSelection::TopGenes(opts.n_top_genes) };
    Ok(match opts.hvg_flavor {
        HvgFlavor::Seurat => {
            let (m, v) = moments_of(&pass.genes.sum, &pass.genes.sum_sq);
            hvg::dispersion_based(HvgFlavor::Seurat, &m, &v, selection, 20)
        }
        HvgFlavor::CellRanger => {
            let (m, v) = moments_of(&streamed.log_sum, &streamed.log_sum_sq);
            hvg::dispersion_based(HvgFlavor::CellRanger, &m, &v, selection, 20)
        }
        HvgFlavor::SeuratV3 => {
            let (m, v) = moments_of(&pass.genes.sum, &pass.genes.sum_sq);
            let trend =
                hvg::seurat_v3_trend(&m, &v, n_kept as usize, 0.3).map_err(|e| Error::bad_input(&opts.input, format!("seurat_v3 trend fit failed: {e}")))?;
            let (cs_, cs2) = accumulate::clipped_sums(source, &pass.cells.kept, &trend.clip)?;
            hvg::seurat_v3_select(&trend, &m, &v, n_kept as usize, &cs_, &cs2, opts.n_top_genes)
        }
    })
}

/// Per condition × gene (condition-major) mean and variance of the log-normalised values.
struct PseudobulkMoments {
    mean: Vec<f64>,
    var: Vec<f64>,
}

impl PseudobulkMoments {
    fn of(pass: &PassResult, n_cond: usize, n_genes: usize) -> PseudobulkMoments {
        let mut mean = Vec::with_capacity(n_cond * n_genes);
        let mut var = Vec::with_capacity(n_cond * n_genes);
        for c in 0..n_cond {
            for g in 0..n_genes {
                let k = c * n_genes + g;
                let (m, v) = accumulate::mean_var(pass.conditions.sum(k), pass.conditions.sum_sq(k), pass.conditions.cells[c]);
                mean.push(m);
                var.push(v);
            }
        }
        PseudobulkMoments { mean, var }
    }
}

/// The run's notes: how labels and the control were read, the value scale, batches.
fn cell_warnings(meta: &CellMeta, index: &ConditionIndex, pass: &PassResult, matrix: &str) -> Vec<String> {
    let mut warnings = meta.notes.clone();
    warnings.extend(index.control_notes(&meta.key));
    if pass.scale == ValueScale::LogNormalized {
        let median = perturb_core::metrics::median(&pass.cells.totals);
        warnings
            .push(format!("{matrix} read as log-normalised (log1p of normalised counts); used as is. Median per-cell total of expm1(values) = {median:.1}"));
    }
    if let Some(b) = &meta.batches {
        warnings.push(format!(
            "effects against batch-matched controls: each cell is read against the control cells of its own batch (obs/{}, {} batches), then averaged over the condition's cells",
            b.key,
            b.names.len()
        ));
    }
    warnings
}

/// The manifest's parameters of a run over cells.
fn cell_parameters(opts: &IngestOptions, meta: &CellMeta, index: &ConditionIndex, matrix: &str) -> serde_json::Value {
    let mut parameters = json!({
        "format": format!("{:?}", opts.resolved_format()),
        "matrix": matrix,
        "layer": opts.layer.as_deref().unwrap_or("X"),
        "gene_key": opts.gene_key,
        "condition_key": meta.key.name,
        "condition_key_detected": meta.key.detected,
        "control": index.control,
        "control_detected": index.control_detected,
        "subset": subset_json(opts),
        "condition_syntax": format!("{:?}", opts.syntax),
        "assume": format!("{:?}", opts.assume),
        "target_sum": opts.target_sum,
        "hvg_flavor": opts.hvg_flavor.as_str(),
        "n_top_genes": opts.n_top_genes,
        "hvg_cutoffs": opts.hvg_cutoffs,
        "min_counts": opts.min_counts,
        "missing_as_zero": opts.missing_as_zero,
    });
    if let Some(tag) = &meta.context {
        parameters["context_keys"] = json!(opts.context_keys);
        parameters["context"] = tag.values_json();
    }
    if let Some(b) = &meta.batches {
        parameters["batch_key"] = json!(b.key);
        parameters["batches"] = json!(b.names);
    }
    parameters
}

/// `--subset` as the manifest records it: `{"KEY": "VALUE", …}`.
fn subset_json(opts: &IngestOptions) -> serde_json::Value {
    serde_json::Value::Object(opts.subset.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect())
}

fn run_pseudobulk_table(opts: &IngestOptions, staged: &Staged) -> Result<IngestSummary> {
    let columns = csv_input::header(&opts.input)?;
    let key = pick_condition_key(&opts.input, opts, &columns, None, |_| true)?;
    let table = csv_input::read_pseudobulk(&opts.input, &key.name, opts.missing_as_zero)?;
    check_unique_genes(&opts.input, &table.genes, "CSV header")?;
    let labels: Vec<Option<String>> = table.labels.iter().cloned().map(Some).collect();
    let index = index_conditions(opts, &key, &labels)?;
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
        "condition_key": key.name,
        "condition_key_detected": key.detected,
        "control": index.control,
        "control_detected": index.control_detected,
        "subset": subset_json(opts),
        "condition_syntax": format!("{:?}", opts.syntax),
        "missing_as_zero": opts.missing_as_zero,
    });
    let mut warnings: Vec<String> = key.note().into_iter().chain(index.control_notes(&key)).collect();
    warnings.push("pseudobulk table: values taken as mean log-normalised expression; variances and HVGs need cells and are NaN/false".to_string());
    if table.n_cells.is_none() {
        warnings.push("pseudobulk table has no n_cells column: n_cells written as 0 (unknown)".to_string());
    }
    write_outputs(
        staged,
        Outputs {
            context: None,
            cells_in_other_contexts: 0,
            genes: &table.genes,
            gene_ids: &table.genes,
            gene_source: "CSV header",
            control_mean: &control_mean,
            detected: None,
            hvg: None,
            index: &index,
            cond_cells: &cond_cells,
            value_scale: "lognorm",
            matrix: "CSV pseudobulk table",
            cells_below_min_counts: 0,
            cells_outside_subset: 0,
            condition_key: &key.name,
            warnings,
            parameters,
        },
        // A table of means has no variances.
        PseudobulkMoments { var: vec![f64::NAN; mean.len()], mean },
    )
}

struct Outputs<'a> {
    /// With `--context-key`: the context, written as a column of every table.
    context: Option<&'a str>,
    cells_in_other_contexts: u64,
    genes: &'a [String],
    gene_ids: &'a [String],
    gene_source: &'a str,
    control_mean: &'a [f64],
    detected: Option<&'a [i64]>,
    hvg: Option<&'a HvgTable>,
    index: &'a ConditionIndex,
    cond_cells: &'a [i64],
    value_scale: &'a str,
    matrix: &'a str,
    cells_below_min_counts: u64,
    cells_outside_subset: u64,
    condition_key: &'a str,
    warnings: Vec<String>,
    parameters: serde_json::Value,
}

/// A staging folder of this run, and the input's hash.
struct Staged<'h> {
    dir: StagedDir,
    input: &'h InputHash,
}

impl Staged<'_> {
    /// See [`StagedDir::output`].
    fn output(&self, file: &str) -> PathBuf {
        self.dir.output(file)
    }
}

/// The input's hash, computed while the run reads; every manifest of the run records it.
struct InputHash {
    pending: std::cell::Cell<Option<PendingHash>>,
    done: std::cell::OnceCell<InputFile>,
}

impl InputHash {
    fn start(path: &Path) -> InputHash {
        InputHash { pending: std::cell::Cell::new(Some(InputFile::hash_in_background(path))), done: std::cell::OnceCell::new() }
    }

    fn get(&self) -> Result<InputFile> {
        if let Some(done) = self.done.get() {
            return Ok(done.clone());
        }
        let done = self.pending.take().expect("the hash is started once").wait()?;
        Ok(self.done.get_or_init(|| done).clone())
    }
}

fn write_outputs(staged: &Staged, o: Outputs<'_>, pseudobulk: PseudobulkMoments) -> Result<IngestSummary> {
    let n_genes = o.genes.len();
    let n_cond = o.index.conditions.len();
    with_context(genes_table(&o), o.context, n_genes).write_parquet(&staged.output(gs::FILE))?;
    let unmeasured = UnmeasuredTargets::of(o.genes, &o.index.conditions);
    with_context(conditions_table(&o, unmeasured.flags), o.context, n_cond).write_parquet(&staged.output(cs::FILE))?;
    with_context(pseudobulk_table(&o, pseudobulk), o.context, n_cond * n_genes).write_parquet(&staged.output(ps::FILE))?;

    let count = |k| o.index.conditions.iter().filter(|c| c.kind() == k).count();
    let mut warnings = o.warnings;
    if !unmeasured.genes.is_empty() {
        warnings.push(format!(
            "{} perturbed gene(s) are not among the measured genes (kept, flagged {}): {}",
            unmeasured.genes.len(),
            schema::FLAG_TARGET_NOT_MEASURED,
            unmeasured.genes.join(", ")
        ));
    }
    if o.index.cells_without_condition > 0 {
        warnings.push(format!("{} cells have no condition label and were left out", o.index.cells_without_condition));
    }
    let summary = IngestSummary {
        out: staged.dir.out().to_path_buf(),
        n_cells: o.cond_cells.iter().map(|&n| n as u64).sum(),
        n_genes,
        n_conditions: n_cond,
        n_singles: count(perturb_core::ConditionKind::Single),
        n_doubles: count(perturb_core::ConditionKind::Double),
        value_scale: o.value_scale.to_string(),
        matrix: o.matrix.to_string(),
        gene_names_from: o.gene_source.to_string(),
        condition_key: o.condition_key.to_string(),
        control: o.index.control.clone(),
        n_highly_variable: o.hvg.map_or(0, HvgTable::n_selected),
        cells_without_condition: o.index.cells_without_condition,
        cells_outside_subset: o.cells_outside_subset,
        context: o.context.map(str::to_string),
        cells_in_other_contexts: o.cells_in_other_contexts,
        contexts: Vec::new(),
        cells_below_min_counts: o.cells_below_min_counts,
        targets_not_measured: unmeasured.genes,
        warnings,
    };
    let input = staged.input.get()?;
    let mut manifest = Manifest::new("ingest", vec![input], o.parameters);
    manifest.summary = serde_json::to_value(&summary).expect("summary serialises");
    staged.dir.write_manifest(manifest)?;
    Ok(summary)
}

/// With `--context-key`: the context as a column of every row of the table.
fn with_context(table: Table, context: Option<&str>, n_rows: usize) -> Table {
    match context {
        Some(c) => table.with(schema::CONTEXT, Column::Dict { values: vec![c.to_string()], keys: vec![0; n_rows] }),
        None => table,
    }
}

/// Each gene's rank by control mean: 1 = highest, ties by input order.
fn control_rank(control_mean: &[f64]) -> Vec<i64> {
    let mut order: Vec<usize> = (0..control_mean.len()).collect();
    order.sort_by(|&a, &b| control_mean[b].total_cmp(&control_mean[a]).then(a.cmp(&b)));
    let mut rank = vec![0i64; control_mean.len()];
    for (r, &g) in order.iter().enumerate() {
        rank[g] = r as i64 + 1;
    }
    rank
}

/// `genes.parquet`: names, control expression and the HVG statistics (NaN without cells).
fn genes_table(o: &Outputs<'_>) -> Table {
    let n_genes = o.genes.len();
    let nan = vec![f64::NAN; n_genes];
    let hvg = o.hvg;
    let f = |pick: fn(&HvgTable) -> &Vec<f64>| Column::F64(hvg.map_or_else(|| nan.clone(), |h| pick(h).clone()));
    Table::new()
        .with(gs::GENE, Column::Str(o.genes.to_vec()))
        .with(gs::GENE_ID, Column::Str(o.gene_ids.to_vec()))
        .with(gs::CONTROL_MEAN, Column::F64(o.control_mean.to_vec()))
        .with(gs::CONTROL_RANK, Column::I64(control_rank(o.control_mean)))
        .with(gs::N_CELLS_DETECTED, Column::I64(o.detected.map_or_else(|| vec![0; n_genes], <[i64]>::to_vec)))
        .with(gs::MEANS, f(|h| &h.means))
        .with(gs::DISPERSIONS, f(|h| &h.dispersions))
        .with(gs::DISPERSIONS_NORM, f(|h| &h.dispersions_norm))
        .with(gs::VARIANCES, f(|h| &h.variances))
        .with(gs::VARIANCES_NORM, f(|h| &h.variances_norm))
        .with(gs::HIGHLY_VARIABLE, Column::Bool(hvg.map_or_else(|| vec![false; n_genes], |h| h.highly_variable.clone())))
        .with(gs::HIGHLY_VARIABLE_RANK, f(|h| &h.highly_variable_rank))
}

/// Perturbed genes that are not among the measured genes.
struct UnmeasuredTargets {
    /// Per condition: a `target_not_measured:GENE` flag for each.
    flags: Vec<Vec<String>>,
    /// All of them, sorted, once each.
    genes: Vec<String>,
}

impl UnmeasuredTargets {
    fn of(measured_genes: &[String], conditions: &[Condition]) -> UnmeasuredTargets {
        let measured: std::collections::HashSet<&str> = measured_genes.iter().map(String::as_str).collect();
        let mut genes = Vec::new();
        let flags = conditions
            .iter()
            .map(|c| {
                c.genes()
                    .iter()
                    .filter(|g| !measured.contains(g.as_str()))
                    .map(|g| {
                        genes.push(g.clone());
                        format!("{}:{g}", schema::FLAG_TARGET_NOT_MEASURED)
                    })
                    .collect()
            })
            .collect();
        genes.sort();
        genes.dedup();
        UnmeasuredTargets { flags, genes }
    }
}

fn conditions_table(o: &Outputs<'_>, flags: Vec<Vec<String>>) -> Table {
    let conditions = &o.index.conditions;
    Table::new()
        .with(cs::CONDITION, Column::Str(conditions.iter().map(Condition::canonical).collect()))
        .with(cs::LABELS, Column::Str(o.index.labels.iter().map(|l| l.join(";")).collect()))
        .with(cs::GENES, Column::StrList(conditions.iter().map(|c| c.genes().to_vec()).collect()))
        .with(cs::N_CELLS, Column::I64(o.cond_cells.to_vec()))
        .with(cs::KIND, Column::Str(conditions.iter().map(|c| c.kind().as_str().to_string()).collect()))
        .with(cs::FLAGS, Column::StrList(flags))
}

/// `pseudobulk.parquet`: long form, condition-major; names are stored once (dictionary columns).
fn pseudobulk_table(o: &Outputs<'_>, pseudobulk: PseudobulkMoments) -> Table {
    let n_genes = o.genes.len();
    let n_cond = o.index.conditions.len();
    let cond_keys: Vec<u32> = (0..n_cond as u32).flat_map(|c| std::iter::repeat_n(c, n_genes)).collect();
    let gene_keys: Vec<u32> = (0..n_cond).flat_map(|_| 0..n_genes as u32).collect();
    Table::new()
        .with(ps::CONDITION, Column::Dict { values: o.index.conditions.iter().map(Condition::canonical).collect(), keys: cond_keys })
        .with(ps::GENE, Column::Dict { values: o.genes.to_vec(), keys: gene_keys })
        .with(ps::MEAN, Column::F64(pseudobulk.mean))
        .with(ps::VARIANCE, Column::F64(pseudobulk.var))
}

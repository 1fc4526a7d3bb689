//! `--context-key`: a screen with several contexts (cell lines, stimulation states) is
//! ingested as one screen per context, each against its own control.
//!
//! A cell's context is its values of the `--context-key` obs columns. Every context is
//! written to `OUT/<folder>/` exactly as `--subset KEY=VALUE …` would write it alone: its
//! own control mean, top genes and highly variable genes; its genes, conditions and
//! pseudobulk tables carry a `context` column. `OUT/contexts.parquet` lists the contexts
//! and their folders. Pooling a stimulated and an unstimulated cell into one pseudobulk
//! would average two baselines, so no table mixes contexts.
//!
//! Every context is checked (cells, a control of its own, a perturbation) before the first
//! is streamed, and the folders are committed only once all are written: a bad context
//! leaves nothing behind. The matrix is streamed once per context.

use std::collections::BTreeMap;
use std::path::Path;

use perturb_core::manifest::Manifest;
use perturb_core::schema::contexts as xs;
use perturb_core::staging::StagedDir;
use perturb_core::{Column, Error, Result, Table};
use serde_json::json;

use crate::source::BlockSource;
use crate::{h5ad, index_conditions, run_cells, CellMeta, IngestOptions, IngestSummary, Staged};

/// More contexts than this is not a context column (a barcode or a sample id).
const MAX_CONTEXTS: usize = 64;

/// One context: its name (the values joined by `|`), its values per key, its folder.
#[derive(Debug, Clone)]
pub(crate) struct ContextTag {
    pub name: String,
    pub values: Vec<(String, String)>,
    pub folder: String,
}

impl ContextTag {
    /// `{"KEY": "VALUE", …}`, as manifests record it.
    pub fn values_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.values.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect())
    }

    fn shown(&self) -> String {
        let pairs: Vec<String> = self.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("context '{}' ({})", self.name, pairs.join(" "))
    }
}

/// Every cell's context (`None`: a value is missing), and the contexts, by name.
pub(crate) struct CellContexts {
    pub tags: Vec<ContextTag>,
    pub cell: Vec<Option<usize>>,
}

/// The cells' contexts, or `None` without `--context-key`.
pub(crate) fn read(file: &h5ad::H5ad, opts: &IngestOptions, columns: &[String], condition_key: &str, n_obs: usize) -> Result<Option<CellContexts>> {
    if opts.context_keys.is_empty() {
        return Ok(None);
    }
    let mut per_key: Vec<Vec<Option<String>>> = Vec::new();
    for key in &opts.context_keys {
        let what = "a context is another column (a cell line, a stimulation)";
        let values = crate::covariate_column(file, opts, "--context-key", key, columns, condition_key, what, n_obs)?;
        per_key.push(values);
    }
    let names: Vec<Option<Vec<String>>> = (0..n_obs).map(|i| per_key.iter().map(|values| values[i].clone()).collect()).collect();
    let distinct: BTreeMap<&Vec<String>, ()> = names.iter().flatten().map(|v| (v, ())).collect();
    if distinct.is_empty() {
        return Err(Error::bad_input(&opts.input, format!("--context-key {}: every cell's value is missing", opts.context_keys.join(" "))));
    }
    if distinct.len() > MAX_CONTEXTS {
        return Err(Error::bad_input(
            &opts.input,
            format!(
                "--context-key {}: {} contexts; a context key names a few contexts (cell lines, stimulation states), at most {MAX_CONTEXTS}",
                opts.context_keys.join(" "),
                distinct.len()
            ),
        ));
    }
    let tags: Vec<ContextTag> = distinct
        .keys()
        .map(|values| ContextTag {
            name: values.join("|"),
            values: opts.context_keys.iter().cloned().zip(values.iter().cloned()).collect(),
            folder: values.iter().map(|v| folder_part(v)).collect::<Vec<_>>().join("__"),
        })
        .collect();
    check_folders(&opts.input, &tags)?;
    let index: BTreeMap<&Vec<String>, usize> = distinct.keys().enumerate().map(|(i, v)| (*v, i)).collect();
    let cell = names.iter().map(|v| v.as_ref().map(|v| index[v])).collect();
    Ok(Some(CellContexts { tags, cell }))
}

/// A value as a folder name: letters, digits, `.`, `-` and `_` kept, anything else `_`;
/// never hidden, never empty.
fn folder_part(value: &str) -> String {
    let mut name: String = value.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, '_');
    }
    name
}

fn check_folders(input: &Path, tags: &[ContextTag]) -> Result<()> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for tag in tags {
        if let Some(other) = seen.insert(tag.folder.as_str(), tag.name.as_str()) {
            return Err(Error::bad_input(input, format!("contexts '{other}' and '{}' would share the folder '{}'; relabel one of them", tag.name, tag.folder)));
        }
    }
    Ok(())
}

/// Ingests every context into its folder under the run's output folder; writes
/// `contexts.parquet` and the top manifest into `staged` (committed by the caller after
/// the context folders, which this commits once every context is written).
pub(crate) fn run(
    opts: &IngestOptions,
    staged: &Staged,
    meta: CellMeta,
    contexts: &CellContexts,
    outside_subset: &[bool],
    source: &dyn BlockSource,
    matrix: &str,
) -> Result<IngestSummary> {
    // The whole screen's conditions: the control label and the label checks, once.
    let index = index_conditions(opts, &meta.key, &meta.labels)?;
    let counts = count_cells(contexts, &index.cell_condition, &meta.labels);
    for (tag, count) in contexts.tags.iter().zip(&counts) {
        check_context(opts, tag, count, &index.control, &meta.key.shown)?;
    }
    let mut summaries = Vec::new();
    let mut folders = Vec::new();
    for (c, tag) in contexts.tags.iter().enumerate() {
        let labels: Vec<Option<String>> =
            meta.labels.iter().zip(&contexts.cell).map(|(label, context)| if *context == Some(c) { label.clone() } else { None }).collect();
        let other_contexts = contexts.cell.iter().zip(outside_subset).filter(|(context, outside)| **context != Some(c) && !**outside).count() as u64;
        let context_meta = CellMeta {
            labels,
            genes: meta.genes.clone(),
            gene_ids: meta.gene_ids.clone(),
            gene_source: meta.gene_source.clone(),
            key: meta.key.clone(),
            outside_subset: meta.outside_subset,
            context: Some(tag.clone()),
            other_contexts,
            batches: meta.batches.clone(),
            notes: Vec::new(),
        };
        tracing::info!(context = %tag.name, "ingesting context");
        let dir = StagedDir::new(&opts.out.join(&tag.folder))?;
        let context_staged = Staged { dir, input: staged.input };
        summaries.push(run_cells(opts, &context_staged, context_meta, source, matrix)?);
        folders.push(context_staged.dir);
    }
    let summary = top_summary(opts, &meta, &index, contexts, summaries);
    write_listing(staged, contexts, &counts, &summary)?;
    write_manifest(opts, staged, contexts, &summary)?;
    for dir in folders {
        dir.commit()?;
    }
    Ok(summary)
}

/// Per context: its labelled cells and its control cells.
struct ContextCount {
    cells: u64,
    control: u64,
}

fn count_cells(contexts: &CellContexts, cell_condition: &[u32], labels: &[Option<String>]) -> Vec<ContextCount> {
    let mut counts: Vec<ContextCount> = contexts.tags.iter().map(|_| ContextCount { cells: 0, control: 0 }).collect();
    for ((context, condition), label) in contexts.cell.iter().zip(cell_condition).zip(labels) {
        if let (Some(c), Some(_)) = (context, label) {
            counts[*c].cells += 1;
            // Conditions are sorted with the control first.
            counts[*c].control += u64::from(*condition == 0);
        }
    }
    counts
}

fn check_context(opts: &IngestOptions, tag: &ContextTag, count: &ContextCount, control: &str, key: &str) -> Result<()> {
    let fail = |m: String| Err(Error::bad_input(&opts.input, format!("{}: {m}", tag.shown())));
    match (count.cells, count.control) {
        (0, _) => fail(format!("no cell has a label in {key}")),
        (1, _) => fail("has one cell; a context needs its own control cells and perturbed cells".to_string()),
        (_, 0) => fail(format!(
            "has no control cells (label '{control}' of {key}); every context is compared with its own control; ingest the others one by one with --subset KEY=VALUE, or this one pooled with them (without --context-key)"
        )),
        (n, k) if n == k => fail(format!("has only control cells ({n}); nothing to predict in it")),
        _ => Ok(()),
    }
}

fn top_summary(opts: &IngestOptions, meta: &CellMeta, index: &crate::ConditionIndex, contexts: &CellContexts, summaries: Vec<IngestSummary>) -> IngestSummary {
    let first = &summaries[0];
    let count = |k| index.conditions.iter().filter(|c| c.kind() == k).count();
    let without_context = contexts.cell.iter().zip(&meta.labels).filter(|(c, l)| c.is_none() && l.is_some()).count();
    let mut warnings = meta.notes.clone();
    if without_context > 0 {
        warnings.push(format!("{without_context} cells have no value in obs/{} and were left out", opts.context_keys.join(" or obs/")));
    }
    IngestSummary {
        out: opts.out.clone(),
        n_cells: summaries.iter().map(|s| s.n_cells).sum(),
        n_genes: first.n_genes,
        n_conditions: index.conditions.len(),
        n_singles: count(perturb_core::ConditionKind::Single),
        n_doubles: count(perturb_core::ConditionKind::Double),
        value_scale: first.value_scale.clone(),
        matrix: first.matrix.clone(),
        gene_names_from: first.gene_names_from.clone(),
        condition_key: first.condition_key.clone(),
        control: first.control.clone(),
        n_highly_variable: 0,
        cells_without_condition: index.cells_without_condition - meta.outside_subset,
        cells_outside_subset: meta.outside_subset,
        context: None,
        cells_in_other_contexts: 0,
        contexts: summaries,
        cells_below_min_counts: 0,
        targets_not_measured: Vec::new(),
        warnings,
    }
}

fn write_listing(staged: &Staged, contexts: &CellContexts, counts: &[ContextCount], summary: &IngestSummary) -> Result<()> {
    let table = Table::new()
        .with(xs::CONTEXT, Column::Str(contexts.tags.iter().map(|t| t.name.clone()).collect()))
        .with(xs::FOLDER, Column::Str(contexts.tags.iter().map(|t| t.folder.clone()).collect()))
        .with(xs::N_CELLS, Column::I64(summary.contexts.iter().map(|s| s.n_cells as i64).collect()))
        .with(xs::N_CONTROL_CELLS, Column::I64(counts.iter().map(|c| c.control as i64).collect()))
        .with(xs::N_CONDITIONS, Column::I64(summary.contexts.iter().map(|s| s.n_conditions as i64).collect()));
    table.write_parquet(&staged.output(xs::FILE))
}

fn write_manifest(opts: &IngestOptions, staged: &Staged, contexts: &CellContexts, summary: &IngestSummary) -> Result<()> {
    let listed: Vec<serde_json::Value> = contexts.tags.iter().map(|t| json!({ "context": t.name, "folder": t.folder, "values": t.values_json() })).collect();
    let parameters = json!({
        "context_keys": opts.context_keys,
        "contexts": listed,
        "subset": crate::subset_json(opts),
        "condition_key": summary.condition_key,
        "control": summary.control,
    });
    let mut manifest = Manifest::new("ingest", vec![staged.input.get()?], parameters);
    manifest.summary = serde_json::to_value(summary).expect("summary serialises");
    // Lists only the listing: the context folders hold their own manifests, and a rerun's
    // cleanup of stale outputs must never reach into them.
    staged.dir.write_manifest(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_plain_visible_and_distinct() {
        assert_eq!(folder_part("stimulated"), "stimulated");
        assert_eq!(folder_part("A172 (GBM)/x"), "A172__GBM__x");
        assert_eq!(folder_part(".hidden"), "_.hidden");
        assert_eq!(folder_part(""), "_");
        let tag = |name: &str| ContextTag { name: name.into(), values: vec![("k".into(), name.into())], folder: folder_part(name) };
        assert!(check_folders(Path::new("s.h5ad"), &[tag("a b"), tag("a-b")]).is_ok());
        let e = check_folders(Path::new("s.h5ad"), &[tag("a b"), tag("a/b")]).unwrap_err().to_string();
        assert!(e.contains("contexts 'a b' and 'a/b' would share the folder 'a_b'"), "{e}");
    }
}

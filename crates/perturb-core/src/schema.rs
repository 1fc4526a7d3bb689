//! Names of the artifacts and their columns. `docs/artifacts.md` is the prose version of
//! this file; a change here that alters what a reader sees bumps [`SCHEMA_VERSION`].

/// Version of the artifact layout, recorded in every manifest.
pub const SCHEMA_VERSION: u32 = 1;

pub const MANIFEST: &str = "manifest.json";

/// `genes.parquet`: one row per measured gene, in the order of the input's var.
pub mod genes {
    pub const FILE: &str = "genes.parquet";
    /// Gene symbol (unique), as used everywhere downstream.
    pub const GENE: &str = "gene";
    /// The input's own identifier of the gene (var index, e.g. an Ensembl id).
    pub const GENE_ID: &str = "gene_id";
    /// Mean log-normalised expression over control cells.
    pub const CONTROL_MEAN: &str = "control_mean";
    /// 1 = highest control mean; ties broken by input order. The benchmark's
    /// "top-1000 expressed genes" are the genes with `control_rank <= 1000`.
    pub const CONTROL_RANK: &str = "control_rank";
    /// Cells (all conditions) in which the gene has a non-zero value.
    pub const N_CELLS_DETECTED: &str = "n_cells_detected";
    /// scanpy `highly_variable_genes` outputs, under scanpy's own names. Columns that the
    /// chosen flavor does not define hold NaN.
    pub const MEANS: &str = "means";
    pub const DISPERSIONS: &str = "dispersions";
    pub const DISPERSIONS_NORM: &str = "dispersions_norm";
    pub const VARIANCES: &str = "variances";
    pub const VARIANCES_NORM: &str = "variances_norm";
    pub const HIGHLY_VARIABLE: &str = "highly_variable";
    /// seurat_v3 only: 0-based rank among the selected genes, NaN otherwise.
    pub const HIGHLY_VARIABLE_RANK: &str = "highly_variable_rank";
}

/// `conditions.parquet`: one row per condition, control first, then by kind and name.
pub mod conditions {
    pub const FILE: &str = "conditions.parquet";
    /// Canonical condition: `ctrl`, `KLF1`, `CBL+CNN1`.
    pub const CONDITION: &str = "condition";
    /// The label(s) the input used for it, `;`-joined when several merged (`A+ctrl;ctrl+A`).
    pub const LABELS: &str = "labels";
    /// The perturbed genes, sorted (empty for control).
    pub const GENES: &str = "genes";
    pub const N_CELLS: &str = "n_cells";
    /// `control`, `single`, `double` or `multi`.
    pub const KIND: &str = "kind";
    /// Caveats, e.g. `target_not_measured:ZZZ9`.
    pub const FLAGS: &str = "flags";
}

/// `pseudobulk.parquet`: long form, one row per (condition, gene).
pub mod pseudobulk {
    pub const FILE: &str = "pseudobulk.parquet";
    pub const CONDITION: &str = "condition";
    pub const GENE: &str = "gene";
    /// Mean log-normalised expression over the condition's cells.
    pub const MEAN: &str = "mean";
    /// Sample variance (ddof = 1) of the same; NaN for a one-cell condition.
    pub const VARIANCE: &str = "variance";
}

/// The column that names the context (`perturb ingest --context-key`: a cell line, a
/// stimulation) in the genes, conditions and pseudobulk tables of a per-context ingest;
/// absent when the screen was ingested as one context.
pub const CONTEXT: &str = "context";

/// `contexts.parquet`: one row per context of an ingest with `--context-key`, whose
/// tables sit in the context's own folder (an ingest folder of its own).
pub mod contexts {
    pub const FILE: &str = "contexts.parquet";
    /// The context's values of the `--context-key` columns, joined by `|`.
    pub const CONTEXT: &str = "context";
    /// The context's ingest folder, relative to the folder holding this file.
    pub const FOLDER: &str = "folder";
    pub const N_CELLS: &str = "n_cells";
    pub const N_CONTROL_CELLS: &str = "n_control_cells";
    pub const N_CONDITIONS: &str = "n_conditions";
}

/// Flag on a condition whose perturbed gene is not among the measured genes.
pub const FLAG_TARGET_NOT_MEASURED: &str = "target_not_measured";

/// `GRAPH_DIR/edges.parquet`: the gene network (graph stage).
pub mod edges {
    pub const FILE: &str = "edges.parquet";
    /// Node names as in nodes.parquet (the screen's gene names and perturbation targets).
    pub const SOURCE: &str = "source";
    pub const TARGET: &str = "target";
    /// Non-negative strength (Jaccard, |Pearson|, 1 for unweighted sources, the user's).
    pub const WEIGHT: &str = "weight";
    /// +1 activation, -1 repression, 0 unsigned or unknown.
    pub const SIGN: &str = "sign";
    /// Which source(s) gave the edge, `;`-joined when merged (e.g. `go;regulon`).
    pub const ORIGIN: &str = "origin";
}

/// `GRAPH_DIR/nodes.parquet`: every node, isolated ones included.
pub mod nodes {
    pub const FILE: &str = "nodes.parquet";
    pub const NODE: &str = "node";
    /// The official symbol the node was mapped to (empty if unmapped).
    pub const SYMBOL: &str = "symbol";
    /// symbol / case / alias / identifier / unmapped.
    pub const MATCH: &str = "match";
    pub const MEASURED: &str = "measured";
    pub const PERTURBED: &str = "perturbed";
    pub const DEGREE: &str = "degree";
}

/// `split_<task>_seed<s>.parquet` (written by `perturb eval`, read by `perturb train` and
/// `perturb predict --split`): one row per condition the split assigns; rows in
/// [`crate::split::SplitRow`].
pub mod split {
    /// The file of one task and seed in a splits folder.
    pub fn file(task: &str, seed: u64) -> String {
        format!("split_{task}_seed{seed}.parquet")
    }
    /// `double`, `unseen_single`, … (the evaluator's task names).
    pub const TASK: &str = "task";
    pub const SEED: &str = "seed";
    /// Canonical condition, as in conditions.parquet.
    pub const CONDITION: &str = "condition";
    /// `train`, `val` or `test`.
    pub const SET: &str = "set";
    /// For a double: how many of its two genes were seen as singles in train; −1 otherwise.
    pub const COMBO_SEEN: &str = "combo_seen";
    /// Every column, in the file's order.
    pub const COLUMNS: [&str; 5] = [TASK, SEED, CONDITION, SET, COMBO_SEEN];
}

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
    /// Every column, in the file's order; rows in [`crate::gene_network::GraphEdgeRow`].
    pub const COLUMNS: [&str; 5] = [SOURCE, TARGET, WEIGHT, SIGN, ORIGIN];
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
    /// Every column, in the file's order; rows in [`crate::gene_network::GraphNodeRow`].
    pub const COLUMNS: [&str; 6] = [NODE, SYMBOL, MATCH, MEASURED, PERTURBED, DEGREE];
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

/// `MODEL_DIR/edges.parquet`: the graph a model was trained on, by node number (the
/// nodes of `index.json`), so prediction needs no graph folder. Written and read by the
/// trainer alone.
pub mod model_edges {
    pub const FILE: &str = "edges.parquet";
    /// Node numbers, int64.
    pub const SOURCE: &str = "source";
    pub const TARGET: &str = "target";
    pub const WEIGHT: &str = "weight";
    /// +1, −1 or 0, as float64 (the tensor's type).
    pub const SIGN: &str = "sign";
}

/// `perturb predict --out PRED.parquet`, read by `perturb eval --predictions`: long form,
/// one row per (perturbation, output gene); rows in [`crate::profiles::PredictionRow`].
pub mod predictions {
    /// Canonical perturbation (`A`, `A+B`).
    pub const PERTURBATION: &str = "perturbation";
    pub const GENE: &str = "gene";
    /// Predicted log-fold change against control (log-normalised scale).
    pub const LFC: &str = "lfc";
    pub const COLUMNS: [&str; 3] = [PERTURBATION, GENE, LFC];
}

/// `PRED.attention.parquet` (`perturb predict --attention`), read by `perturb eval
/// --attention`: one row per (perturbation, graph node); rows in
/// [`crate::profiles::AttentionWeightRow`].
pub mod attention {
    use std::path::{Path, PathBuf};

    /// The attention table written beside the prediction file `predictions`.
    pub fn file_beside(predictions: &Path) -> PathBuf {
        predictions.with_extension("attention.parquet")
    }
    pub const PERTURBATION: &str = "perturbation";
    /// A graph node (a measured gene or a perturbation target).
    pub const GENE: &str = "gene";
    /// The softmax weight of the node; each perturbation's weights sum to 1.
    pub const ATTENTION: &str = "attention";
    pub const COLUMNS: [&str; 3] = [PERTURBATION, GENE, ATTENTION];
}

/// `MODEL_DIR/singles.parquet` and `MODEL_DIR/context_effects.parquet`: single-gene
/// effects over the model's output genes, long form; rows in
/// [`crate::profiles::SingleEffectRow`].
pub mod single_effects {
    /// The training singles' effects (the residual target and the additive gate read them).
    pub const SINGLES_FILE: &str = "singles.parquet";
    /// The other contexts' effects the head reads (`perturb train --other-context`).
    pub const CONTEXT_EFFECTS_FILE: &str = "context_effects.parquet";
    /// The perturbed gene.
    pub const SINGLE: &str = "single";
    /// The output gene.
    pub const GENE: &str = "gene";
    pub const LFC: &str = "lfc";
    pub const COLUMNS: [&str; 3] = [SINGLE, GENE, LFC];
}

/// The columns `grn.parquet` and `trust.parquet` share: a prior edge by gene name; rows in
/// [`crate::learned::PriorEdge`].
pub mod prior_edge {
    pub const SOURCE: &str = "source";
    pub const TARGET: &str = "target";
    pub const PRIOR_WEIGHT: &str = "prior_weight";
    pub const PRIOR_SIGN: &str = "prior_sign";
    /// The source gene's single perturbation was trained on.
    pub const SOURCE_PERTURBED: &str = "source_perturbed";
}

/// `MODEL_DIR/grn.parquet` (`grn_vae`), read by `perturb eval --grn`: one row per prior
/// edge; rows in [`crate::learned::LearnedEdgeRow`].
pub mod grn {
    pub const FILE: &str = "grn.parquet";
    pub use super::prior_edge::{PRIOR_SIGN, PRIOR_WEIGHT, SOURCE, SOURCE_PERTURBED, TARGET};
    /// Magnitude of the learned weight (so the file is an edge list `perturb graph` reads).
    pub const WEIGHT: &str = "weight";
    /// Sign of the learned weight: +1, −1, or 0 for a weight of 0.
    pub const SIGN: &str = "sign";
    /// The signed learned weight.
    pub const LEARNED: &str = "learned";
    pub const COLUMNS: [&str; 8] = [SOURCE, TARGET, WEIGHT, SIGN, LEARNED, PRIOR_WEIGHT, PRIOR_SIGN, SOURCE_PERTURBED];
}

/// `MODEL_DIR/trust.parquet` (APP with `--edge-trust`): one row per prior edge; rows in
/// [`crate::learned::EdgeTrustRow`].
pub mod trust {
    pub const FILE: &str = "trust.parquet";
    pub use super::prior_edge::{PRIOR_SIGN, PRIOR_WEIGHT, SOURCE, SOURCE_PERTURBED, TARGET};
    /// 2σ(10ℓ): 1 = the prior edge as it is, 0 = switched off, at most 2.
    pub const TRUST: &str = "trust";
    pub const COLUMNS: [&str; 6] = [SOURCE, TARGET, PRIOR_WEIGHT, PRIOR_SIGN, TRUST, SOURCE_PERTURBED];
}

/// `MODEL_DIR/programs.parquet` (`modules`), read by `perturb eval --programs`: one row per
/// graph node; rows in [`crate::learned::GeneProgramRow`].
pub mod programs {
    pub const FILE: &str = "programs.parquet";
    /// A graph node.
    pub const GENE: &str = "gene";
    /// Its program, 0..K.
    pub const PROGRAM: &str = "program";
    /// A measured gene (not only a perturbation target).
    pub const MEASURED: &str = "measured";
    pub const COLUMNS: [&str; 3] = [GENE, PROGRAM, MEASURED];
}

/// `NAME.network.parquet` (`perturb simulate`), read by `perturb eval --truth-network`: the
/// edges the screen was generated with; rows in [`crate::truth_network::TruthEdgeRow`].
pub mod truth_network {
    use std::path::{Path, PathBuf};

    /// The network file written beside the simulated screen `screen` (`NAME.h5ad`).
    pub fn file_beside(screen: &Path) -> PathBuf {
        let stem = screen.file_stem().map_or_else(|| "screen".into(), |s| s.to_string_lossy().into_owned());
        screen.with_file_name(format!("{stem}.network.parquet"))
    }
    pub const SOURCE: &str = "source";
    pub const TARGET: &str = "target";
    /// Signed effect strength.
    pub const WEIGHT: &str = "weight";
    /// Whether the regulon prior has the edge.
    pub const IN_PRIOR: &str = "in_prior";
    pub const COLUMNS: [&str; 4] = [SOURCE, TARGET, WEIGHT, IN_PRIOR];
}

/// `EVAL_DIR/metrics.parquet` (`perturb eval`), copied to the top of a study and compared
/// by `cargo xtask compare-metrics`: one row per (task, seed, model, test perturbation);
/// rows in [`crate::scores::MetricRow`]. Each metric is defined in docs/metrics.md.
pub mod metrics {
    pub const FILE: &str = "metrics.parquet";
    pub const TASK: &str = "task";
    pub const SEED: &str = "seed";
    pub const MODEL: &str = "model";
    pub const PERTURBATION: &str = "perturbation";
    /// For a double: how many of its two genes were seen as singles in train; −1 otherwise.
    pub const COMBO_SEEN: &str = "combo_seen";
    /// 1 = the prediction is closest to its own truth among the test perturbations.
    pub const DISCRIMINATION_RANK: &str = "discrimination_rank";
    /// The float metrics of one perturbation, in the file's order (and `summary.parquet`'s
    /// `metric` values, in its order).
    pub const PER_PERTURBATION: [&str; 12] = [
        "l2",
        "l2_no_target",
        "pearson_delta",
        "pearson_delta_no_target",
        "pearson_delta_centroid",
        "pearson_delta_all",
        "mse_top20_de",
        "mae",
        "des_overlap_20",
        "des_overlap_100",
        "discrimination_score",
        "pds_l1",
    ];
    /// The metric of record: L2 over the top expressed genes.
    pub const L2: &str = PER_PERTURBATION[0];
    /// Every column, in the file's order: the keys, the float metrics but the last two,
    /// the rank, then the last two (the order the evaluator has always written).
    pub const COLUMNS: [&str; 18] = [
        TASK,
        SEED,
        MODEL,
        PERTURBATION,
        COMBO_SEEN,
        PER_PERTURBATION[0],
        PER_PERTURBATION[1],
        PER_PERTURBATION[2],
        PER_PERTURBATION[3],
        PER_PERTURBATION[4],
        PER_PERTURBATION[5],
        PER_PERTURBATION[6],
        PER_PERTURBATION[7],
        PER_PERTURBATION[8],
        PER_PERTURBATION[9],
        DISCRIMINATION_RANK,
        PER_PERTURBATION[10],
        PER_PERTURBATION[11],
    ];
}

/// `EVAL_DIR/summary.parquet` (`perturb eval`), read by `cargo xtask readme-tables`: one
/// row per (task, perturbation set, model, metric); rows in [`crate::scores::SummaryRow`].
pub mod summary {
    pub const FILE: &str = "summary.parquet";
    pub const TASK: &str = "task";
    /// `all`, or the name of the model(s) covering only a smaller set, `+`-joined.
    pub const PERTURBATION_SET: &str = "perturbation_set";
    /// The set holding every test (seed, perturbation) pair of the task.
    pub const ALL: &str = "all";
    pub const MODEL: &str = "model";
    pub const METRIC: &str = "metric";
    pub const MEAN: &str = "mean";
    pub const SD: &str = "sd";
    pub const N: &str = "n";
    /// The set's best baseline the paired comparison is against (empty when none).
    pub const VERSUS: &str = "versus";
    pub const MEAN_DIFFERENCE: &str = "mean_difference";
    pub const CI_LOW: &str = "ci_low";
    pub const CI_HIGH: &str = "ci_high";
    pub const WIN_SHARE: &str = "win_share";
    pub const COLUMNS: [&str; 12] = [TASK, PERTURBATION_SET, MODEL, METRIC, MEAN, SD, N, VERSUS, MEAN_DIFFERENCE, CI_LOW, CI_HIGH, WIN_SHARE];
}

/// docs/artifacts.md read back, so tests can check that it names the columns written.
#[cfg(test)]
pub(crate) mod docs {
    /// The columns docs/artifacts.md names for the file whose table row begins with
    /// `| {file}`: every `quoted` word of the row's last cell, in the order of first
    /// mention, except `values` (quoted values of a column, option names, model kinds).
    pub fn columns_of(file: &str, values: &[&str]) -> Vec<String> {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/artifacts.md")).expect("docs/artifacts.md");
        let start = format!("| {file}");
        let line = doc.lines().find(|l| l.starts_with(&start)).unwrap_or_else(|| panic!("no table row for {file} in docs/artifacts.md"));
        let cell = line.trim_end().trim_end_matches('|').rsplit('|').next().expect("a last cell");
        let mut named: Vec<String> = Vec::new();
        for word in cell.split('`').skip(1).step_by(2).filter(|w| !values.contains(w)) {
            if !named.iter().any(|n| n == word) {
                named.push(word.to_string());
            }
        }
        named
    }

    /// The columns of a file docs/artifacts.md describes with a table of its own, a row
    /// per column, under the heading that begins with `### {file}`.
    pub fn column_table(file: &str) -> Vec<String> {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/artifacts.md")).expect("docs/artifacts.md");
        let heading = format!("### {file}");
        let after = doc.lines().skip_while(|l| !l.starts_with(&heading)).skip(1);
        let rows = after.skip_while(|l| !l.starts_with("| `")).take_while(|l| l.starts_with("| `"));
        rows.map(|l| l.split('`').nth(1).expect("a quoted column name").to_string()).collect()
    }
}

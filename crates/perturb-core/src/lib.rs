//! The shared vocabulary of perturb.
//!
//! Every pipeline stage (ingest, graph, train, eval) depends on this crate and on no other
//! stage crate. It owns:
//! - [`condition`]: perturbation conditions — parsing GEARS (`A+B`, `A+ctrl`, `ctrl`) and
//!   scPerturb (`A_B`, `control`) labels into one canonical, sorted gene set;
//! - [`table`]: a small column-oriented table that is read from and written to Parquet,
//!   always atomically (temporary file + rename);
//! - [`schema`]: the names and types of every artifact column, and the schema version;
//! - one typed row with `read`/`write` for every file that crosses a stage boundary:
//!   [`gene_network`] (graph → trainer, evaluator), [`split`] (evaluator → trainer),
//!   [`profiles`] (predictions and attention: trainer → evaluator; a model folder's
//!   single effects), [`learned`] (a model's network, edge trust and programs: trainer →
//!   evaluator), [`truth_network`] (simulator → evaluator), [`scores`] (the evaluator's
//!   metrics and summary: evaluator → a study's top, `cargo xtask`); the ingest tables
//!   are read back as one [`ingested::IngestedScreen`];
//! - [`manifest`]: the JSON manifest each stage writes beside its artifacts;
//! - [`paths`]: the folder of a file and its nearest existing folder;
//! - [`staging`]: a staging directory that makes a stage's output appear all at once or
//!   not at all;
//! - [`guard`]: an output never overlaps an input, and one run at a time writes it;
//! - [`error`]: the error type, whose messages always name the file at fault;
//! - [`timing`]: a run's measurements (wall time, latency, peak memory), kept apart from
//!   the deterministic artifacts.

pub mod condition;
pub mod error;
pub mod gene_network;
pub mod guard;
pub mod ingested;
pub mod learned;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod paths;
pub mod profiles;
pub mod schema;
pub mod scores;
pub mod split;
pub mod staging;
pub mod table;
#[cfg(test)]
mod testing;
pub mod timing;
pub mod truth_network;

pub use condition::{Condition, ConditionKind, ConditionSyntax};
pub use error::{Error, Result};
pub use table::{Column, Table};

/// Version of the perturb tools, recorded in every manifest.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

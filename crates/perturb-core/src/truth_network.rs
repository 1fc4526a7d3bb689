//! The network a simulated screen was generated with, the contract between `perturb
//! simulate` that writes it beside the screen and `perturb eval --truth-network` that
//! scores learned structure against it (columns in [`crate::schema::truth_network`]).

use std::path::Path;

use crate::schema::truth_network as tn;
use crate::{Column, Error, Result, Table};

/// One true edge.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthEdgeRow {
    pub source: String,
    pub target: String,
    /// Signed effect strength.
    pub weight: f64,
    /// Whether the regulon prior given to the models has the edge.
    pub in_prior: bool,
}

/// Writes the network atomically.
pub fn write(rows: &[TruthEdgeRow], path: &Path) -> Result<()> {
    Table::new()
        .with(tn::SOURCE, Column::of_strings(rows, |r| &r.source))
        .with(tn::TARGET, Column::of_strings(rows, |r| &r.target))
        .with(tn::WEIGHT, Column::of_floats(rows, |r| r.weight))
        .with(tn::IN_PRIOR, Column::of_bools(rows, |r| r.in_prior))
        .write_parquet(path)
}

/// The edges of a truth network; a file without edges or without a column is an error
/// naming it. `in_prior` is optional (false when absent), so a network the user wrote with
/// `source`, `target`, `weight` alone can be scored against too.
pub fn read(path: &Path) -> Result<Vec<TruthEdgeRow>> {
    let t = Table::read_parquet(path)?;
    let (source, target, weight) = (t.strings(tn::SOURCE, path)?, t.strings(tn::TARGET, path)?, t.floats(tn::WEIGHT, path)?);
    let in_prior = match t.column(tn::IN_PRIOR) {
        Some(_) => t.bools(tn::IN_PRIOR, path)?.to_vec(),
        None => vec![false; t.n_rows()],
    };
    if source.is_empty() {
        return Err(Error::bad_input(path, "the truth network has no edges"));
    }
    Ok((0..t.n_rows()).map(|i| TruthEdgeRow { source: source[i].clone(), target: target[i].clone(), weight: weight[i], in_prior: in_prior[i] }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_reads_back_and_in_prior_is_optional() {
        let dir = tempfile::tempdir().unwrap();
        let path = tn::file_beside(&dir.path().join("screen.h5ad"));
        assert!(path.ends_with("screen.network.parquet"));
        let rows = vec![TruthEdgeRow { source: "A".into(), target: "B".into(), weight: -0.7, in_prior: true }];
        write(&rows, &path).unwrap();
        assert_eq!(read(&path).unwrap(), rows);
        let bare = dir.path().join("bare.parquet");
        Table::new()
            .with(tn::SOURCE, Column::Str(vec!["A".into()]))
            .with(tn::TARGET, Column::Str(vec!["C".into()]))
            .with(tn::WEIGHT, Column::F64(vec![0.5]))
            .write_parquet(&bare)
            .unwrap();
        assert!(!read(&bare).unwrap()[0].in_prior);
    }

    #[test]
    fn a_network_without_edges_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.parquet");
        write(&[], &path).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("empty.parquet"));
    }

    #[test]
    fn the_documented_columns_are_the_schema_columns() {
        assert_eq!(crate::schema::docs::columns_of("`NAME.network.parquet`", &["perturb eval --truth-network"]), tn::COLUMNS);
    }
}

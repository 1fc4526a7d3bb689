//! The graph stage's two tables, the contract between `perturb graph` that writes them and
//! the trainer and the evaluator's prior-based baselines that read them (columns in
//! [`crate::schema::edges`] and [`crate::schema::nodes`]).

use std::path::Path;

use crate::schema::{edges as es, nodes as ns};
use crate::{Column, Result, Table};

/// One directed edge of the gene network.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphEdgeRow {
    /// Node names, as in `nodes.parquet`.
    pub source: String,
    pub target: String,
    /// Non-negative strength.
    pub weight: f64,
    /// +1 activation, −1 repression, 0 unsigned or unknown.
    pub sign: i64,
    /// Which source(s) gave the edge, `;`-joined.
    pub origin: String,
}

/// One node of the gene network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNodeRow {
    pub node: String,
    /// The official symbol it was mapped to (empty if none).
    pub symbol: String,
    /// How: `symbol`, `case`, `alias`, `identifier` or `unmapped` (the `match` column).
    pub match_kind: String,
    pub measured: bool,
    pub perturbed: bool,
    pub degree: i64,
}

/// Writes the edges atomically.
pub fn write_edges(rows: &[GraphEdgeRow], path: &Path) -> Result<()> {
    Table::new()
        .with(es::SOURCE, Column::of_strings(rows, |r| &r.source))
        .with(es::TARGET, Column::of_strings(rows, |r| &r.target))
        .with(es::WEIGHT, Column::of_floats(rows, |r| r.weight))
        .with(es::SIGN, Column::of_ints(rows, |r| r.sign))
        .with(es::ORIGIN, Column::of_strings(rows, |r| &r.origin))
        .write_parquet(path)
}

/// The edges of a graph folder's `edges.parquet`; a missing column is an error naming the
/// file.
pub fn read_edges(path: &Path) -> Result<Vec<GraphEdgeRow>> {
    let t = Table::read_parquet(path)?;
    let (source, target, origin) = (t.strings(es::SOURCE, path)?, t.strings(es::TARGET, path)?, t.strings(es::ORIGIN, path)?);
    let (weight, sign) = (t.floats(es::WEIGHT, path)?, t.ints(es::SIGN, path)?);
    Ok((0..t.n_rows())
        .map(|i| GraphEdgeRow { source: source[i].clone(), target: target[i].clone(), weight: weight[i], sign: sign[i], origin: origin[i].clone() })
        .collect())
}

/// Writes the nodes atomically.
pub fn write_nodes(rows: &[GraphNodeRow], path: &Path) -> Result<()> {
    Table::new()
        .with(ns::NODE, Column::of_strings(rows, |r| &r.node))
        .with(ns::SYMBOL, Column::of_strings(rows, |r| &r.symbol))
        .with(ns::MATCH, Column::of_strings(rows, |r| &r.match_kind))
        .with(ns::MEASURED, Column::of_bools(rows, |r| r.measured))
        .with(ns::PERTURBED, Column::of_bools(rows, |r| r.perturbed))
        .with(ns::DEGREE, Column::of_ints(rows, |r| r.degree))
        .write_parquet(path)
}

/// The nodes of a graph folder's `nodes.parquet`; a missing column is an error naming the
/// file.
pub fn read_nodes(path: &Path) -> Result<Vec<GraphNodeRow>> {
    let t = Table::read_parquet(path)?;
    let (node, symbol, match_kind) = (t.strings(ns::NODE, path)?, t.strings(ns::SYMBOL, path)?, t.strings(ns::MATCH, path)?);
    let (measured, perturbed, degree) = (t.bools(ns::MEASURED, path)?, t.bools(ns::PERTURBED, path)?, t.ints(ns::DEGREE, path)?);
    Ok((0..t.n_rows())
        .map(|i| GraphNodeRow {
            node: node[i].clone(),
            symbol: symbol[i].clone(),
            match_kind: match_kind[i].clone(),
            measured: measured[i],
            perturbed: perturbed[i],
            degree: degree[i],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::docs;

    #[test]
    fn a_graph_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let edges = vec![GraphEdgeRow { source: "A".into(), target: "B".into(), weight: 0.25, sign: -1, origin: "go;regulon".into() }];
        let nodes = vec![
            GraphNodeRow { node: "A".into(), symbol: "A".into(), match_kind: "symbol".into(), measured: true, perturbed: true, degree: 1 },
            GraphNodeRow { node: "b".into(), symbol: "B".into(), match_kind: "case".into(), measured: false, perturbed: false, degree: 1 },
        ];
        write_edges(&edges, &dir.path().join(es::FILE)).unwrap();
        write_nodes(&nodes, &dir.path().join(ns::FILE)).unwrap();
        assert_eq!(read_edges(&dir.path().join(es::FILE)).unwrap(), edges);
        assert_eq!(read_nodes(&dir.path().join(ns::FILE)).unwrap(), nodes);
        let e = read_edges(&dir.path().join(ns::FILE)).unwrap_err().to_string();
        assert!(e.contains(ns::FILE) && e.contains("'source'"), "{e}");
    }

    #[test]
    fn the_documented_columns_are_the_schema_columns() {
        assert_eq!(docs::column_table("`GRAPH_DIR/edges.parquet`"), es::COLUMNS);
        assert_eq!(docs::column_table("`GRAPH_DIR/nodes.parquet`"), ns::COLUMNS);
    }
}

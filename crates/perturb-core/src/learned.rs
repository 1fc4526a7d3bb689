//! What a trained model learned about the genes, kept in its model folder by gene name:
//! `grn_vae`'s network (`grn.parquet`, read by `perturb eval --grn`), APP's edge trust
//! (`trust.parquet`) and `modules`' programs (`programs.parquet`, read by `perturb eval
//! --programs`). Columns in [`crate::schema::grn`], [`crate::schema::trust`] and
//! [`crate::schema::programs`].

use std::path::Path;

use crate::schema::{grn as gr, prior_edge as pe, programs as pr, trust as tr};
use crate::{Column, Result, Table};

/// A prior edge by gene name, as both per-edge tables of a model folder give it.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorEdge {
    pub source: String,
    pub target: String,
    pub prior_weight: f64,
    pub prior_sign: i64,
    /// The source gene's single perturbation was trained on (only then had the edge direct
    /// evidence).
    pub source_perturbed: bool,
}

/// One prior edge with the weight `grn_vae` learned for it.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedEdgeRow {
    pub edge: PriorEdge,
    /// The signed learned weight (the file's `weight` and `sign` are its magnitude and sign).
    pub learned: f64,
}

/// One prior edge with the trust APP's `--edge-trust` learned for it.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeTrustRow {
    pub edge: PriorEdge,
    /// 2σ(10ℓ): 1 = the prior edge as it is, 0 = switched off, at most 2.
    pub trust: f64,
}

/// One graph node's program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneProgramRow {
    pub gene: String,
    pub program: i64,
    /// A measured gene, not only a perturbation target.
    pub measured: bool,
}

/// Writes a learned network atomically, `weight` and `sign` split from `learned` so the
/// file is an edge list `perturb graph --source edges:PATH` reads.
pub fn write_grn(rows: &[LearnedEdgeRow], path: &Path) -> Result<()> {
    Table::new()
        .with(gr::SOURCE, Column::of_strings(rows, |r| &r.edge.source))
        .with(gr::TARGET, Column::of_strings(rows, |r| &r.edge.target))
        .with(gr::WEIGHT, Column::of_floats(rows, |r| r.learned.abs()))
        .with(gr::SIGN, Column::of_ints(rows, |r| r.learned.signum() as i64 * i64::from(r.learned != 0.0)))
        .with(gr::LEARNED, Column::of_floats(rows, |r| r.learned))
        .with(gr::PRIOR_WEIGHT, Column::of_floats(rows, |r| r.edge.prior_weight))
        .with(gr::PRIOR_SIGN, Column::of_ints(rows, |r| r.edge.prior_sign))
        .with(gr::SOURCE_PERTURBED, Column::of_bools(rows, |r| r.edge.source_perturbed))
        .write_parquet(path)
}

/// The rows of a learned network; a missing column is an error naming the file.
pub fn read_grn(path: &Path) -> Result<Vec<LearnedEdgeRow>> {
    let t = Table::read_parquet(path)?;
    let learned = t.floats(gr::LEARNED, path)?;
    Ok(read_prior_edges(&t, path)?.into_iter().zip(learned).map(|(edge, &learned)| LearnedEdgeRow { edge, learned }).collect())
}

/// The prior-edge columns both per-edge tables share.
fn read_prior_edges(t: &Table, path: &Path) -> Result<Vec<PriorEdge>> {
    let (source, target) = (t.strings(pe::SOURCE, path)?, t.strings(pe::TARGET, path)?);
    let (prior_weight, prior_sign, source_perturbed) = (t.floats(pe::PRIOR_WEIGHT, path)?, t.ints(pe::PRIOR_SIGN, path)?, t.bools(pe::SOURCE_PERTURBED, path)?);
    Ok((0..t.n_rows())
        .map(|i| PriorEdge {
            source: source[i].clone(),
            target: target[i].clone(),
            prior_weight: prior_weight[i],
            prior_sign: prior_sign[i],
            source_perturbed: source_perturbed[i],
        })
        .collect())
}

/// Writes the edge trust atomically.
pub fn write_trust(rows: &[EdgeTrustRow], path: &Path) -> Result<()> {
    Table::new()
        .with(tr::SOURCE, Column::of_strings(rows, |r| &r.edge.source))
        .with(tr::TARGET, Column::of_strings(rows, |r| &r.edge.target))
        .with(tr::PRIOR_WEIGHT, Column::of_floats(rows, |r| r.edge.prior_weight))
        .with(tr::PRIOR_SIGN, Column::of_ints(rows, |r| r.edge.prior_sign))
        .with(tr::TRUST, Column::of_floats(rows, |r| r.trust))
        .with(tr::SOURCE_PERTURBED, Column::of_bools(rows, |r| r.edge.source_perturbed))
        .write_parquet(path)
}

/// The rows of an edge-trust table; a missing column is an error naming the file.
pub fn read_trust(path: &Path) -> Result<Vec<EdgeTrustRow>> {
    let t = Table::read_parquet(path)?;
    let trust = t.floats(tr::TRUST, path)?;
    Ok(read_prior_edges(&t, path)?.into_iter().zip(trust).map(|(edge, &trust)| EdgeTrustRow { edge, trust }).collect())
}

/// Writes the programs atomically.
pub fn write_programs(rows: &[GeneProgramRow], path: &Path) -> Result<()> {
    Table::new()
        .with(pr::GENE, Column::of_strings(rows, |r| &r.gene))
        .with(pr::PROGRAM, Column::of_ints(rows, |r| r.program))
        .with(pr::MEASURED, Column::of_bools(rows, |r| r.measured))
        .write_parquet(path)
}

/// The rows of a programs table; a missing column is an error naming the file.
pub fn read_programs(path: &Path) -> Result<Vec<GeneProgramRow>> {
    let t = Table::read_parquet(path)?;
    let (gene, program, measured) = (t.strings(pr::GENE, path)?, t.ints(pr::PROGRAM, path)?, t.bools(pr::MEASURED, path)?);
    Ok((0..t.n_rows()).map(|i| GeneProgramRow { gene: gene[i].clone(), program: program[i], measured: measured[i] }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::docs;

    fn edge(source: &str, learned: f64) -> LearnedEdgeRow {
        let edge = PriorEdge { source: source.into(), target: "T".into(), prior_weight: 1.0, prior_sign: -1, source_perturbed: source == "A" };
        LearnedEdgeRow { edge, learned }
    }

    #[test]
    fn a_learned_network_is_an_edge_list_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(gr::FILE);
        let rows = vec![edge("A", -0.5), edge("B", 0.0), edge("C", 2.0)];
        write_grn(&rows, &path).unwrap();
        assert_eq!(read_grn(&path).unwrap(), rows);
        let t = Table::read_parquet(&path).unwrap();
        assert_eq!(t.column_names(), gr::COLUMNS);
        assert_eq!(t.floats(gr::WEIGHT, &path).unwrap(), [0.5, 0.0, 2.0]);
        assert_eq!(t.ints(gr::SIGN, &path).unwrap(), [-1, 0, 1]);
    }

    #[test]
    fn trust_and_programs_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let edge = PriorEdge { source: "A".into(), target: "B".into(), prior_weight: 0.5, prior_sign: 1, source_perturbed: false };
        let trust = vec![EdgeTrustRow { edge, trust: 1.5 }];
        write_trust(&trust, &dir.path().join(tr::FILE)).unwrap();
        assert_eq!(read_trust(&dir.path().join(tr::FILE)).unwrap(), trust);
        let programs = vec![GeneProgramRow { gene: "A".into(), program: 2, measured: true }, GeneProgramRow { gene: "Z".into(), program: 0, measured: false }];
        write_programs(&programs, &dir.path().join(pr::FILE)).unwrap();
        assert_eq!(read_programs(&dir.path().join(pr::FILE)).unwrap(), programs);
        let e = read_programs(&dir.path().join(tr::FILE)).unwrap_err().to_string();
        assert!(e.contains(tr::FILE) && e.contains("'gene'"), "{e}");
    }

    #[test]
    fn the_documented_columns_are_the_schema_columns() {
        assert_eq!(docs::columns_of("`grn.parquet`", &["grn_vae", "perturb graph --source edges:PATH"]), gr::COLUMNS);
        assert_eq!(docs::columns_of("`trust.parquet`", &["--edge-trust"]), tr::COLUMNS);
        assert_eq!(docs::columns_of("`programs.parquet`", &["modules"]), pr::COLUMNS);
    }
}

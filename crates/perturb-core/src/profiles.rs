//! The long-form tables of one value per (perturbation, gene), the contracts between the
//! trainer that writes them and the stages that read them (columns in
//! [`crate::schema::predictions`], [`crate::schema::attention`] and
//! [`crate::schema::single_effects`]): a model's predictions, its attention weights, and
//! the single-gene effects a model folder keeps.
//!
//! Writers hold a profile per perturbation over one list of genes, so they write a
//! [`Profiles`]; readers get rows, because a user's prediction file may list its rows in
//! any order and each row is checked on its own.

use std::path::Path;

use crate::schema::{attention as at, predictions as ps, single_effects as se};
use crate::{Column, Result, Table};

/// Profiles over one list of genes: `values[i][g]` is profile `labels[i]`'s value for
/// `genes[g]`. Written perturbation by perturbation, genes in `genes`' order.
pub struct Profiles<'a> {
    /// One label per profile: a canonical perturbation, or a single's perturbed gene.
    pub labels: &'a [String],
    pub genes: &'a [String],
    pub values: Vec<&'a [f32]>,
}

/// One row of a prediction file.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    pub perturbation: String,
    pub gene: String,
    /// Predicted log-fold change against control.
    pub lfc: f64,
}

/// One row of an attention table.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionWeightRow {
    pub perturbation: String,
    /// A graph node.
    pub gene: String,
    pub attention: f64,
}

/// One row of a model folder's single effects.
#[derive(Debug, Clone, PartialEq)]
pub struct SingleEffectRow {
    /// The perturbed gene.
    pub single: String,
    /// The output gene.
    pub gene: String,
    pub lfc: f64,
}

/// Writes predictions atomically.
pub fn write_predictions(profiles: &Profiles, path: &Path) -> Result<()> {
    write_long(profiles, ps::COLUMNS, path)
}

/// Writes attention weights atomically.
pub fn write_attention(profiles: &Profiles, path: &Path) -> Result<()> {
    write_long(profiles, at::COLUMNS, path)
}

/// Writes single effects atomically.
pub fn write_single_effects(profiles: &Profiles, path: &Path) -> Result<()> {
    write_long(profiles, se::COLUMNS, path)
}

/// The rows of a prediction file; a missing column is an error naming the file.
pub fn read_predictions(path: &Path) -> Result<Vec<PredictionRow>> {
    let long = read_long(ps::COLUMNS, path)?;
    Ok(long.rows().map(|(perturbation, gene, lfc)| PredictionRow { perturbation, gene, lfc }).collect())
}

/// The rows of an attention table; a missing column is an error naming the file.
pub fn read_attention(path: &Path) -> Result<Vec<AttentionWeightRow>> {
    let long = read_long(at::COLUMNS, path)?;
    Ok(long.rows().map(|(perturbation, gene, attention)| AttentionWeightRow { perturbation, gene, attention }).collect())
}

/// The rows of a single-effects table; a missing column is an error naming the file.
pub fn read_single_effects(path: &Path) -> Result<Vec<SingleEffectRow>> {
    let long = read_long(se::COLUMNS, path)?;
    Ok(long.rows().map(|(single, gene, lfc)| SingleEffectRow { single, gene, lfc }).collect())
}

/// The three columns of a long-form table, moved out of the table read.
struct LongColumns {
    labels: Vec<String>,
    genes: Vec<String>,
    values: Vec<f64>,
}

impl LongColumns {
    fn rows(self) -> impl Iterator<Item = (String, String, f64)> {
        self.labels.into_iter().zip(self.genes).zip(self.values).map(|((label, gene), value)| (label, gene, value))
    }
}

fn write_long(profiles: &Profiles, [label, gene, value]: [&str; 3], path: &Path) -> Result<()> {
    let n = profiles.genes.len();
    debug_assert!(profiles.values.iter().all(|v| v.len() == n) && profiles.values.len() == profiles.labels.len());
    Table::new()
        .with(label, Column::Str(profiles.labels.iter().flat_map(|l| std::iter::repeat_n(l.clone(), n)).collect()))
        .with(gene, Column::Str(profiles.labels.iter().flat_map(|_| profiles.genes.iter().cloned()).collect()))
        .with(value, Column::F64(profiles.values.iter().flat_map(|v| v.iter().map(|&x| f64::from(x))).collect()))
        .write_parquet(path)
}

fn read_long([label, gene, value]: [&str; 3], path: &Path) -> Result<LongColumns> {
    let mut t = Table::read_parquet(path)?;
    // All three checked before any is moved out, so the error for a missing one lists
    // every column the file has.
    t.strings(label, path)?;
    t.strings(gene, path)?;
    t.floats(value, path)?;
    Ok(LongColumns { labels: t.take_strings(label, path)?, genes: t.take_strings(gene, path)?, values: t.take_floats(value, path)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::docs;

    fn two_by_two() -> (Vec<String>, Vec<String>, Vec<Vec<f32>>) {
        (vec!["A".into(), "A+B".into()], vec!["G0".into(), "G1".into()], vec![vec![0.5, -1.0], vec![0.25, 2.0]])
    }

    #[test]
    fn predictions_are_written_perturbation_by_perturbation_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pred.parquet");
        let (labels, genes, values) = two_by_two();
        write_predictions(&Profiles { labels: &labels, genes: &genes, values: values.iter().map(Vec::as_slice).collect() }, &path).unwrap();
        let rows = read_predictions(&path).unwrap();
        let seen: Vec<(&str, &str, f64)> = rows.iter().map(|r| (r.perturbation.as_str(), r.gene.as_str(), r.lfc)).collect();
        assert_eq!(seen, [("A", "G0", 0.5), ("A", "G1", -1.0), ("A+B", "G0", 0.25), ("A+B", "G1", 2.0)]);
    }

    #[test]
    fn each_table_keeps_its_own_column_names() {
        let dir = tempfile::tempdir().unwrap();
        let (labels, genes, values) = two_by_two();
        let profiles = Profiles { labels: &labels, genes: &genes, values: values.iter().map(Vec::as_slice).collect() };
        let (attention, singles) = (dir.path().join("a.parquet"), dir.path().join("s.parquet"));
        write_attention(&profiles, &attention).unwrap();
        write_single_effects(&profiles, &singles).unwrap();
        assert_eq!(Table::read_parquet(&attention).unwrap().column_names(), at::COLUMNS);
        assert_eq!(read_single_effects(&singles).unwrap()[3], SingleEffectRow { single: "A+B".into(), gene: "G1".into(), lfc: 2.0 });
        // An attention table is no prediction file: the error names the file and the column.
        let e = read_predictions(&attention).unwrap_err().to_string();
        assert!(e.contains("a.parquet") && e.contains("'lfc'"), "{e}");
    }

    #[test]
    fn the_documented_columns_are_the_schema_columns() {
        assert_eq!(docs::columns_of("`PRED.parquet`", &["A", "A+B"]), ps::COLUMNS);
        assert_eq!(docs::columns_of("`PRED.attention.parquet`", &[]), at::COLUMNS);
        assert_eq!(docs::columns_of("`singles.parquet`", &[]), se::COLUMNS);
    }
}

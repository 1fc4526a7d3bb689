//! `pseudobulk.parquet` read into condition × gene matrices. A Norman-size screen has
//! millions of (condition, gene) rows; read through [`Table`], each row's two names became
//! owned strings looked up in a hash map, seconds per stage. The ingest writes both name
//! columns as dictionaries, so here each distinct name is looked up once per batch and
//! every row reads its position through its key. A file with other column types (another
//! writer's) is read through [`Table`] as before.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, Float64Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::schema::{conditions as cs, genes as gs, pseudobulk as ps};
use crate::{Error, Result, Table};

/// Rows per batch: every batch carries the whole dictionary (19,000 genes on a large
/// screen) and its names are looked up afresh, so batches of the reader's default 1,024
/// rows would cost more lookups than rows. (1M rows of the four columns: 24 MB.)
const BATCH_ROWS: usize = 1 << 20;

/// Means and variances, row-major condition × gene (NaN where no row gave one).
pub(super) fn read(path: &Path, conditions: &[String], genes: &[String]) -> Result<(Vec<f64>, Vec<f64>)> {
    let bad = |m: String| Error::bad_input(path, m);
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        .map_err(|e| bad(format!("not a readable Parquet file ({e})")))?;
    let mut matrices = Matrices::new(conditions, genes);
    for batch in reader {
        let batch = batch.map_err(|e| bad(format!("corrupt Parquet data ({e})")))?;
        if !matrices.add(&batch, path)? {
            // Columns of other types: the general reader, with its messages naming the
            // column and the type it expected.
            return read_through_table(path, conditions, genes);
        }
    }
    Ok((matrices.mean, matrices.variance))
}

/// A dictionary column of names without nulls, each dictionary value's position among
/// the known names resolved once.
struct Coded<'a> {
    keys: &'a [i32],
    values: &'a StringArray,
    positions: Vec<Option<usize>>,
}

impl<'a> Coded<'a> {
    fn of(batch: &'a RecordBatch, name: &str, known: &HashMap<&str, usize>) -> Option<Coded<'a>> {
        let column = batch.column_by_name(name).filter(|c| c.null_count() == 0)?;
        let coded = column.as_any().downcast_ref::<DictionaryArray<Int32Type>>()?;
        let values = coded.values().as_any().downcast_ref::<StringArray>()?;
        let positions = (0..values.len()).map(|v| known.get(values.value(v)).copied()).collect();
        Some(Coded { keys: coded.keys().values(), values, positions })
    }

    /// Row `i`'s position, or its name when that is not among the known ones. (Arrow
    /// checks that every key is within the dictionary.)
    fn at(&self, i: usize) -> std::result::Result<usize, &'a str> {
        let key = self.keys[i] as usize;
        self.positions[key].ok_or_else(|| self.values.value(key))
    }
}

/// The matrices being filled, and where each name sits in them.
struct Matrices<'a> {
    conditions: HashMap<&'a str, usize>,
    genes: HashMap<&'a str, usize>,
    n_genes: usize,
    rows: usize,
    mean: Vec<f64>,
    variance: Vec<f64>,
}

impl<'a> Matrices<'a> {
    fn new(conditions: &'a [String], genes: &'a [String]) -> Matrices<'a> {
        let index = |names: &'a [String]| names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let cells = conditions.len() * genes.len();
        Matrices {
            conditions: index(conditions),
            genes: index(genes),
            n_genes: genes.len(),
            rows: 0,
            mean: vec![f64::NAN; cells],
            variance: vec![f64::NAN; cells],
        }
    }

    /// Adds a batch's rows; false (nothing added) when its columns are not of the types
    /// the ingest writes.
    fn add(&mut self, batch: &RecordBatch, path: &Path) -> Result<bool> {
        let floats = |name: &str| batch.column_by_name(name)?.as_any().downcast_ref::<Float64Array>();
        let (Some(conditions), Some(genes), Some(mean), Some(variance)) =
            (Coded::of(batch, ps::CONDITION, &self.conditions), Coded::of(batch, ps::GENE, &self.genes), floats(ps::MEAN), floats(ps::VARIANCE))
        else {
            return Ok(false);
        };
        for i in 0..batch.num_rows() {
            let c = conditions.at(i).map_err(|name| unknown(path, self.rows + i, "condition", name, cs::FILE))?;
            let g = genes.at(i).map_err(|name| unknown(path, self.rows + i, "gene", name, gs::FILE))?;
            let value = |a: &Float64Array| if a.is_null(i) { f64::NAN } else { a.value(i) };
            self.mean[c * self.n_genes + g] = value(mean);
            self.variance[c * self.n_genes + g] = value(variance);
        }
        self.rows += batch.num_rows();
        Ok(true)
    }
}

/// A row naming a condition or gene its ingest folder does not list.
fn unknown(path: &Path, row: usize, what: &str, name: &str, listing: &str) -> Error {
    Error::bad_input(path, format!("row {row}: {what} '{name}' is not in {listing}"))
}

/// The same matrices through [`Table`], for a file whose columns are of other types.
fn read_through_table(path: &Path, conditions: &[String], genes: &[String]) -> Result<(Vec<f64>, Vec<f64>)> {
    let table = Table::read_parquet(path)?;
    let (pc, pg) = (table.strings(ps::CONDITION, path)?, table.strings(ps::GENE, path)?);
    let (pm, pv) = (table.floats(ps::MEAN, path)?, table.floats(ps::VARIANCE, path)?);
    let mut matrices = Matrices::new(conditions, genes);
    for i in 0..pc.len() {
        let c = *matrices.conditions.get(pc[i].as_str()).ok_or_else(|| unknown(path, i, "condition", &pc[i], cs::FILE))?;
        let g = *matrices.genes.get(pg[i].as_str()).ok_or_else(|| unknown(path, i, "gene", &pg[i], gs::FILE))?;
        matrices.mean[c * matrices.n_genes + g] = pm[i];
        matrices.variance[c * matrices.n_genes + g] = pv[i];
    }
    Ok((matrices.mean, matrices.variance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Column;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// A pseudobulk table of the given rows (condition, gene, mean); variance = 10 · mean.
    fn table(rows: &[(&str, &str, f64)]) -> Table {
        Table::new()
            .with(ps::CONDITION, Column::Str(rows.iter().map(|r| r.0.to_string()).collect()))
            .with(ps::GENE, Column::Str(rows.iter().map(|r| r.1.to_string()).collect()))
            .with(ps::MEAN, Column::F64(rows.iter().map(|r| r.2).collect()))
            .with(ps::VARIANCE, Column::F64(rows.iter().map(|r| 10.0 * r.2).collect()))
    }

    /// The same table with its name columns as dictionaries, as the ingest writes them.
    fn as_dictionaries(mut t: Table) -> Table {
        for name in [ps::CONDITION, ps::GENE] {
            let Some(Column::Str(rows)) = t.take(name) else { panic!("{name}: strings") };
            let mut values: Vec<String> = rows.clone();
            values.sort();
            values.dedup();
            let keys = rows.iter().map(|r| values.iter().position(|v| v == r).unwrap() as u32).collect();
            t.push(name, Column::Dict { values, keys });
        }
        t
    }

    #[test]
    fn rows_in_any_order_fill_the_same_matrices_as_through_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let (conditions, genes) = (names(&["ctrl", "A", "B"]), names(&["g1", "g2", "g3"]));
        let mut rows: Vec<(&str, &str, f64)> = Vec::new();
        for (c, condition) in ["ctrl", "A", "B"].iter().enumerate() {
            for (g, gene) in ["g1", "g2", "g3"].iter().enumerate() {
                rows.push((condition, gene, (c * 3 + g) as f64));
            }
        }
        // Plain strings (through the table) and dictionaries (as the ingest writes them),
        // in order and shuffled.
        let in_order = dir.path().join("in_order.parquet");
        table(&rows).write_parquet(&in_order).unwrap();
        let coded = dir.path().join("coded.parquet");
        as_dictionaries(table(&rows)).write_parquet(&coded).unwrap();
        let expected: Vec<f64> = (0..9).map(f64::from).collect();
        let (mean, variance) = read(&in_order, &conditions, &genes).unwrap();
        assert_eq!(mean, expected);
        assert_eq!(variance, expected.iter().map(|m| 10.0 * m).collect::<Vec<_>>());
        assert_eq!(read(&coded, &conditions, &genes).unwrap(), (mean.clone(), variance.clone()), "as the ingest writes them");
        rows.swap(0, 8);
        rows.swap(2, 4);
        rows.reverse();
        let shuffled = dir.path().join("shuffled.parquet");
        table(&rows).write_parquet(&shuffled).unwrap();
        assert_eq!(read(&shuffled, &conditions, &genes).unwrap(), (mean.clone(), variance.clone()));
        let coded_shuffled = dir.path().join("coded_shuffled.parquet");
        as_dictionaries(table(&rows)).write_parquet(&coded_shuffled).unwrap();
        assert_eq!(read(&coded_shuffled, &conditions, &genes).unwrap(), (mean.clone(), variance.clone()));
        assert_eq!(read_through_table(&shuffled, &conditions, &genes).unwrap(), (mean, variance));
        // A pair never written stays NaN, for the caller to refuse.
        let missing = dir.path().join("missing.parquet");
        table(&rows[1..]).write_parquet(&missing).unwrap();
        assert_eq!(read(&missing, &conditions, &genes).unwrap().0.iter().filter(|m| m.is_nan()).count(), 1);
    }

    #[test]
    fn an_unknown_name_or_a_column_of_another_type_is_one_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (conditions, genes) = (names(&["ctrl"]), names(&["g1"]));
        for coded in [false, true] {
            let unknown = dir.path().join(format!("unknown_{coded}.parquet"));
            let t = table(&[("ctrl", "g1", 1.0), ("ctrl", "g1", 1.0), ("ctrl", "gX", 2.0)]);
            if coded { as_dictionaries(t) } else { t }.write_parquet(&unknown).unwrap();
            let e = read(&unknown, &conditions, &genes).unwrap_err().to_string();
            assert!(e.contains("unknown_") && e.contains("row 2: gene 'gX' is not in genes.parquet"), "{e}");
        }
        let strings = dir.path().join("strings.parquet");
        let mut t = table(&[("ctrl", "g1", 1.0)]);
        let _ = t.take(ps::MEAN);
        t.push(ps::MEAN, Column::Str(vec!["1.0".into()]));
        t.write_parquet(&strings).unwrap();
        let e = read(&strings, &conditions, &genes).unwrap_err().to_string();
        assert!(e.contains("strings.parquet") && e.contains("'mean'"), "{e}");
    }
}

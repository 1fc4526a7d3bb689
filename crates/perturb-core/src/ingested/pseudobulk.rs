//! `pseudobulk.parquet` read into condition × gene matrices. A Norman-size screen has
//! millions of (condition, gene) rows; read through [`Table`] each row's two names became
//! owned strings looked up in a hash map, seconds per stage. Here the names stay in the
//! Parquet batches: a dictionary column (as the ingest writes them) has each distinct
//! name looked up once per batch, and a plain string column has each row's name matched
//! first against the row before's (a condition's genes come together and in order).

use std::collections::HashMap;
use std::path::Path;

use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, Float64Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::schema::{conditions as cs, genes as gs, pseudobulk as ps};
use crate::{Error, Result, Table};

/// Means and variances, row-major condition × gene (NaN where no row gave one).
pub(super) fn read(path: &Path, conditions: &[String], genes: &[String]) -> Result<(Vec<f64>, Vec<f64>)> {
    let bad = |m: String| Error::bad_input(path, m);
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).and_then(|b| b.build()).map_err(|e| bad(format!("not a readable Parquet file ({e})")))?;
    let mut matrices = Matrices::new(conditions, genes);
    for batch in reader {
        let batch = batch.map_err(|e| bad(format!("corrupt Parquet data ({e})")))?;
        match Columns::of(&batch) {
            Some(columns) => matrices.add(&columns, path)?,
            // Columns of other types (another writer's file): the general reader, with its
            // messages naming the column and the type it expected.
            None => return read_through_table(path, conditions, genes),
        }
    }
    Ok((matrices.mean, matrices.variance))
}

/// One batch's columns, when they have the types the ingest writes (or plain strings).
struct Columns<'a> {
    condition: Names<'a>,
    gene: Names<'a>,
    mean: &'a Float64Array,
    variance: &'a Float64Array,
}

/// A column of names without nulls.
enum Names<'a> {
    Plain(&'a StringArray),
    /// Each row's position in `values`.
    Coded {
        keys: &'a [i32],
        values: &'a StringArray,
    },
}

impl<'a> Columns<'a> {
    fn of(batch: &'a RecordBatch) -> Option<Columns<'a>> {
        let column = |name: &str| batch.column_by_name(name).filter(|c| c.null_count() == 0).map(|c| c.as_any());
        let names = |name| {
            let any = column(name)?;
            if let Some(plain) = any.downcast_ref::<StringArray>() {
                return Some(Names::Plain(plain));
            }
            let coded = any.downcast_ref::<DictionaryArray<Int32Type>>()?;
            Some(Names::Coded { keys: coded.keys().values(), values: coded.values().as_any().downcast_ref::<StringArray>()? })
        };
        let floats = |name: &str| batch.column_by_name(name)?.as_any().downcast_ref::<Float64Array>();
        Some(Columns { condition: names(ps::CONDITION)?, gene: names(ps::GENE)?, mean: floats(ps::MEAN)?, variance: floats(ps::VARIANCE)? })
    }

    fn len(&self) -> usize {
        self.mean.len()
    }
}

impl Names<'_> {
    /// Each row's position among `lookup`'s names (None for a name not there), and the
    /// row's name for a message.
    fn positions(&self, lookup: &mut Lookup) -> Positions<'_> {
        match self {
            Names::Plain(names) => Positions { rows: (0..names.len()).map(|i| lookup.find(names.value(i))).collect(), keys: None, names },
            Names::Coded { keys, values } => {
                Positions { rows: (0..values.len()).map(|v| lookup.find(values.value(v))).collect(), keys: Some(keys), names: values }
            }
        }
    }
}

/// [`Names::positions`]: per row (plain) or per dictionary value (coded).
struct Positions<'a> {
    rows: Vec<Option<usize>>,
    keys: Option<&'a [i32]>,
    names: &'a StringArray,
}

impl Positions<'_> {
    /// Row `i`'s position, or its name when that is not among the known ones.
    fn of(&self, i: usize) -> std::result::Result<usize, &str> {
        let at = self.keys.map_or(Some(i), |keys| usize::try_from(keys[i]).ok());
        at.and_then(|at| self.rows.get(at).copied().flatten()).ok_or_else(|| at.filter(|&at| at < self.names.len()).map_or("?", |at| self.names.value(at)))
    }
}

/// The matrices being filled, and where each name sits in them.
struct Matrices<'a> {
    conditions: Lookup<'a>,
    genes: Lookup<'a>,
    n_genes: usize,
    rows: usize,
    mean: Vec<f64>,
    variance: Vec<f64>,
}

impl<'a> Matrices<'a> {
    fn new(conditions: &'a [String], genes: &'a [String]) -> Matrices<'a> {
        let cells = conditions.len() * genes.len();
        Matrices {
            conditions: Lookup::new(conditions),
            genes: Lookup::new(genes),
            n_genes: genes.len(),
            rows: 0,
            mean: vec![f64::NAN; cells],
            variance: vec![f64::NAN; cells],
        }
    }

    fn add(&mut self, columns: &Columns, path: &Path) -> Result<()> {
        let (conditions, genes) = (columns.condition.positions(&mut self.conditions), columns.gene.positions(&mut self.genes));
        for i in 0..columns.len() {
            let (c, g) = match (conditions.of(i), genes.of(i)) {
                (Ok(c), Ok(g)) => (c, g),
                (Err(name), _) => return Err(unknown(path, self.rows + i, "condition", name, cs::FILE)),
                (_, Err(name)) => return Err(unknown(path, self.rows + i, "gene", name, gs::FILE)),
            };
            let value = |a: &Float64Array| if a.is_null(i) { f64::NAN } else { a.value(i) };
            self.mean[c * self.n_genes + g] = value(columns.mean);
            self.variance[c * self.n_genes + g] = value(columns.variance);
        }
        self.rows += columns.len();
        Ok(())
    }
}

/// A row naming a condition or gene its ingest folder does not list.
fn unknown(path: &Path, row: usize, what: &str, name: &str, listing: &str) -> Error {
    Error::bad_input(path, format!("row {row}: {what} '{name}' is not in {listing}"))
}

/// A name's position, tried first where the previous row's order predicts it.
struct Lookup<'a> {
    names: &'a [String],
    index: HashMap<&'a str, usize>,
    last: usize,
}

impl<'a> Lookup<'a> {
    fn new(names: &'a [String]) -> Lookup<'a> {
        Lookup { names, index: names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect(), last: 0 }
    }

    /// The position of `name`: the last one's, the one after it, the first, or any.
    fn find(&mut self, name: &str) -> Option<usize> {
        let guessed = [self.last, self.last + 1, 0].into_iter().find(|&i| self.names.get(i).is_some_and(|n| n == name));
        let found = guessed.or_else(|| self.index.get(name).copied())?;
        self.last = found;
        Some(found)
    }
}

/// The same matrices through [`Table`], for a file whose columns are of other types.
fn read_through_table(path: &Path, conditions: &[String], genes: &[String]) -> Result<(Vec<f64>, Vec<f64>)> {
    let table = Table::read_parquet(path)?;
    let (pc, pg) = (table.strings(ps::CONDITION, path)?, table.strings(ps::GENE, path)?);
    let (pm, pv) = (table.floats(ps::MEAN, path)?, table.floats(ps::VARIANCE, path)?);
    let mut matrices = Matrices::new(conditions, genes);
    for i in 0..pc.len() {
        let c = matrices.conditions.find(&pc[i]).ok_or_else(|| unknown(path, i, "condition", &pc[i], cs::FILE))?;
        let g = matrices.genes.find(&pg[i]).ok_or_else(|| unknown(path, i, "gene", &pg[i], gs::FILE))?;
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
        // The ingest's order, then one the guesses miss on most rows.
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

//! A small column-oriented table, read from and written to Parquet.
//!
//! Stages exchange plain Parquet files that pandas, polars and R open without glue. This
//! type keeps the stages free of arrow plumbing: each column is one typed vector, floats
//! are stored as `f64` with NaN for "not defined" (e.g. the variance of a one-cell
//! condition), and every write goes to a temporary file in the destination folder that
//! is renamed over the destination only once it is complete.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    types::Int32Type, Array, ArrayRef, BooleanArray, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array, LargeStringArray, ListArray,
    RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

/// One column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Str(Vec<String>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    /// A list of strings per row (e.g. the genes of a condition).
    StrList(Vec<Vec<String>>),
    /// Strings stored once and referenced per row: the long-form pseudobulk repeats each
    /// condition and gene name millions of times. Written as an Arrow dictionary column
    /// (pandas reads a categorical); read back as [`Column::Str`].
    Dict {
        values: Vec<String>,
        keys: Vec<u32>,
    },
}

impl Column {
    /// A string column holding one field of every row (how a typed row is written).
    pub fn of_strings<R>(rows: &[R], field: impl Fn(&R) -> &str) -> Column {
        Column::Str(rows.iter().map(|r| field(r).to_string()).collect())
    }

    /// A float column holding one field of every row.
    pub fn of_floats<R>(rows: &[R], field: impl Fn(&R) -> f64) -> Column {
        Column::F64(rows.iter().map(field).collect())
    }

    /// An integer column holding one field of every row.
    pub fn of_ints<R>(rows: &[R], field: impl Fn(&R) -> i64) -> Column {
        Column::I64(rows.iter().map(field).collect())
    }

    /// A boolean column holding one field of every row.
    pub fn of_bools<R>(rows: &[R], field: impl Fn(&R) -> bool) -> Column {
        Column::Bool(rows.iter().map(field).collect())
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Str(v) => v.len(),
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::StrList(v) => v.len(),
            Column::Dict { keys, .. } => keys.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Column::Str(_) => "string",
            Column::F64(_) => "float64",
            Column::I64(_) => "int64",
            Column::Bool(_) => "bool",
            Column::StrList(_) => "list<string>",
            Column::Dict { .. } => "dictionary<string>",
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Column::Str(_) => DataType::Utf8,
            Column::F64(_) => DataType::Float64,
            Column::I64(_) => DataType::Int64,
            Column::Bool(_) => DataType::Boolean,
            Column::StrList(_) => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            Column::Dict { .. } => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        }
    }

    fn into_arrow(self) -> ArrayRef {
        match self {
            Column::Str(v) => Arc::new(StringArray::from_iter_values(v.iter())),
            Column::F64(v) => Arc::new(Float64Array::from(v)),
            Column::I64(v) => Arc::new(Int64Array::from(v)),
            Column::Bool(v) => Arc::new(BooleanArray::from(v)),
            Column::StrList(v) => {
                let mut builder = ListBuilder::new(StringBuilder::new());
                for row in v {
                    for s in row {
                        builder.values().append_value(s);
                    }
                    builder.append(true);
                }
                Arc::new(builder.finish())
            }
            Column::Dict { values, keys } => {
                let keys = Int32Array::from_iter_values(keys.iter().map(|&k| k as i32));
                let values: ArrayRef = Arc::new(StringArray::from_iter_values(values.iter()));
                Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).expect("dictionary keys are in range"))
            }
        }
    }

    /// Converts an arrow array to a column. Narrower numeric types widen; nulls in float
    /// columns read as NaN; nulls elsewhere are an error because no artifact writes them.
    fn from_arrow(array: &dyn Array) -> std::result::Result<Column, String> {
        let any = array.as_any();
        let no_nulls = |what: &str| -> std::result::Result<(), String> {
            if array.null_count() > 0 {
                Err(format!("{what} column has {} null values", array.null_count()))
            } else {
                Ok(())
            }
        };
        if let Some(a) = any.downcast_ref::<StringArray>() {
            no_nulls("string")?;
            return Ok(Column::Str(a.iter().map(|s| s.unwrap_or_default().to_string()).collect()));
        }
        if let Some(a) = any.downcast_ref::<DictionaryArray<Int32Type>>() {
            no_nulls("string")?;
            let values = Column::from_arrow(a.values().as_ref())?;
            let Column::Str(values) = values else {
                return Err(format!("dictionary of {} values, expected strings", values.type_name()));
            };
            let mut out = Vec::with_capacity(a.len());
            for k in a.keys().values() {
                out.push(values.get(*k as usize).ok_or("dictionary key out of range")?.clone());
            }
            return Ok(Column::Str(out));
        }
        if let Some(a) = any.downcast_ref::<LargeStringArray>() {
            no_nulls("string")?;
            return Ok(Column::Str(a.iter().map(|s| s.unwrap_or_default().to_string()).collect()));
        }
        if let Some(a) = any.downcast_ref::<Float64Array>() {
            return Ok(Column::F64(a.iter().map(|x| x.unwrap_or(f64::NAN)).collect()));
        }
        if let Some(a) = any.downcast_ref::<Float32Array>() {
            return Ok(Column::F64(a.iter().map(|x| x.map_or(f64::NAN, f64::from)).collect()));
        }
        if let Some(a) = any.downcast_ref::<Int64Array>() {
            no_nulls("integer")?;
            return Ok(Column::I64(a.values().to_vec()));
        }
        if let Some(a) = any.downcast_ref::<Int32Array>() {
            no_nulls("integer")?;
            return Ok(Column::I64(a.values().iter().map(|&x| i64::from(x)).collect()));
        }
        if let Some(a) = any.downcast_ref::<UInt32Array>() {
            no_nulls("integer")?;
            return Ok(Column::I64(a.values().iter().map(|&x| i64::from(x)).collect()));
        }
        if let Some(a) = any.downcast_ref::<UInt64Array>() {
            no_nulls("integer")?;
            let mut out = Vec::with_capacity(a.len());
            for &x in a.values() {
                out.push(i64::try_from(x).map_err(|_| format!("integer {x} does not fit in int64"))?);
            }
            return Ok(Column::I64(out));
        }
        if let Some(a) = any.downcast_ref::<BooleanArray>() {
            no_nulls("boolean")?;
            return Ok(Column::Bool(a.iter().map(|b| b.unwrap_or(false)).collect()));
        }
        if let Some(a) = any.downcast_ref::<ListArray>() {
            no_nulls("list")?;
            let mut rows = Vec::with_capacity(a.len());
            for i in 0..a.len() {
                let inner = a.value(i);
                match Column::from_arrow(inner.as_ref())? {
                    Column::Str(v) => rows.push(v),
                    other => return Err(format!("list of {} is not supported", other.type_name())),
                }
            }
            return Ok(Column::StrList(rows));
        }
        Err(format!("unsupported column type {}", array.data_type()))
    }

    /// Appends the rows of `other` (same variant) to this column.
    fn extend(&mut self, other: Column) -> std::result::Result<(), String> {
        match (self, other) {
            (Column::Str(a), Column::Str(b)) => a.extend(b),
            (Column::F64(a), Column::F64(b)) => a.extend(b),
            (Column::I64(a), Column::I64(b)) => a.extend(b),
            (Column::Bool(a), Column::Bool(b)) => a.extend(b),
            (Column::StrList(a), Column::StrList(b)) => a.extend(b),
            (a, b) => return Err(format!("column changes type from {} to {}", a.type_name(), b.type_name())),
        }
        Ok(())
    }
}

/// Named columns of equal length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    columns: Vec<(String, Column)>,
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    /// Adds a column; panics if its length differs from the others' or the name repeats,
    /// which is always a bug in the calling stage, never bad user input.
    pub fn with(mut self, name: &str, column: Column) -> Table {
        self.push(name, column);
        self
    }

    pub fn push(&mut self, name: &str, column: Column) {
        assert!(self.column(name).is_none(), "column '{name}' added twice");
        if let Some((first, c)) = self.columns.first() {
            assert_eq!(c.len(), column.len(), "column '{name}' has a different length than '{first}'");
        }
        self.columns.push((name.to_string(), column));
    }

    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// Removes and returns a column.
    pub fn take(&mut self, name: &str) -> Option<Column> {
        let i = self.columns.iter().position(|(n, _)| n == name)?;
        Some(self.columns.remove(i).1)
    }

    /// Moves the string column `name` out (no copy of its strings), or an error naming
    /// `path` as [`Table::strings`] does.
    pub fn take_strings(&mut self, name: &str, path: &Path) -> Result<Vec<String>> {
        self.strings(name, path)?;
        match self.take(name) {
            Some(Column::Str(v)) => Ok(v),
            _ => unreachable!("checked to be a string column"),
        }
    }

    /// Moves the float column `name` out, or an error naming `path` as [`Table::floats`].
    pub fn take_floats(&mut self, name: &str, path: &Path) -> Result<Vec<f64>> {
        self.floats(name, path)?;
        match self.take(name) {
            Some(Column::F64(v)) => Ok(v),
            _ => unreachable!("checked to be a float column"),
        }
    }

    /// The column `name` as `pick` reads it, or an error naming `path` (the file it came
    /// from) and the `expected` type.
    fn typed<'t, T>(&'t self, name: &str, path: &Path, expected: &str, pick: fn(&'t Column) -> Option<&'t [T]>) -> Result<&'t [T]> {
        let column = self.require(name, path)?;
        pick(column).ok_or_else(|| wrong_type(path, name, expected, column))
    }

    /// The string column `name`, or an error naming `path` (the file it came from).
    pub fn strings(&self, name: &str, path: &Path) -> Result<&[String]> {
        self.typed(name, path, "string", |c| if let Column::Str(v) = c { Some(v.as_slice()) } else { None })
    }

    pub fn floats(&self, name: &str, path: &Path) -> Result<&[f64]> {
        self.typed(name, path, "float64", |c| if let Column::F64(v) = c { Some(v.as_slice()) } else { None })
    }

    pub fn ints(&self, name: &str, path: &Path) -> Result<&[i64]> {
        self.typed(name, path, "int64", |c| if let Column::I64(v) = c { Some(v.as_slice()) } else { None })
    }

    pub fn bools(&self, name: &str, path: &Path) -> Result<&[bool]> {
        self.typed(name, path, "bool", |c| if let Column::Bool(v) = c { Some(v.as_slice()) } else { None })
    }

    pub fn string_lists(&self, name: &str, path: &Path) -> Result<&[Vec<String>]> {
        match self.require(name, path)? {
            Column::StrList(v) => Ok(v),
            other => Err(wrong_type(path, name, "list<string>", other)),
        }
    }

    fn require(&self, name: &str, path: &Path) -> Result<&Column> {
        self.column(name).ok_or_else(|| Error::bad_input(path, format!("missing column '{name}' (columns present: {})", self.column_names().join(", "))))
    }

    /// The table as one record batch; its vectors move into the arrays, not copied (the
    /// ingest's pseudobulk is 72 MB of floats).
    fn into_record_batch(self) -> RecordBatch {
        let fields: Vec<Field> = self.columns.iter().map(|(name, c)| Field::new(name, c.data_type(), false)).collect();
        let arrays: Vec<ArrayRef> = self.columns.into_iter().map(|(_, c)| c.into_arrow()).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("columns were checked to have equal lengths")
    }

    /// Writes the table as Parquet (snappy), atomically: a reader sees the old file or
    /// the complete new one, never a partial one.
    pub fn write_parquet(self, path: &Path) -> Result<()> {
        let batch = self.into_record_batch();
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).set_created_by(format!("perturb {}", crate::TOOL_VERSION)).build();
        write_atomically(path, |file| {
            let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(|e| std::io::Error::other(e.to_string()))?;
            writer.write(&batch).map_err(|e| std::io::Error::other(e.to_string()))?;
            writer.close().map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(())
        })
    }

    /// Reads a Parquet file written by this crate or by any other tool, provided its
    /// columns have types a [`Column`] can hold.
    pub fn read_parquet(path: &Path) -> Result<Table> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let bad = |m: String| Error::bad_input(path, m);
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| bad(format!("not a readable Parquet file ({e})")))?
            .build()
            .map_err(|e| bad(format!("not a readable Parquet file ({e})")))?;
        let schema = arrow_array::RecordBatchReader::schema(&reader);
        let mut table: Option<Table> = None;
        for batch in reader {
            let batch = batch.map_err(|e| bad(format!("corrupt Parquet data ({e})")))?;
            let schema = batch.schema();
            let mut columns = Vec::with_capacity(batch.num_columns());
            for (field, array) in schema.fields().iter().zip(batch.columns()) {
                let column = Column::from_arrow(array.as_ref()).map_err(|m| bad(format!("column '{}': {m}", field.name())))?;
                columns.push((field.name().clone(), column));
            }
            match &mut table {
                None => table = Some(Table { columns }),
                Some(t) => {
                    for ((name, into), (_, from)) in t.columns.iter_mut().zip(columns) {
                        into.extend(from).map_err(|m| bad(format!("column '{name}': {m}")))?;
                    }
                }
            }
        }
        match table {
            Some(t) => Ok(t),
            // No row at all: the columns still exist, empty, with their types.
            None => {
                let mut columns = Vec::with_capacity(schema.fields().len());
                for field in schema.fields() {
                    let empty = arrow_array::new_empty_array(field.data_type());
                    let column = Column::from_arrow(empty.as_ref()).map_err(|m| bad(format!("column '{}': {m}", field.name())))?;
                    columns.push((field.name().clone(), column));
                }
                Ok(Table { columns })
            }
        }
    }
}

fn wrong_type(path: &Path, name: &str, expected: &str, found: &Column) -> Error {
    Error::bad_input(path, format!("column '{name}' should be {expected} but is {}", found.type_name()))
}

/// Writes `path` through a temporary file in the same folder, renamed into place only
/// after `write` succeeded and the data reached the disk. On failure the temporary file
/// is removed and `path` is untouched.
pub fn write_atomically<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut File) -> std::io::Result<()>,
{
    let dir = crate::paths::folder_of(path);
    let prefix = format!(".{}.", path.file_name().and_then(|n| n.to_str()).unwrap_or("artifact"));
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Temporary files are private (0600) by default; an artifact is an ordinary file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    write(tmp.as_file_mut()).map_err(|e| Error::io(path, e))?;
    tmp.as_file_mut().flush().map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Writes bytes atomically (see [`write_atomically`]).
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |f| f.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table::new()
            .with("condition", Column::Str(vec!["ctrl".into(), "A+B".into()]))
            .with("mean", Column::F64(vec![1.5, f64::NAN]))
            .with("n_cells", Column::I64(vec![10, 3]))
            .with("highly_variable", Column::Bool(vec![true, false]))
            .with("genes", Column::StrList(vec![vec![], vec!["A".into(), "B".into()]]))
    }

    #[test]
    fn parquet_round_trip_keeps_every_type_and_nan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        sample().write_parquet(&path).unwrap();
        let back = Table::read_parquet(&path).unwrap();
        assert_eq!(back.column_names(), ["condition", "mean", "n_cells", "highly_variable", "genes"]);
        assert_eq!(back.strings("condition", &path).unwrap(), ["ctrl", "A+B"]);
        let mean = back.floats("mean", &path).unwrap();
        assert_eq!(mean[0], 1.5);
        assert!(mean[1].is_nan());
        assert_eq!(back.ints("n_cells", &path).unwrap(), [10, 3]);
        assert_eq!(back.string_lists("genes", &path).unwrap()[1], ["A", "B"]);
        // Nothing but the artifact is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_empty_table_keeps_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.parquet");
        Table::new().with("a", Column::Str(vec![])).with("b", Column::F64(vec![])).write_parquet(&path).unwrap();
        let back = Table::read_parquet(&path).unwrap();
        assert_eq!(back.column_names(), ["a", "b"]);
        assert_eq!(back.n_rows(), 0);
    }

    #[test]
    fn dictionary_columns_read_back_as_strings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.parquet");
        let t = Table::new().with("gene", Column::Dict { values: vec!["A".into(), "B".into()], keys: vec![1, 0, 1] });
        t.write_parquet(&path).unwrap();
        assert_eq!(Table::read_parquet(&path).unwrap().strings("gene", &path).unwrap(), ["B", "A", "B"]);
    }

    #[test]
    fn missing_column_error_names_file_and_lists_columns() {
        let path = Path::new("x/genes.parquet");
        let err = sample().floats("control_mean", path).unwrap_err().to_string();
        assert!(err.starts_with("x/genes.parquet: missing column 'control_mean'"), "{err}");
        assert!(err.contains("condition, mean"), "{err}");
    }

    #[test]
    fn reading_garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::testing::written(dir.path(), "bad.parquet", b"not parquet at all");
        let err = Table::read_parquet(&path).unwrap_err().to_string();
        assert!(err.contains("not a readable Parquet file"), "{err}");
    }

    #[test]
    fn failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::testing::written(dir.path(), "a.txt", b"old");
        let res = write_atomically(&path, |_| Err(std::io::Error::other("disk full")));
        assert!(res.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

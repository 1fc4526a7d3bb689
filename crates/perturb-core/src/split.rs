//! The split file, the contract between the evaluator that writes it and the trainer
//! that reads it: one typed row per assigned condition (columns in [`crate::schema::split`]).

use std::path::Path;

use crate::schema::split as ss;
use crate::{Column, Error, Result, Table};

/// One condition's place in a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRow {
    pub task: String,
    pub seed: i64,
    pub condition: String,
    /// `train`, `val` or `test`.
    pub set: String,
    /// For a double: how many of its two genes were seen as singles in train; −1 otherwise.
    pub combo_seen: i64,
}

/// Writes `rows` to `path` atomically (a temporary file renamed into place).
pub fn write(rows: &[SplitRow], path: &Path) -> Result<()> {
    Table::new()
        .with(ss::TASK, Column::of_strings(rows, |r| &r.task))
        .with(ss::SEED, Column::of_ints(rows, |r| r.seed))
        .with(ss::CONDITION, Column::of_strings(rows, |r| &r.condition))
        .with(ss::SET, Column::of_strings(rows, |r| &r.set))
        .with(ss::COMBO_SEEN, Column::of_ints(rows, |r| r.combo_seen))
        .write_parquet(path)
}

/// The rows of a split file; a missing file or column is an error naming the file.
pub fn read(path: &Path) -> Result<Vec<SplitRow>> {
    if !path.is_file() {
        return Err(Error::bad_input(path, "missing: --split must be a split file written by `perturb eval`"));
    }
    let t = Table::read_parquet(path)?;
    let (task, seed, condition) = (t.strings(ss::TASK, path)?, t.ints(ss::SEED, path)?, t.strings(ss::CONDITION, path)?);
    let (set, combo_seen) = (t.strings(ss::SET, path)?, t.ints(ss::COMBO_SEEN, path)?);
    Ok((0..condition.len())
        .map(|i| SplitRow { task: task[i].clone(), seed: seed[i], condition: condition[i].clone(), set: set[i].clone(), combo_seen: combo_seen[i] })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(condition: &str, set: &str, combo_seen: i64) -> SplitRow {
        SplitRow { task: "double".into(), seed: 3, condition: condition.into(), set: set.into(), combo_seen }
    }

    #[test]
    fn rows_survive_a_write_and_a_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ss::file("double", 3));
        let rows = vec![row("A", "train", -1), row("A+B", "test", 2), row("C", "val", -1)];
        write(&rows, &path).unwrap();
        assert_eq!(read(&path).unwrap(), rows);
    }

    #[test]
    fn a_file_without_the_set_column_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("split.parquet");
        Table::new().with(ss::CONDITION, Column::Str(vec!["A".into()])).write_parquet(&path).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("split.parquet"), "{e}");
        assert!(read(&dir.path().join("absent.parquet")).unwrap_err().to_string().contains("--split"));
    }

    /// docs/artifacts.md's row for the split file names exactly these columns, in order.
    #[test]
    fn the_documented_columns_are_the_schema_columns() {
        assert_eq!(crate::schema::docs::columns_of("`split_<task>_seed<s>.parquet`", &["train", "val", "test"]), ss::COLUMNS);
    }
}

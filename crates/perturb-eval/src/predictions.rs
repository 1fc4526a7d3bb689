//! A model's prediction file (long form: perturbation, gene, lfc) read into profiles, with
//! every row checked: a known gene, a finite lfc, each (perturbation, gene) pair once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use perturb_core::{Error, Result};

use crate::data::Screen;
use crate::split::{Set, Split};

const NO_ROWS: &str = "has no rows; a prediction file needs one row per (perturbation, gene)";

/// A model's predictions (perturbation, gene, lfc) as profiles (control + lfc) for every
/// test condition of `split`.
///
/// Refused, naming the file: a file without rows or without one of the three columns; a
/// row (numbered from 1, in file order) whose perturbation label does not parse, whose
/// gene the data does not have, whose lfc is NaN, infinite or null, or whose
/// (perturbation, gene) pair an earlier row already gave (labels compared canonically, so
/// `B+A` repeats `A+B`); a test perturbation without a prediction, or without one for
/// some gene. Rows for perturbations outside the split's test set (training conditions,
/// or conditions the screen does not have) are checked the same way but otherwise
/// ignored: one prediction file may cover more conditions than one split tests.
pub fn read_predictions(screen: &Screen, split: &Split, path: &Path) -> Result<BTreeMap<usize, Vec<f64>>> {
    let rows = match perturb_core::profiles::read_predictions(path) {
        Ok(rows) => rows,
        // An empty frame written by pandas or polars has untyped (Null) columns, which no
        // table column can hold; say what is actually wrong with it.
        Err(_) if parquet_row_count(path) == Some(0) => return Err(Error::bad_input(path, NO_ROWS)),
        Err(e) => return Err(e),
    };
    if rows.is_empty() {
        return Err(Error::bad_input(path, NO_ROWS));
    }
    let gi: HashMap<&str, usize> = screen.genes.iter().enumerate().map(|(i, g)| (g.as_str(), i)).collect();
    // Per canonical condition: the lfc of each gene and the row that gave it.
    let mut by_condition: HashMap<String, (Vec<f64>, Vec<usize>)> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let row = i + 1;
        let canonical = Screen::canonical(&r.perturbation).map_err(|m| Error::bad_input(path, format!("row {row}: {m}")))?;
        let Some(&gene) = gi.get(r.gene.as_str()) else {
            return Err(Error::bad_input(
                path,
                format!("row {row}: gene '{}' is not among the evaluated data's genes; predictions and truth must cover the same genes", r.gene),
            ));
        };
        if !r.lfc.is_finite() {
            return Err(Error::bad_input(
                path,
                format!(
                    "row {row} (perturbation '{}', gene '{}'): lfc is {}; every lfc must be a finite number (not NaN, null or infinite)",
                    r.perturbation, r.gene, r.lfc
                ),
            ));
        }
        let (lfc, source) = by_condition.entry(canonical).or_insert_with(|| (vec![f64::NAN; screen.n_genes()], vec![0; screen.n_genes()]));
        if source[gene] != 0 {
            let first = source[gene];
            let earlier = &rows[first - 1].perturbation;
            let same = if *earlier == r.perturbation { String::new() } else { format!(" (perturbation '{earlier}', the same condition)") };
            return Err(Error::bad_input(
                path,
                format!(
                    "row {row} (perturbation '{}', gene '{}') repeats row {first}{same}; each (perturbation, gene) pair must appear once",
                    r.perturbation, r.gene
                ),
            ));
        }
        lfc[gene] = r.lfc;
        source[gene] = row;
    }
    let control = screen.control();
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for i in split.indices(Set::Test) {
        match by_condition.get(&screen.conditions[i]) {
            Some((lfc, _)) => {
                if let Some(g) = lfc.iter().position(|x| x.is_nan()) {
                    let n = lfc.iter().filter(|x| x.is_nan()).count();
                    return Err(Error::bad_input(
                        path,
                        format!(
                            "no prediction for gene '{}' of '{}' ({n} of {} genes missing); predictions and truth must cover the same genes",
                            screen.genes[g],
                            screen.conditions[i],
                            screen.n_genes()
                        ),
                    ));
                }
                out.insert(i, control.iter().zip(lfc).map(|(c, l)| c + l).collect());
            }
            None => missing.push(screen.conditions[i].clone()),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(10).map(String::as_str).collect();
        return Err(Error::bad_input(path, format!("{} test perturbation(s) have no prediction: {}", missing.len(), shown.join(", "))));
    }
    Ok(out)
}

/// The number of rows a Parquet file's footer declares, read without decoding any column
/// (so also for columns of a type no table column holds); None when the footer cannot be
/// read. Only the footer's Thrift compact encoding up to `FileMetaData.num_rows` (field 3)
/// is parsed.
pub fn parquet_row_count(path: &Path) -> Option<i64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let size = file.seek(SeekFrom::End(0)).ok()?;
    if size < 12 {
        return None;
    }
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::End(-8)).ok()?;
    file.read_exact(&mut tail).ok()?;
    if &tail[4..] != b"PAR1" {
        return None;
    }
    let len = u32::from_le_bytes(tail[..4].try_into().ok()?) as u64;
    if len + 12 > size {
        return None;
    }
    let mut footer = vec![0u8; len as usize];
    file.seek(SeekFrom::End(-8 - len as i64)).ok()?;
    file.read_exact(&mut footer).ok()?;
    let mut r = Compact { bytes: &footer, at: 0 };
    let mut last = 0i16;
    loop {
        let (id, ty) = r.field_header(&mut last)?;
        if ty == 0 {
            return None;
        }
        if id == 3 && ty == 6 {
            return r.zigzag();
        }
        r.skip(ty, false, 0)?;
    }
}

/// A reader of the Thrift compact protocol, just enough to skip to one field.
struct Compact<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Compact<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn advance(&mut self, n: u64) -> Option<()> {
        let end = self.at.checked_add(usize::try_from(n).ok()?)?;
        (end <= self.bytes.len()).then(|| self.at = end)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn zigzag(&mut self) -> Option<i64> {
        let n = self.varint()?;
        Some((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    /// (field id, compact type); type 0 is the end of the struct.
    fn field_header(&mut self, last: &mut i16) -> Option<(i16, u8)> {
        let b = self.byte()?;
        let (delta, ty) = (b >> 4, b & 0x0f);
        if ty == 0 {
            return Some((0, 0));
        }
        let id = if delta == 0 { i16::try_from(self.zigzag()?).ok()? } else { last.checked_add(i16::from(delta))? };
        *last = id;
        Some((id, ty))
    }

    fn skip(&mut self, ty: u8, in_list: bool, depth: usize) -> Option<()> {
        if depth > 32 {
            return None;
        }
        match ty {
            // Booleans: the value is the type in a field header, one byte in a list.
            1 | 2 => {
                if in_list {
                    self.byte()?;
                }
            }
            3 => {
                self.byte()?;
            }
            4..=6 => {
                self.varint()?;
            }
            7 => self.advance(8)?,
            8 => {
                let n = self.varint()?;
                self.advance(n)?;
            }
            9 | 10 => {
                let h = self.byte()?;
                let n = if h >> 4 == 15 { self.varint()? } else { u64::from(h >> 4) };
                for _ in 0..n {
                    self.skip(h & 0x0f, true, depth + 1)?;
                }
            }
            11 => {
                let n = self.varint()?;
                if n > 0 {
                    let kv = self.byte()?;
                    for _ in 0..n {
                        self.skip(kv >> 4, true, depth + 1)?;
                        self.skip(kv & 0x0f, true, depth + 1)?;
                    }
                }
            }
            12 => {
                let mut last = 0i16;
                loop {
                    let (_, t) = self.field_header(&mut last)?;
                    if t == 0 {
                        break;
                    }
                    self.skip(t, false, depth + 1)?;
                }
            }
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perturb_core::schema::predictions as ps;
    use perturb_core::{Column, Table};

    /// Control, singles A and B, doubles A+B and A+C (test), genes G0..G2.
    fn screen_and_split() -> (Screen, Split) {
        let genes: Vec<String> = (0..3).map(|g| format!("G{g}")).collect();
        let conditions: Vec<String> = ["ctrl", "A", "B", "A+B", "A+C"].iter().map(|s| s.to_string()).collect();
        let targets = vec![vec![], vec!["A".into()], vec!["B".into()], vec!["A".into(), "B".into()], vec!["A".into(), "C".into()]];
        let mean: Vec<f64> = (0..15).map(|i| i as f64 / 10.0).collect();
        let screen = Screen { genes, conditions, targets, n_cells: vec![50; 5], variance: vec![0.1; 15], mean };
        let set = vec![Some(Set::Train), Some(Set::Train), Some(Set::Train), Some(Set::Test), Some(Set::Test)];
        let split = Split { task: crate::Task::Double, seed: 1, set, combo_seen: vec![-1, -1, -1, 2, 1] };
        (screen, split)
    }

    /// Full predictions for both test doubles, lfc = 0.5 everywhere.
    fn full() -> Vec<(String, String, f64)> {
        ["A+B", "A+C"].iter().flat_map(|p| (0..3).map(move |g| (p.to_string(), format!("G{g}"), 0.5))).collect()
    }

    fn write(dir: &Path, rows: &[(String, String, f64)]) -> std::path::PathBuf {
        let path = dir.join("pred.parquet");
        Table::new()
            .with(ps::PERTURBATION, Column::Str(rows.iter().map(|r| r.0.clone()).collect()))
            .with(ps::GENE, Column::Str(rows.iter().map(|r| r.1.clone()).collect()))
            .with(ps::LFC, Column::F64(rows.iter().map(|r| r.2).collect()))
            .write_parquet(&path)
            .unwrap();
        path
    }

    fn error(rows: &[(String, String, f64)]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let (screen, split) = screen_and_split();
        let path = write(dir.path(), rows);
        let e = read_predictions(&screen, &split, &path).unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()) && !e.contains('\n'), "{e}");
        e
    }

    #[test]
    fn complete_predictions_are_read_and_extra_perturbations_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (screen, split) = screen_and_split();
        let mut rows = full();
        // A training single and a condition the screen does not have: checked, ignored.
        rows.extend((0..3).map(|g| ("A".to_string(), format!("G{g}"), 9.0)));
        rows.push(("ZZZ".to_string(), "G0".to_string(), 9.0));
        let p = read_predictions(&screen, &split, &write(dir.path(), &rows)).unwrap();
        assert_eq!(p.keys().copied().collect::<Vec<_>>(), vec![3, 4]);
        assert!((p[&3][1] - (screen.control()[1] + 0.5)).abs() < 1e-12);
    }

    #[test]
    fn a_repeated_pair_is_refused_even_with_the_same_value() {
        let mut rows = full();
        rows.push(rows[1].clone());
        let e = error(&rows);
        assert!(e.contains("row 7 (perturbation 'A+B', gene 'G1') repeats row 2; each (perturbation, gene) pair must appear once"), "{e}");
        // Conflicting values under another label of the same condition: last no longer wins.
        let mut rows = full();
        rows.push(("B+A".to_string(), "G2".to_string(), -3.0));
        let e = error(&rows);
        assert!(e.contains("row 7 (perturbation 'B+A', gene 'G2') repeats row 3 (perturbation 'A+B', the same condition)"), "{e}");
    }

    #[test]
    fn a_non_finite_lfc_is_refused_at_its_row() {
        for (value, shown) in [(f64::INFINITY, "inf"), (f64::NEG_INFINITY, "-inf"), (f64::NAN, "NaN")] {
            let mut rows = full();
            rows[4].2 = value;
            rows[5].2 = f64::NAN;
            let e = error(&rows);
            assert!(e.contains(&format!("row 5 (perturbation 'A+C', gene 'G1'): lfc is {shown};")), "{e}");
            assert!(e.contains("every lfc must be a finite number"), "{e}");
        }
    }

    #[test]
    fn missing_rows_columns_and_genes_are_named() {
        let e = error(&[]);
        assert!(e.ends_with("has no rows; a prediction file needs one row per (perturbation, gene)"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let (screen, split) = screen_and_split();
        let path = dir.path().join("no_lfc.parquet");
        Table::new().with(ps::PERTURBATION, Column::Str(vec!["A+B".into()])).with(ps::GENE, Column::Str(vec!["G0".into()])).write_parquet(&path).unwrap();
        let e = read_predictions(&screen, &split, &path).unwrap_err().to_string();
        assert!(e.contains("no_lfc.parquet: missing column 'lfc'"), "{e}");
        let mut rows = full();
        rows.remove(4);
        let e = error(&rows);
        assert!(e.contains("no prediction for gene 'G1' of 'A+C' (1 of 3 genes missing)"), "{e}");
        let e = error(&full()[..3]);
        assert!(e.contains("1 test perturbation(s) have no prediction: A+C"), "{e}");
        let mut rows = full();
        rows[2].1 = "NOPE".into();
        let e = error(&rows);
        assert!(e.contains("row 3: gene 'NOPE' is not among the evaluated data's genes"), "{e}");
    }

    /// pandas and polars write an empty frame with untyped columns (committed fixtures
    /// made by pyarrow: zero rows of Null columns, and two rows with a Null lfc column).
    #[test]
    fn an_empty_file_with_untyped_columns_says_it_has_no_rows() {
        let (screen, split) = screen_and_split();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let empty = fixtures.join("empty_untyped_predictions.parquet");
        assert_eq!(parquet_row_count(&empty), Some(0));
        let e = read_predictions(&screen, &split, &empty).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: has no rows", empty.display())) && !e.contains('\n'), "{e}");
        let with_rows = fixtures.join("null_lfc_predictions.parquet");
        assert_eq!(parquet_row_count(&with_rows), Some(2));
        let e = read_predictions(&screen, &split, &with_rows).unwrap_err().to_string();
        assert!(!e.contains("no rows") && e.contains("'lfc'"), "{e}");
        // The footer reader agrees with files this crate writes, and refuses what is not Parquet.
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(parquet_row_count(&write(dir.path(), &full())), Some(6));
        let text = dir.path().join("x.parquet");
        std::fs::write(&text, b"not parquet at all").unwrap();
        assert_eq!(parquet_row_count(&text), None);
    }
}

//! CSV/TSV input, plain or gzip-compressed (detected from the content, not the name).
//!
//! Two shapes are read:
//! - a count table, one row per cell: a condition column, optionally a cell-id column
//!   (an empty header, as pandas writes its index, or `cell`, `cell_id`, `barcode`,
//!   `obs_names`), and one numeric column per gene;
//! - a pseudobulk table, one row per condition: a condition column, optionally
//!   `n_cells`, and one column per gene holding mean log-normalised expression.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use perturb_core::{Error, Result};

use crate::source::CsrMatrix;

const CELL_ID_COLUMNS: [&str; 5] = ["", "cell", "cell_id", "barcode", "obs_names"];

pub struct CountsTable {
    pub labels: Vec<String>,
    pub genes: Vec<String>,
    pub matrix: CsrMatrix,
}

pub struct PseudobulkTable {
    pub labels: Vec<String>,
    pub genes: Vec<String>,
    /// Row-major, rows in file order.
    pub values: Vec<f64>,
    pub n_cells: Option<Vec<i64>>,
}

fn open(path: &Path) -> Result<csv::Reader<Box<dyn Read>>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buffered = BufReader::new(file);
    let head = buffered.fill_buf().map_err(|e| Error::io(path, e))?;
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> = if gz { Box::new(flate2::read::MultiGzDecoder::new(buffered)) } else { Box::new(buffered) };
    // Sniff the delimiter from the first line.
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match reader.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                first.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
            Err(e) => return Err(Error::bad_input(path, format!("cannot read ({e})"))),
        }
    }
    if first.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::bad_input(path, "empty file (no header row)"));
    }
    let tabs = first.iter().filter(|&&b| b == b'\t').count();
    let commas = first.iter().filter(|&&b| b == b',').count();
    let delimiter = if tabs > commas { b'\t' } else { b',' };
    let chained: Box<dyn Read> = Box::new(std::io::Cursor::new(first).chain(reader));
    Ok(csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).from_reader(chained))
}

struct Layout {
    condition: usize,
    cell_id: Option<usize>,
    n_cells: Option<usize>,
    genes: Vec<(usize, String)>,
}

fn layout(path: &Path, header: &csv::StringRecord, condition_key: &str, allow_n_cells: bool) -> Result<Layout> {
    let names: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let condition = names.iter().position(|n| n == condition_key).ok_or_else(|| {
        let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
        Error::bad_input(path, format!("no column '{condition_key}' (first columns: {}); set --condition-key", shown.join(", ")))
    })?;
    let cell_id = names.iter().enumerate().position(|(i, n)| i != condition && CELL_ID_COLUMNS.contains(&n.as_str()));
    let n_cells = if allow_n_cells { names.iter().position(|n| n == "n_cells") } else { None };
    let genes: Vec<(usize, String)> =
        names.iter().enumerate().filter(|(i, _)| *i != condition && Some(*i) != cell_id && Some(*i) != n_cells).map(|(i, n)| (i, n.clone())).collect();
    if genes.is_empty() {
        return Err(Error::bad_input(path, "no gene columns besides the condition column"));
    }
    Ok(Layout { condition, cell_id, n_cells, genes })
}

/// One numeric cell. An empty cell is a missing value (pandas writes NaN that way): an
/// error unless `missing_as_zero`, then 0. `NaN`, `inf` and the like are always errors.
fn parse_value(path: &Path, line: u64, column: &str, text: &str, missing_as_zero: bool) -> Result<f64> {
    let t = text.trim();
    if t.is_empty() {
        if missing_as_zero {
            return Ok(0.0);
        }
        return Err(Error::bad_input(
            path,
            format!("line {line}, column '{column}': empty cell (a missing value, as pandas writes NaN); fill it in, or pass --missing-as-zero to read empty cells as 0"),
        ));
    }
    let v = t.parse::<f64>().map_err(|_| Error::bad_input(path, format!("line {line}, column '{column}': '{t}' is not a number")))?;
    if !v.is_finite() {
        return Err(Error::bad_input(path, format!("line {line}, column '{column}': '{t}' is not a finite number")));
    }
    Ok(v)
}

/// The column names of the header row.
pub fn header(path: &Path) -> Result<Vec<String>> {
    let mut reader = open(path)?;
    let header = reader.headers().map_err(|e| Error::bad_input(path, format!("bad header ({e})")))?;
    Ok(header.iter().map(|h| h.trim().to_string()).collect())
}

pub fn read_counts(path: &Path, condition_key: &str, missing_as_zero: bool) -> Result<CountsTable> {
    let mut reader = open(path)?;
    let header = reader.headers().map_err(|e| Error::bad_input(path, format!("bad header ({e})")))?.clone();
    let lay = layout(path, &header, condition_key, false)?;
    let _ = lay.cell_id;
    let mut matrix = CsrMatrix::with_columns(lay.genes.len());
    let mut labels = Vec::new();
    let mut entries = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let line = row as u64 + 2;
        let record = record.map_err(|e| Error::bad_input(path, format!("line {line}: {e}")))?;
        labels.push(record.get(lay.condition).unwrap_or("").trim().to_string());
        entries.clear();
        for (j, (col, name)) in lay.genes.iter().enumerate() {
            let v = parse_value(path, line, name, record.get(*col).unwrap_or(""), missing_as_zero)?;
            if v != 0.0 {
                entries.push((j as u32, v));
            }
        }
        matrix.push_row(entries.iter().copied());
    }
    if labels.is_empty() {
        return Err(Error::bad_input(path, "header but no rows"));
    }
    Ok(CountsTable { labels, genes: lay.genes.into_iter().map(|(_, n)| n).collect(), matrix })
}

pub fn read_pseudobulk(path: &Path, condition_key: &str, missing_as_zero: bool) -> Result<PseudobulkTable> {
    let mut reader = open(path)?;
    let header = reader.headers().map_err(|e| Error::bad_input(path, format!("bad header ({e})")))?.clone();
    let lay = layout(path, &header, condition_key, true)?;
    let mut labels = Vec::new();
    let mut values = Vec::new();
    let mut n_cells = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let line = row as u64 + 2;
        let record = record.map_err(|e| Error::bad_input(path, format!("line {line}: {e}")))?;
        let label = record.get(lay.condition).unwrap_or("").trim().to_string();
        if let Some(col) = lay.n_cells {
            let n = parse_value(path, line, "n_cells", record.get(col).unwrap_or(""), missing_as_zero)?;
            if n < 1.0 || n.fract() != 0.0 {
                return Err(Error::bad_input(path, format!("line {line}: condition '{label}' has n_cells = {n}; every condition needs at least one cell")));
            }
            n_cells.push(n as i64);
        }
        for (col, name) in &lay.genes {
            let v = parse_value(path, line, name, record.get(*col).unwrap_or(""), missing_as_zero)?;
            if v < 0.0 {
                return Err(Error::bad_input(path, format!("line {line}, column '{name}': {v} is not a log-normalised expression value")));
            }
            values.push(v);
        }
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(Error::bad_input(path, "header but no rows"));
    }
    Ok(PseudobulkTable { labels, genes: lay.genes.into_iter().map(|(_, n)| n).collect(), values, n_cells: lay.n_cells.map(|_| n_cells) })
}

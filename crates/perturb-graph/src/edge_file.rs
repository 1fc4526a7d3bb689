//! A user's edge list: CSV, TSV or Parquet (optionally gzip-compressed text) with
//! columns `source`, `target` and optionally `weight` (finite, ≥ 0; default 1) and
//! `sign` (-1, 0 or 1; default 0, unsigned), as `grn.parquet` of a trained model has.

use std::io::Read;
use std::path::Path;

use perturb_core::{Column, Error, Result, Table};

pub struct RawEdges {
    /// (source, target, weight, sign).
    pub edges: Vec<(String, String, f64, i64)>,
}

pub fn read(path: &Path) -> Result<RawEdges> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_lowercase();
    if name.ends_with(".parquet") {
        return read_parquet(path);
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(file).read_to_end(&mut bytes).map_err(|e| Error::bad_input(path, format!("not readable gzip ({e})")))?;
    } else {
        std::io::BufReader::new(file).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    }
    let text = String::from_utf8(bytes).map_err(|_| Error::bad_input(path, "not UTF-8 text"))?;
    let first = text.lines().next().unwrap_or("");
    if first.trim().is_empty() {
        return Err(Error::bad_input(path, "empty edge file (expected a header with source,target[,weight])"));
    }
    let delimiter = if first.contains('\t') { b'\t' } else { b',' };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().map_err(|e| Error::bad_input(path, e.to_string()))?.iter().map(|h| h.trim().to_lowercase()).collect();
    let col = |n: &str| header.iter().position(|h| h == n);
    let (Some(s), Some(t)) = (col("source"), col("target")) else {
        return Err(Error::bad_input(path, format!("edge file needs columns source and target (found: {})", header.join(", "))));
    };
    let w = col("weight");
    let sign_col = col("sign");
    let mut edges = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| Error::bad_input(path, format!("line {line}: {e}")))?;
        let weight = match w {
            None => 1.0,
            Some(w) => {
                let text = record.get(w).unwrap_or("").trim();
                let v: f64 = text.parse().map_err(|_| Error::bad_input(path, format!("line {line}: weight '{text}' is not a number")))?;
                check_weight(path, &format!("line {line}"), v)?;
                v
            }
        };
        let sign = match sign_col {
            None => 0,
            Some(c) => {
                let text = record.get(c).unwrap_or("").trim();
                check_sign(path, &format!("line {line}"), text, text.parse::<f64>().ok())?
            }
        };
        edges.push((record.get(s).unwrap_or("").trim().to_string(), record.get(t).unwrap_or("").trim().to_string(), weight, sign));
    }
    if edges.is_empty() {
        return Err(Error::bad_input(path, "edge file has a header but no edges"));
    }
    Ok(RawEdges { edges })
}

fn check_weight(path: &Path, at: &str, v: f64) -> Result<()> {
    if v.is_nan() || v < 0.0 || v.is_infinite() {
        return Err(Error::bad_input(path, format!("{at}: weight {v} is not a finite non-negative number")));
    }
    Ok(())
}

/// A sign is -1 (repression), 0 (unsigned or unknown) or 1 (activation); anything else
/// (5, 0.5, NaN, an empty cell) is an error rather than a silent 0.
fn is_sign(v: f64) -> bool {
    v == -1.0 || v == 0.0 || v == 1.0
}

fn check_sign(path: &Path, at: &str, text: &str, v: Option<f64>) -> Result<i64> {
    match v {
        Some(v) if is_sign(v) => Ok(v as i64),
        _ => Err(Error::bad_input(path, format!("{at}: sign '{text}' is not -1, 0 or 1 (write 0 for an unsigned edge)"))),
    }
}

fn read_parquet(path: &Path) -> Result<RawEdges> {
    let t = Table::read_parquet(path)?;
    let s = t.strings("source", path)?;
    let tg = t.strings("target", path)?;
    let numbers = |name: &str| -> Result<Option<Vec<f64>>> {
        match t.column(name) {
            None => Ok(None),
            Some(Column::I64(v)) => Ok(Some(v.iter().map(|&x| x as f64).collect())),
            Some(_) => t.floats(name, path).map(|v| Some(v.to_vec())),
        }
    };
    let w = numbers("weight")?.unwrap_or_else(|| vec![1.0; s.len()]);
    for (i, &v) in w.iter().enumerate() {
        check_weight(path, &format!("row {}", i + 1), v)?;
    }
    let signs = match numbers("sign")? {
        None => vec![0; s.len()],
        // The row and value are formatted only for a sign that is refused.
        Some(v) => v
            .iter()
            .enumerate()
            .map(|(i, &x)| if is_sign(x) { Ok(x as i64) } else { check_sign(path, &format!("row {}", i + 1), &x.to_string(), Some(x)) })
            .collect::<Result<_>>()?,
    };
    if s.is_empty() {
        return Err(Error::bad_input(path, "edge file has no edges"));
    }
    Ok(RawEdges { edges: s.iter().zip(tg).zip(w).zip(signs).map(|(((a, b), w), sign)| (a.clone(), b.clone(), w, sign)).collect() })
}

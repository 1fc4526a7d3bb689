//! A user's edge list: CSV, TSV or Parquet (optionally gzip-compressed text) with
//! columns `source`, `target` and optionally `weight`.

use std::io::Read;
use std::path::Path;

use perturb_core::{Error, Result, Table};

pub struct RawEdges {
    pub edges: Vec<(String, String, f64)>,
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
    let mut edges = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| Error::bad_input(path, format!("line {line}: {e}")))?;
        let weight = match w {
            None => 1.0,
            Some(w) => {
                let text = record.get(w).unwrap_or("").trim();
                let v: f64 = text.parse().map_err(|_| Error::bad_input(path, format!("line {line}: weight '{text}' is not a number")))?;
                check_weight(path, line, v)?;
                v
            }
        };
        edges.push((record.get(s).unwrap_or("").trim().to_string(), record.get(t).unwrap_or("").trim().to_string(), weight));
    }
    if edges.is_empty() {
        return Err(Error::bad_input(path, "edge file has a header but no edges"));
    }
    Ok(RawEdges { edges })
}

fn check_weight(path: &Path, line: usize, v: f64) -> Result<()> {
    if v.is_nan() || v < 0.0 || v.is_infinite() {
        return Err(Error::bad_input(path, format!("line {line}: weight {v} is not a finite non-negative number")));
    }
    Ok(())
}

fn read_parquet(path: &Path) -> Result<RawEdges> {
    let t = Table::read_parquet(path)?;
    let s = t.strings("source", path)?;
    let tg = t.strings("target", path)?;
    let w: Vec<f64> = if t.column("weight").is_some() { t.floats("weight", path)?.to_vec() } else { vec![1.0; s.len()] };
    for (i, &v) in w.iter().enumerate() {
        check_weight(path, i + 1, v)?;
    }
    if s.is_empty() {
        return Err(Error::bad_input(path, "edge file has no edges"));
    }
    Ok(RawEdges { edges: s.iter().zip(tg).zip(w).map(|((a, b), w)| (a.clone(), b.clone(), w)).collect() })
}

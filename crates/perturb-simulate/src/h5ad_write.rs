//! Writes a raw-count screen as an AnnData `.h5ad` in GEARS' schema, with the encodings
//! anndata itself writes (anndata's on-disk spec 0.1/0.2), so `anndata.read_h5ad` opens
//! it and `perturb ingest` reads it like any lab's file.

use std::path::Path;

use hdf5_pure::{AttrValue, FileBuilder};
use perturb_core::{Error, Result};

/// A cells x genes count matrix in CSR form plus the obs/var annotations GEARS uses.
#[derive(Debug, Clone, Default)]
pub struct CountScreen {
    pub cell_names: Vec<String>,
    /// GEARS labels (`ctrl`, `A+ctrl`, `A+B`), one per category.
    pub condition_categories: Vec<String>,
    /// Per cell, an index into `condition_categories`.
    pub condition_codes: Vec<u16>,
    /// The cell types (cell lines), and each cell's index into them.
    pub cell_types: Vec<String>,
    pub cell_type_codes: Vec<u8>,
    pub gene_names: Vec<String>,
    pub indptr: Vec<i64>,
    pub indices: Vec<i32>,
    pub counts: Vec<f32>,
}

impl CountScreen {
    pub fn n_cells(&self) -> usize {
        self.cell_names.len()
    }

    pub fn n_genes(&self) -> usize {
        self.gene_names.len()
    }
}

fn encoding(kind: &str, version: &str) -> [(&'static str, AttrValue); 2] {
    [("encoding-type", AttrValue::String(kind.to_string())), ("encoding-version", AttrValue::String(version.to_string()))]
}

/// Writes `screen` to `path` atomically (temp file, then rename).
pub fn write_h5ad(path: &Path, screen: &CountScreen) -> Result<()> {
    let (n_obs, n_var) = (screen.n_cells(), screen.n_genes());
    if screen.indptr.len() != n_obs + 1 || screen.condition_codes.len() != n_obs {
        return Err(Error::Other(format!("{}: inconsistent screen shapes", path.display())));
    }
    let mut b = FileBuilder::new();
    for (k, v) in encoding("anndata", "0.1.0") {
        b.set_attr(k, v);
    }

    let mut x = b.create_group("X");
    for (k, v) in encoding("csr_matrix", "0.1.0") {
        x.set_attr(k, v);
    }
    x.set_attr("shape", AttrValue::I64Array(vec![n_obs as i64, n_var as i64]));
    // Contiguous, uncompressed, as anndata writes by default. (hdf5-pure 0.47's chunked
    // layout for datasets of this size is not readable by the HDF5 C library.)
    x.create_dataset("data").with_f32_data(&screen.counts);
    x.create_dataset("indices").with_i32_data(&screen.indices);
    x.create_dataset("indptr").with_i64_data(&screen.indptr);
    b.add_group(x.finish());

    // obs: condition (categorical), cell_type (categorical, a level per cell line).
    let mut obs = b.create_group("obs");
    for (k, v) in encoding("dataframe", "0.2.0") {
        obs.set_attr(k, v);
    }
    obs.set_attr("_index", AttrValue::String("_index".into()));
    obs.set_attr("column-order", AttrValue::StringArray(vec!["condition".into(), "cell_type".into()]));
    let names: Vec<&str> = screen.cell_names.iter().map(String::as_str).collect();
    string_array(obs.create_dataset("_index"), &names);
    categorical(&mut obs, "condition", &screen.condition_categories, |codes| {
        codes.with_i16_data(&screen.condition_codes.iter().map(|&c| c as i16).collect::<Vec<_>>());
    });
    categorical(&mut obs, "cell_type", &screen.cell_types, |codes| {
        codes.with_i8_data(&screen.cell_type_codes.iter().map(|&c| c as i8).collect::<Vec<_>>());
    });
    b.add_group(obs.finish());

    // var: index = symbol, plus GEARS' gene_name column.
    let mut var = b.create_group("var");
    for (k, v) in encoding("dataframe", "0.2.0") {
        var.set_attr(k, v);
    }
    var.set_attr("_index", AttrValue::String("_index".into()));
    var.set_attr("column-order", AttrValue::StringArray(vec!["gene_name".into()]));
    let genes: Vec<&str> = screen.gene_names.iter().map(String::as_str).collect();
    string_array(var.create_dataset("_index"), &genes);
    string_array(var.create_dataset("gene_name"), &genes);
    b.add_group(var.finish());

    for name in ["layers", "obsm", "varm", "obsp", "varp", "uns"] {
        let mut g = b.create_group(name);
        for (k, v) in encoding("dict", "0.1.0") {
            g.set_attr(k, v);
        }
        b.add_group(g.finish());
    }

    let bytes = b.finish().map_err(|e| Error::Other(format!("{}: cannot encode HDF5: {e}", path.display())))?;
    perturb_core::table::write_bytes_atomically(path, &bytes)
}

fn string_array(ds: &mut hdf5_pure::DatasetBuilder, values: &[&str]) {
    ds.with_vlen_strings(values);
    for (k, v) in encoding("string-array", "0.2.0") {
        ds.set_attr(k, v);
    }
}

/// An obs column as anndata writes a categorical: integer codes (written by
/// `write_codes`) into `categories`, unordered.
fn categorical(obs: &mut hdf5_pure::GroupBuilder, name: &str, categories: &[String], write_codes: impl FnOnce(&mut hdf5_pure::DatasetBuilder)) {
    let mut column = obs.create_group(name);
    for (k, v) in encoding("categorical", "0.2.0") {
        column.set_attr(k, v);
    }
    column.set_attr("ordered", AttrValue::U8(0));
    write_codes(column.create_dataset("codes"));
    let categories: Vec<&str> = categories.iter().map(String::as_str).collect();
    string_array(column.create_dataset("categories"), &categories);
    obs.add_group(column.finish());
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tiny() -> CountScreen {
        // 3 cells x 2 genes: [[1,0],[0,2],[3,4]]
        CountScreen {
            cell_names: vec!["c0".into(), "c1".into(), "c2".into()],
            condition_categories: vec!["ctrl".into(), "A+ctrl".into()],
            condition_codes: vec![0, 1, 1],
            cell_types: vec!["K562".into()],
            cell_type_codes: vec![0; 3],
            gene_names: vec!["A".into(), "B".into()],
            indptr: vec![0, 1, 2, 4],
            indices: vec![0, 1, 0, 1],
            counts: vec![1.0, 2.0, 3.0, 4.0],
        }
    }

    #[test]
    fn written_file_has_anndata_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.h5ad");
        write_h5ad(&path, &tiny()).unwrap();
        if let Some(keep) = std::env::var_os("PERTURB_KEEP_TINY_H5AD") {
            std::fs::copy(&path, keep).unwrap();
        }
        let f = hdf5_pure::File::open(&path).unwrap();
        assert_eq!(f.dataset("X/data").unwrap().read_f32().unwrap(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(f.dataset("X/indptr").unwrap().read_i64().unwrap(), [0, 1, 2, 4]);
        assert_eq!(f.dataset("obs/condition/codes").unwrap().read_i16().unwrap(), [0, 1, 1]);
        // Nothing but the file itself is left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn inconsistent_shapes_are_refused_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.h5ad");
        let mut s = tiny();
        s.condition_codes.pop();
        assert!(write_h5ad(&path, &s).is_err());
        assert!(!path.exists());
    }
}

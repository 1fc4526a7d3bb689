//! A cells × genes matrix that can be streamed block by block, whatever file it came from.

use perturb_core::Result;

pub use crate::h5ad::{Block, Orientation, OwnedBlock};

/// Anything the ingest pass can stream: an h5ad matrix or a table parsed from CSV.
/// `Sync` because the streaming pass reads on one thread and accumulates on another.
pub trait BlockSource: Sync {
    fn n_obs(&self) -> usize;
    fn n_vars(&self) -> usize;
    fn orientation(&self) -> Orientation;
    fn visit(&self, f: &mut dyn FnMut(Block<'_>) -> Result<()>) -> Result<()>;
    /// [`BlockSource::visit`] with owned blocks; a source that builds each block anyway
    /// hands it over instead of having it copied.
    fn visit_owned(&self, f: &mut dyn FnMut(OwnedBlock) -> Result<()>) -> Result<()> {
        self.visit(&mut |b| f(OwnedBlock::copied(&b)))
    }
}

impl BlockSource for crate::h5ad::Matrix<'_> {
    fn n_obs(&self) -> usize {
        crate::h5ad::Matrix::n_obs(self)
    }
    fn n_vars(&self) -> usize {
        crate::h5ad::Matrix::n_vars(self)
    }
    fn orientation(&self) -> Orientation {
        crate::h5ad::Matrix::orientation(self)
    }
    fn visit(&self, f: &mut dyn FnMut(Block<'_>) -> Result<()>) -> Result<()> {
        crate::h5ad::Matrix::visit(self, f)
    }
    fn visit_owned(&self, f: &mut dyn FnMut(OwnedBlock) -> Result<()>) -> Result<()> {
        crate::h5ad::Matrix::visit_owned(self, f)
    }
}

/// A compressed-sparse-row matrix held in memory (what the CSV reader builds): all its rows
/// as one block.
pub struct CsrMatrix {
    pub n_vars: usize,
    pub rows: OwnedBlock,
}

impl CsrMatrix {
    /// A matrix of `n_vars` columns and no rows yet.
    pub fn with_columns(n_vars: usize) -> CsrMatrix {
        CsrMatrix { n_vars, rows: OwnedBlock { orientation: Orientation::Rows, first: 0, indptr: vec![0], indices: Vec::new(), values: Vec::new() } }
    }

    /// Appends a row of `(column, value)` entries.
    pub fn push_row(&mut self, entries: impl IntoIterator<Item = (u32, f64)>) {
        for (j, v) in entries {
            self.rows.indices.push(j);
            self.rows.values.push(v);
        }
        self.rows.indptr.push(self.rows.indices.len());
    }
}

impl BlockSource for CsrMatrix {
    fn n_obs(&self) -> usize {
        self.rows.indptr.len() - 1
    }
    fn n_vars(&self) -> usize {
        self.n_vars
    }
    fn orientation(&self) -> Orientation {
        Orientation::Rows
    }
    fn visit(&self, f: &mut dyn FnMut(Block<'_>) -> Result<()>) -> Result<()> {
        f(self.rows.borrow())
    }
}

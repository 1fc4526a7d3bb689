//! Reading AnnData `.h5ad` files without the HDF5 C library.
//!
//! Supports what `anndata.write_h5ad` writes (anndata ≥ 0.8 on-disk format):
//! - matrices `X`, `layers/<name>` and `raw/X`, encoded as `csr_matrix`, `csc_matrix`
//!   (groups holding `data`, `indices`, `indptr`) or a dense `array`; 8- to 64-bit
//!   integer indices; float16/32/64 or 8- to 64-bit integer values (any other stored
//!   type is an error naming it); deflate (gzip), lzf and shuffle filters;
//! - dataframes `obs`, `var` and `raw/var`: the `_index` attribute, `categorical`
//!   columns (codes + categories, code −1 = missing), `string-array` columns, numeric
//!   `array` columns and `nullable-*` columns.
//!
//! A matrix is never densified: [`Matrix::visit`] hands the caller blocks of rows (CSR,
//! dense) or of columns (CSC) small enough to stream a Norman-size screen in a few
//! hundred MB.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hdf5_pure::{AttrValue, Dataset, Datatype, DatatypeByteOrder, File, FixedPointLayout, FloatingPointLayout, Group};
use perturb_core::{Error, Result};

/// Values per block handed to a visitor (about 24 MB of u32 indices and f64 values).
const BLOCK_VALUES: u64 = 2 << 20;

/// Which matrix of the file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatrixSlot {
    X,
    Layer(String),
    /// `raw/X`, whose genes are `raw/var`.
    Raw,
}

impl MatrixSlot {
    /// `X`, `raw` (or `raw/X`), or the name of a layer (`counts`, `layers/counts`).
    pub fn parse(s: &str) -> MatrixSlot {
        match s {
            "X" => MatrixSlot::X,
            "raw" | "raw/X" => MatrixSlot::Raw,
            other => MatrixSlot::Layer(other.strip_prefix("layers/").unwrap_or(other).to_string()),
        }
    }

    fn path(&self) -> String {
        match self {
            MatrixSlot::X => "X".to_string(),
            MatrixSlot::Layer(l) => format!("layers/{l}"),
            MatrixSlot::Raw => "raw/X".to_string(),
        }
    }

    /// The dataframe that names this matrix's columns.
    fn var_group(&self) -> &'static str {
        match self {
            MatrixSlot::Raw => "raw/var",
            _ => "var",
        }
    }
}

impl std::fmt::Display for MatrixSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path())
    }
}

/// An open `.h5ad` file.
pub struct H5ad {
    path: PathBuf,
    file: File,
}

/// A dataframe column as read from the file.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameColumn {
    /// Categorical or string column; `None` is a missing value.
    Labels(Vec<Option<String>>),
    Numeric(Vec<f64>),
}

impl H5ad {
    pub fn open(path: &Path) -> Result<H5ad> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::bad_input(path, "is a folder, not an .h5ad file"));
        }
        match hdf5_pure::is_hdf5(path) {
            Ok(true) => {}
            Ok(false) => return Err(Error::bad_input(path, "not an HDF5 file (no HDF5 signature); expected an AnnData .h5ad")),
            Err(e) => return Err(Error::io(path, e)),
        }
        // Streaming keeps only metadata and the blocks being read in memory.
        let file = File::open_streaming(path).map_err(|e| Error::bad_input(path, format!("cannot read HDF5 structure ({e}); is the file truncated?")))?;
        let h5ad = H5ad { path: path.to_path_buf(), file };
        // Touch the root group now so that a truncated file fails here, with one message.
        h5ad.root_members().map_err(|e| match e {
            Error::BadInput { ref message, .. } if message.contains("unexpected EOF") => {
                Error::bad_input(path, format!("file is truncated ({} bytes; its HDF5 structure points past the end)", meta.len()))
            }
            e => e,
        })?;
        Ok(h5ad)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, message: impl Into<String>) -> Error {
        Error::bad_input(&self.path, message)
    }

    fn h5err(&self, what: &str, e: hdf5_pure::Error) -> Error {
        self.err(format!("{what}: {e}"))
    }

    fn root_members(&self) -> Result<Vec<String>> {
        let root = self.file.root();
        let mut names = root.groups().map_err(|e| self.h5err("cannot list the root group", e))?;
        names.extend(root.datasets().map_err(|e| self.h5err("cannot list the root group", e))?);
        names.sort();
        Ok(names)
    }

    fn group(&self, path: &str) -> Result<Group> {
        self.file.group(path).map_err(|e| self.h5err(&format!("cannot open group '{path}'"), e))
    }

    fn has(&self, path: &str) -> bool {
        self.file.group(path).is_ok() || self.file.dataset(path).is_ok()
    }

    /// The column names of a dataframe group (`obs`, `var`, `raw/var`).
    pub fn frame_keys(&self, frame: &str) -> Result<Vec<String>> {
        let group = self.group(frame)?;
        let attrs = group.attrs().map_err(|e| self.h5err(frame, e))?;
        if let Some(order) = attrs.get("column-order").and_then(|a| a.as_strings()) {
            return Ok(order.to_vec());
        }
        let index = attrs.get("_index").and_then(|a| a.as_str()).unwrap_or("_index").to_string();
        let mut keys = group.groups().map_err(|e| self.h5err(frame, e))?;
        keys.extend(group.datasets().map_err(|e| self.h5err(frame, e))?);
        keys.retain(|k| *k != index && k != "__categories");
        keys.sort();
        Ok(keys)
    }

    /// The index (row names) of a dataframe group.
    pub fn frame_index(&self, frame: &str) -> Result<Vec<String>> {
        let group = self.group(frame)?;
        let attrs = group.attrs().map_err(|e| self.h5err(frame, e))?;
        let index = attrs.get("_index").and_then(|a| a.as_str()).unwrap_or("_index").to_string();
        let ds = self.file.dataset(&format!("{frame}/{index}")).map_err(|e| self.h5err(&format!("{frame} has no index '{index}'"), e))?;
        self.read_strings(&ds, &format!("{frame}/{index}"))
    }

    /// One column of a dataframe group, or an error listing the columns that exist.
    pub fn frame_column(&self, frame: &str, key: &str) -> Result<FrameColumn> {
        let path = format!("{frame}/{key}");
        if !self.has(&path) {
            let keys = self.frame_keys(frame)?;
            return Err(self.err(format!("{frame} has no column '{key}' (columns: {})", keys.join(", "))));
        }
        if let Ok(group) = self.file.group(&path) {
            let attrs = group.attrs().map_err(|e| self.h5err(&path, e))?;
            let encoding = attr_str(&attrs, "encoding-type").unwrap_or_default();
            return match encoding.as_str() {
                "categorical" => self.read_categorical(&path),
                "nullable-integer" | "nullable-boolean" | "nullable-string-array" => self.read_nullable(&path, &encoding),
                other => Err(self.err(format!("{path}: unsupported column encoding '{other}'"))),
            };
        }
        let ds = self.file.dataset(&path).map_err(|e| self.h5err(&path, e))?;
        let attrs = ds.attrs().map_err(|e| self.h5err(&path, e))?;
        if attrs.contains_key("categories") {
            return Err(self.err(format!("{path}: categorical column in the pre-0.8 anndata layout; re-save the file with a current anndata")));
        }
        if is_string_dtype(&ds) {
            let values = self.read_strings(&ds, &path)?;
            Ok(FrameColumn::Labels(values.into_iter().map(Some).collect()))
        } else {
            Ok(FrameColumn::Numeric(ds.read_f64().map_err(|e| self.h5err(&path, e))?))
        }
    }

    fn read_strings(&self, ds: &Dataset, path: &str) -> Result<Vec<String>> {
        ds.read_string().map_err(|e| self.h5err(&format!("cannot read strings of {path}"), e))
    }

    fn read_categorical(&self, path: &str) -> Result<FrameColumn> {
        let codes_path = format!("{path}/codes");
        let cats_path = format!("{path}/categories");
        let codes = self.file.dataset(&codes_path).and_then(|d| d.read_i64()).map_err(|e| self.h5err(&codes_path, e))?;
        let cats_ds = self.file.dataset(&cats_path).map_err(|e| self.h5err(&cats_path, e))?;
        let categories: Vec<String> = if is_string_dtype(&cats_ds) {
            self.read_strings(&cats_ds, &cats_path)?
        } else {
            cats_ds.read_f64().map_err(|e| self.h5err(&cats_path, e))?.into_iter().map(format_number).collect()
        };
        let mut labels = Vec::with_capacity(codes.len());
        for (row, &code) in codes.iter().enumerate() {
            if code < 0 {
                labels.push(None);
            } else {
                let label = categories
                    .get(code as usize)
                    .ok_or_else(|| self.err(format!("{codes_path}: row {row} has code {code} but there are {} categories", categories.len())))?;
                labels.push(Some(label.clone()));
            }
        }
        Ok(FrameColumn::Labels(labels))
    }

    fn read_nullable(&self, path: &str, encoding: &str) -> Result<FrameColumn> {
        let values_path = format!("{path}/values");
        let mask_path = format!("{path}/mask");
        let values_ds = self.file.dataset(&values_path).map_err(|e| self.h5err(&values_path, e))?;
        let mask: Vec<bool> =
            self.file.dataset(&mask_path).and_then(|d| d.read_u8()).map_err(|e| self.h5err(&mask_path, e))?.into_iter().map(|m| m != 0).collect();
        if encoding == "nullable-string-array" {
            let values = self.read_strings(&values_ds, &values_path)?;
            Ok(FrameColumn::Labels(values.into_iter().zip(mask).map(|(v, missing)| (!missing).then_some(v)).collect()))
        } else {
            let values = values_ds.read_f64().map_err(|e| self.h5err(&values_path, e))?;
            Ok(FrameColumn::Numeric(values.into_iter().zip(mask).map(|(v, missing)| if missing { f64::NAN } else { v }).collect()))
        }
    }

    /// Gene names of a matrix's columns, and the var index beside them. `gene_key`
    /// names a var column; without it GEARS' `gene_name` is used when present, else
    /// the var index.
    pub fn gene_names(&self, slot: &MatrixSlot, gene_key: Option<&str>) -> Result<GeneNames> {
        let frame = slot.var_group();
        if !self.has(frame) {
            return Err(self.err(format!("no '{frame}' dataframe")));
        }
        let index = self.frame_index(frame)?;
        let key = match gene_key {
            Some(k) => Some(k.to_string()),
            None => self.frame_keys(frame)?.into_iter().find(|k| k == "gene_name"),
        };
        let symbols = match &key {
            None => index.clone(),
            Some(k) => match self.frame_column(frame, k)? {
                FrameColumn::Labels(labels) => {
                    let mut out = Vec::with_capacity(labels.len());
                    for (i, l) in labels.into_iter().enumerate() {
                        out.push(l.ok_or_else(|| self.err(format!("{frame}/{k}: gene {} ('{}') has no name", i, index[i])))?);
                    }
                    out
                }
                FrameColumn::Numeric(_) => return Err(self.err(format!("{frame}/{k} is numeric; --gene-key must name a column of gene symbols"))),
            },
        };
        Ok(GeneNames { symbols, ids: index, source: key.map_or_else(|| format!("{frame} index"), |k| format!("{frame}/{k}")) })
    }

    /// Opens a matrix for streaming.
    pub fn matrix(&self, slot: &MatrixSlot) -> Result<Matrix<'_>> {
        let path = slot.path();
        if !self.has(&path) {
            let what = match slot {
                MatrixSlot::X => format!("no X matrix (top-level entries: {})", self.root_members()?.join(", ")),
                MatrixSlot::Raw => "no raw/X matrix (the file has no .raw)".to_string(),
                MatrixSlot::Layer(l) => {
                    let layers = self.file.group("layers").and_then(|g| {
                        let mut v = g.groups()?;
                        v.extend(g.datasets()?);
                        Ok(v)
                    });
                    let layers = layers.map(|v| v.join(", ")).unwrap_or_default();
                    format!("no layer '{l}' (layers: {}; use X or raw)", if layers.is_empty() { "none" } else { &layers })
                }
            };
            return Err(self.err(what));
        }
        if let Ok(group) = self.file.group(&path) {
            let attrs = group.attrs().map_err(|e| self.h5err(&path, e))?;
            let encoding = attr_str(&attrs, "encoding-type").unwrap_or_default();
            let compressed = match encoding.as_str() {
                "csr_matrix" => Orientation::Rows,
                "csc_matrix" => Orientation::Columns,
                other => return Err(self.err(format!("{path}: unsupported matrix encoding '{other}' (supported: csr_matrix, csc_matrix, array)"))),
            };
            let shape = attrs.get("shape").and_then(attr_shape).ok_or_else(|| self.err(format!("{path}: sparse matrix without a 'shape' attribute")))?;
            let open = |name: &str| self.file.dataset(&format!("{path}/{name}")).map_err(|e| self.h5err(&format!("{path}/{name}"), e));
            let (data, indices, indptr_ds) = (open("data")?, open("indices")?, open("indptr")?);
            let codec = self.value_codec(&data, &format!("{path}/data"), Wanted::Values)?;
            self.value_codec(&indices, &format!("{path}/indices"), Wanted::Integers)?;
            let index_width = index_width(&indices.datatype().map_err(|e| self.h5err(&format!("{path}/indices"), e))?);
            self.value_codec(&indptr_ds, &format!("{path}/indptr"), Wanted::Integers)?;
            let indptr = indptr_ds.read_i64().map_err(|e| self.h5err(&format!("{path}/indptr"), e))?;
            let major = match compressed {
                Orientation::Rows => shape.0,
                Orientation::Columns => shape.1,
            };
            if indptr.len() as u64 != major + 1 {
                return Err(self.err(format!("{path}/indptr has {} entries, expected {}", indptr.len(), major + 1)));
            }
            let nnz = data.shape().map_err(|e| self.h5err(&path, e))?.iter().product::<u64>();
            if indptr.first() != Some(&0) || indptr.windows(2).any(|w| w[1] < w[0]) || *indptr.last().unwrap_or(&0) as u64 != nnz {
                return Err(self.err(format!("{path}/indptr is not a valid compressed-sparse pointer array for {nnz} values")));
            }
            self.check_filters(&data, &format!("{path}/data"))?;
            self.check_filters(&indices, &format!("{path}/indices"))?;
            return Ok(Matrix {
                h5ad: self,
                slot: slot.clone(),
                n_obs: shape.0 as usize,
                n_vars: shape.1 as usize,
                storage: Storage::Sparse { orientation: compressed, data, codec, indices, index_width, indptr },
            });
        }
        let ds = self.file.dataset(&path).map_err(|e| self.h5err(&path, e))?;
        let dims = ds.shape().map_err(|e| self.h5err(&path, e))?;
        if dims.len() != 2 {
            return Err(self.err(format!("{path}: dense matrix must be 2-dimensional, has shape {dims:?}")));
        }
        if is_string_dtype(&ds) {
            return Err(self.err(format!("{path}: matrix holds strings, not numbers")));
        }
        let codec = self.value_codec(&ds, &path, Wanted::Values)?;
        self.check_filters(&ds, &path)?;
        Ok(Matrix { h5ad: self, slot: slot.clone(), n_obs: dims[0] as usize, n_vars: dims[1] as usize, storage: Storage::Dense { data: ds, codec } })
    }

    /// How the values of `ds` are decoded, or an error naming its stored type when this
    /// reader cannot decode it. hdf5-pure returns no values at all (not an error) for
    /// types outside its fast paths, such as float16, so every matrix dataset is
    /// checked here, up front.
    fn value_codec(&self, ds: &Dataset, path: &str, wanted: Wanted) -> Result<ValueCodec> {
        let dt = ds.datatype().map_err(|e| self.h5err(&format!("{path}: cannot read its datatype"), e))?;
        match (classify_codec(&dt), wanted) {
            (Some(codec @ ValueCodec::Native { integer: true }), _) | (Some(codec), Wanted::Values) => Ok(codec),
            (Some(_), Wanted::Integers) => Err(self.err(format!("{path} is stored as {}, but sparse indices must be integers", describe_datatype(&dt)))),
            (None, Wanted::Values) => Err(self.err(format!(
                "{path} is stored as {}, which is not supported (supported: float16, float32, float64, 8- to 64-bit integers); re-save the matrix as float32",
                describe_datatype(&dt)
            ))),
            (None, Wanted::Integers) => Err(self.err(format!(
                "{path} is stored as {}, which is not supported (supported: 8- to 64-bit integers); re-save the matrix with int32 or int64 indices",
                describe_datatype(&dt)
            ))),
        }
    }

    /// Names an unsupported compression filter up front, instead of failing mid-stream.
    fn check_filters(&self, ds: &Dataset, path: &str) -> Result<()> {
        for id in ds.filters() {
            let name = match id {
                1 => continue,     // deflate (gzip)
                2 => continue,     // shuffle
                3 => continue,     // fletcher32
                6 => continue,     // scale-offset
                32000 => continue, // lzf
                4 => "szip",
                5 => "nbit",
                307 => "bzip2",
                32001 => "blosc",
                32004 => "lz4",
                32008 => "bitshuffle",
                32015 => "zstd",
                _ => "unknown",
            };
            return Err(self.err(format!(
                "{path}: compression filter {id} ({name}) is not supported (supported: gzip, lzf, shuffle); re-save with compression='gzip' or none"
            )));
        }
        Ok(())
    }
}

/// Gene names of a matrix's columns.
#[derive(Debug, Clone)]
pub struct GeneNames {
    pub symbols: Vec<String>,
    /// The var index (e.g. Ensembl ids); equal to `symbols` when those come from the index.
    pub ids: Vec<String>,
    /// Where the symbols came from, e.g. `var/gene_name`.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    Rows,
    Columns,
}

enum Storage {
    Sparse { orientation: Orientation, data: Dataset, codec: ValueCodec, indices: Dataset, index_width: IndexWidth, indptr: Vec<i64> },
    Dense { data: Dataset, codec: ValueCodec },
}

/// What a dataset must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// Matrix values: floats or integers.
    Values,
    /// Sparse indices and pointers.
    Integers,
}

/// How stored values become `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueCodec {
    /// A type hdf5-pure decodes itself: IEEE float32/float64 or a full-width 8- to
    /// 64-bit integer (also as the base of an enumeration, e.g. h5py's booleans).
    Native { integer: bool },
    /// IEEE 754 binary16 (numpy's float16), which hdf5-pure does not decode: converted here.
    Half { big_endian: bool },
}

/// The IEEE 754 binary16 layout as HDF5 describes it (`H5T_IEEE_F16LE`).
const IEEE754_BINARY16: FloatingPointLayout = FloatingPointLayout {
    bit_offset: 0,
    bit_precision: 16,
    exponent_location: 10,
    exponent_size: 5,
    mantissa_location: 0,
    mantissa_size: 10,
    exponent_bias: 15,
};

/// How sparse indices are decoded: 32-bit signed integers (what scipy and anndata
/// write) straight into their final buffer, any other integer type through `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexWidth {
    I32,
    Other,
}

fn index_width(dt: &Datatype) -> IndexWidth {
    match dt {
        Datatype::FixedPoint {
            size: 4,
            byte_order: DatatypeByteOrder::LittleEndian | DatatypeByteOrder::BigEndian,
            layout: FixedPointLayout { signed: true, bit_offset: 0, bit_precision: 32 },
        } => IndexWidth::I32,
        _ => IndexWidth::Other,
    }
}

/// Sparse indices `start..start + count`, each checked to lie in `0..minor`. For `i32`
/// the conversion to `u32` reuses the decoded buffer, so an index is written once.
fn read_index_rows(ds: &Dataset, width: IndexWidth, start: u64, count: u64, minor: usize) -> std::result::Result<Vec<u32>, IndexError> {
    fn checked<T: Copy + Into<i64>>(raw: Vec<T>, minor: usize) -> std::result::Result<Vec<u32>, IndexError> {
        if let Some(bad) = raw.iter().map(|&i| i.into()).find(|&i: &i64| i < 0 || i as u64 >= minor as u64) {
            return Err(IndexError::OutOfRange(bad));
        }
        Ok(raw.into_iter().map(|i| i.into() as u32).collect())
    }
    match width {
        IndexWidth::I32 => checked(ds.read_i32_rows(start, count).map_err(IndexError::Read)?, minor),
        IndexWidth::Other => checked(ds.read_i64_rows(start, count).map_err(IndexError::Read)?, minor),
    }
}

enum IndexError {
    Read(hdf5_pure::Error),
    OutOfRange(i64),
}

fn classify_codec(dt: &Datatype) -> Option<ValueCodec> {
    let plain_order = |o: &DatatypeByteOrder| matches!(o, DatatypeByteOrder::LittleEndian | DatatypeByteOrder::BigEndian);
    match dt {
        Datatype::FixedPoint { size, byte_order, layout: FixedPointLayout { bit_offset, bit_precision, .. } } => {
            let full_width = matches!(size, 1 | 2 | 4 | 8) && *bit_offset == 0 && u32::from(*bit_precision) == size * 8;
            (full_width && plain_order(byte_order)).then_some(ValueCodec::Native { integer: true })
        }
        Datatype::FloatingPoint { size, byte_order, layout } if plain_order(byte_order) => match size {
            4 if *layout == FloatingPointLayout::IEEE754_BINARY32 => Some(ValueCodec::Native { integer: false }),
            8 if *layout == FloatingPointLayout::IEEE754_BINARY64 => Some(ValueCodec::Native { integer: false }),
            2 if *layout == IEEE754_BINARY16 => Some(ValueCodec::Half { big_endian: matches!(byte_order, DatatypeByteOrder::BigEndian) }),
            _ => None,
        },
        Datatype::Enumeration { base_type, .. } => match classify_codec(base_type) {
            Some(ValueCodec::Native { integer: true }) => Some(ValueCodec::Native { integer: true }),
            _ => None,
        },
        _ => None,
    }
}

/// A stored type in words, for error messages: `float16`, `a 128-bit float`, `string`.
fn describe_datatype(dt: &Datatype) -> String {
    match dt {
        Datatype::FloatingPoint { size, layout, byte_order } => {
            let known =
                matches!((*size, *layout), (2, IEEE754_BINARY16) | (4, FloatingPointLayout::IEEE754_BINARY32) | (8, FloatingPointLayout::IEEE754_BINARY64));
            if !known {
                format!("a {}-bit float with a non-IEEE layout ({} significant bits)", size * 8, layout.bit_precision)
            } else if matches!(byte_order, DatatypeByteOrder::Vax) {
                format!("a VAX-ordered {}-bit float", size * 8)
            } else {
                format!("float{}", size * 8)
            }
        }
        Datatype::FixedPoint { size, layout, .. } => {
            let kind = if layout.signed { "int" } else { "uint" };
            if u32::from(layout.bit_precision) == size * 8 && layout.bit_offset == 0 {
                format!("{kind}{}", size * 8)
            } else {
                format!("a {}-bit integer of {} significant bits at offset {}", size * 8, layout.bit_precision, layout.bit_offset)
            }
        }
        Datatype::Time { .. } => "a time type".to_string(),
        Datatype::String { .. } => "fixed-length strings".to_string(),
        Datatype::BitField { .. } => "a bit field".to_string(),
        Datatype::Opaque { .. } => "opaque bytes".to_string(),
        Datatype::Compound { .. } => "a compound type (e.g. complex numbers)".to_string(),
        Datatype::Reference { .. } => "object references".to_string(),
        Datatype::Enumeration { base_type, .. } => format!("an enumeration over {}", describe_datatype(base_type)),
        Datatype::VariableLength { is_string: true, .. } => "variable-length strings".to_string(),
        Datatype::VariableLength { .. } => "variable-length sequences".to_string(),
        Datatype::Array { base_type, .. } => format!("arrays of {}", describe_datatype(base_type)),
        _ => format!("an HDF5 type of {} bytes this reader does not know", dt.type_size()),
    }
}

/// IEEE 754 binary16 → f64, exactly (every half value is an f64 value).
pub(crate) fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x03ff);
    match exponent {
        // Zero and subnormals: mantissa · 2^-24.
        0 => sign * mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + mantissa / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Reads `count` rows (the first dimension) of `ds` starting at `start`, as `f64`.
fn read_rows(ds: &Dataset, codec: ValueCodec, start: u64, count: u64) -> std::result::Result<Vec<f64>, hdf5_pure::Error> {
    match codec {
        ValueCodec::Native { .. } => ds.read_f64_rows(start, count),
        ValueCodec::Half { big_endian } => {
            let raw = ds.read_raw_rows(start, count)?;
            Ok(raw.chunks_exact(2).map(|b| f16_to_f64(if big_endian { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })).collect())
        }
    }
}

/// A streamed matrix (cells × genes).
pub struct Matrix<'a> {
    h5ad: &'a H5ad,
    slot: MatrixSlot,
    n_obs: usize,
    n_vars: usize,
    storage: Storage,
}

/// A block of consecutive rows (cells) or columns (genes), in compressed form:
/// entry `k` of `indices`/`values` belongs to the `i`-th row/column of the block when
/// `indptr[i] <= k < indptr[i + 1]`. Zeros may be absent (sparse) or present (dense).
pub struct Block<'b> {
    pub orientation: Orientation,
    pub first: usize,
    pub indptr: &'b [usize],
    pub indices: &'b [u32],
    pub values: &'b [f64],
}

/// A [`Block`] that owns its buffers.
pub struct OwnedBlock {
    pub orientation: Orientation,
    pub first: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f64>,
}

impl OwnedBlock {
    pub fn copied(b: &Block<'_>) -> OwnedBlock {
        OwnedBlock { orientation: b.orientation, first: b.first, indptr: b.indptr.to_vec(), indices: b.indices.to_vec(), values: b.values.to_vec() }
    }

    pub fn borrow(&self) -> Block<'_> {
        Block { orientation: self.orientation, first: self.first, indptr: &self.indptr, indices: &self.indices, values: &self.values }
    }
}

impl<'a> Matrix<'a> {
    pub fn n_obs(&self) -> usize {
        self.n_obs
    }

    pub fn n_vars(&self) -> usize {
        self.n_vars
    }

    pub fn orientation(&self) -> Orientation {
        match &self.storage {
            Storage::Sparse { orientation, .. } => *orientation,
            Storage::Dense { .. } => Orientation::Rows,
        }
    }

    /// A description for logs and manifests, e.g. `X (csr_matrix)`.
    pub fn describe(&self) -> String {
        let enc = match &self.storage {
            Storage::Sparse { orientation: Orientation::Rows, .. } => "csr_matrix",
            Storage::Sparse { orientation: Orientation::Columns, .. } => "csc_matrix",
            Storage::Dense { .. } => "dense array",
        };
        format!("{} ({enc}, {} x {})", self.slot, self.n_obs, self.n_vars)
    }

    fn err(&self, what: &str, e: hdf5_pure::Error) -> Error {
        self.h5ad.err(format!("{}: {what}: {e}", self.slot))
    }

    /// A read that returned another number of values than asked for is an error, never
    /// a short block for the caller to index past.
    fn check_count(&self, what: &str, got: usize, expected: u64) -> Result<()> {
        if got as u64 == expected {
            Ok(())
        } else {
            Err(self.h5ad.err(format!(
                "{}: reading {what} gave {got} values where {expected} were expected; the file is corrupt or uses a stored type this reader cannot decode",
                self.slot
            )))
        }
    }

    /// Streams the whole matrix through `visit`, block by block, in storage order.
    pub fn visit<F>(&self, mut visit: F) -> Result<()>
    where
        F: FnMut(Block<'_>) -> Result<()>,
    {
        self.visit_owned(|b| visit(b.borrow()))
    }

    /// [`Matrix::visit`] handing each block over with its buffers, so that a visitor on
    /// another thread takes them without a copy.
    pub fn visit_owned<F>(&self, mut visit: F) -> Result<()>
    where
        F: FnMut(OwnedBlock) -> Result<()>,
    {
        match &self.storage {
            Storage::Sparse { orientation, data, codec, indices, index_width, indptr } => {
                let minor = match orientation {
                    Orientation::Rows => self.n_vars,
                    Orientation::Columns => self.n_obs,
                };
                let major = indptr.len() - 1;
                let mut start = 0;
                while start < major {
                    // Grow the block until it holds BLOCK_VALUES entries (at least one row).
                    let base = indptr[start];
                    let mut end = start + 1;
                    while end < major && (indptr[end + 1] - base) as u64 <= BLOCK_VALUES {
                        end += 1;
                    }
                    let (lo, hi) = (base as u64, indptr[end] as u64);
                    let values = if hi > lo { read_rows(data, *codec, lo, hi - lo).map_err(|e| self.err("reading data", e))? } else { Vec::new() };
                    let idx = if hi > lo {
                        read_index_rows(indices, *index_width, lo, hi - lo, minor).map_err(|e| match e {
                            IndexError::Read(e) => self.err("reading indices", e),
                            IndexError::OutOfRange(i) => self.h5ad.err(format!("{}: index {i} out of range 0..{minor}", self.slot)),
                        })?
                    } else {
                        Vec::new()
                    };
                    self.check_count("data", values.len(), hi - lo)?;
                    self.check_count("indices", idx.len(), hi - lo)?;
                    let local_ptr = indptr[start..=end].iter().map(|&p| (p - base) as usize).collect();
                    visit(OwnedBlock { orientation: *orientation, first: start, indptr: local_ptr, indices: idx, values })?;
                    start = end;
                }
                Ok(())
            }
            Storage::Dense { data, codec } => {
                let rows_per_block = ((BLOCK_VALUES as usize) / self.n_vars.max(1)).max(1);
                let mut start = 0;
                while start < self.n_obs {
                    let count = rows_per_block.min(self.n_obs - start);
                    let dense = read_rows(data, *codec, start as u64, count as u64).map_err(|e| self.err("reading rows", e))?;
                    self.check_count("rows", dense.len(), (count * self.n_vars) as u64)?;
                    let (mut local_ptr, mut idx, mut vals) = (Vec::with_capacity(count + 1), Vec::new(), Vec::new());
                    local_ptr.push(0);
                    for r in 0..count {
                        for (j, &v) in dense[r * self.n_vars..(r + 1) * self.n_vars].iter().enumerate() {
                            if v != 0.0 {
                                idx.push(j as u32);
                                vals.push(v);
                            }
                        }
                        local_ptr.push(idx.len());
                    }
                    visit(OwnedBlock { orientation: Orientation::Rows, first: start, indptr: local_ptr, indices: idx, values: vals })?;
                    start += count;
                }
                Ok(())
            }
        }
    }
}

fn attr_str(attrs: &HashMap<String, AttrValue>, name: &str) -> Option<String> {
    attrs.get(name).and_then(|a| a.as_str()).map(str::to_string)
}

fn attr_shape(a: &AttrValue) -> Option<(u64, u64)> {
    let v: Vec<i64> = match a {
        AttrValue::I64Array(v) => v.clone(),
        AttrValue::I32Array(v) => v.iter().map(|&x| x as i64).collect(),
        AttrValue::U64Array(v) => v.iter().map(|&x| x as i64).collect(),
        AttrValue::U32Array(v) => v.iter().map(|&x| x as i64).collect(),
        _ => return None,
    };
    match v.as_slice() {
        [r, c] if *r >= 0 && *c >= 0 => Some((*r as u64, *c as u64)),
        _ => None,
    }
}

fn is_string_dtype(ds: &Dataset) -> bool {
    matches!(ds.dtype(), Ok(hdf5_pure::DType::String) | Ok(hdf5_pure::DType::VariableLengthString))
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_bits_convert_exactly() {
        assert_eq!(f16_to_f64(0x0000), 0.0);
        assert!(f16_to_f64(0x8000) == 0.0 && f16_to_f64(0x8000).is_sign_negative());
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0x4000), 2.0);
        assert_eq!(f16_to_f64(0x4900), 10.0);
        assert_eq!(f16_to_f64(0xc500), -5.0);
        assert_eq!(f16_to_f64(0x3555), 0.333251953125);
        assert_eq!(f16_to_f64(0x7bff), 65504.0, "largest finite half");
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24), "smallest subnormal");
        assert_eq!(f16_to_f64(0x0400), 2f64.powi(-14), "smallest normal");
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
        assert_eq!(f16_to_f64(0xfc00), f64::NEG_INFINITY);
        assert!(f16_to_f64(0x7e00).is_nan());
        // Every integer count up to 2048 is exact in half precision.
        for n in 0..=2048u16 {
            let bits = if n == 0 { 0 } else { half_bits_of(n) };
            assert_eq!(f16_to_f64(bits), f64::from(n));
        }
    }

    /// The binary16 encoding of a small positive integer (test helper).
    fn half_bits_of(n: u16) -> u16 {
        let e = 15 - n.leading_zeros() as u16; // floor(log2 n)
        let mantissa = ((u32::from(n) << 10) >> e) as u16 & 0x3ff;
        ((e + 15) << 10) | mantissa
    }

    fn float(size: u32, layout: FloatingPointLayout, byte_order: DatatypeByteOrder) -> Datatype {
        Datatype::FloatingPoint { size, byte_order, layout }
    }

    #[test]
    fn stored_types_map_to_a_decoder_or_to_none() {
        use DatatypeByteOrder::{BigEndian, LittleEndian, Vax};
        assert_eq!(classify_codec(&hdf5_pure::make_f32_type()), Some(ValueCodec::Native { integer: false }));
        assert_eq!(classify_codec(&hdf5_pure::make_f64_type()), Some(ValueCodec::Native { integer: false }));
        assert_eq!(classify_codec(&hdf5_pure::make_i32_type()), Some(ValueCodec::Native { integer: true }));
        assert_eq!(classify_codec(&hdf5_pure::make_u8_type()), Some(ValueCodec::Native { integer: true }));
        assert_eq!(classify_codec(&float(2, IEEE754_BINARY16, LittleEndian)), Some(ValueCodec::Half { big_endian: false }));
        assert_eq!(classify_codec(&float(2, IEEE754_BINARY16, BigEndian)), Some(ValueCodec::Half { big_endian: true }));
        // bfloat16, x87 long double, VAX order: named errors, never an empty read.
        let bf16 = FloatingPointLayout { exponent_location: 7, exponent_size: 8, mantissa_size: 7, exponent_bias: 127, ..IEEE754_BINARY16 };
        assert_eq!(classify_codec(&float(2, bf16, LittleEndian)), None);
        let long_double = FloatingPointLayout {
            bit_offset: 0,
            bit_precision: 80,
            exponent_location: 64,
            exponent_size: 15,
            mantissa_location: 0,
            mantissa_size: 64,
            exponent_bias: 16383,
        };
        assert_eq!(classify_codec(&float(16, long_double, LittleEndian)), None);
        assert!(describe_datatype(&float(16, long_double, LittleEndian)).contains("128-bit float"));
        assert_eq!(classify_codec(&float(4, FloatingPointLayout::IEEE754_BINARY32, Vax)), None);
        let packed = Datatype::FixedPoint { size: 4, byte_order: LittleEndian, layout: FixedPointLayout { signed: true, bit_offset: 4, bit_precision: 20 } };
        assert_eq!(classify_codec(&packed), None);
        assert_eq!(describe_datatype(&float(2, IEEE754_BINARY16, LittleEndian)), "float16");
    }
}

//! Hostile inputs: stored types the reader must decode or name, screens with nothing to
//! learn from, missing CSV values and condition labels that mix syntaxes. Every failure
//! is one line naming the file, and nothing is written.

use std::path::{Path, PathBuf};

use hdf5_pure::{AttrValue, Datatype, DatatypeByteOrder, FileBuilder, FloatingPointLayout};
use perturb_core::schema::{conditions as cs, pseudobulk as ps};
use perturb_core::{ConditionSyntax, Table};
use perturb_ingest::{ingest, IngestOptions, InputFormat};

/// How the test writer stores X.
#[derive(Clone, Copy, PartialEq)]
enum Stored {
    F32,
    /// IEEE binary16, as numpy's float16 (little endian).
    F16,
    /// bfloat16 (the top half of an f32), which no AnnData writer produces.
    Bf16,
}

/// The binary16 bits of an f32 that half precision holds exactly (test values only).
fn half_bits(x: f32) -> u16 {
    if x == 0.0 {
        return 0;
    }
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exponent = ((b >> 23) & 0xff) as i32 - 127 + 15;
    assert!((1..31).contains(&exponent) && b & 0x1fff == 0, "{x} is not exact in half precision");
    sign | ((exponent as u16) << 10) | ((b >> 13) & 0x3ff) as u16
}

fn float16_type(exponent_size: u8, exponent_bias: u32) -> Datatype {
    let mantissa_size = 15 - exponent_size;
    Datatype::FloatingPoint {
        size: 2,
        byte_order: DatatypeByteOrder::LittleEndian,
        layout: FloatingPointLayout {
            bit_offset: 0,
            bit_precision: 16,
            exponent_location: mantissa_size,
            exponent_size,
            mantissa_location: 0,
            mantissa_size,
            exponent_bias,
        },
    }
}

fn encoding(kind: &str, version: &str) -> [(&'static str, AttrValue); 2] {
    [("encoding-type", AttrValue::String(kind.into())), ("encoding-version", AttrValue::String(version.into()))]
}

fn string_array(ds: &mut hdf5_pure::DatasetBuilder, values: &[&str]) {
    ds.with_vlen_strings(values);
    for (k, v) in encoding("string-array", "0.2.0") {
        ds.set_attr(k, v);
    }
}

fn values_dataset(ds: &mut hdf5_pure::DatasetBuilder, values: &[f32], stored: Stored, shape: &[u64]) {
    match stored {
        Stored::F32 => ds.with_f32_data(values),
        Stored::F16 => ds.with_raw_data(float16_type(5, 15), values.iter().flat_map(|&v| half_bits(v).to_le_bytes()).collect(), values.len() as u64),
        Stored::Bf16 => {
            ds.with_raw_data(float16_type(8, 127), values.iter().flat_map(|&v| ((v.to_bits() >> 16) as u16).to_le_bytes()).collect(), values.len() as u64)
        }
    };
    ds.with_shape(shape);
}

/// A minimal AnnData file (the layout anndata ≥ 0.8 writes): X as csr_matrix or dense,
/// obs/condition categorical, var index = gene names. `x` is cells × genes.
fn write_h5ad(path: &Path, labels: &[&str], genes: &[&str], x: &[Vec<f32>], stored: Stored, dense: bool) {
    let (n_obs, n_var) = (labels.len(), genes.len());
    let mut b = FileBuilder::new();
    for (k, v) in encoding("anndata", "0.1.0") {
        b.set_attr(k, v);
    }
    if dense {
        let flat: Vec<f32> = x.iter().flatten().copied().collect();
        let ds = b.create_dataset("X");
        values_dataset(ds, &flat, stored, &[n_obs as u64, n_var as u64]);
        for (k, v) in encoding("array", "0.2.0") {
            ds.set_attr(k, v);
        }
    } else {
        let (mut data, mut indices, mut indptr) = (Vec::new(), Vec::new(), vec![0i64]);
        for row in x {
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    data.push(v);
                    indices.push(j as i32);
                }
            }
            indptr.push(data.len() as i64);
        }
        let mut g = b.create_group("X");
        for (k, v) in encoding("csr_matrix", "0.1.0") {
            g.set_attr(k, v);
        }
        g.set_attr("shape", AttrValue::I64Array(vec![n_obs as i64, n_var as i64]));
        values_dataset(g.create_dataset("data"), &data, stored, &[data.len() as u64]);
        g.create_dataset("indices").with_i32_data(&indices);
        g.create_dataset("indptr").with_i64_data(&indptr);
        b.add_group(g.finish());
    }
    let mut obs = b.create_group("obs");
    for (k, v) in encoding("dataframe", "0.2.0") {
        obs.set_attr(k, v);
    }
    obs.set_attr("_index", AttrValue::String("_index".into()));
    obs.set_attr("column-order", AttrValue::StringArray(vec!["condition".into()]));
    let cells: Vec<String> = (0..n_obs).map(|i| format!("c{i}")).collect();
    string_array(obs.create_dataset("_index"), &cells.iter().map(String::as_str).collect::<Vec<_>>());
    let mut categories: Vec<&str> = labels.to_vec();
    categories.sort();
    categories.dedup();
    let codes: Vec<i8> = labels.iter().map(|l| categories.iter().position(|c| c == l).unwrap() as i8).collect();
    let mut condition = obs.create_group("condition");
    for (k, v) in encoding("categorical", "0.2.0") {
        condition.set_attr(k, v);
    }
    condition.set_attr("ordered", AttrValue::U8(0));
    condition.create_dataset("codes").with_i8_data(&codes);
    string_array(condition.create_dataset("categories"), &categories);
    obs.add_group(condition.finish());
    b.add_group(obs.finish());
    let mut var = b.create_group("var");
    for (k, v) in encoding("dataframe", "0.2.0") {
        var.set_attr(k, v);
    }
    var.set_attr("_index", AttrValue::String("_index".into()));
    var.set_attr("column-order", AttrValue::StringArray(vec![]));
    string_array(var.create_dataset("_index"), genes);
    b.add_group(var.finish());
    std::fs::write(path, b.finish().unwrap()).unwrap();
}

const LABELS: [&str; 6] = ["ctrl", "ctrl", "A+ctrl", "A+ctrl", "B+ctrl", "A+B"];
const GENES: [&str; 4] = ["A", "B", "C", "D"];

fn counts() -> Vec<Vec<f32>> {
    vec![
        vec![1.0, 3.0, 0.0, 2.0],
        vec![3.0, 1.0, 0.0, 5.0],
        vec![0.0, 2.0, 2.0, 9.0],
        vec![4.0, 0.0, 4.0, 1.0],
        vec![7.0, 0.0, 1.0, 0.0],
        vec![0.0, 0.0, 6.0, 2048.0],
    ]
}

fn run(opts: IngestOptions) -> (tempfile::TempDir, PathBuf, perturb_core::Result<perturb_ingest::IngestSummary>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let result = ingest(&IngestOptions { out: out.clone(), n_top_genes: 2, ..opts });
    (dir, out, result)
}

fn means(out: &Path) -> Vec<f64> {
    let p = out.join(ps::FILE);
    Table::read_parquet(&p).unwrap().floats(ps::MEAN, &p).unwrap().to_vec()
}

/// The error of a run that must fail: one line, naming the input file, nothing written.
fn refused(opts: IngestOptions) -> String {
    let input = opts.input.clone();
    let (_dir, out, result) = run(opts);
    let err = match result {
        Ok(_) => panic!("{} was accepted", input.display()),
        Err(e) => e.to_string(),
    };
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(input.file_name().unwrap().to_str().unwrap()), "error names the file: {err}");
    assert!(!out.exists(), "nothing written: {err}");
    err
}

#[test]
fn float16_x_is_read_like_float32_sparse_and_dense() {
    let dir = tempfile::tempdir().unwrap();
    for dense in [false, true] {
        let f32_path = dir.path().join(format!("f32_{dense}.h5ad"));
        let f16_path = dir.path().join(format!("f16_{dense}.h5ad"));
        write_h5ad(&f32_path, &LABELS, &GENES, &counts(), Stored::F32, dense);
        write_h5ad(&f16_path, &LABELS, &GENES, &counts(), Stored::F16, dense);
        let stored = hdf5_pure::File::open(&f16_path).unwrap().dataset(if dense { "X" } else { "X/data" }).unwrap().element_size().unwrap();
        assert_eq!(stored, 2, "the fixture really holds 2-byte values");
        let (_a, out32, s32) = run(IngestOptions::new(&f32_path, "unused"));
        let (_b, out16, s16) = run(IngestOptions::new(&f16_path, "unused"));
        let (s32, s16) = (s32.unwrap(), s16.unwrap_or_else(|e| panic!("{e}")));
        assert_eq!((s16.n_cells, s16.n_genes, s16.n_conditions), (6, 4, 4));
        assert_eq!(s16.value_scale, "counts");
        assert_eq!(s32.n_highly_variable, s16.n_highly_variable);
        assert_eq!(means(&out16), means(&out32), "dense = {dense}");
    }
    // Log-normalised half values (exact in binary16) are read exactly too.
    let lognorm: Vec<Vec<f32>> = counts().iter().map(|r| r.iter().map(|&v| if v == 0.0 { 0.0 } else { 0.25 + (v % 8.0) / 4.0 }).collect()).collect();
    let path = dir.path().join("f16_lognorm.h5ad");
    write_h5ad(&path, &LABELS, &GENES, &lognorm, Stored::F16, false);
    let (_c, out, s) = run(IngestOptions::new(&path, "unused"));
    assert_eq!(s.unwrap_or_else(|e| panic!("{e}")).value_scale, "lognorm");
    let ctrl_a = (f64::from(lognorm[0][0]) + f64::from(lognorm[1][0])) / 2.0;
    assert_eq!(means(&out)[0], ctrl_a);
}

#[test]
fn a_stored_type_the_reader_cannot_decode_is_named_not_read_as_nothing() {
    // bfloat16: hdf5-pure decodes it to zero values, which must not reach the pass.
    let dir = tempfile::tempdir().unwrap();
    for dense in [false, true] {
        let path = dir.path().join("bf16.h5ad");
        write_h5ad(&path, &LABELS, &GENES, &counts(), Stored::Bf16, dense);
        let err = refused(IngestOptions::new(&path, "unused"));
        assert!(err.contains("is stored as a 16-bit float with a non-IEEE layout") && err.contains("not supported"), "{err}");
        assert!(err.contains(if dense { ": X is stored" } else { ": X/data is stored" }), "{err}");
    }
}

#[test]
fn a_screen_without_genes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_genes.h5ad");
    write_h5ad(&path, &LABELS, &[], &vec![vec![]; LABELS.len()], Stored::F32, false);
    let err = refused(IngestOptions::new(&path, "unused"));
    assert!(err.contains("has no genes"), "{err}");
}

#[test]
fn a_screen_without_perturbed_conditions_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("only_control.h5ad");
    write_h5ad(&path, &["ctrl", "ctrl", "ctrl"], &GENES, &counts()[..3], Stored::F32, false);
    let err = refused(IngestOptions::new(&path, "unused"));
    assert!(err.contains("has no perturbed conditions besides the control 'ctrl'"), "{err}");

    let csv = dir.path().join("only_control.csv");
    std::fs::write(&csv, "cell,condition,G1,G2\nc1,ctrl,1,2\nc2,ctrl,3,0\n").unwrap();
    let err = refused(IngestOptions::new(&csv, "unused"));
    assert!(err.contains("has no perturbed conditions"), "{err}");

    let pb = dir.path().join("only_control_pb.csv");
    std::fs::write(&pb, "condition,G1,G2\nctrl,1.5,0.25\n").unwrap();
    let mut opts = IngestOptions::new(&pb, "unused");
    opts.format = InputFormat::CsvPseudobulk;
    let err = refused(opts);
    assert!(err.contains("has no perturbed conditions"), "{err}");
}

#[test]
fn a_screen_without_cells_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_cells.h5ad");
    write_h5ad(&path, &[], &GENES, &[], Stored::F32, false);
    let err = refused(IngestOptions::new(&path, "unused"));
    assert!(err.contains("has no cells"), "{err}");
}

#[test]
fn empty_csv_cells_are_errors_unless_missing_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    // pandas writes NaN as an empty cell.
    let counts = dir.path().join("counts.csv");
    std::fs::write(&counts, "cell,condition,G1,G2,G3\nc1,ctrl,1,3,0\nc2,ctrl,3,,0\nc3,A+ctrl,0,2,2\nc4,A+ctrl,4,0,4\n").unwrap();
    let err = refused(IngestOptions::new(&counts, "unused"));
    assert!(err.contains("line 3, column 'G2': empty cell") && err.contains("--missing-as-zero"), "{err}");
    let mut opts = IngestOptions::new(&counts, "unused");
    opts.missing_as_zero = true;
    let (_d, out, s) = run(opts);
    assert_eq!(s.unwrap_or_else(|e| panic!("{e}")).n_cells, 4);
    // ctrl, G2: c1 has 3 of 4 counts, c2 has 0 (the empty cell) of 3.
    let want = ((7500f64).ln_1p() + 0.0) / 2.0;
    assert!((means(&out)[1] - want).abs() < 1e-12);

    // NaN or inf spelled out is an error even with --missing-as-zero.
    for text in ["NaN", "nan", "inf", "-Infinity"] {
        let path = dir.path().join("nan.csv");
        std::fs::write(&path, format!("cell,condition,G1,G2\nc1,ctrl,1,{text}\nc2,A+ctrl,3,1\n")).unwrap();
        let mut opts = IngestOptions::new(&path, "unused");
        opts.missing_as_zero = true;
        let err = refused(opts);
        assert!(err.contains(&format!("line 2, column 'G2': '{text}' is not a finite number")), "{err}");
    }

    let pb = dir.path().join("pb.csv");
    std::fs::write(&pb, "condition,n_cells,G1,G2\nctrl,10,1.5,0.25\nA+ctrl,4,,0.5\n").unwrap();
    let mut opts = IngestOptions::new(&pb, "unused");
    opts.format = InputFormat::CsvPseudobulk;
    let err = refused(opts.clone());
    assert!(err.contains("line 3, column 'G1': empty cell"), "{err}");
    opts.missing_as_zero = true;
    let (_e, out, s) = run(opts);
    s.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(means(&out), [1.5, 0.25, 0.0, 0.5]);
}

fn csv_with_labels(dir: &Path, name: &str, labels: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut text = String::from("cell,condition,AHR,FEV,G3\n");
    for (i, l) in labels.iter().enumerate() {
        text.push_str(&format!("c{i},{l},{},{},1\n", i % 3, (i + 1) % 2));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn labels_in_the_other_syntax_are_refused_with_the_label_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A GEARS double read as scPerturb would be one gene "AHR+FEV".
    let path = csv_with_labels(dir.path(), "gears_as_scperturb.csv", &["control", "AHR", "AHR+FEV"]);
    let mut opts = IngestOptions::new(&path, "unused");
    opts.syntax = ConditionSyntax::ScPerturb;
    opts.control = Some("control".into());
    let err = refused(opts);
    assert!(err.contains("'AHR+FEV'") && err.contains("--condition-syntax gears"), "{err}");

    // A scPerturb-style token inside GEARS labels would be a gene "AHR_ctrl".
    for syntax in [ConditionSyntax::Gears, ConditionSyntax::Auto] {
        let path = csv_with_labels(dir.path(), "mixed.csv", &["ctrl", "AHR_ctrl", "AHR+FEV"]);
        let mut opts = IngestOptions::new(&path, "unused");
        opts.syntax = syntax;
        let err = refused(opts);
        assert!(err.contains("'AHR_ctrl'") && err.contains("mixes"), "{err}");
    }

    // Gene names with '_' or '-' that hold no control word still parse, in both syntaxes.
    let path = dir.path().join("underscores.csv");
    std::fs::write(&path, "cell,condition,G1\nc0,ctrl,1\nc1,HLA-A+ctrl,2\nc2,MT_ND1+ctrl,3\nc3,HLA-A+MT_ND1,4\n").unwrap();
    let (_d, out, s) = run(IngestOptions::new(&path, "unused"));
    assert_eq!(s.unwrap_or_else(|e| panic!("{e}")).n_doubles, 1);
    let p = out.join(cs::FILE);
    assert_eq!(Table::read_parquet(&p).unwrap().strings(cs::CONDITION, &p).unwrap(), ["ctrl", "HLA-A", "MT_ND1", "HLA-A+MT_ND1"]);
}

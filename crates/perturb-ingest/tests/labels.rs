//! How ingest finds what a screen's labels mean when the user says nothing: the condition
//! column, the control label, guide-level labels that must not become genes, and contexts
//! (`--subset`). Runs on CSV tables written here and on the real screens committed under
//! `data/examples/`.

use std::path::{Path, PathBuf};

use perturb_core::condition::guide_token;
use perturb_core::schema::conditions as cs;
use perturb_core::{ConditionSyntax, Table};
use perturb_ingest::{ingest, IngestOptions, IngestSummary};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/examples").join(name)
}

const PAPALEXI: &str = "papalexi2021_lowmoi_299genes_20729cells.h5ad";
const DATLINGER: &str = "datlinger2021_subset_7500cells_2000genes.h5ad";

fn run(opts: IngestOptions) -> (tempfile::TempDir, PathBuf, perturb_core::Result<IngestSummary>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let result = ingest(&IngestOptions { out: out.clone(), ..opts });
    (dir, out, result)
}

fn ok(opts: IngestOptions) -> (tempfile::TempDir, PathBuf, IngestSummary) {
    let (d, out, r) = run(opts);
    (d, out, r.unwrap_or_else(|e| panic!("{e}")))
}

/// The error of a run that must fail: one line, naming the input, nothing written.
fn refused(opts: IngestOptions) -> String {
    let input = opts.input.clone();
    let (_d, out, r) = run(opts);
    let err = match r {
        Ok(_) => panic!("{} was accepted", input.display()),
        Err(e) => e.to_string(),
    };
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(input.file_name().unwrap().to_str().unwrap()), "names the file: {err}");
    assert!(!out.exists(), "nothing written: {err}");
    err
}

fn conditions(out: &Path) -> Vec<String> {
    let p = out.join(cs::FILE);
    Table::read_parquet(&p).unwrap().strings(cs::CONDITION, &p).unwrap().to_vec()
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

/// A cells × genes count CSV with these columns before the genes G1, G2.
fn csv(dir: &Path, name: &str, columns: &[&str], rows: &[&[&str]]) -> PathBuf {
    let path = dir.join(name);
    let mut text = format!("cell,{},G1,G2\n", columns.join(","));
    for (i, r) in rows.iter().enumerate() {
        text.push_str(&format!("c{i},{},{},{}\n", r.join(","), 1 + i % 3, 2 + i % 2));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_condition_column_is_condition_else_the_first_known_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), "t.csv", &["target"], &[&["non-targeting"], &["non-targeting"], &["AHR"], &["AHR"]]);
    let (_d, out, s) = ok(IngestOptions::new(&path, "unused"));
    assert_eq!(s.condition_key, "target");
    assert_eq!(s.control, "non-targeting");
    assert_eq!(conditions(&out), ["ctrl", "AHR"]);
    assert!(s.warnings.iter().any(|w| w.contains("condition labels read from column 'target'")), "{:?}", s.warnings);
    assert!(s.warnings.iter().any(|w| w.contains("control cells: the label 'non-targeting'")), "{:?}", s.warnings);
    let m = manifest(&out);
    assert_eq!(m["parameters"]["condition_key"], "target");
    assert_eq!(m["parameters"]["condition_key_detected"], true);
    assert_eq!(m["parameters"]["control"], "non-targeting");
    assert_eq!(m["parameters"]["control_detected"], true);

    // `condition` wins when present, with no note; GEARS' own ctrl needs no note either.
    let path = csv(dir.path(), "c.csv", &["condition"], &[&["ctrl"], &["AHR+ctrl"]]);
    let (_d, _out, s) = ok(IngestOptions::new(&path, "unused"));
    assert_eq!((s.condition_key.as_str(), s.control.as_str()), ("condition", "ctrl"));
    assert!(s.warnings.iter().all(|w| !w.contains("condition labels read") && !w.contains("control cells:")), "{:?}", s.warnings);

    // None of the known columns: the error lists them and the table's columns.
    let path = csv(dir.path(), "none.csv", &["guide"], &[&["ctrl"], &["AHR"]]);
    let err = refused(IngestOptions::new(&path, "unused"));
    assert!(err.contains("no condition column: none of condition, target") && err.contains("cell, guide, G1") && err.contains("--condition-key"), "{err}");
}

#[test]
fn the_control_label_is_detected_ignoring_case_and_must_be_unique() {
    let dir = tempfile::tempdir().unwrap();
    for (control, syntax_label) in [("Non-Targeting", "AHR"), ("NTC", "AHR"), ("control", "AHR_FEV"), ("safe-targeting", "AHR")] {
        let path = csv(dir.path(), "a.csv", &["target"], &[&[control], &[control], &[syntax_label], &["FEV"]]);
        let (_d, out, s) = ok(IngestOptions::new(&path, "unused"));
        assert_eq!(s.control, control);
        assert_eq!(conditions(&out)[0], "ctrl");
        assert_eq!(conditions(&out).len(), 3, "{control}");
    }
    // Two control labels: which one is the control is the user's call.
    let path = csv(dir.path(), "two.csv", &["target"], &[&["non-targeting"], &["safe-targeting"], &["AHR"]]);
    let err = refused(IngestOptions::new(&path, "unused"));
    assert!(err.contains("several labels of column 'target' are control labels ('non-targeting', 'safe-targeting')") && err.contains("--control"), "{err}");
    // Naming one settles it; the other becomes a condition of its own, and a note says so.
    let mut opts = IngestOptions::new(&path, "unused");
    opts.control = Some("non-targeting".into());
    let (_d, out, s) = ok(opts);
    assert_eq!(s.control, "non-targeting");
    assert!(!m_control_detected(&out));
    assert!(s.warnings.iter().any(|w| w.contains("also holds the control label(s) 'safe-targeting'")), "{:?}", s.warnings);
    // GEARS' `ctrl` beside another --control would silently join that control: refused.
    let path = csv(dir.path(), "gears_two.csv", &["target"], &[&["NT"], &["ctrl"], &["AHR+ctrl"]]);
    let mut opts = IngestOptions::new(&path, "unused");
    opts.control = Some("NT".into());
    let err = refused(opts);
    assert!(err.contains("holds GEARS' control label 'ctrl' beside --control NT"), "{err}");
    // CTRL in capitals is an HGNC symbol, not a control.
    let path = csv(dir.path(), "gene.csv", &["target"], &[&["NT"], &["CTRL"], &["AHR"]]);
    let (_d, out, s) = ok(IngestOptions::new(&path, "unused"));
    assert_eq!(s.control, "NT");
    assert_eq!(conditions(&out), ["ctrl", "AHR", "CTRL"]);
    // No control: the labels that look like controls come first.
    let path = csv(dir.path(), "no.csv", &["target"], &[&["AHR"], &["BRD4"], &["CAV1"], &["Neg-Ctrl"], &["ZZZ3"]]);
    let err = refused(IngestOptions::new(&path, "unused"));
    assert!(err.contains("no control cells: no label of column 'target' is a known control label") && err.contains("(labels: Neg-Ctrl, AHR"), "{err}");
    assert!(err.contains("set --control"), "{err}");
}

fn m_control_detected(out: &Path) -> bool {
    manifest(out)["parameters"]["control_detected"].as_bool().unwrap()
}

#[test]
fn guide_labels_are_refused_with_the_target_column_suggested() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = IngestOptions::new(example(DATLINGER), "unused");
    opts.condition_key = Some("perturbation".into());
    let err = refused(opts);
    assert!(err.contains("obs/perturbation holds guide labels, not target genes (40 of 41 labels, e.g. 'DOK2_1', 'DOK2_2', 'EGR1_1', …"), "{err}");
    assert!(err.ends_with("use --condition-key target"), "{err}");
    let mut opts = IngestOptions::new(example(PAPALEXI), "unused");
    opts.condition_key = Some("grna_top".into());
    let err = refused(opts);
    assert!(
        err.contains("obs/grna_top holds guide labels") && err.contains("'ATF2g1' is no gene symbol") && err.ends_with("use --condition-key target"),
        "{err}"
    );
    // A guide-level control in a target column is refused too, before the control check.
    let path = csv(dir.path(), "ntc.csv", &["target"], &[&["AHR"], &["ntc_1"]]);
    let err = refused(IngestOptions::new(&path, "unused"));
    assert!(err.contains("'1' in 'ntc_1' is no gene symbol"), "{err}");
    // With no other known column, the hint says what to build.
    let path = csv(dir.path(), "g2.csv", &["condition"], &[&["ctrl"], &["ATF2g1+ctrl"]]);
    let err = refused(IngestOptions::new(&path, "unused"));
    assert!(err.contains("'ATF2g1' in 'ATF2g1+ctrl' is no gene symbol") && err.contains("put each cell's target gene in a column"), "{err}");
    // Real symbols that look a little like guide ids are genes.
    let genes = ["C1orf112", "H2AC6", "NKX2-1", "HLA-A", "MT-ND1", "NEUROG2", "LIG1", "C4B_2"];
    let rows: Vec<Vec<String>> = std::iter::once("ctrl".to_string()).chain(genes.iter().map(|g| format!("{g}+ctrl"))).map(|l| vec![l]).collect();
    let rows: Vec<Vec<&str>> = rows.iter().map(|r| r.iter().map(String::as_str).collect()).collect();
    let rows: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
    let path = csv(dir.path(), "genes.csv", &["condition"], &rows);
    let (_d, _out, s) = ok(IngestOptions::new(&path, "unused"));
    assert_eq!(s.n_singles, genes.len());
}

#[test]
fn no_official_gene_symbol_reads_as_a_guide_id() {
    // Every HGNC symbol the priors know, as a GEARS single and (when it has no '_', which
    // scPerturb would split) as a scPerturb label.
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/priors/gene_aliases.parquet");
    let t = Table::read_parquet(&p).unwrap();
    let symbols = t.strings("symbol", &p).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut flagged = Vec::new();
    for s in symbols.iter().filter(|s| seen.insert(s.as_str())) {
        if guide_token(&format!("{s}+ctrl"), ConditionSyntax::Gears, "ctrl").is_some()
            || (!s.contains('_') && guide_token(s, ConditionSyntax::ScPerturb, "control").is_some())
        {
            flagged.push(s.clone());
        }
    }
    assert!(seen.len() > 10_000, "the priors hold symbols ({})", seen.len());
    assert!(flagged.is_empty(), "gene symbols read as guide ids: {flagged:?}");
}

#[test]
fn real_screens_ingest_as_they_come() {
    let (_d, out, s) = ok(IngestOptions::new(example(PAPALEXI), "unused"));
    assert_eq!((s.condition_key.as_str(), s.control.as_str(), s.n_singles, s.n_cells), ("target", "non-targeting", 25, 20729));
    assert_eq!(conditions(&out)[0], "ctrl");
    // A replicate column is no context: no pooling note.
    assert!(s.warnings.iter().all(|w| !w.contains("pooled")), "{:?}", s.warnings);

    let (_d, _out, s) = ok(IngestOptions::new(example(DATLINGER), "unused"));
    assert_eq!((s.condition_key.as_str(), s.control.as_str(), s.n_singles, s.n_cells), ("target", "control", 20, 7500));
    let pooled: Vec<&String> = s.warnings.iter().filter(|w| w.contains("pooled")).collect();
    assert_eq!(pooled.len(), 1, "{:?}", s.warnings);
    assert!(pooled[0].starts_with("obs/perturbation_2 has 2 values (stimulated: 3859 cells, unstimulated: 3641 cells)"), "{}", pooled[0]);
    assert!(pooled[0].contains("--subset perturbation_2=stimulated"), "{}", pooled[0]);
}

#[test]
fn subset_keeps_one_context_and_records_it() {
    let mut cells = Vec::new();
    for value in ["stimulated", "unstimulated"] {
        let mut opts = IngestOptions::new(example(DATLINGER), "unused");
        opts.subset = vec![("perturbation_2".into(), value.into())];
        let (_d, out, s) = ok(opts);
        assert_eq!(s.n_singles, 20);
        assert_eq!(s.cells_outside_subset + s.n_cells, 7500);
        assert_eq!(s.cells_without_condition, 0);
        assert!(s.warnings.iter().all(|w| !w.contains("pooled")), "{:?}", s.warnings);
        assert_eq!(manifest(&out)["parameters"]["subset"], serde_json::json!({"perturbation_2": value}));
        cells.push(s.n_cells);
    }
    assert_eq!(cells, [3859, 3641]);
    // Several pairs are ANDed; a numeric column matches by value.
    let mut opts = IngestOptions::new(example(DATLINGER), "unused");
    opts.subset = vec![
        ("perturbation_2".into(), "stimulated".into()),
        ("percent_mito".into(), "0".into()),
        ("cell_line".into(), "Jurkat cells".into()),
        ("cancer".into(), "True".into()),
    ];
    let (_d, _out, s) = ok(opts);
    assert_eq!(s.n_cells, 3859);
}

#[test]
fn a_wrong_subset_is_refused_naming_what_is_there() {
    let with = |pairs: &[(&str, &str)]| {
        let mut opts = IngestOptions::new(example(DATLINGER), "unused");
        opts.subset = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        refused(opts)
    };
    let err = with(&[("perturbation_2", "stim")]);
    assert!(
        err.contains(
            "--subset perturbation_2=stim: no cell has the value 'stim' in obs/perturbation_2 (values: stimulated (3859 cells), unstimulated (3641 cells))"
        ),
        "{err}"
    );
    let err = with(&[("stimulus", "stimulated")]);
    assert!(err.contains("obs has no column 'stimulus' (columns: ") && err.contains("perturbation_2"), "{err}");
    let err = with(&[("nperts", "3")]);
    assert!(err.contains("no cell has the value '3' in obs/nperts (values: 2 (7300 cells), 1 (200 cells))"), "{err}");
    let err = with(&[("perturbation_2", "stimulated"), ("perturbation", "control"), ("nperts", "2")]);
    assert!(err.contains("--subset perturbation_2=stimulated perturbation=control nperts=2: no cell matches all of them"), "{err}");
    // The same column twice is an option error (no cell holds two values).
    let mut opts = IngestOptions::new(example(DATLINGER), "unused");
    opts.subset = vec![("perturbation_2".into(), "stimulated".into()), ("perturbation_2".into(), "unstimulated".into())];
    let (_d, out, r) = run(opts);
    let err = r.unwrap_err().to_string();
    assert!(err.contains("--subset") && err.contains("given twice"), "{err}");
    assert!(!out.exists());
    // A CSV has no obs to filter.
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), "c.csv", &["condition"], &[&["ctrl"], &["AHR+ctrl"]]);
    let mut opts = IngestOptions::new(&path, "unused");
    opts.subset = vec![("condition".into(), "ctrl".into())];
    let (_d, out, r) = run(opts);
    assert!(r.unwrap_err().to_string().contains("--subset"));
    assert!(!out.exists());
}

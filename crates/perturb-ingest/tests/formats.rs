//! Condition syntaxes, missing labels, CSV input and the real GEARS Norman file.

use std::path::{Path, PathBuf};

use perturb_core::schema::{conditions as cs, genes as gs, pseudobulk as ps};
use perturb_core::Table;
use perturb_ingest::{ingest, IngestOptions, InputFormat};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/h5ad").join(name)
}

fn ingest_to(opts: IngestOptions) -> (tempfile::TempDir, PathBuf, perturb_ingest::IngestSummary) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let opts = IngestOptions { out: out.clone(), ..opts };
    let summary = ingest(&opts).unwrap_or_else(|e| panic!("{e}"));
    (dir, out, summary)
}

fn conditions(out: &Path) -> Vec<String> {
    let p = out.join(cs::FILE);
    Table::read_parquet(&p).unwrap().strings(cs::CONDITION, &p).unwrap().to_vec()
}

#[test]
fn scperturb_labels_with_their_own_control_word() {
    let mut opts = IngestOptions::new(fixture("scperturb_style.h5ad"), "unused");
    opts.condition_key = Some("perturbation".into());
    opts.control = Some("control".into());
    let (_d, out, s) = ingest_to(opts);
    assert_eq!(conditions(&out), ["ctrl", "AAA", "BBB", "AAA+BBB"]);
    assert_eq!((s.n_singles, s.n_doubles), (2, 1));
}

#[test]
fn gears_labels_merge_and_unmeasured_targets_are_flagged_not_dropped() {
    let (_d, out, s) = ingest_to(IngestOptions::new(fixture("csr_f32.h5ad"), "unused"));
    let p = out.join(cs::FILE);
    let t = Table::read_parquet(&p).unwrap();
    let names = t.strings(cs::CONDITION, &p).unwrap();
    assert_eq!(names[0], "ctrl");
    assert!(names.iter().any(|n| n == "ZZZ9"), "{names:?}");
    let i = names.iter().position(|n| n == "ZZZ9").unwrap();
    assert_eq!(t.string_lists(cs::FLAGS, &p).unwrap()[i], ["target_not_measured:ZZZ9"]);
    assert_eq!(s.targets_not_measured, ["ZZZ9"]);
    // Kinds line up with gene counts.
    for (k, genes) in t.strings(cs::KIND, &p).unwrap().iter().zip(t.string_lists(cs::GENES, &p).unwrap()) {
        let want = match genes.len() {
            0 => "control",
            1 => "single",
            2 => "double",
            _ => "multi",
        };
        assert_eq!(k, want);
    }
}

#[test]
fn cells_with_a_missing_category_are_left_out_and_counted() {
    let (_d, out, s) = ingest_to(IngestOptions::new(fixture("missing_category.h5ad"), "unused"));
    assert_eq!(s.cells_without_condition, 5);
    let p = out.join(cs::FILE);
    let n: i64 = Table::read_parquet(&p).unwrap().ints(cs::N_CELLS, &p).unwrap().iter().sum();
    assert_eq!(n as u64, s.n_cells);
}

fn write(path: &Path, text: &str, gzip: bool) {
    use std::io::Write;
    if gzip {
        let f = std::fs::File::create(path).unwrap();
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap();
    } else {
        std::fs::write(path, text).unwrap();
    }
}

const COUNTS_CSV: &str = "cell,condition,G1,G2,G3\n\
c1,ctrl,1,3,0\n\
c2,ctrl,3,1,0\n\
c3,A+ctrl,0,2,2\n\
c4,A+ctrl,4,0,4\n";

#[test]
fn csv_counts_plain_and_gzip_give_normalised_pseudobulk() {
    let dir = tempfile::tempdir().unwrap();
    for gzip in [false, true] {
        let input = dir.path().join(if gzip { "counts.csv.gz" } else { "counts.csv" });
        write(&input, COUNTS_CSV, gzip);
        let mut opts = IngestOptions::new(&input, "unused");
        opts.n_top_genes = 2;
        let (_d, out, s) = ingest_to(opts);
        assert_eq!(s.value_scale, "counts");
        let p = out.join(ps::FILE);
        let t = Table::read_parquet(&p).unwrap();
        let mean = t.floats(ps::MEAN, &p).unwrap();
        // ctrl, G1: cells c1 (1 of 4 counts) and c2 (3 of 4): log1p(2500), log1p(7500).
        let want = ((2500f64).ln_1p() + (7500f64).ln_1p()) / 2.0;
        assert!((mean[0] - want).abs() < 1e-12, "{} vs {want}", mean[0]);
        // A, G3: log1p(5000) in both cells, variance 0.
        assert!((mean[5] - (5000f64).ln_1p()).abs() < 1e-12);
        assert_eq!(t.floats(ps::VARIANCE, &p).unwrap()[5], 0.0);
        let g = out.join(gs::FILE);
        assert_eq!(Table::read_parquet(&g).unwrap().strings(gs::GENE, &g).unwrap(), ["G1", "G2", "G3"]);
    }
}

#[test]
fn csv_pseudobulk_table_is_taken_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pb.tsv");
    write(&input, "condition\tn_cells\tG1\tG2\nctrl\t10\t1.5\t0.25\nB+A\t4\t2.0\t0.0\n", false);
    let mut opts = IngestOptions::new(&input, "unused");
    opts.format = InputFormat::CsvPseudobulk;
    let (_d, out, s) = ingest_to(opts);
    assert_eq!(s.n_doubles, 1);
    assert_eq!(conditions(&out), ["ctrl", "A+B"]);
    let p = out.join(ps::FILE);
    assert_eq!(Table::read_parquet(&p).unwrap().floats(ps::MEAN, &p).unwrap(), [1.5, 0.25, 2.0, 0.0]);
    let c = out.join(cs::FILE);
    assert_eq!(Table::read_parquet(&c).unwrap().ints(cs::N_CELLS, &c).unwrap(), [10, 4]);
}

/// The real GEARS-processed Norman 2019 subset prepared in ../shared (skips without it).
#[test]
fn real_gears_norman_subset() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/gears_norman_subset.h5ad");
    if !path.exists() {
        eprintln!("skipped: {} is absent (it lives outside the repository)", path.display());
        return;
    }
    let mut opts = IngestOptions::new(&path, "unused");
    opts.gene_key = Some("feature_name".into());
    let (_d, out, s) = ingest_to(opts);
    assert_eq!(s.n_conditions, 42);
    assert_eq!(s.n_cells, 50);
    assert_eq!(s.value_scale, "lognorm");
    let g = out.join(gs::FILE);
    let t = Table::read_parquet(&g).unwrap();
    let genes = t.strings(gs::GENE, &g).unwrap();
    assert_eq!(genes.len(), 50);
    assert!(genes.iter().all(|g| !g.starts_with("ENSG")), "symbols, not Ensembl ids");
    assert!(t.strings(gs::GENE_ID, &g).unwrap().iter().all(|g| g.starts_with("ENSG")));
    // The counts layer gives the same conditions.
    let mut opts = IngestOptions::new(&path, "unused");
    opts.gene_key = Some("feature_name".into());
    opts.layer = Some("counts".into());
    let (_d2, _out2, s2) = ingest_to(opts);
    assert_eq!(s2.value_scale, "counts");
    assert_eq!(s2.n_conditions, 42);
}

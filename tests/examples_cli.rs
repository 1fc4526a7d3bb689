//! End-to-end tests of `perturb` on the real screens committed under `data/examples/`
//! (Papalexi 2021 and Datlinger 2021; see data/examples/NOTICE.md): they ingest with no
//! options, contexts split with `--subset`, the mistakes a user makes on them stop with
//! one line, and real cells go on through graph and eval.
//! (Registered as an integration test of crates/perturb-cli, which builds the binary.)

mod common;

use std::path::{Path, PathBuf};

use common::{perturb, root};
use perturb_core::schema::conditions as cs;
use perturb_core::Table;

const PAPALEXI: &str = "papalexi2021_lowmoi_299genes_20729cells.h5ad";
const DATLINGER: &str = "datlinger2021_subset_7500cells_2000genes.h5ad";

fn example(name: &str) -> PathBuf {
    root().join("data/examples").join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `perturb ingest --input FILE --out OUT EXTRA…`, which must succeed; returns stderr (the notes).
fn ingest_ok(file: &str, out: &Path, extra: &[&str]) -> String {
    let input = example(file);
    let mut args = vec!["ingest", "--input", s(&input), "--out", s(out)];
    args.extend_from_slice(extra);
    let (code, o, e) = perturb(&args);
    assert_eq!(code, 0, "{args:?}\n{o}{e}");
    assert!(o.starts_with("ingested "), "{o}");
    e
}

/// (condition, kind, n_cells) rows of an ingest folder.
fn conditions(out: &Path) -> Vec<(String, String, i64)> {
    let p = out.join(cs::FILE);
    let t = Table::read_parquet(&p).unwrap();
    let names = t.strings(cs::CONDITION, &p).unwrap();
    let kinds = t.strings(cs::KIND, &p).unwrap();
    let cells = t.ints(cs::N_CELLS, &p).unwrap();
    names.iter().zip(kinds).zip(cells).map(|((n, k), c)| (n.clone(), k.clone(), *c)).collect()
}

fn parameters(out: &Path) -> serde_json::Value {
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    m["parameters"].clone()
}

/// `perturb ingest` on `file` with `extra` must fail: exit 1, one line on stderr starting
/// `error:`, naming the file and containing every `expect`, and nothing written.
fn assert_refused(file: &str, extra: &[&str], expect: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = example(file);
    let mut args = vec!["ingest", "--input", s(&input), "--out", s(&out)];
    args.extend_from_slice(extra);
    let (code, o, e) = perturb(&args);
    assert_eq!(code, 1, "{extra:?}: expected failure\nstdout: {o}\nstderr: {e}");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "one line of error, got: {lines:?}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(file), "{}", lines[0]);
    for x in expect {
        assert!(lines[0].contains(x), "error should say '{x}': {}", lines[0]);
    }
    assert!(!out.exists(), "no output folder after a failure");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no leftovers beside the output");
    lines[0].to_string()
}

#[test]
fn committed_files_match_the_notice() {
    let notice = std::fs::read_to_string(example("NOTICE.md")).unwrap();
    for file in [PAPALEXI, DATLINGER] {
        let (sha, bytes) = perturb_core::manifest::sha256_file(&example(file)).unwrap();
        let row = notice.lines().find(|l| l.starts_with(&format!("| `{file}`"))).unwrap_or_else(|| panic!("NOTICE.md has no row for {file}"));
        assert!(row.contains(&sha), "{file}: sha256 {sha} is not the NOTICE's: {row}");
        let shown: String = row.split('|').nth(2).unwrap().chars().filter(char::is_ascii_digit).collect();
        assert_eq!(shown, bytes.to_string(), "{file}: size");
    }
}

#[test]
fn papalexi_ingests_with_no_options_and_runs_through_graph_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = dir.path().join("ingest");
    let notes = ingest_ok(PAPALEXI, &ingest, &[]);
    assert!(notes.contains("note: condition labels read from obs/target"), "{notes}");
    assert!(notes.contains("note: control cells: the label 'non-targeting' of obs/target"), "{notes}");
    assert!(!notes.contains("pooled"), "bio_rep is a replicate, not a context: {notes}");
    let rows = conditions(&ingest);
    assert_eq!(rows[0], ("ctrl".to_string(), "control".to_string(), 2386));
    assert_eq!(rows.iter().filter(|r| r.1 == "single").count(), 25);
    assert_eq!(rows.len(), 26);
    assert_eq!(rows.iter().map(|r| r.2).sum::<i64>(), 20729);
    assert!(rows.iter().any(|r| r.0 == "IFNGR1" && r.2 == 1341), "{rows:?}");
    let p = parameters(&ingest);
    assert_eq!((p["condition_key"].as_str(), p["control"].as_str()), (Some("target"), Some("non-targeting")));
    assert_eq!((p["condition_key_detected"].as_bool(), p["control_detected"].as_bool()), (Some(true), Some(true)));

    // Real cells end to end: the network over its genes, then splits, baselines and metrics.
    let graph = dir.path().join("graph");
    let (code, o, e) = perturb(&["graph", "--genes", s(&ingest.join("genes.parquet")), "--source", "go+regulon", "--out", s(&graph)]);
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.contains("25/25 perturbation targets"), "{o}");
    let eval = dir.path().join("eval");
    let (code, o, e) = perturb(&["eval", "--data", s(&ingest), "--task", "unseen_single", "--seeds", "1,2", "--out", s(&eval)]);
    assert_eq!(code, 0, "{o}{e}");
    for f in ["split_unseen_single_seed1.parquet", "split_unseen_single_seed2.parquet", "metrics.parquet", "summary.parquet", "report.md"] {
        assert!(eval.join(f).is_file(), "eval wrote {f}");
    }
    assert!(o.contains("unseen_single") && o.contains("mean L2"), "{o}");
}

#[test]
fn datlinger_contexts_become_two_screens_and_pooling_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cells = Vec::new();
    for context in ["stimulated", "unstimulated"] {
        let out = dir.path().join(context);
        let subset = format!("perturbation_2={context}");
        let notes = ingest_ok(DATLINGER, &out, &["--subset", &subset]);
        assert!(notes.contains(&format!("note: --subset {subset} keeps ")), "{notes}");
        assert!(notes.contains("note: control cells: the label 'control' of obs/target"), "{notes}");
        assert!(!notes.contains("pooled"), "{notes}");
        let rows = conditions(&out);
        assert_eq!(rows[0].0, "ctrl");
        assert_eq!(rows.iter().filter(|r| r.1 == "single").count(), 20, "{context}");
        cells.push(rows.iter().map(|r| r.2).sum::<i64>());
        assert_eq!(parameters(&out)["subset"], serde_json::json!({ "perturbation_2": context }));
    }
    assert_eq!(cells, [3859, 3641]);

    let pooled = dir.path().join("pooled");
    let notes = ingest_ok(DATLINGER, &pooled, &[]);
    assert!(
        notes.contains("note: obs/perturbation_2 has 2 values (stimulated: 3859 cells, unstimulated: 3641 cells) that are pooled into every pseudobulk"),
        "{notes}"
    );
    assert!(notes.contains("--subset perturbation_2=stimulated"), "{notes}");
    assert_eq!(conditions(&pooled).iter().map(|r| r.2).sum::<i64>(), 7500);
}

#[test]
fn mistakes_on_the_real_screens_stop_with_one_line() {
    // Guide labels would be fake doubles (ZAP70_1 → ZAP70 + "1").
    assert_refused(DATLINGER, &["--condition-key", "perturbation"], &["obs/perturbation holds guide labels", "use --condition-key target"]);
    assert_refused(PAPALEXI, &["--condition-key", "grna_top"], &["obs/grna_top holds guide labels", "'ATF2g1'", "use --condition-key target"]);
    // A context that is not there names what is.
    assert_refused(
        DATLINGER,
        &["--subset", "perturbation_2=stim"],
        &["--subset perturbation_2=stim", "no cell has the value 'stim'", "(values: stimulated (3859 cells), unstimulated (3641 cells))"],
    );
    assert_refused(DATLINGER, &["--subset", "stimulus=stimulated"], &["obs has no column 'stimulus' (columns: ", "perturbation_2"]);
    // A wrong control shows the control-like labels first.
    let line = assert_refused(PAPALEXI, &["--control", "NOPE"], &["no control cells: no label of obs/target is 'NOPE'", "(labels: non-targeting, ATF2"]);
    assert!(line.contains("--control"), "{line}");
}

//! End-to-end tests of `perturb` on the real screens committed under `data/examples/`
//! (Papalexi 2021 and Datlinger 2021; see data/examples/NOTICE.md): they ingest with no
//! options, contexts split with `--subset` or `--context-key`, the mistakes a user makes on them stop with
//! one line, and real cells go on through graph and eval.
//! (Registered as an integration test of crates/perturb-cli, which builds the binary.)

mod common;

use std::path::{Path, PathBuf};

use common::{perturb, root};
use perturb_core::schema::conditions as cs;
use perturb_core::Table;

const PAPALEXI: &str = "papalexi2021_lowmoi_299genes_20729cells.h5ad";
const DATLINGER: &str = "datlinger2021_subset_7500cells_2000genes.h5ad";
const MCFALINE: &str = "mcfaline2023_3lines_9targets_500genes.h5ad";

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
    for file in [PAPALEXI, DATLINGER, MCFALINE] {
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
    assert!(notes.contains("pass --context-key perturbation_2 (or keep one with --subset perturbation_2=stimulated)"), "{notes}");
    assert_eq!(conditions(&pooled).iter().map(|r| r.2).sum::<i64>(), 7500);
}

/// `--context-key`: one ingest folder per context, each against its own control, each
/// equal to scanpy's pseudobulk of that context alone; later stages refuse the top folder.
#[test]
fn datlinger_contexts_ingest_each_against_its_own_control() {
    use perturb_core::schema::{contexts as xs, pseudobulk as ps};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("jurkat");
    let input = example(DATLINGER);
    let (code, o, e) = perturb(&["ingest", "--input", s(&input), "--context-key", "perturbation_2", "--out", s(&out)]);
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.contains("context stimulated: 3859 cells, 21 conditions (20 singles, 0 doubles)"), "{o}");
    assert!(o.contains("in 2 contexts, each against its own control"), "{o}");
    assert!(!e.contains("pooled"), "the context column is not pooled: {e}");
    assert_eq!(e.matches("note: control cells: the label 'control'").count(), 1, "a note every context shares is said once: {e}");

    let listing = out.join(xs::FILE);
    let t = Table::read_parquet(&listing).unwrap();
    assert_eq!(t.strings(xs::CONTEXT, &listing).unwrap(), ["stimulated", "unstimulated"]);
    assert_eq!(t.strings(xs::FOLDER, &listing).unwrap(), ["stimulated", "unstimulated"]);
    assert_eq!(t.ints(xs::N_CELLS, &listing).unwrap(), [3859, 3641]);
    assert_eq!(t.ints(xs::N_CONTROL_CELLS, &listing).unwrap(), [140, 60]);
    assert!(!out.join(ps::FILE).exists(), "no table mixes the contexts");

    // Two controls: each context's control row is its own.
    let screens: Vec<perturb_core::ingested::IngestedScreen> =
        ["stimulated", "unstimulated"].iter().map(|c| perturb_core::ingested::IngestedScreen::read(&out.join(c)).unwrap()).collect();
    assert_eq!(screens[0].n_cells[0], 140);
    assert_eq!(screens[1].n_cells[0], 60);
    assert_ne!(screens[0].control(), screens[1].control());
    for (context, screen) in ["stimulated", "unstimulated"].iter().zip(&screens) {
        let p = out.join(context).join(cs::FILE);
        let t = Table::read_parquet(&p).unwrap();
        assert!(t.strings(perturb_core::schema::CONTEXT, &p).unwrap().iter().all(|c| c == context), "{context}");
        assert_eq!(parameters(&out.join(context))["context"], serde_json::json!({ "perturbation_2": context }));
        assert_eq!(screen.conditions.len(), 21);
    }

    // The stimulated folder against scanpy on the stimulated cells alone
    // (tests/reference/make_context_fixtures.py).
    let reference = std::fs::read_to_string(root().join("tests/fixtures/reference/datlinger_stimulated_pseudobulk.csv")).unwrap();
    let stimulated = &screens[0];
    let mut compared = 0;
    for line in reference.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let condition = if f[0] == "control" { "ctrl".to_string() } else { f[0].to_string() };
        let c = stimulated.index_of(&condition).unwrap_or_else(|| panic!("{condition}"));
        let g = stimulated.genes.iter().position(|x| x == f[1]).unwrap();
        let (mean, variance, n): (f64, f64, i64) = (f[2].parse().unwrap(), f[3].parse().unwrap(), f[4].parse().unwrap());
        assert!((stimulated.row(c)[g] - mean).abs() <= 1e-9 * mean.abs().max(1.0), "{line}: {}", stimulated.row(c)[g]);
        assert!((stimulated.variance_row(c)[g] - variance).abs() <= 1e-9 * variance.abs().max(1.0), "{line}");
        assert_eq!(stimulated.n_cells[c], n, "{line}");
        compared += 1;
    }
    assert_eq!(compared, 5 * 150);

    // Later stages work within one context and say so when given the top folder.
    let (code, _, e) = perturb(&["eval", "--data", s(&out), "--task", "unseen_single", "--seeds", "1", "--out", s(&dir.path().join("eval"))]);
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("holds one ingest per context (contexts.parquet: stimulated, unstimulated)") && e.contains("jurkat/stimulated"), "{e}");
    let (code, _, e) = perturb(&["graph", "--genes", s(&out.join("genes.parquet")), "--source", "go", "--out", s(&dir.path().join("graph"))]);
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("holds one ingest per context"), "{e}");
    let (code, o, e) =
        perturb(&["eval", "--data", s(&out.join("stimulated")), "--task", "unseen_single", "--seeds", "1", "--out", s(&dir.path().join("eval"))]);
    assert_eq!(code, 0, "{o}{e}");
    let report = std::fs::read_to_string(dir.path().join("eval/report.md")).unwrap();
    assert!(report.contains("this screen is one context of its input (perturbation_2=stimulated)"), "the report says which context it is");
    unseen_context_from_the_other_state(&out, dir.path());
}

/// `unseen_context`: every stimulated perturbation predicted from the unstimulated cells,
/// the transfer baselines paired with the screen's own; and its mistakes.
fn unseen_context_from_the_other_state(contexts: &Path, dir: &Path) {
    use perturb_core::schema::pseudobulk as ps;
    let (data, other, eval) = (contexts.join("stimulated"), contexts.join("unstimulated"), dir.join("transfer"));
    let run = |extra: &[&str]| {
        let mut args = vec!["eval", "--data", s(&data), "--task", "unseen_context", "--out", s(&eval)];
        args.extend_from_slice(extra);
        perturb(&args)
    };
    for (extra, expect) in [
        (&["--seeds", "1"][..], "name their ingest folders with --other-context"),
        (&["--seeds", "1,2", "--other-context", s(&other)][..], "the same for every seed; pass one seed"),
        (&["--seeds", "1", "--other-context", s(&data)][..], "is the evaluated screen itself"),
    ] {
        let (code, _, e) = run(extra);
        assert_eq!((code, e.lines().count()), (1, 1), "{extra:?}: {e}");
        assert!(e.contains(expect), "{extra:?}: {e}");
        assert!(!eval.exists());
    }
    let (code, o, e) = run(&["--seeds", "1", "--other-context", s(&other)]);
    assert_eq!(code, 0, "{o}{e}");
    let p = eval.join("metrics.parquet");
    let t = Table::read_parquet(&p).unwrap();
    let models = t.strings("model", &p).unwrap();
    let count = |m: &str| models.iter().filter(|x| *x == m).count();
    for m in ["no_change", "mean", "other_contexts", "other_contexts_mean"] {
        assert_eq!(count(m), 20, "{m}: every stimulated perturbation");
    }
    assert_eq!(count("linear") + count("other_contexts_fit"), 0, "nothing of the stimulated perturbations trains, so nothing is fitted");
    let p = eval.join("comparisons.parquet");
    let t = Table::read_parquet(&p).unwrap();
    let (model, baseline) = (t.strings("model", &p).unwrap(), t.strings("baseline", &p).unwrap());
    assert!(model.iter().zip(baseline).any(|(m, b)| m == "other_contexts" && b == "no_change"), "the transfer baselines are paired with no_change");
    let manifest = std::fs::read_to_string(eval.join("manifest.json")).unwrap();
    assert!(manifest.contains(&format!("{}", other.join(ps::FILE).display())), "the other context's pseudobulk is an input");
}

/// `--batch-key`: each cell read against its own replicate's controls, as the scanpy-side
/// reference computes it (tests/reference/make_context_fixtures.py).
#[test]
fn papalexi_effects_against_batch_matched_controls_equal_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("thp1");
    let notes = ingest_ok(PAPALEXI, &out, &["--batch-key", "bio_rep"]);
    assert!(
        notes.contains("note: effects against batch-matched controls: each cell is read against the control cells of its own batch (obs/bio_rep, 3 batches)"),
        "{notes}"
    );
    assert_eq!(parameters(&out)["batches"], serde_json::json!(["rep_1", "rep_2", "rep_3"]));
    let screen = perturb_core::ingested::IngestedScreen::read(&out).unwrap();
    let pooled_dir = dir.path().join("pooled");
    ingest_ok(PAPALEXI, &pooled_dir, &[]);
    let pooled = perturb_core::ingested::IngestedScreen::read(&pooled_dir).unwrap();
    let largest = screen.control().iter().zip(pooled.control()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(largest < 1e-12, "the control row is the pooled control mean (largest difference {largest})");
    assert_ne!(screen.mean, pooled.mean, "the perturbed rows move");
    let reference = std::fs::read_to_string(root().join("tests/fixtures/reference/papalexi_batch_matched_pseudobulk.csv")).unwrap();
    let mut compared = 0;
    for line in reference.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let condition = if f[0] == "non-targeting" { "ctrl" } else { f[0] };
        let c = screen.index_of(condition).unwrap();
        let g = screen.genes.iter().position(|x| x == f[1]).unwrap();
        let (mean, variance): (f64, f64) = (f[2].parse().unwrap(), f[3].parse().unwrap());
        assert!((screen.row(c)[g] - mean).abs() <= 1e-9 * mean.abs().max(1.0), "{line}: {}", screen.row(c)[g]);
        assert!((screen.variance_row(c)[g] - variance).abs() <= 1e-9 * variance.abs().max(1.0), "{line}: {}", screen.variance_row(c)[g]);
        assert_eq!(screen.n_cells[c], f[4].parse::<i64>().unwrap());
        compared += 1;
    }
    assert_eq!(compared, 5 * 100);
    let eval = dir.path().join("eval");
    let (code, o, e) = perturb(&["eval", "--data", s(&out), "--task", "unseen_single", "--seeds", "1", "--out", s(&eval)]);
    assert_eq!(code, 0, "{o}{e}");
    let report = std::fs::read_to_string(eval.join("report.md")).unwrap();
    assert!(
        report.contains("effects against batch-matched controls: ingest read each cell against the control cells of its own batch (obs/bio_rep, 3 batches)")
    );
}

/// A rerun with `--context-key` over a pooled ingest of the same screen leaves no pooled
/// table beside the contexts, and never touches the user's own files.
#[test]
fn a_context_ingest_replaces_a_pooled_one_and_keeps_the_users_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("jurkat");
    ingest_ok(DATLINGER, &out, &[]);
    std::fs::write(out.join("my_notes.txt"), "mine").unwrap();
    let input = example(DATLINGER);
    let (code, o, e) = perturb(&["ingest", "--input", s(&input), "--context-key", "perturbation_2", "--out", s(&out)]);
    assert_eq!(code, 0, "{o}{e}");
    let mut names: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["contexts.parquet", "manifest.json", "my_notes.txt", "stimulated", "unstimulated"]);
}

/// The mistakes of `--context-key` and `--batch-key`: one line naming the file, the context and the
/// problem, and nothing written.
#[test]
fn context_mistakes_stop_with_one_line_and_write_nothing() {
    let fixture = root().join("tests/fixtures/h5ad/contexts.h5ad");
    let cases: [(&[&str], &[&str]); 9] = [
        (&["--context-key", "cell_type"], &["--context-key cell_type: obs has no column 'cell_type' (columns: condition, cell_line, donor, lane)"]),
        (&["--context-key", "donor"], &["context 'd2' (donor=d2): has no control cells (label 'ctrl' of obs/condition)"]),
        (&["--context-key", "lane"], &["context 'L9' (lane=L9): has one cell"]),
        (&["--context-key", "condition"], &["obs/condition holds the condition labels"]),
        (&["--context-key", "cell_line", "--context-key", "cell_line"], &["--context-key", "given twice"]),
        (&["--batch-key", "gem_group"], &["--batch-key gem_group: obs has no column 'gem_group' (columns: condition, cell_line, donor, lane)"]),
        (&["--batch-key", "donor"], &["--batch-key donor: batch 'd2' has 16 perturbed cells and no control cells (label 'ctrl')"]),
        (&["--context-key", "cell_line", "--batch-key", "lane"], &["--batch-key lane: batch 'L9' has 1 perturbed cells and no control cells"]),
        (&["--context-key", "lane", "--batch-key", "lane"], &["--batch-key", "also a --context-key"]),
    ];
    for (extra, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut args = vec!["ingest", "--input", s(&fixture), "--out", s(&out)];
        args.extend_from_slice(extra);
        let (code, o, e) = perturb(&args);
        assert_eq!(code, 1, "{extra:?}\n{o}{e}");
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        for x in expect {
            assert!(lines[0].contains(x), "{extra:?}: should say '{x}': {}", lines[0]);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{extra:?}: nothing written");
    }
    // Two keys make the contexts their combinations.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, o, e) = perturb(&["ingest", "--input", s(&fixture), "--subset", "donor=d1", "--context-key", "cell_line", "--out", s(&out)]);
    assert_eq!(code, 1, "line B keeps only its control cells under donor=d1: {o}{e}");
    assert!(e.contains("context 'B' (cell_line=B): has only control cells (12)"), "{e}");
    let (code, o, e) = perturb(&["ingest", "--input", s(&fixture), "--context-key", "cell_line", "--context-key", "lane", "--out", s(&out)]);
    assert_eq!(code, 1, "{o}{e}");
    assert!(e.contains("context 'B|L9' (cell_line=B lane=L9): has one cell"), "{e}");
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

/// `perturb train --other-context`: the head reads the other lines' single effects, which
/// travel with the model folder; predictions follow from it alone.
#[test]
fn a_model_reads_the_other_lines_effects() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("gbm");
    let input = example(MCFALINE);
    let (code, o, e) = perturb(&["ingest", "--input", s(&input), "--context-key", "cell_type", "--out", s(&lines)]);
    assert_eq!(code, 0, "{o}{e}");
    let (a172, t98g) = (lines.join("A172"), lines.join("T98G"));
    let (graph, eval) = (dir.path().join("graph"), dir.path().join("splits"));
    let (code, o, e) = perturb(&["graph", "--genes", s(&a172.join("genes.parquet")), "--source", "go+regulon", "--out", s(&graph)]);
    assert_eq!(code, 0, "{o}{e}");
    let (code, o, e) = perturb(&["eval", "--data", s(&a172), "--task", "unseen_single", "--seeds", "1", "--out", s(&eval)]);
    assert_eq!(code, 0, "{o}{e}");
    let split = eval.join("split_unseen_single_seed1.parquet");
    let model = dir.path().join("model");
    let train = |extra: &[&str], out: &Path| {
        let mut args = vec!["train", "--data", s(&a172), "--graph", s(&graph), "--split", s(&split), "--epochs", "3", "--out", s(out)];
        args.extend_from_slice(extra);
        perturb(&args)
    };
    let (code, o, e) = train(&["--other-context", s(&t98g)], &model);
    assert_eq!(code, 0, "{o}{e}");
    assert!(model.join("context_effects.parquet").is_file());
    let manifest = std::fs::read_to_string(model.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"context_effects\": true") && manifest.contains("T98G"), "{manifest}");
    let pred = dir.path().join("pred.parquet");
    let (code, o, e) = perturb(&["predict", "--model", s(&model), "--split", s(&split), "--out", s(&pred)]);
    assert_eq!(code, 0, "{o}{e}");

    let (code, _, e) = train(&["--model", "grn_vae", "--other-context", s(&t98g)], &dir.path().join("vae"));
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("--other-context is an option of app, not of grn_vae"), "{e}");
    std::fs::remove_file(model.join("context_effects.parquet")).unwrap();
    let (code, _, e) = perturb(&["predict", "--model", s(&model), "--split", s(&split), "--out", s(&dir.path().join("p2.parquet"))]);
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("context_effects.parquet: missing"), "{e}");
}

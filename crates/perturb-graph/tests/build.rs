//! The graph stage on small hand-made priors: recipes, unions, symmetrisation, the
//! degradation knobs, alias mapping and bad edge files.

use std::path::{Path, PathBuf};

use perturb_core::{Column, Table};
use perturb_graph::{build, GraphOptions, Source};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// Genes A..E measured (E spelled by an alias, "e_old"); targets A, B and Z (Z is
    /// perturbed but not measured and unknown to every prior).
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ingest = dir.path().join("ingest");
        let priors = dir.path().join("priors");
        std::fs::create_dir_all(&ingest).unwrap();
        std::fs::create_dir_all(&priors).unwrap();
        let s = |v: &[&str]| Column::Str(v.iter().map(|x| x.to_string()).collect());
        Table::new().with("gene", s(&["A", "B", "C", "D", "e_old"])).write_parquet(&ingest.join("genes.parquet")).unwrap();
        Table::new()
            .with("condition", s(&["ctrl", "A", "A+B", "Z"]))
            .with("genes", Column::StrList(vec![vec![], vec!["A".into()], vec!["A".into(), "B".into()], vec!["Z".into()]]))
            .write_parquet(&ingest.join("conditions.parquet"))
            .unwrap();
        Table::new()
            .with("alias", s(&["e_old"]))
            .with("symbol", s(&["E"]))
            .with("kind", s(&["alias"]))
            .write_parquet(&priors.join("gene_aliases.parquet"))
            .unwrap();
        // GO: A {1,2,3}, B {1,2}, C {3,4}, D {9}, E {1,2,3}
        let go: Vec<(&str, &str)> =
            vec![("A", "1"), ("A", "2"), ("A", "3"), ("B", "1"), ("B", "2"), ("C", "3"), ("C", "4"), ("D", "9"), ("E", "1"), ("E", "2"), ("E", "3")];
        Table::new()
            .with("gene", Column::Str(go.iter().map(|g| g.0.to_string()).collect()))
            .with("go_id", Column::Str(go.iter().map(|g| format!("GO:{}", g.1)).collect()))
            .with("ontology", Column::Str(go.iter().map(|g| if g.1 == "4" { "CC".into() } else { "BP".to_string() }).collect()))
            .with("evidence", Column::Str(go.iter().map(|_| "IDA".to_string()).collect()))
            .write_parquet(&priors.join("go_annotations.parquet"))
            .unwrap();
        let reg = |file: &str, rows: &[(&str, &str, i64, &str)]| {
            Table::new()
                .with("source", Column::Str(rows.iter().map(|r| r.0.to_string()).collect()))
                .with("target", Column::Str(rows.iter().map(|r| r.1.to_string()).collect()))
                .with("sign", Column::I64(rows.iter().map(|r| r.2).collect()))
                .with("sources", Column::Str(rows.iter().map(|r| r.3.to_string()).collect()))
                .with("curation_effort", Column::I64(vec![1; rows.len()]))
                .write_parquet(&priors.join(file))
                .unwrap();
        };
        reg("regulons.parquet", &[("A", "C", 1, "CollecTRI"), ("B", "E", -1, "DoRothEA"), ("A", "A", 1, "CollecTRI"), ("X", "A", 1, "TRRUST")]);
        reg("protein_interactions.parquet", &[("C", "D", 0, "IntAct"), ("A", "C", 0, "SIGNOR")]);
        Fixture { dir }
    }

    fn opts(&self, sources: Vec<Source>) -> GraphOptions {
        let mut o = GraphOptions::new(self.dir.path().join("ingest/genes.parquet"), self.dir.path().join("graph"), sources);
        o.priors = self.dir.path().join("priors");
        o.threads = 2;
        o
    }

    fn edges(&self) -> Vec<(String, String, f64, i64, String)> {
        let p = self.dir.path().join("graph/edges.parquet");
        let t = Table::read_parquet(&p).unwrap();
        let (s, tg, w, sg, o) = (
            t.strings("source", &p).unwrap(),
            t.strings("target", &p).unwrap(),
            t.floats("weight", &p).unwrap(),
            t.ints("sign", &p).unwrap(),
            t.strings("origin", &p).unwrap(),
        );
        (0..s.len()).map(|i| (s[i].clone(), tg[i].clone(), w[i], sg[i], o[i].clone())).collect()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

fn pairs(edges: &[(String, String, f64, i64, String)]) -> Vec<(String, String)> {
    edges.iter().map(|e| (e.0.clone(), e.1.clone())).collect()
}

fn p(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[test]
fn go_recipe_jaccard_threshold_top_k_and_alias() {
    let f = Fixture::new();
    let mut o = f.opts(vec![Source::Go]);
    o.top_k = 1;
    let c = build(&o).unwrap();
    // J(A,E)=1 (E via alias e_old), J(A,B)=2/3, J(B,E)=2/3, J(A,C)=1/4, J(C,E)=1/4; D shares nothing.
    let e = f.edges();
    assert_eq!(pairs(&e), [p("A", "e_old"), p("B", "A"), p("C", "A"), p("e_old", "A")]);
    assert_eq!(e[0].2, 1.0);
    assert_eq!(c.isolated_nodes, 2, "D and Z");
    assert_eq!(c.targets_without_edges, ["Z"]);
    assert_eq!(c.n_unmapped, 1);
    // Only BP: C loses term 4, so J(A,C) = 1/3.
    let mut o = f.opts(vec![Source::Go]);
    o.go_ontologies = vec!["BP".into()];
    o.go_min_jaccard = 0.3;
    build(&o).unwrap();
    assert!(f.edges().iter().any(|e| e.0 == "C" && e.1 == "A" && (e.2 - 1.0 / 3.0).abs() < 1e-12));
}

#[test]
fn regulon_union_ppi_merges_and_counts() {
    let f = Fixture::new();
    let c = build(&f.opts(vec![Source::Regulon, Source::Ppi])).unwrap();
    let e = f.edges();
    assert_eq!(pairs(&e), [p("A", "C"), p("B", "e_old"), p("C", "D")]);
    assert_eq!(e[0].4, "regulon;ppi");
    assert_eq!(e[1].3, -1, "sign kept");
    assert_eq!(c.self_loops_dropped, 1);
    assert_eq!(c.duplicates_merged, 1);
    assert_eq!(c.edges_per_source["regulon"], 2);
    assert_eq!(c.edges_per_source["ppi"], 1);
    // Resource filter and symmetrisation.
    let mut o = f.opts(vec![Source::Regulon]);
    o.resources = vec!["CollecTRI".into()];
    o.symmetrise = true;
    build(&o).unwrap();
    assert_eq!(pairs(&f.edges()), [p("A", "C"), p("C", "A")]);
}

#[test]
fn degradation_removes_and_adds_exact_counts_for_a_seed() {
    let f = Fixture::new();
    let mut o = f.opts(vec![Source::Go]);
    o.drop_edges = 0.5;
    o.add_edges = 0.25;
    o.seed = 7;
    let c = build(&o).unwrap();
    // GO with top_k 20 gives 10 edges: drop round(5.0) = 5, add round(2.5) = 3.
    assert_eq!((c.edges_dropped, c.edges_added, c.n_edges), (5, 3, 8));
    let first = f.edges();
    build(&o).unwrap();
    assert_eq!(first, f.edges(), "same seed, same graph");
    assert_eq!(first.iter().filter(|e| e.4 == "random").count(), 3);
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn user_edge_files_and_their_errors() {
    let f = Fixture::new();
    let good = f.path("net.tsv");
    write(&good, "source\ttarget\tweight\nA\tD\t0.5\nA\tD\t0.7\nD\tD\t1\nE\tB\t2\n");
    let c = build(&f.opts(vec![Source::Edges(good.clone())])).unwrap();
    let e = f.edges();
    assert_eq!(pairs(&e), [p("A", "D"), p("e_old", "B")], "E resolves through the alias table");
    assert_eq!(e[0].2, 0.7, "duplicates merged keeping the larger weight");
    assert_eq!((c.self_loops_dropped, c.duplicates_merged), (1, 1));

    for (text, expect) in [
        ("from,to\nA,B\n", "needs columns source and target (found: from, to)"),
        ("source,target,weight\nA,B,heavy\n", "line 2: weight 'heavy' is not a number"),
        ("source,target,weight\nA,B,-1\n", "line 2: weight -1 is not a finite non-negative number"),
        ("source,target,weight\nA,B,NaN\n", "weight NaN is not a finite"),
        ("", "empty edge file"),
        ("source,target\n", "has a header but no edges"),
    ] {
        let bad = f.path("bad.csv");
        write(&bad, text);
        let out = f.path("graph_bad");
        let mut o = f.opts(vec![Source::Edges(bad.clone())]);
        o.out = out.clone();
        let err = build(&o).unwrap_err().to_string();
        assert!(err.contains("bad.csv") && err.contains(expect), "{err}");
        assert!(!out.exists(), "no partial output");
    }
}

#[test]
fn fractions_outside_unit_interval_are_errors() {
    let f = Fixture::new();
    let mut o = f.opts(vec![Source::Go]);
    o.drop_edges = 1.5;
    assert!(build(&o).unwrap_err().to_string().contains("--drop-edges"));
}

/// The error of a build that must fail: one line naming `file`, nothing written.
fn refused(f: &Fixture, mut o: GraphOptions, file: &str) -> String {
    let out = f.path("graph_refused");
    o.out = out.clone();
    let err = build(&o).unwrap_err().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(file), "error names {file}: {err}");
    assert!(!out.exists(), "no partial output: {err}");
    err
}

#[test]
fn genes_must_be_a_genes_table_beside_a_conditions_table() {
    let f = Fixture::new();
    let s = |v: &[&str]| Column::Str(v.iter().map(|x| x.to_string()).collect());
    let ingest = f.path("ingest");
    // The long-form pseudobulk: every gene once per condition.
    Table::new()
        .with("condition", s(&["ctrl", "ctrl", "A", "A"]))
        .with("gene", s(&["A", "B", "A", "B"]))
        .with("mean", Column::F64(vec![1.0, 2.0, 0.5, 2.0]))
        .with("variance", Column::F64(vec![0.1; 4]))
        .write_parquet(&ingest.join("pseudobulk.parquet"))
        .unwrap();
    let mut o = f.opts(vec![Source::Go]);
    o.genes = ingest.join("pseudobulk.parquet");
    let err = refused(&f, o, "pseudobulk.parquet");
    assert!(err.contains("is a pseudobulk table, not a genes table") && err.contains("genes.parquet"), "{err}");

    // Repeated gene names, whatever the other columns.
    Table::new().with("gene", s(&["A", "B", "A"])).write_parquet(&f.path("dups.parquet")).unwrap();
    std::fs::copy(ingest.join("conditions.parquet"), f.path("conditions.parquet")).unwrap();
    let mut o = f.opts(vec![Source::Go]);
    o.genes = f.path("dups.parquet");
    let err = refused(&f, o, "dups.parquet");
    assert!(err.contains("gene 'A' appears twice (rows 0 and 2)"), "{err}");

    // No gene column at all (conditions.parquet given as --genes).
    let mut o = f.opts(vec![Source::Go]);
    o.genes = ingest.join("conditions.parquet");
    let err = refused(&f, o, "conditions.parquet");
    assert!(err.contains("is not a genes table (no column 'gene'; columns: condition, genes)"), "{err}");

    // A good genes table beside a conditions.parquet that is not one.
    let other = f.path("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(ingest.join("genes.parquet"), other.join("genes.parquet")).unwrap();
    std::fs::copy(ingest.join("genes.parquet"), other.join("conditions.parquet")).unwrap();
    let mut o = f.opts(vec![Source::Go]);
    o.genes = other.join("genes.parquet");
    let err = refused(&f, o, "other/conditions.parquet");
    assert!(err.contains("is not a conditions table (no column 'condition'"), "{err}");
}

#[test]
fn edge_file_signs_are_kept_and_bad_ones_refused() {
    let f = Fixture::new();
    let net = f.path("signed.csv");
    write(&net, "source,target,weight,sign\nA,C,0.5,-1\nC,D,1,1\nB,D,2,0\n");
    build(&f.opts(vec![Source::Edges(net)])).unwrap();
    let signs: Vec<(String, String, i64)> = f.edges().into_iter().map(|e| (e.0, e.1, e.3)).collect();
    assert_eq!(signs, [("A".into(), "C".into(), -1), ("B".into(), "D".into(), 0), ("C".into(), "D".into(), 1)]);

    for (text, expect) in [
        ("source,target,sign\nA,C,1\nA,D,5\n", "line 3: sign '5' is not -1, 0 or 1"),
        ("source,target,sign\nA,C,0.5\n", "line 2: sign '0.5' is not -1, 0 or 1"),
        ("source,target,sign\nA,C,\n", "line 2: sign '' is not -1, 0 or 1"),
        ("source,target,weight\nA,C,inf\n", "line 2: weight inf is not a finite non-negative number"),
    ] {
        let bad = f.path("bad_sign.csv");
        write(&bad, text);
        let err = refused(&f, f.opts(vec![Source::Edges(bad)]), "bad_sign.csv");
        assert!(err.contains(expect), "{err}");
    }

    // Parquet edge files (a trained model's grn.parquet has int64 signs).
    let pq = f.path("grn.parquet");
    let s = |v: &[&str]| Column::Str(v.iter().map(|x| x.to_string()).collect());
    Table::new()
        .with("source", s(&["A", "B"]))
        .with("target", s(&["C", "D"]))
        .with("weight", Column::F64(vec![0.5, 1.0]))
        .with("sign", Column::I64(vec![1, -1]))
        .write_parquet(&pq)
        .unwrap();
    build(&f.opts(vec![Source::Edges(pq.clone())])).unwrap();
    assert!(f.edges().iter().any(|e| e.0 == "B" && e.1 == "D" && e.3 == -1));
    Table::new()
        .with("source", s(&["A", "B"]))
        .with("target", s(&["C", "D"]))
        .with("weight", Column::F64(vec![0.5, 1.0]))
        .with("sign", Column::I64(vec![1, 2]))
        .write_parquet(&pq)
        .unwrap();
    let err = refused(&f, f.opts(vec![Source::Edges(pq.clone())]), "grn.parquet");
    assert!(err.contains("row 2: sign '2' is not -1, 0 or 1"), "{err}");
    Table::new().with("source", s(&["A"])).with("target", s(&["C"])).with("weight", Column::F64(vec![-0.5])).write_parquet(&pq).unwrap();
    let err = refused(&f, f.opts(vec![Source::Edges(pq)]), "grn.parquet");
    assert!(err.contains("row 1: weight -0.5 is not a finite non-negative number"), "{err}");
}

#[test]
fn an_edge_file_naming_no_gene_of_the_screen_is_an_error() {
    let f = Fixture::new();
    let none = f.path("elsewhere.tsv");
    write(&none, "source\ttarget\nAA\tQQ\nQQ\tRR\n");
    let err = refused(&f, f.opts(vec![Source::Edges(none)]), "elsewhere.tsv");
    assert!(err.contains("none of the 2 edges names a gene of the screen; first unknown: 'AA' (closest: A, B, C)"), "{err}");

    // Known names, but no edge with both ends in the screen.
    let half = f.path("half.tsv");
    write(&half, "source\ttarget\nA\tQQ\nRR\tB\n");
    let err = refused(&f, f.opts(vec![Source::Edges(half)]), "half.tsv");
    assert!(err.contains("none of the 2 edges joins two genes of the screen (2 of its 4 gene names are unknown); first unknown: 'QQ'"), "{err}");

    // Some unknown: built, and the skipped edges are counted.
    let some = f.path("some.tsv");
    write(&some, "source\ttarget\nA\tC\nA\tQQ\n");
    let c = build(&f.opts(vec![Source::Edges(some)])).unwrap();
    assert_eq!(pairs(&f.edges()), [p("A", "C")]);
    assert_eq!((c.edges_with_unknown_genes, c.unknown_edge_genes.clone()), (1, vec!["QQ".to_string()]));
}

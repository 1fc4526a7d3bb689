//! `perturb graph` end to end on the committed priors: every source gives the same
//! artifact schema (so later stages never care which one built the graph), and bad
//! options fail cleanly.

mod common;

use std::path::Path;

use common::{ingested, perturb, refused};

use perturb_core::Table;

fn schema(path: &Path) -> Vec<(String, &'static str)> {
    let t = Table::read_parquet(path).unwrap();
    t.column_names().iter().map(|n| (n.to_string(), t.column(n).unwrap().type_name())).collect()
}

#[test]
fn every_source_gives_the_same_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let genes = ingested(dir.path(), "norman-like", 300, 3000).join("genes.parquet");
    let user = dir.path().join("mine.csv");
    std::fs::write(&user, "source,target,weight\nKLF1,CEBPA,0.5\n").unwrap();
    let user_spec = format!("edges:{}", user.display());
    let mut schemas = Vec::new();
    for spec in ["go", "regulon", "ppi", "go+regulon", user_spec.as_str()] {
        let out = dir.path().join(format!("graph_{}", schemas.len()));
        let (c, o, e) = perturb(&["graph", "--genes", genes.to_str().unwrap(), "--source", spec, "--out", out.to_str().unwrap()]);
        assert_eq!(c, 0, "{spec}: {o}{e}");
        assert!(o.contains("300 measured genes") || o.contains("/300 measured genes"), "{o}");
        schemas.push((schema(&out.join("edges.parquet")), schema(&out.join("nodes.parquet"))));
        let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
        assert!(manifest.contains("\"targets_with_edges\""), "{manifest}");
    }
    assert!(schemas.windows(2).all(|w| w[0] == w[1]), "{schemas:?}");
}

#[test]
fn bad_graph_options() {
    let dir = tempfile::tempdir().unwrap();
    let genes = ingested(dir.path(), "norman-like", 300, 3000).join("genes.parquet");
    let out = dir.path().join("graph");
    let g = genes.to_str().unwrap();
    let o = out.to_str().unwrap();
    let (c, _, e) = perturb(&["graph", "--genes", g, "--source", "go+string", "--out", o]);
    assert_eq!(c, 2);
    assert!(e.contains("unknown graph source 'string' (valid: go, regulon, ppi, coexpression, edges:PATH"), "{e}");
    let (c, _, e) = perturb(&["graph", "--genes", g, "--drop-edges", "1.5", "--out", o]);
    assert_eq!(c, 2, "a usage error, before any work");
    assert!(e.contains("--drop-edges") && e.contains("between 0 and 1"), "{e}");
    refused(&["graph", "--genes", g, "--source", "coexpression", "--out", o], "--train-conditions");
    assert!(!out.exists(), "no partial output");
}

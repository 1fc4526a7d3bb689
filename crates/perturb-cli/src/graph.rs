//! `perturb graph`: the gene network over the ingested genes.

use std::path::PathBuf;

use clap::Args;
use perturb_core::guard::{claim, NamedPath};
use perturb_graph::{GraphOptions, Source};

use crate::ranges;

#[derive(Args)]
pub(crate) struct GraphArgs {
    /// The ingest stage's genes.parquet (conditions.parquet is read from the same folder).
    #[arg(long, value_name = "FILE")]
    genes: PathBuf,
    /// go | regulon | ppi | coexpression | edges:PATH, or a union joined with + (e.g. go+regulon).
    #[arg(long, default_value = "go", value_parser = parse_sources)]
    source: SourceSpec,
    /// Output folder (edges.parquet, nodes.parquet, manifest.json).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Folder holding the prior tables.
    #[arg(long, default_value_os_t = defaults().priors.clone(), value_name = "DIR")]
    priors: PathBuf,
    /// GO ontologies to use (comma-separated).
    #[arg(long, default_value = perturb_graph::DEFAULT_GO_ONTOLOGIES, value_delimiter = ',')]
    go_ontologies: Vec<String>,
    /// GO evidence codes to keep (comma-separated; default all), e.g. EXP,IDA,IPI,IMP,IGI,IEP.
    #[arg(long, value_delimiter = ',')]
    go_evidence: Vec<String>,
    /// GO: keep gene pairs with Jaccard similarity above this.
    #[arg(long, default_value_t = defaults().go_min_jaccard, value_parser = ranges::fraction)]
    min_jaccard: f64,
    /// GO and coexpression: neighbours kept per gene.
    #[arg(long, default_value_t = defaults().top_k, value_parser = ranges::count(1, 10_000))]
    top_k: usize,
    /// regulon/ppi: keep edges supported by one of these resources (e.g. CollecTRI).
    #[arg(long, value_delimiter = ',')]
    resources: Vec<String>,
    /// regulon/ppi/edges: add the reverse of every edge.
    #[arg(long)]
    symmetrise: bool,
    /// coexpression: the training conditions (one per line); test conditions never shape the prior.
    #[arg(long, value_name = "FILE")]
    train_conditions: Option<PathBuf>,
    /// coexpression: keep pairs with |Pearson| above this.
    #[arg(long, default_value_t = defaults().coexpression_min, value_parser = ranges::fraction)]
    min_correlation: f64,
    /// Remove this fraction of edges at random (network-quality study).
    #[arg(long, default_value_t = defaults().drop_edges, value_parser = ranges::fraction)]
    drop_edges: f64,
    /// Add this many random edges per edge of the network (network-quality study), at most 10.
    #[arg(long, default_value_t = defaults().add_edges, value_parser = ranges::edge_multiple)]
    add_edges: f64,
    #[arg(long, default_value_t = defaults().seed)]
    seed: u64,
}

/// The parsed `--source` (a newtype: clap reads a bare `Vec` as a repeated option).
#[derive(Clone)]
pub(crate) struct SourceSpec(Vec<Source>);

pub(crate) fn parse_sources(s: &str) -> Result<SourceSpec, String> {
    perturb_graph::spec::parse(s).map(SourceSpec)
}

/// The library's defaults, which the flags show and start from.
fn defaults() -> &'static GraphOptions {
    // clap reads a default per flag each time it builds the command line; one set of
    // options (new() probes the machine's parallelism) serves them all.
    static DEFAULTS: std::sync::LazyLock<GraphOptions> = std::sync::LazyLock::new(|| GraphOptions::new("", "", Vec::new()));
    &DEFAULTS
}

pub(crate) fn run_graph(a: GraphArgs) -> perturb_core::Result<()> {
    let edge_files: Vec<PathBuf> = a.source.0.iter().filter_map(|s| if let Source::Edges(p) = s { Some(p.clone()) } else { None }).collect();
    let mut inputs = vec![NamedPath::new("--genes", &a.genes), NamedPath::new("--priors", &a.priors)];
    inputs.extend(edge_files.iter().map(|p| NamedPath::new("--source edges:", p)));
    inputs.extend(a.train_conditions.as_deref().map(|p| NamedPath::new("--train-conditions", p)));
    let _lock = claim(NamedPath::new("--out", &a.out), &inputs)?;
    let sources = a.source.0;
    let mut o = GraphOptions::new(a.genes, a.out, sources);
    o.priors = a.priors;
    o.go_ontologies = a.go_ontologies;
    o.go_evidence = a.go_evidence;
    o.go_min_jaccard = a.min_jaccard;
    o.top_k = a.top_k;
    o.resources = a.resources;
    o.symmetrise = a.symmetrise;
    o.train_conditions = a.train_conditions;
    o.coexpression_min = a.min_correlation;
    o.drop_edges = a.drop_edges;
    o.add_edges = a.add_edges;
    o.seed = a.seed;
    let c = perturb_graph::build(&o)?;
    if c.self_loops_dropped > 0 || c.duplicates_merged > 0 {
        eprintln!("note: {} self-loops dropped, {} duplicate edges merged", c.self_loops_dropped, c.duplicates_merged);
    }
    if c.edges_with_unknown_genes > 0 {
        eprintln!(
            "note: {} edge-file edges name genes outside the screen and were skipped: {}",
            c.edges_with_unknown_genes,
            c.unknown_edge_genes.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if c.n_unmapped > 0 {
        eprintln!(
            "note: {} names not found in the priors (isolated nodes, kept): {}",
            c.n_unmapped,
            c.unmapped_names.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    println!(
        "graph: {} nodes, {} edges ({}); {}/{} measured genes and {}/{} perturbation targets have an edge; {} isolated -> {} in {:.1}s",
        c.n_nodes,
        c.n_edges,
        c.edges_per_source.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
        c.genes_with_edges,
        c.n_measured_genes,
        c.targets_with_edges,
        c.n_targets,
        c.isolated_nodes,
        o.out.display(),
        c.seconds
    );
    Ok(())
}

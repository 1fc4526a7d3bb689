//! The graph stage: a gene network over the ingested genes and the perturbation targets,
//! from a swappable source (`--source go+regulon`, `edges:my.tsv`, ...).
//!
//! Every node stays in the graph: a gene the prior does not know is an isolated node and
//! is listed in the manifest's coverage, never dropped. Nothing downstream depends on
//! which source built the graph: later stages read `edges.parquet` and `nodes.parquet`.

pub mod edge_file;
pub mod go;
pub mod names;
pub mod spec;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use perturb_core::gene_network::{self, GraphEdgeRow, GraphNodeRow};
use perturb_core::manifest::{InputFile, Manifest};
use perturb_core::schema::{conditions as cs, edges as es, genes as gs, nodes as ns, pseudobulk as ps};
use perturb_core::staging::StagedDir;
use perturb_core::{Column, Condition, Error, Result, Table};
use petgraph::graphmap::DiGraphMap;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use spec::Source;

#[derive(Debug, Clone)]
pub struct GraphOptions {
    /// The ingest stage's genes.parquet (conditions.parquet is read beside it).
    pub genes: PathBuf,
    pub out: PathBuf,
    pub sources: Vec<Source>,
    /// Folder with go_annotations / gene_aliases / regulons / protein_interactions.
    pub priors: PathBuf,
    pub go_ontologies: Vec<String>,
    /// Empty = every evidence code.
    pub go_evidence: Vec<String>,
    pub go_min_jaccard: f64,
    pub top_k: usize,
    /// Keep only regulon/ppi rows with one of these resources (empty = all).
    pub resources: Vec<String>,
    pub symmetrise: bool,
    /// Coexpression: conditions whose pseudobulk may be used (the training split).
    pub train_conditions: Option<PathBuf>,
    pub coexpression_min: f64,
    pub drop_edges: f64,
    pub add_edges: f64,
    pub seed: u64,
    pub threads: usize,
}

/// The GO aspects a graph reads unless told otherwise (comma-separated, as `--go-ontologies` takes them).
pub const DEFAULT_GO_ONTOLOGIES: &str = "BP,MF,CC";

impl GraphOptions {
    pub fn new(genes: impl Into<PathBuf>, out: impl Into<PathBuf>, sources: Vec<Source>) -> Self {
        GraphOptions {
            genes: genes.into(),
            out: out.into(),
            sources,
            priors: PathBuf::from("data/priors"),
            go_ontologies: DEFAULT_GO_ONTOLOGIES.split(',').map(str::to_string).collect(),
            go_evidence: Vec::new(),
            go_min_jaccard: 0.1,
            top_k: 20,
            resources: Vec::new(),
            symmetrise: false,
            train_conditions: None,
            coexpression_min: 0.4,
            drop_edges: 0.0,
            add_edges: 0.0,
            seed: 0,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    fn validate(&self) -> Result<()> {
        for (name, f) in [("--drop-edges", self.drop_edges), ("--add-edges", self.add_edges)] {
            if !(0.0..=1.0).contains(&f) {
                return Err(Error::bad_option(name, format!("{f} is outside [0, 1]")));
            }
        }
        if !(0.0..=1.0).contains(&self.go_min_jaccard) || !(0.0..=1.0).contains(&self.coexpression_min) {
            return Err(Error::bad_option("--min-jaccard/--min-correlation", "thresholds must lie in [0, 1]"));
        }
        if self.top_k == 0 {
            return Err(Error::bad_option("--top-k", "must be at least 1"));
        }
        Ok(())
    }
}

/// What the manifest reports about the graph.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub n_nodes: usize,
    pub n_edges: usize,
    pub edges_per_source: BTreeMap<String, usize>,
    pub genes_with_edges: usize,
    pub n_measured_genes: usize,
    pub targets_with_edges: usize,
    pub n_targets: usize,
    pub targets_without_edges: Vec<String>,
    pub isolated_nodes: usize,
    pub unmapped_names: Vec<String>,
    pub n_unmapped: usize,
    pub self_loops_dropped: usize,
    pub duplicates_merged: usize,
    /// Edge-file edges skipped because a gene they name is not a node (neither measured
    /// nor perturbed in the screen), and the first such names.
    pub edges_with_unknown_genes: usize,
    pub unknown_edge_genes: Vec<String>,
    pub edges_dropped: usize,
    pub edges_added: usize,
    pub seconds: f64,
}

struct EdgeData {
    weight: f64,
    sign: i64,
    origin: String,
}

pub fn build(opts: &GraphOptions) -> Result<Coverage> {
    let started = std::time::Instant::now();
    opts.validate()?;
    perturb_core::ingested::refuse_context_root(perturb_core::paths::folder_of(&opts.genes))?;
    let staged = StagedDir::new(&opts.out)?;
    let mut inputs = vec![InputFile::hash(&opts.genes)?];
    let screen = ScreenNodes::read(opts, &mut inputs)?;
    let names = NodeNames::map(opts, &screen.nodes, &mut inputs)?;
    let mut network = Network::new(screen.nodes.len());
    let mut unknown = UnknownEdgeGenes::default();
    let mut per_source = BTreeMap::new();
    for source in &opts.sources {
        let origin = source.origin();
        let before = network.graph.edge_count();
        let produced = source_edges(opts, source, &screen, &names, &mut inputs, &mut unknown)?;
        let symmetric = opts.symmetrise && matches!(source, Source::Regulon | Source::Ppi | Source::Edges(_));
        network.add_all(produced, symmetric, &origin);
        per_source.insert(origin, network.graph.edge_count() - before);
    }
    let degraded = network.degrade(opts);
    let degree = write_tables(&staged, &network.graph, &screen, &names)?;
    let mut coverage = coverage(&screen, &names, &network, &degree, per_source, unknown, degraded);
    coverage.seconds = started.elapsed().as_secs_f64();
    write_manifest(&staged, opts, inputs, &coverage)?;
    staged.commit()?;
    Ok(coverage)
}

/// The graph's nodes: the measured genes (the input's order), then the perturbation
/// targets that are not measured (sorted).
struct ScreenNodes {
    measured: Vec<String>,
    /// Every perturbed gene, sorted.
    targets: Vec<String>,
    nodes: Vec<String>,
}

impl ScreenNodes {
    fn read(opts: &GraphOptions, inputs: &mut Vec<InputFile>) -> Result<ScreenNodes> {
        let genes_table = Table::read_parquet(&opts.genes)?;
        let measured = check_genes_table(&opts.genes, &genes_table)?;
        let conditions_path = opts.genes.with_file_name(cs::FILE);
        let conditions = Table::read_parquet(&conditions_path)?;
        check_conditions_table(&conditions_path, &conditions)?;
        inputs.push(InputFile::hash(&conditions_path)?);
        let mut targets: Vec<String> = conditions.string_lists(cs::GENES, &conditions_path)?.iter().flatten().cloned().collect();
        targets.sort();
        targets.dedup();
        let mut nodes = measured.clone();
        let measured_set: std::collections::HashSet<&str> = measured.iter().map(String::as_str).collect();
        nodes.extend(targets.iter().filter(|t| !measured_set.contains(t.as_str())).cloned());
        Ok(ScreenNodes { measured, targets, nodes })
    }

    fn index(&self) -> HashMap<&str, usize> {
        self.nodes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect()
    }
}

/// Every node's official symbol, and the nodes of each symbol.
struct NodeNames {
    harmoniser: names::Harmoniser,
    mapped: Vec<(Option<String>, names::Match)>,
    nodes_of_symbol: HashMap<String, Vec<usize>>,
}

impl NodeNames {
    /// Official symbols are the alias table's plus every gene the chosen priors name.
    fn map(opts: &GraphOptions, nodes: &[String], inputs: &mut Vec<InputFile>) -> Result<NodeNames> {
        let aliases_path = opts.priors.join("gene_aliases.parquet");
        let aliases = Table::read_parquet(&aliases_path)?;
        let (a_alias, a_symbol, a_kind) =
            (aliases.strings("alias", &aliases_path)?, aliases.strings("symbol", &aliases_path)?, aliases.strings("kind", &aliases_path)?);
        inputs.push(InputFile::hash(&aliases_path)?);
        let mut symbols: std::collections::BTreeSet<String> = a_symbol.iter().cloned().collect();
        for source in &opts.sources {
            let (file, columns): (PathBuf, &[&str]) = match source {
                Source::Go => (opts.priors.join(GO_FILE), &["gene"]),
                Source::Regulon | Source::Ppi => (prior_file(opts, source), &["source", "target"]),
                _ => continue,
            };
            let t = Table::read_parquet(&file)?;
            for c in columns {
                symbols.extend(t.strings(c, &file)?.iter().cloned());
            }
        }
        let harmoniser = names::Harmoniser::new(
            symbols.iter().map(String::as_str),
            a_alias.iter().zip(a_symbol).zip(a_kind).map(|((a, s), k)| (a.as_str(), s.as_str(), k.as_str())),
        );
        let mapped: Vec<(Option<String>, names::Match)> = nodes.iter().map(|n| harmoniser.map(n)).collect();
        let mut nodes_of_symbol: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, (s, _)) in mapped.iter().enumerate() {
            if let Some(s) = s {
                nodes_of_symbol.entry(s.clone()).or_default().push(i);
            }
        }
        Ok(NodeNames { harmoniser, mapped, nodes_of_symbol })
    }

    fn unmapped(&self, nodes: &[String]) -> Vec<String> {
        nodes.iter().zip(&self.mapped).filter(|(_, m)| m.1 == names::Match::Unmapped).map(|(n, _)| n.clone()).collect()
    }
}

const GO_FILE: &str = "go_annotations.parquet";

/// The shipped prior file of a regulon or protein-interaction source.
fn prior_file(opts: &GraphOptions, source: &Source) -> PathBuf {
    opts.priors.join(if *source == Source::Regulon { "regulons.parquet" } else { "protein_interactions.parquet" })
}

/// Edges of one source, as (source node, target node, weight, sign).
fn source_edges(
    opts: &GraphOptions,
    source: &Source,
    screen: &ScreenNodes,
    names: &NodeNames,
    inputs: &mut Vec<InputFile>,
    unknown: &mut UnknownEdgeGenes,
) -> Result<Vec<(usize, usize, f64, i64)>> {
    match source {
        Source::Go => {
            let go_path = opts.priors.join(GO_FILE);
            inputs.push(InputFile::hash(&go_path)?);
            go_edges(opts, &go_path, &names.mapped)
        }
        Source::Regulon | Source::Ppi => {
            let file = prior_file(opts, source);
            inputs.push(InputFile::hash(&file)?);
            prior_file_edges(opts, &file, names)
        }
        Source::Coexpression => coexpression_edges(opts, &screen.measured, inputs),
        Source::Edges(path) => {
            inputs.push(InputFile::hash(path)?);
            edge_file_edges(path, screen, names, unknown)
        }
    }
}

/// A regulon or interaction prior's edges between nodes (every node of each symbol), of
/// the chosen `--resources` only when given.
fn prior_file_edges(opts: &GraphOptions, file: &Path, names: &NodeNames) -> Result<Vec<(usize, usize, f64, i64)>> {
    let t = Table::read_parquet(file)?;
    let (src, tgt, sign, res) = (t.strings("source", file)?, t.strings("target", file)?, t.ints("sign", file)?, t.strings("sources", file)?);
    let mut produced = Vec::new();
    for i in 0..src.len() {
        if !opts.resources.is_empty() && !res[i].split(';').any(|r| opts.resources.iter().any(|want| r.split('_').next() == Some(want.as_str()))) {
            continue;
        }
        let (Some(a), Some(b)) = (names.nodes_of_symbol.get(&src[i]), names.nodes_of_symbol.get(&tgt[i])) else { continue };
        for &x in a {
            for &y in b {
                produced.push((x, y, 1.0, sign[i]));
            }
        }
    }
    Ok(produced)
}

/// The edges of a user's edge file whose genes are nodes (by name, else by symbol); an
/// edge naming a gene outside the screen is skipped and counted, a file of only such
/// edges refused.
fn edge_file_edges(path: &Path, screen: &ScreenNodes, names: &NodeNames, unknown_genes: &mut UnknownEdgeGenes) -> Result<Vec<(usize, usize, f64, i64)>> {
    let raw = edge_file::read(path)?;
    let node_index = screen.index();
    let resolve = |name: &str| -> Vec<usize> {
        if let Some(&i) = node_index.get(name) {
            return vec![i];
        }
        names.harmoniser.map(name).0.and_then(|s| names.nodes_of_symbol.get(&s).cloned()).unwrap_or_default()
    };
    let mut unknown = UnknownNames::default();
    let mut skipped = 0;
    let mut produced = Vec::new();
    for (s, t, w, sign) in &raw.edges {
        let (xs, ys) = (resolve(s), resolve(t));
        unknown.note(s, xs.is_empty());
        unknown.note(t, ys.is_empty());
        if xs.is_empty() || ys.is_empty() {
            skipped += 1;
        }
        for &x in &xs {
            for &y in &ys {
                produced.push((x, y, *w, *sign));
            }
        }
    }
    if skipped == raw.edges.len() {
        return Err(no_usable_edge(path, raw.edges.len(), &unknown, &screen.nodes));
    }
    if skipped > 0 {
        tracing::warn!(file = %path.display(), skipped, of = raw.edges.len(), first = %unknown.names[0], "edges naming genes outside the screen skipped");
    }
    unknown_genes.edges += skipped;
    for name in unknown.names {
        if unknown_genes.genes.len() < 20 && !unknown_genes.genes.contains(&name) {
            unknown_genes.genes.push(name);
        }
    }
    Ok(produced)
}

/// Edges of edge files skipped for naming genes outside the screen, and the first 20 such
/// genes.
#[derive(Default)]
struct UnknownEdgeGenes {
    edges: usize,
    genes: Vec<String>,
}

/// The graph as it is merged from the sources.
struct Network {
    graph: DiGraphMap<usize, EdgeData>,
    self_loops_dropped: usize,
    duplicates_merged: usize,
}

/// The network-quality study's changes: edges removed, random edges added.
struct Degradation {
    dropped: usize,
    added: usize,
}

impl Network {
    fn new(n_nodes: usize) -> Network {
        let mut graph = DiGraphMap::new();
        for node in 0..n_nodes {
            graph.add_node(node);
        }
        Network { graph, self_loops_dropped: 0, duplicates_merged: 0 }
    }

    /// Adds a source's edges (and their reverses when `symmetric`): self-loops are dropped
    /// and a duplicate merged into the edge already there (larger weight, origins joined,
    /// a sign where there was none), both counted.
    fn add_all(&mut self, produced: Vec<(usize, usize, f64, i64)>, symmetric: bool, origin: &str) {
        for (a, b, w, s) in produced {
            self.add(a, b, w, s, origin);
            if symmetric {
                self.add(b, a, w, s, origin);
            }
        }
    }

    fn add(&mut self, a: usize, b: usize, weight: f64, sign: i64, origin: &str) {
        if a == b {
            self.self_loops_dropped += 1;
            return;
        }
        if let Some(e) = self.graph.edge_weight_mut(a, b) {
            self.duplicates_merged += 1;
            e.weight = e.weight.max(weight);
            if !e.origin.split(';').any(|o| o == origin) {
                e.origin = format!("{};{origin}", e.origin);
            }
            if e.sign == 0 {
                e.sign = sign;
            }
            return;
        }
        self.graph.add_edge(a, b, EdgeData { weight, sign, origin: origin.to_string() });
    }

    /// The network-quality study: seeded removal, then addition, of a fraction of edges.
    fn degrade(&mut self, opts: &GraphOptions) -> Degradation {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut edges: Vec<(usize, usize)> = self.graph.all_edges().map(|(a, b, _)| (a, b)).collect();
        edges.sort_unstable();
        let dropped = (opts.drop_edges * edges.len() as f64).round() as usize;
        edges.shuffle(&mut rng);
        for &(a, b) in edges.iter().take(dropped) {
            self.graph.remove_edge(a, b);
        }
        let n_add = (opts.add_edges * edges.len() as f64).round() as usize;
        let n_nodes = self.graph.node_count();
        let possible = n_nodes * n_nodes.saturating_sub(1);
        let mut added = 0;
        while added < n_add && self.graph.edge_count() < possible {
            let (a, b) = (rng.random_range(0..n_nodes), rng.random_range(0..n_nodes));
            if a != b && !self.graph.contains_edge(a, b) {
                self.graph.add_edge(a, b, EdgeData { weight: 1.0, sign: 0, origin: "random".into() });
                added += 1;
            }
        }
        Degradation { dropped, added }
    }
}

/// Writes `edges.parquet` (sorted by (source, target) node index) and `nodes.parquet`;
/// returns every node's degree (in + out edges).
fn write_tables(staged: &StagedDir, graph: &DiGraphMap<usize, EdgeData>, screen: &ScreenNodes, names: &NodeNames) -> Result<Vec<i64>> {
    let nodes = &screen.nodes;
    let mut out: Vec<(usize, usize, &EdgeData)> = graph.all_edges().collect();
    out.sort_by_key(|e| (e.0, e.1));
    let degree: Vec<i64> = (0..nodes.len())
        .map(|n| {
            graph.neighbors_directed(n, petgraph::Direction::Outgoing).count() as i64
                + graph.neighbors_directed(n, petgraph::Direction::Incoming).count() as i64
        })
        .collect();
    let edge_rows: Vec<GraphEdgeRow> = out
        .iter()
        .map(|&(a, b, e)| GraphEdgeRow { source: nodes[a].clone(), target: nodes[b].clone(), weight: e.weight, sign: e.sign, origin: e.origin.clone() })
        .collect();
    gene_network::write_edges(&edge_rows, &staged.output(es::FILE))?;
    let measured_set: std::collections::HashSet<&str> = screen.measured.iter().map(String::as_str).collect();
    let target_set: std::collections::HashSet<&str> = screen.targets.iter().map(String::as_str).collect();
    let match_name = |m: names::Match| match m {
        names::Match::Symbol => "symbol",
        names::Match::Case => "case",
        names::Match::Alias => "alias",
        names::Match::Identifier => "identifier",
        names::Match::Unmapped => "unmapped",
    };
    let node_rows: Vec<GraphNodeRow> = nodes
        .iter()
        .zip(&names.mapped)
        .zip(&degree)
        .map(|((n, m), &degree)| GraphNodeRow {
            node: n.clone(),
            symbol: m.0.clone().unwrap_or_default(),
            match_kind: match_name(m.1).to_string(),
            measured: measured_set.contains(n.as_str()),
            perturbed: target_set.contains(n.as_str()),
            degree,
        })
        .collect();
    gene_network::write_nodes(&node_rows, &staged.output(ns::FILE))?;
    Ok(degree)
}

/// What the graph covers, its wall time left at 0 for the caller to fill.
fn coverage(
    screen: &ScreenNodes,
    names: &NodeNames,
    network: &Network,
    degree: &[i64],
    per_source: BTreeMap<String, usize>,
    unknown: UnknownEdgeGenes,
    degraded: Degradation,
) -> Coverage {
    let node_index = screen.index();
    let targets_without: Vec<String> = screen.targets.iter().filter(|t| degree[node_index[t.as_str()]] == 0).cloned().collect();
    let unmapped = names.unmapped(&screen.nodes);
    Coverage {
        n_nodes: screen.nodes.len(),
        n_edges: network.graph.edge_count(),
        edges_per_source: per_source,
        genes_with_edges: (0..screen.measured.len()).filter(|&i| degree[i] > 0).count(),
        n_measured_genes: screen.measured.len(),
        targets_with_edges: screen.targets.len() - targets_without.len(),
        n_targets: screen.targets.len(),
        targets_without_edges: targets_without,
        isolated_nodes: degree.iter().filter(|&&d| d == 0).count(),
        n_unmapped: unmapped.len(),
        unmapped_names: unmapped.into_iter().take(50).collect(),
        self_loops_dropped: network.self_loops_dropped,
        duplicates_merged: network.duplicates_merged,
        edges_with_unknown_genes: unknown.edges,
        unknown_edge_genes: unknown.genes,
        edges_dropped: degraded.dropped,
        edges_added: degraded.added,
        seconds: 0.0,
    }
}

/// The manifest: every option, the coverage without its wall time (manifests stay
/// byte-stable), the two tables.
fn write_manifest(staged: &StagedDir, opts: &GraphOptions, inputs: Vec<InputFile>, coverage: &Coverage) -> Result<()> {
    let spec: Vec<String> = opts.sources.iter().map(Source::origin).collect();
    let parameters = serde_json::json!({
        "source": spec.join("+"),
        "go_ontologies": opts.go_ontologies,
        "go_evidence": opts.go_evidence,
        "go_min_jaccard": opts.go_min_jaccard,
        "top_k": opts.top_k,
        "resources": opts.resources,
        "symmetrise": opts.symmetrise,
        "coexpression_min": opts.coexpression_min,
        "drop_edges": opts.drop_edges,
        "add_edges": opts.add_edges,
        "seed": opts.seed,
    });
    let mut manifest = Manifest::new("graph", inputs, parameters);
    let mut summary = serde_json::to_value(coverage).expect("coverage serialises");
    summary.as_object_mut().expect("object").remove("seconds");
    manifest.summary = summary;
    staged.write_manifest(manifest)
}

/// Names of an edge file that resolve to no node, in order of first appearance.
#[derive(Default)]
struct UnknownNames {
    names: Vec<String>,
    unknown: std::collections::HashSet<String>,
    known: std::collections::HashSet<String>,
}

impl UnknownNames {
    fn note(&mut self, name: &str, unknown: bool) {
        if !unknown {
            if !self.known.contains(name) {
                self.known.insert(name.to_string());
            }
        } else if self.unknown.insert(name.to_string()) {
            self.names.push(name.to_string());
        }
    }
}

/// The error for an edge file none of whose edges joins two nodes of the screen.
fn no_usable_edge(path: &Path, n_edges: usize, unknown: &UnknownNames, nodes: &[String]) -> Error {
    let first = unknown.names.first().map_or("", String::as_str);
    let closest = perturb_core::names::close_names(first, nodes, 3).join(", ");
    let first = format!("first unknown: '{first}' (closest: {closest})");
    let message = if unknown.known.is_empty() {
        format!("none of the {n_edges} edges names a gene of the screen; {first}")
    } else {
        format!(
            "none of the {n_edges} edges joins two genes of the screen ({} of its {} gene names are unknown); {first}",
            unknown.names.len(),
            unknown.names.len() + unknown.known.len()
        )
    };
    Error::bad_input(path, message)
}

/// The measured genes of a genes table, after checking that it is one: a string column
/// `gene` of unique, non-empty names (and, of the other columns ingest writes, the right
/// types where present). Catches `--genes` pointed at another artifact, such as
/// pseudobulk.parquet, whose `gene` column repeats every gene once per condition.
fn check_genes_table(path: &Path, t: &Table) -> Result<Vec<String>> {
    let columns = t.column_names().join(", ");
    let hint = "pass the genes.parquet of an ingest folder";
    let Some(gene_column) = t.column(gs::GENE) else {
        return Err(Error::bad_input(path, format!("is not a genes table (no column '{}'; columns: {columns}); {hint}", gs::GENE)));
    };
    if t.column(cs::CONDITION).is_some() {
        let what = if t.column(ps::MEAN).is_some() { "is a pseudobulk table, not a genes table" } else { "is not a genes table" };
        return Err(Error::bad_input(path, format!("{what} (it has a '{}' column; columns: {columns}); {hint}", cs::CONDITION)));
    }
    let Column::Str(genes) = gene_column else {
        return Err(Error::bad_input(path, format!("is not a genes table (column '{}' is {}, not string); {hint}", gs::GENE, gene_column.type_name())));
    };
    let typed: [(&str, &str); 5] =
        [(gs::GENE_ID, "string"), (gs::CONTROL_MEAN, "float64"), (gs::CONTROL_RANK, "int64"), (gs::N_CELLS_DETECTED, "int64"), (gs::HIGHLY_VARIABLE, "bool")];
    for (name, want) in typed {
        if let Some(c) = t.column(name) {
            if c.type_name() != want {
                return Err(Error::bad_input(path, format!("is not a genes table (column '{name}' is {}, not {want}); {hint}", c.type_name())));
            }
        }
    }
    if genes.is_empty() {
        return Err(Error::bad_input(path, "genes table has no genes"));
    }
    let mut first_row: HashMap<&str, usize> = HashMap::with_capacity(genes.len());
    for (row, g) in genes.iter().enumerate() {
        if g.trim().is_empty() {
            return Err(Error::bad_input(path, format!("row {row} of the genes table has an empty gene name")));
        }
        if let Some(first) = first_row.insert(g.as_str(), row) {
            return Err(Error::bad_input(path, format!("gene '{g}' appears twice (rows {first} and {row}); a genes table has one row per gene: {hint}")));
        }
    }
    Ok(genes.clone())
}

/// Checks that `conditions.parquet` beside the genes table is a conditions table: a
/// string column `condition` of unique names and a list column `genes` holding each
/// condition's genes.
fn check_conditions_table(path: &Path, t: &Table) -> Result<()> {
    let columns = t.column_names().join(", ");
    let not = |why: String| Error::bad_input(path, format!("is not a conditions table ({why}; columns: {columns}); pass --genes from an ingest folder"));
    let condition = match t.column(cs::CONDITION) {
        Some(Column::Str(v)) => v,
        Some(c) => return Err(not(format!("column '{}' is {}, not string", cs::CONDITION, c.type_name()))),
        None => return Err(not(format!("no column '{}'", cs::CONDITION))),
    };
    let genes = match t.column(cs::GENES) {
        Some(Column::StrList(v)) => v,
        Some(c) => return Err(not(format!("column '{}' is {}, not list<string>", cs::GENES, c.type_name()))),
        None => return Err(not(format!("no column '{}'", cs::GENES))),
    };
    let mut first_row: HashMap<&str, usize> = HashMap::with_capacity(condition.len());
    for (row, (c, g)) in condition.iter().zip(genes).enumerate() {
        if let Some(first) = first_row.insert(c.as_str(), row) {
            return Err(Error::bad_input(
                path,
                format!("condition '{c}' appears twice (rows {first} and {row}); a conditions table has one row per condition"),
            ));
        }
        let parsed = Condition::parse_canonical(c).map_err(|m| Error::bad_input(path, format!("row {row}: {m}")))?;
        let mut listed = g.clone();
        listed.sort();
        if parsed.genes() != listed.as_slice() {
            return Err(Error::bad_input(path, format!("row {row}: condition '{c}' lists genes [{}], not its own", g.join(", "))));
        }
    }
    Ok(())
}

fn go_edges(opts: &GraphOptions, go_path: &Path, mapped: &[(Option<String>, names::Match)]) -> Result<Vec<(usize, usize, f64, i64)>> {
    let t = Table::read_parquet(go_path)?;
    let (gene, term, ontology, evidence) =
        (t.strings("gene", go_path)?, t.strings("go_id", go_path)?, t.strings("ontology", go_path)?, t.strings("evidence", go_path)?);
    let mut term_id: HashMap<&str, u32> = HashMap::new();
    let mut terms_of_symbol: HashMap<&str, Vec<u32>> = HashMap::new();
    for i in 0..gene.len() {
        if !opts.go_ontologies.iter().any(|o| o == &ontology[i]) || (!opts.go_evidence.is_empty() && !opts.go_evidence.iter().any(|e| e == &evidence[i])) {
            continue;
        }
        let next = term_id.len() as u32;
        let id = *term_id.entry(term[i].as_str()).or_insert(next);
        terms_of_symbol.entry(gene[i].as_str()).or_default().push(id);
    }
    let sets: Vec<Vec<u32>> = mapped
        .iter()
        .map(|(s, _)| {
            let mut v = s.as_deref().and_then(|s| terms_of_symbol.get(s)).cloned().unwrap_or_default();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    Ok(go::jaccard_top_k(&sets, term_id.len(), opts.go_min_jaccard, opts.top_k, opts.threads).into_iter().map(|(a, b, w)| (a, b, w, 0)).collect())
}

/// |Pearson| between measured genes over the training conditions' pseudobulk means;
/// each gene keeps its `top_k` partners above `coexpression_min`.
fn coexpression_edges(opts: &GraphOptions, measured: &[String], inputs: &mut Vec<InputFile>) -> Result<Vec<(usize, usize, f64, i64)>> {
    let Some(train_path) = &opts.train_conditions else {
        return Err(Error::bad_option(
            "--train-conditions",
            "coexpression needs the training split's conditions (one per line), so that test perturbations never shape the prior",
        ));
    };
    let text = std::fs::read_to_string(train_path).map_err(|e| Error::io(train_path, e))?;
    let train: std::collections::HashSet<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Condition::parse_canonical(l).map(|c| c.canonical()).map_err(|m| Error::bad_input(train_path, m)))
        .collect::<Result<_>>()?;
    inputs.push(InputFile::hash(train_path)?);
    let pb_path = opts.genes.with_file_name(ps::FILE);
    inputs.push(InputFile::hash(&pb_path)?);
    let t = Table::read_parquet(&pb_path)?;
    let (cond, gene, mean) = (t.strings(ps::CONDITION, &pb_path)?, t.strings(ps::GENE, &pb_path)?, t.floats(ps::MEAN, &pb_path)?);
    let gi: HashMap<&str, usize> = measured.iter().enumerate().map(|(i, g)| (g.as_str(), i)).collect();
    let mut columns: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for i in 0..cond.len() {
        if train.contains(&cond[i]) {
            if let Some(&g) = gi.get(gene[i].as_str()) {
                columns.entry(cond[i].as_str()).or_insert_with(|| vec![0.0; measured.len()])[g] = mean[i];
            }
        }
    }
    if columns.len() < 3 {
        return Err(Error::bad_input(
            train_path,
            format!("only {} training conditions found in {}; coexpression needs at least 3", columns.len(), pb_path.display()),
        ));
    }
    // Standardise each gene's profile across conditions; Pearson = dot / n.
    let n_c = columns.len();
    let profiles: Vec<Vec<f64>> = (0..measured.len())
        .map(|g| {
            let v: Vec<f64> = columns.values().map(|c| c[g]).collect();
            let m = v.iter().sum::<f64>() / n_c as f64;
            let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n_c as f64).sqrt();
            if sd > 0.0 {
                v.iter().map(|x| (x - m) / sd).collect()
            } else {
                vec![0.0; n_c]
            }
        })
        .collect();
    let mut edges = Vec::new();
    let mut scored: Vec<(f64, usize)> = Vec::new();
    for a in 0..profiles.len() {
        scored.clear();
        for b in 0..profiles.len() {
            if a != b {
                let r = profiles[a].iter().zip(&profiles[b]).map(|(x, y)| x * y).sum::<f64>() / n_c as f64;
                if r.abs() > opts.coexpression_min {
                    scored.push((r.abs(), b));
                }
            }
        }
        scored.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        edges.extend(scored.iter().take(opts.top_k).map(|&(w, b)| (a, b, w, 0)));
    }
    Ok(edges)
}

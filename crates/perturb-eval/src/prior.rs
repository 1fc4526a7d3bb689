//! The gene network of the graph stage, as the prior-based baselines read it: each node's
//! neighbours, undirected, with the edge weight.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use perturb_core::schema::edges as es;
use perturb_core::{Error, Result};

/// A neighbour of a node and the weight of the edge between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub node: String,
    pub weight: f64,
}

/// The prior as an undirected weighted graph. Direction is dropped on purpose: a
/// regulator's targets and a target's regulators both say where its effect may look like
/// another's, and GO edges are only directed by GEARS' top-k cut.
#[derive(Debug, Clone, Default)]
pub struct PriorGraph {
    /// Node -> its neighbours, strongest first, ties by name; an edge given in both
    /// directions counts once with the larger weight.
    neighbours: HashMap<String, Vec<Neighbour>>,
}

impl PriorGraph {
    /// Reads `GRAPH_DIR/edges.parquet`; a missing file or column, or a weight that is not a
    /// finite number >= 0, is an error naming the file and row.
    pub fn read(graph_dir: &Path) -> Result<PriorGraph> {
        let path = graph_dir.join(es::FILE);
        if !path.is_file() {
            return Err(Error::bad_input(&path, "does not exist; --graph takes the output folder of `perturb graph`"));
        }
        let rows = perturb_core::gene_network::read_edges(&path)?;
        let mut edges = Vec::with_capacity(rows.len());
        for (row, e) in rows.iter().enumerate() {
            let w = e.weight;
            if !(w.is_finite() && w >= 0.0) {
                return Err(Error::bad_input(&path, format!("row {row} ({} -> {}): weight {w} is not a finite number >= 0", e.source, e.target)));
            }
            edges.push((e.source.as_str(), e.target.as_str(), w));
        }
        Ok(PriorGraph::from_edges(edges))
    }

    /// The graph of (source, target, weight) edges; self-loops are dropped.
    pub fn from_edges<'a>(edges: impl IntoIterator<Item = (&'a str, &'a str, f64)>) -> PriorGraph {
        let mut undirected: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for (s, t, w) in edges {
            if s == t {
                continue;
            }
            let key = if s < t { (s, t) } else { (t, s) };
            let entry = undirected.entry(key).or_insert(w);
            *entry = entry.max(w);
        }
        let mut neighbours: HashMap<String, Vec<Neighbour>> = HashMap::new();
        for ((a, b), w) in undirected {
            neighbours.entry(a.to_string()).or_default().push(Neighbour { node: b.to_string(), weight: w });
            neighbours.entry(b.to_string()).or_default().push(Neighbour { node: a.to_string(), weight: w });
        }
        for list in neighbours.values_mut() {
            list.sort_by(|x, y| y.weight.total_cmp(&x.weight).then_with(|| x.node.cmp(&y.node)));
        }
        PriorGraph { neighbours }
    }

    /// The neighbours of `node`, strongest first (none for a node the prior does not know).
    pub fn neighbours(&self, node: &str) -> &[Neighbour] {
        self.neighbours.get(node).map(Vec::as_slice).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_undirected_with_the_larger_weight_and_sorted() {
        let g = PriorGraph::from_edges([("A", "B", 0.5), ("B", "A", 0.9), ("A", "C", 0.9), ("A", "A", 3.0), ("D", "A", 0.1)]);
        let names: Vec<(&str, f64)> = g.neighbours("A").iter().map(|n| (n.node.as_str(), n.weight)).collect();
        assert_eq!(names, [("B", 0.9), ("C", 0.9), ("D", 0.1)]);
        assert_eq!(g.neighbours("B"), [Neighbour { node: "A".into(), weight: 0.9 }]);
        assert!(g.neighbours("Z").is_empty());
    }
}

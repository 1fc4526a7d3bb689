//! Training data from the artifacts of earlier stages: log-fold-change targets from the
//! ingest folder, the network from the graph folder, the conditions from a split file.

use std::collections::HashMap;
use std::path::Path;

use perturb_core::ingested::IngestedScreen;
use perturb_core::schema::{edges as es, nodes as ns};
use perturb_core::{gene_network, Error, Result};

use crate::features::Edge;
use crate::train::Example;

/// The network over graph nodes.
#[derive(Debug, Clone)]
pub struct GraphData {
    pub nodes: Vec<String>,
    pub edges: Vec<Edge>,
}

impl GraphData {
    pub fn read(dir: &Path) -> Result<GraphData> {
        let np = dir.join(ns::FILE);
        let ep = dir.join(es::FILE);
        for p in [&np, &ep] {
            if !p.is_file() {
                return Err(Error::bad_input(p, "missing: --graph must be a folder written by `perturb graph`"));
            }
        }
        let nodes: Vec<String> = gene_network::read_nodes(&np)?.into_iter().map(|n| n.node).collect();
        let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let rows = gene_network::read_edges(&ep)?;
        let mut edges = Vec::with_capacity(rows.len());
        for e in &rows {
            let (Some(&a), Some(&b)) = (index.get(e.source.as_str()), index.get(e.target.as_str())) else {
                return Err(Error::bad_input(&ep, format!("edge {} -> {} names a node missing from {}", e.source, e.target, np.display())));
            };
            edges.push(Edge { source: a, target: b, weight: e.weight as f32, sign: e.sign.signum() as f32 });
        }
        Ok(GraphData { nodes, edges })
    }

    pub fn node_index(&self) -> HashMap<&str, usize> {
        self.nodes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect()
    }

    /// The node of every output gene; every measured gene must be a node.
    pub fn output_nodes(&self, genes: &[String], graph_dir: &Path) -> Result<Vec<usize>> {
        let ni = self.node_index();
        genes
            .iter()
            .map(|g| {
                ni.get(g.as_str()).copied().ok_or_else(|| {
                    Error::bad_input(graph_dir.join(ns::FILE), format!("measured gene '{g}' is not a node; the graph was built for other data (rebuild it with `perturb graph --genes` on this ingest folder)"))
                })
            })
            .collect()
    }
}

/// Observed log-fold changes (condition mean − control mean) per condition.
#[derive(Debug, Clone)]
pub struct Targets {
    pub genes: Vec<String>,
    pub conditions: Vec<String>,
    pub condition_genes: Vec<Vec<String>>,
    /// condition-major, genes wide.
    pub lfc: Vec<f32>,
    /// Standard error of each log-fold change (condition and control sampling), same layout.
    pub standard_error: Vec<f32>,
    pub control_mean: Vec<f64>,
    pub control_variance: Vec<f64>,
}

impl Targets {
    pub fn read(dir: &Path) -> Result<Targets> {
        let screen = IngestedScreen::read(dir)?;
        let ng = screen.n_genes();
        let control = screen.control().to_vec();
        let control_variance = screen.variance_row(0).to_vec();
        let n_control = screen.n_cells[0].max(1) as f64;
        let mut lfc = Vec::with_capacity(screen.mean.len());
        let mut standard_error = Vec::with_capacity(screen.mean.len());
        for c in 0..screen.conditions.len() {
            let n = screen.n_cells[c].max(1) as f64;
            for g in 0..ng {
                lfc.push((screen.mean[c * ng + g] - control[g]) as f32);
                let v = screen.variance[c * ng + g] / n + control_variance[g] / n_control;
                standard_error.push(if v.is_finite() { v.sqrt() as f32 } else { 0.0 });
            }
        }
        Ok(Targets {
            genes: screen.genes,
            conditions: screen.conditions,
            condition_genes: screen.targets,
            lfc,
            standard_error,
            control_mean: control,
            control_variance,
        })
    }

    pub fn row(&self, c: usize) -> &[f32] {
        let n = self.genes.len();
        &self.lfc[c * n..(c + 1) * n]
    }

    fn standard_error_row(&self, c: usize) -> &[f32] {
        let n = self.genes.len();
        &self.standard_error[c * n..(c + 1) * n]
    }
}

/// The conditions of `set` in a split file written by the evaluator.
pub fn split_conditions(path: &Path, set: &str) -> Result<Vec<String>> {
    Ok(perturb_core::split::read(path)?.into_iter().filter(|r| r.set == set).map(|r| r.condition).collect())
}

/// What the model learns for a combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TargetMode {
    /// The full log-fold change (the seed design).
    Full,
    /// For a combination whose single perturbations were all measured in training: only
    /// its deviation from the sum of their log-fold changes; the prediction adds that sum
    /// back. Singles are learned in full.
    ResidualOverAdditive,
}

/// The training singles' observed log-fold changes, by gene.
pub fn single_effects(targets: &Targets, conditions: &[String]) -> HashMap<String, Vec<f32>> {
    let ci: HashMap<&str, usize> = targets.conditions.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    conditions
        .iter()
        .filter_map(|c| ci.get(c.as_str()).copied())
        .filter(|&c| targets.condition_genes[c].len() == 1)
        .map(|c| (targets.condition_genes[c][0].clone(), targets.row(c).to_vec()))
        .collect()
}

/// The sum of the singles' effects of `genes`, if every one was measured.
pub fn additive_part(singles: &HashMap<String, Vec<f32>>, genes: &[String]) -> Option<Vec<f32>> {
    if genes.len() < 2 {
        return None;
    }
    let parts: Option<Vec<&Vec<f32>>> = genes.iter().map(|g| singles.get(g)).collect();
    let parts = parts?;
    Some((0..parts[0].len()).map(|i| parts.iter().map(|p| p[i]).sum()).collect())
}

/// Training examples for `conditions` (the control is skipped).
pub fn examples(
    targets: &Targets,
    graph: &GraphData,
    conditions: &[String],
    singles: &HashMap<String, Vec<f32>>,
    split_path: &Path,
    mode: TargetMode,
) -> Result<Vec<Example>> {
    let ci: HashMap<&str, usize> = targets.conditions.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let ni = graph.node_index();
    let mut out = Vec::new();
    for name in conditions {
        let Some(&c) = ci.get(name.as_str()) else {
            return Err(Error::bad_input(split_path, format!("condition '{name}' is not in the ingested data; the split was made for other data")));
        };
        if targets.condition_genes[c].is_empty() {
            continue;
        }
        let genes = targets.condition_genes[c]
            .iter()
            .map(|g| ni.get(g.as_str()).copied().ok_or_else(|| Error::bad_input(split_path, format!("perturbed gene '{g}' is not a node of the graph"))))
            .collect::<Result<Vec<usize>>>()?;
        let mut lfc = targets.row(c).to_vec();
        if mode == TargetMode::ResidualOverAdditive {
            if let Some(add) = additive_part(singles, &targets.condition_genes[c]) {
                lfc.iter_mut().zip(add).for_each(|(y, a)| *y -= a);
            }
        }
        out.push(Example { genes, lfc, standard_error: targets.standard_error_row(c).to_vec() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additive_part_needs_every_single() {
        let singles: HashMap<String, Vec<f32>> = [("A".to_string(), vec![1.0, 0.5]), ("B".to_string(), vec![0.25, -1.0])].into_iter().collect();
        assert_eq!(additive_part(&singles, &["A".into(), "B".into()]), Some(vec![1.25, -0.5]));
        assert_eq!(additive_part(&singles, &["A".into(), "C".into()]), None);
        assert_eq!(additive_part(&singles, &["A".into()]), None, "a single has no additive part");
    }
}

//! The regulatory network the screen is simulated over: signed TF -> target edges read
//! from the priors (data/priors/regulons.parquet), and the subnetwork a screen uses.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

use perturb_core::{Error, Result, Table};

/// A signed directed edge between gene names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub source: String,
    pub target: String,
    /// +1 activation, -1 repression, 0 unknown.
    pub sign: i8,
}

#[derive(Debug, Clone, Default)]
pub struct Network {
    pub edges: Vec<Edge>,
}

impl Network {
    /// Reads a regulon table with columns `source`, `target`, `sign`. Nodes named by a
    /// UniProt accession are left out unless `symbols` (official gene symbols) has them.
    pub fn read(path: &Path, symbols: Option<&std::collections::HashSet<String>>) -> Result<Network> {
        let table = Table::read_parquet(path)?;
        let sources = table.strings("source", path)?;
        let targets = table.strings("target", path)?;
        let signs = table.ints("sign", path)?;
        let mut edges: Vec<Edge> = sources
            .iter()
            .zip(targets)
            .zip(signs)
            .filter(|((s, t), _)| {
                let gene = |n: &String| !looks_like_uniprot(n) || symbols.is_some_and(|set| set.contains(n));
                s != t && gene(s) && gene(t)
            })
            .map(|((s, t), &sign)| Edge { source: s.clone(), target: t.clone(), sign: sign.signum() as i8 })
            .collect();
        edges.sort();
        edges.dedup_by(|a, b| a.source == b.source && a.target == b.target);
        if edges.is_empty() {
            return Err(Error::bad_input(path, "the network has no edges"));
        }
        Ok(Network { edges })
    }

    /// Every gene named by an edge, sorted.
    pub fn genes(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.edges.iter().flat_map(|e| [e.source.as_str(), e.target.as_str()]).collect();
        set.into_iter().map(str::to_string).collect()
    }

    /// Out-degree per regulator.
    pub fn out_degree(&self) -> BTreeMap<&str, usize> {
        let mut d = BTreeMap::new();
        for e in &self.edges {
            *d.entry(e.source.as_str()).or_insert(0) += 1;
        }
        d
    }

    /// The genes within `max_depth` regulatory steps downstream of `roots`, nearest first
    /// (breadth-first, ties in name order), roots included.
    pub fn downstream(&self, roots: &[String], max_depth: usize) -> Vec<String> {
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in &self.edges {
            children.entry(e.source.as_str()).or_default().push(e.target.as_str());
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut order = Vec::new();
        let mut queue: VecDeque<(&str, usize)> = VecDeque::new();
        for r in roots {
            if seen.insert(r.as_str()) {
                order.push(r.clone());
                queue.push_back((r.as_str(), 0));
            }
        }
        while let Some((g, depth)) = queue.pop_front() {
            if depth == max_depth {
                continue;
            }
            if let Some(next) = children.get(g) {
                for &c in next {
                    if seen.insert(c) {
                        order.push(c.to_string());
                        queue.push_back((c, depth + 1));
                    }
                }
            }
        }
        order
    }
}

/// OmniPath names a few nodes by UniProt accession (proteins without a gene symbol);
/// a screen measures genes, so the simulator leaves those out.
pub fn looks_like_uniprot(name: &str) -> bool {
    let b = name.as_bytes();
    let alnum = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let block = |x: &[u8]| x.len() == 4 && x[0].is_ascii_uppercase() && alnum(x[1]) && alnum(x[2]) && x[3].is_ascii_digit();
    match b.len() {
        // [OPQ][0-9][A-Z0-9]{3}[0-9]
        6 if matches!(b[0], b'O' | b'P' | b'Q') => b[1].is_ascii_digit() && b[2..5].iter().all(|&c| alnum(c)) && b[5].is_ascii_digit(),
        // [A-NR-Z][0-9]([A-Z][A-Z0-9]{2}[0-9]){1,2}
        6 | 10 => b[0].is_ascii_uppercase() && !matches!(b[0], b'O' | b'P' | b'Q') && b[1].is_ascii_digit() && b[2..].chunks(4).all(block),
        _ => false,
    }
}

pub use perturb_core::names::close_names;

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Network {
        let e = |s: &str, t: &str| Edge { source: s.into(), target: t.into(), sign: 1 };
        Network { edges: vec![e("A", "B"), e("B", "C"), e("C", "D"), e("A", "E")] }
    }

    #[test]
    fn downstream_is_breadth_first_and_bounded() {
        assert_eq!(net().downstream(&["A".into()], 2), ["A", "B", "E", "C"]);
        assert_eq!(net().downstream(&["C".into()], 5), ["C", "D"]);
    }

    #[test]
    fn uniprot_accessions_are_recognised_and_symbols_are_not() {
        for acc in ["O14944", "P04637", "A0A173G4P4", "Q6UXI7", "A2VDJ0"] {
            assert!(looks_like_uniprot(acc), "{acc}");
        }
        for sym in ["KLF1", "CEBPA", "TP53", "GATA1", "H2AC6", "MT-ND1", "C19orf12"] {
            assert!(!looks_like_uniprot(sym), "{sym}");
        }
    }

    #[test]
    fn close_names_rank_by_edit_distance() {
        let known: Vec<String> = ["KLF1", "KLF2", "GATA1", "CEBPA"].iter().map(|s| s.to_string()).collect();
        assert_eq!(close_names("klf3", &known, 2), ["KLF1", "KLF2"]);
    }
}

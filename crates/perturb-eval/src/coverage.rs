//! Which models are compared on which perturbations.
//!
//! A ranking of means over different perturbation sets is not a comparison: `additive`
//! has no prediction for a double one of whose genes was never measured alone, and those
//! are often the hard ones. So every task has the set `all` — the (seed, perturbation)
//! pairs of its splits, which every model that covers them all is ranked on — and one
//! further set per distinct smaller coverage, named after the models that cover only it,
//! on which every model that covers it is scored again.

use std::collections::{BTreeMap, BTreeSet};

use crate::MetricRow;

/// The name of the set of every test (seed, perturbation) pair of a task.
pub const ALL: &str = perturb_core::schema::summary::ALL;

/// A (seed, perturbation) pair of a task's splits.
pub type Pair = (u64, String);

#[derive(Debug, Clone, PartialEq)]
pub struct PerturbationSet {
    pub task: String,
    /// [`ALL`], or the models that cover only these pairs, `+`-joined.
    pub name: String,
    pub pairs: BTreeSet<Pair>,
    /// The models scored on every pair of the set, in the order they first appear in the rows.
    pub models: Vec<String>,
    /// The task's pairs outside the set (none for [`ALL`]).
    pub left_out: Vec<Pair>,
}

impl PerturbationSet {
    /// The rows of the set's models on the set's pairs.
    pub fn rows(&self, rows: &[MetricRow]) -> Vec<MetricRow> {
        rows.iter()
            .filter(|r| r.task == self.task && self.models.contains(&r.model) && self.pairs.contains(&(r.seed, r.perturbation.clone())))
            .cloned()
            .collect()
    }

    /// Whether this set is a smaller coverage than the task's full one.
    pub fn is_partial(&self) -> bool {
        self.name != ALL
    }
}

/// The perturbation sets of every task of `rows`: [`ALL`] first, then the smaller
/// coverages from the largest down (ties by name).
pub fn perturbation_sets(rows: &[MetricRow]) -> Vec<PerturbationSet> {
    let mut tasks: Vec<&str> = Vec::new();
    let mut covered: BTreeMap<(&str, &str), BTreeSet<Pair>> = BTreeMap::new();
    let mut model_order: Vec<&str> = Vec::new();
    for r in rows {
        if !tasks.contains(&r.task.as_str()) {
            tasks.push(&r.task);
        }
        if !model_order.contains(&r.model.as_str()) {
            model_order.push(&r.model);
        }
        covered.entry((&r.task, &r.model)).or_default().insert((r.seed, r.perturbation.clone()));
    }
    let mut out = Vec::new();
    for task in tasks {
        let models: Vec<&str> = model_order.iter().copied().filter(|m| covered.contains_key(&(task, *m))).collect();
        let all: BTreeSet<Pair> = models.iter().flat_map(|m| covered[&(task, *m)].iter().cloned()).collect();
        let members =
            |pairs: &BTreeSet<Pair>| -> Vec<String> { models.iter().filter(|m| pairs.is_subset(&covered[&(task, **m)])).map(|m| m.to_string()).collect() };
        out.push(PerturbationSet { task: task.to_string(), name: ALL.to_string(), pairs: all.clone(), models: members(&all), left_out: Vec::new() });
        // Models with the same smaller coverage share one set.
        let mut partial: BTreeMap<&BTreeSet<Pair>, Vec<&str>> = BTreeMap::new();
        for m in models.iter().filter(|m| covered[&(task, **m)] != all) {
            partial.entry(&covered[&(task, *m)]).or_default().push(m);
        }
        let mut partial: Vec<(&BTreeSet<Pair>, Vec<&str>)> = partial.into_iter().collect();
        partial.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.1.cmp(&b.1)));
        for (pairs, owners) in partial {
            out.push(PerturbationSet {
                task: task.to_string(),
                name: owners.join("+"),
                pairs: pairs.clone(),
                models: members(pairs),
                left_out: all.difference(pairs).cloned().collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, seed: u64, perturbation: &str) -> MetricRow {
        crate::example_metric_row("double", seed, model, perturbation, 1.0)
    }

    #[test]
    fn a_model_covering_fewer_pairs_gets_its_own_set_and_leaves_the_ranking() {
        let mut rows = Vec::new();
        for p in ["A+B", "A+C", "B+C"] {
            rows.push(row("mean", 1, p));
            rows.push(row("app", 1, p));
        }
        rows.push(row("additive", 1, "A+B"));
        let sets = perturbation_sets(&rows);
        assert_eq!(sets.len(), 2);
        assert_eq!((sets[0].name.as_str(), sets[0].pairs.len()), (ALL, 3));
        assert_eq!(sets[0].models, ["mean", "app"]);
        assert!(sets[0].rows(&rows).iter().all(|r| r.model != "additive"));
        assert_eq!(sets[1].name, "additive");
        assert_eq!(sets[1].models, ["mean", "app", "additive"]);
        assert_eq!(sets[1].left_out, [(1, "A+C".to_string()), (1, "B+C".to_string())]);
        assert_eq!(sets[1].rows(&rows).len(), 3, "every model on the one pair additive covers");
    }

    #[test]
    fn full_coverage_gives_one_set() {
        let rows = vec![row("mean", 1, "A"), row("app", 1, "A"), row("mean", 2, "B"), row("app", 2, "B")];
        let sets = perturbation_sets(&rows);
        assert_eq!(sets.len(), 1);
        assert!(!sets[0].is_partial());
    }
}

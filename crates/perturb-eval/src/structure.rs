//! What a model learned about the cell's structure, scored against a known truth: the
//! regulatory network a simulated screen was generated with (`perturb simulate` writes it
//! as `<screen>.network.parquet`).
//!
//! - **Learned networks** (`grn.parquet` of a `grn_vae` model): the average precision
//!   (AUPRC) of ranking the model's candidate edges (the prior graph's) by the learned
//!   weight's magnitude, against two references on the same candidates — the prior's own
//!   weights, and no ranking at all (every edge tied, which scores the base rate) — over
//!   all edges and over the edges out of genes whose single perturbation was trained on
//!   (the only ones with direct evidence); and how often the learned sign agrees with the
//!   true one, against the prior's sign.
//! - **Gene programs** (`programs.parquet` of a `modules` model): each program's most
//!   enriched true regulon (hypergeometric tail, Benjamini–Hochberg over every program ×
//!   regulon test), and the same for the programs' genes shuffled (same sizes, seeded): the
//!   enrichment expected by chance.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use perturb_core::learned::GeneProgramRow;
use perturb_core::{Column, Error, Result, Table};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Regulons with fewer measured targets are not tested.
pub const MIN_REGULON: usize = 5;
/// Programs enriched at this BH-adjusted level count as enriched.
pub const Q_LEVEL: f64 = 0.05;

/// The simulator's network: signed weight by (source, target).
pub struct TruthNetwork {
    pub edges: HashMap<(String, String), f64>,
}

impl TruthNetwork {
    pub fn read(path: &Path) -> Result<TruthNetwork> {
        let rows = perturb_core::truth_network::read(path)?;
        Ok(TruthNetwork { edges: rows.into_iter().map(|r| ((r.source, r.target), r.weight)).collect() })
    }

    /// Targets of every source, sorted.
    fn regulons(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut r: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (s, t) in self.edges.keys() {
            r.entry(s.as_str()).or_default().push(t.as_str());
        }
        r.values_mut().for_each(|v| v.sort_unstable());
        r
    }
}

/// Average precision of ranking `scores` (higher first) against `truth` labels, with
/// `missing` true items that were never candidates (recall cannot reach them). Tied scores
/// form one step, so the result does not depend on the order of ties (as scikit-learn's
/// `average_precision_score`).
pub fn average_precision(scores: &[f64], truth: &[bool], missing: usize) -> f64 {
    let total = truth.iter().filter(|&&t| t).count() + missing;
    if total == 0 {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut seen, mut hits, mut ap) = (0usize, 0usize, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let mut new_hits = 0;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            new_hits += usize::from(truth[order[j]]);
            j += 1;
        }
        seen += j - i;
        hits += new_hits;
        ap += new_hits as f64 / total as f64 * hits as f64 / seen as f64;
        i = j;
    }
    ap
}

/// How far downstream of a perturbed gene the truth's genes count as its targets when an
/// attention is scored against them: one hop, since two already reach 38% of the genes on
/// the default screen (its hubs), too many to tell a ranking from a random one.
pub const ATTENTION_HOPS: usize = 1;

/// One model's attention table scored against the truth network.
#[derive(Debug, Clone)]
pub struct AttentionRow {
    pub model: String,
    pub task: String,
    /// Perturbations with at least one true downstream gene among the attended genes.
    pub perturbations: usize,
    /// Mean over them of the average precision of the attention (perturbed genes left
    /// out) for the truth's genes within [`ATTENTION_HOPS`] downstream.
    pub auprc: f64,
    /// Mean share of true downstream genes among the candidates: a random ranking's AUPRC.
    pub base_rate: f64,
}

impl TruthNetwork {
    /// The genes reached from `genes` within `hops` steps along the truth's edges, the
    /// starting genes excluded.
    pub fn downstream(&self, genes: &[&str], hops: usize) -> std::collections::BTreeSet<String> {
        let regulons = self.regulons();
        let mut reached: std::collections::BTreeSet<&str> = genes.iter().copied().collect();
        let mut frontier: Vec<&str> = genes.to_vec();
        for _ in 0..hops {
            let next: Vec<&str> = frontier.iter().flat_map(|g| regulons.get(g).into_iter().flatten().copied()).filter(|t| !reached.contains(t)).collect();
            reached.extend(next.iter().copied());
            frontier = next;
        }
        reached.into_iter().filter(|g| !genes.contains(g)).map(str::to_string).collect()
    }
}

/// Scores an attention table (`perturb predict --attention`: perturbation, gene,
/// attention) against the truth: does the attention rank the perturbed genes' true
/// downstream genes first?
pub fn score_attention(truth: &TruthNetwork, path: &Path, model: &str) -> Result<Vec<AttentionRow>> {
    let weights = perturb_core::profiles::read_attention(path)?;
    let mut by: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for w in &weights {
        by.entry(w.perturbation.as_str()).or_default().push((w.gene.as_str(), w.attention));
    }
    // (task) -> (n, sum of AP, sum of base rates)
    let mut sums: BTreeMap<&str, (usize, f64, f64)> = BTreeMap::new();
    for (perturbation, genes) in &by {
        let targets: Vec<&str> = perturbation.split('+').collect();
        let downstream = truth.downstream(&targets, ATTENTION_HOPS);
        let candidates: Vec<&(&str, f64)> = genes.iter().filter(|(gene, _)| !targets.contains(gene)).collect();
        let labels: Vec<bool> = candidates.iter().map(|(gene, _)| downstream.contains(*gene)).collect();
        let positives = labels.iter().filter(|&&l| l).count();
        if positives == 0 {
            continue;
        }
        let scores: Vec<f64> = candidates.iter().map(|(_, w)| *w).collect();
        let task = if targets.len() > 1 { "double" } else { "unseen_single" };
        let e = sums.entry(task).or_insert((0, 0.0, 0.0));
        (e.0, e.1, e.2) = (e.0 + 1, e.1 + average_precision(&scores, &labels, 0), e.2 + positives as f64 / candidates.len() as f64);
    }
    Ok(sums
        .into_iter()
        .map(|(task, (n, ap, base))| AttentionRow {
            model: model.to_string(),
            task: task.to_string(),
            perturbations: n,
            auprc: ap / n as f64,
            base_rate: base / n as f64,
        })
        .collect())
}

pub fn write_attention_rows(rows: &[AttentionRow], path: &Path) -> Result<()> {
    Table::new()
        .with("model", Column::Str(rows.iter().map(|r| r.model.clone()).collect()))
        .with("task", Column::Str(rows.iter().map(|r| r.task.clone()).collect()))
        .with("perturbations", Column::I64(rows.iter().map(|r| r.perturbations as i64).collect()))
        .with("auprc", Column::F64(rows.iter().map(|r| r.auprc).collect()))
        .with("base_rate", Column::F64(rows.iter().map(|r| r.base_rate).collect()))
        .write_parquet(path)
}

#[derive(Debug, Clone)]
pub struct GrnRow {
    pub task: String,
    pub seed: u64,
    pub model: String,
    /// "all" or "source_perturbed".
    pub edges: &'static str,
    /// "learned", "prior" or "tied".
    pub ranking: &'static str,
    pub auprc: f64,
    pub n_candidates: usize,
    pub n_true_candidates: usize,
    pub n_true: usize,
    /// Share of true candidate edges whose sign the ranking's weights give correctly.
    pub sign_agreement: f64,
}

/// Scores one learned network file against the truth.
pub fn score_grn(truth: &TruthNetwork, path: &Path, task: &str, seed: u64, model: &str) -> Result<Vec<GrnRow>> {
    let grn = perturb_core::learned::read_grn(path)?;
    let truth_of: Vec<Option<f64>> = grn.iter().map(|e| truth.edges.get(&(e.edge.source.clone(), e.edge.target.clone())).copied()).collect();
    let mut rows = Vec::new();
    for (edges, only_perturbed) in [("all", false), ("source_perturbed", true)] {
        let idx: Vec<usize> = (0..grn.len()).filter(|&i| !only_perturbed || grn[i].edge.source_perturbed).collect();
        let sources: HashSet<&str> = idx.iter().map(|&i| grn[i].edge.source.as_str()).collect();
        // True edges out of the same sources (all of them for "all").
        let n_true = if only_perturbed { truth.edges.keys().filter(|(a, _)| sources.contains(a.as_str())).count() } else { truth.edges.len() };
        let labels: Vec<bool> = idx.iter().map(|&i| truth_of[i].is_some()).collect();
        let n_true_candidates = labels.iter().filter(|&&l| l).count();
        let missing = n_true.saturating_sub(n_true_candidates);
        let agreement = |sign: &dyn Fn(usize) -> f64| {
            let true_edges: Vec<usize> = idx.iter().copied().filter(|&i| truth_of[i].is_some()).collect();
            let right = true_edges.iter().filter(|&&i| sign(i) != 0.0 && sign(i) == truth_of[i].expect("true edge").signum()).count();
            if true_edges.is_empty() {
                f64::NAN
            } else {
                right as f64 / true_edges.len() as f64
            }
        };
        let rankings: [(&'static str, Vec<f64>, f64); 3] = [
            ("learned", idx.iter().map(|&i| grn[i].learned.abs()).collect(), agreement(&|i| if grn[i].learned == 0.0 { 0.0 } else { grn[i].learned.signum() })),
            ("prior", idx.iter().map(|&i| grn[i].edge.prior_weight).collect(), agreement(&|i| grn[i].edge.prior_sign.signum() as f64)),
            ("tied", vec![0.0; idx.len()], f64::NAN),
        ];
        for (ranking, scores, sign_agreement) in rankings {
            rows.push(GrnRow {
                task: task.to_string(),
                seed,
                model: model.to_string(),
                edges,
                ranking,
                auprc: average_precision(&scores, &labels, missing),
                n_candidates: idx.len(),
                n_true_candidates,
                n_true,
                sign_agreement,
            });
        }
    }
    Ok(rows)
}

pub fn write_grn_rows(rows: &[GrnRow], path: &Path) -> Result<()> {
    Table::new()
        .with("task", Column::Str(rows.iter().map(|r| r.task.clone()).collect()))
        .with("seed", Column::I64(rows.iter().map(|r| r.seed as i64).collect()))
        .with("model", Column::Str(rows.iter().map(|r| r.model.clone()).collect()))
        .with("edges", Column::Str(rows.iter().map(|r| r.edges.to_string()).collect()))
        .with("ranking", Column::Str(rows.iter().map(|r| r.ranking.to_string()).collect()))
        .with("auprc", Column::F64(rows.iter().map(|r| r.auprc).collect()))
        .with("n_candidates", Column::I64(rows.iter().map(|r| r.n_candidates as i64).collect()))
        .with("n_true_candidates", Column::I64(rows.iter().map(|r| r.n_true_candidates as i64).collect()))
        .with("n_true", Column::I64(rows.iter().map(|r| r.n_true as i64).collect()))
        .with("sign_agreement", Column::F64(rows.iter().map(|r| r.sign_agreement).collect()))
        .write_parquet(path)
}

/// ln(k!) for k = 0..=n.
fn log_factorials(n: usize) -> Vec<f64> {
    let mut f = vec![0.0f64; n + 1];
    for k in 1..=n {
        f[k] = f[k - 1] + (k as f64).ln();
    }
    f
}

/// P(X ≥ x) for X hypergeometric: `drawn` items from `total`, of which `marked` are marked.
pub fn hypergeometric_tail(x: usize, total: usize, marked: usize, drawn: usize, lf: &[f64]) -> f64 {
    let choose = |n: usize, k: usize| lf[n] - lf[k] - lf[n - k];
    let high = marked.min(drawn);
    if x > high {
        return 0.0;
    }
    let low = x.max((drawn + marked).saturating_sub(total));
    let terms: Vec<f64> = (low..=high).map(|i| choose(marked, i) + choose(total - marked, drawn - i) - choose(total, drawn)).collect();
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()).min(0.0).exp()
}

/// Benjamini–Hochberg adjusted p-values.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank_from_top, &i) in order.iter().enumerate() {
        let rank = m - rank_from_top;
        running = running.min(p[i] * m as f64 / rank as f64);
        q[i] = running.min(1.0);
    }
    q
}

#[derive(Debug, Clone)]
pub struct ProgramRow {
    pub task: String,
    pub seed: u64,
    pub model: String,
    /// "programs" or "shuffled" (the same sizes, genes permuted: the chance reference).
    pub partition: &'static str,
    pub program: usize,
    /// Measured genes in the program.
    pub size: usize,
    pub best_regulon: String,
    pub regulon_size: usize,
    pub overlap: usize,
    pub q_value: f64,
}

/// The most enriched regulon of every program of `assignment` (measured genes only).
fn enrichment(genes: &[&str], assignment: &[usize], regulons: &[(&str, HashSet<&str>)], lf: &[f64]) -> Vec<(usize, usize, Option<(usize, usize, f64)>)> {
    let k = assignment.iter().max().map_or(0, |m| m + 1);
    let total = genes.len();
    let mut members: Vec<Vec<&str>> = vec![Vec::new(); k];
    for (g, &a) in genes.iter().zip(assignment) {
        members[a].push(g);
    }
    let mut tests: Vec<(usize, usize, usize, f64)> = Vec::new(); // program, regulon, overlap, p
    for (p, m) in members.iter().enumerate() {
        for (r, (_, targets)) in regulons.iter().enumerate() {
            let overlap = m.iter().filter(|g| targets.contains(*g)).count();
            if overlap > 0 {
                tests.push((p, r, overlap, hypergeometric_tail(overlap, total, targets.len(), m.len(), lf)));
            }
        }
    }
    // Every program × regulon pair is a test, also those without overlap (p = 1).
    let n_tests = k * regulons.len();
    let mut p_all: Vec<f64> = tests.iter().map(|t| t.3).collect();
    p_all.resize(n_tests.max(p_all.len()), 1.0);
    let q = benjamini_hochberg(&p_all);
    (0..k)
        .map(|p| {
            let best = tests
                .iter()
                .enumerate()
                .filter(|(_, t)| t.0 == p)
                .min_by(|a, b| q[a.0].total_cmp(&q[b.0]).then(a.1 .3.total_cmp(&b.1 .3)))
                .map(|(i, t)| (t.1, t.2, q[i]));
            (p, members[p].len(), best)
        })
        .collect()
}

/// Scores one program file (gene, program, measured) against the truth's regulons.
pub fn score_programs(truth: &TruthNetwork, path: &Path, task: &str, seed: u64, model: &str) -> Result<Vec<ProgramRow>> {
    let programs = perturb_core::learned::read_programs(path)?;
    if programs.iter().any(|r| r.program < 0) {
        return Err(Error::bad_input(path, "a program number is negative"));
    }
    let measured: Vec<&GeneProgramRow> = programs.iter().filter(|r| r.measured).collect();
    let genes: Vec<&str> = measured.iter().map(|r| r.gene.as_str()).collect();
    let universe: HashSet<&str> = genes.iter().copied().collect();
    // Programs renumbered densely over the measured genes.
    let mut dense: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &measured {
        let next = dense.len();
        dense.entry(r.program).or_insert(next);
    }
    let assignment: Vec<usize> = measured.iter().map(|r| dense[&r.program]).collect();
    let regulons: Vec<(&str, HashSet<&str>)> = truth
        .regulons()
        .into_iter()
        .map(|(s, targets)| (s, targets.into_iter().filter(|t| universe.contains(t)).collect::<HashSet<&str>>()))
        .filter(|(_, targets)| targets.len() >= MIN_REGULON)
        .collect();
    let lf = log_factorials(genes.len());
    let mut shuffled = assignment.clone();
    shuffled.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut rows = Vec::new();
    for (partition, a) in [("programs", &assignment), ("shuffled", &shuffled)] {
        for (program, size, best) in enrichment(&genes, a, &regulons, &lf) {
            let (best_regulon, regulon_size, overlap, q_value) = match best {
                Some((r, overlap, q)) => (regulons[r].0.to_string(), regulons[r].1.len(), overlap, q),
                None => (String::new(), 0, 0, 1.0),
            };
            rows.push(ProgramRow {
                task: task.to_string(),
                seed,
                model: model.to_string(),
                partition,
                program,
                size,
                best_regulon,
                regulon_size,
                overlap,
                q_value,
            });
        }
    }
    Ok(rows)
}

pub fn write_program_rows(rows: &[ProgramRow], path: &Path) -> Result<()> {
    Table::new()
        .with("task", Column::Str(rows.iter().map(|r| r.task.clone()).collect()))
        .with("seed", Column::I64(rows.iter().map(|r| r.seed as i64).collect()))
        .with("model", Column::Str(rows.iter().map(|r| r.model.clone()).collect()))
        .with("partition", Column::Str(rows.iter().map(|r| r.partition.to_string()).collect()))
        .with("program", Column::I64(rows.iter().map(|r| r.program as i64).collect()))
        .with("size", Column::I64(rows.iter().map(|r| r.size as i64).collect()))
        .with("best_regulon", Column::Str(rows.iter().map(|r| r.best_regulon.clone()).collect()))
        .with("regulon_size", Column::I64(rows.iter().map(|r| r.regulon_size as i64).collect()))
        .with("overlap", Column::I64(rows.iter().map(|r| r.overlap as i64).collect()))
        .with("q_value", Column::F64(rows.iter().map(|r| r.q_value).collect()))
        .write_parquet(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_is_scored_on_the_truths_downstream_genes() {
        let truth = TruthNetwork {
            edges: [(("A", "B"), 1.0), (("B", "C"), 1.0), (("C", "D"), 1.0)].iter().map(|((s, t), w)| ((s.to_string(), t.to_string()), *w)).collect(),
        };
        assert_eq!(truth.downstream(&["A"], 2).into_iter().collect::<Vec<_>>(), ["B", "C"]);
        assert_eq!(truth.downstream(&["A"], 1).into_iter().collect::<Vec<_>>(), ["B"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.parquet");
        let rows = |v: &[&str]| Column::Str(v.iter().map(|s| s.to_string()).collect());
        Table::new()
            .with("perturbation", rows(&["A", "A", "A", "A", "A"]))
            .with("gene", rows(&["A", "B", "C", "D", "E"]))
            .with("attention", Column::F64(vec![0.5, 0.15, 0.01, 0.1, 0.19]))
            .write_parquet(&path)
            .unwrap();
        let r = score_attention(&truth, &path, "app").unwrap();
        assert_eq!(r.len(), 1);
        // Candidates E 0.19, B 0.15, D 0.1, C 0.01 (A is the target); one hop: B, found at rank 2.
        assert!((r[0].auprc - 0.5).abs() < 1e-12, "{:?}", r[0]);
        assert!((r[0].base_rate - 0.25).abs() < 1e-12);
    }

    #[test]
    fn average_precision_of_perfect_worst_and_tied_rankings() {
        let truth = [true, false, true, false];
        assert_eq!(average_precision(&[4.0, 1.0, 3.0, 2.0], &truth, 0), 1.0);
        // Positives last: precision 1/3 then 2/4.
        assert!((average_precision(&[1.0, 4.0, 2.0, 3.0], &truth, 0) - (1.0 / 3.0 + 0.5) / 2.0).abs() < 1e-12);
        // All tied: the base rate; a true edge that is not a candidate halves the recall.
        assert_eq!(average_precision(&[0.0; 4], &truth, 0), 0.5);
        assert_eq!(average_precision(&[0.0; 4], &truth, 2), 0.25);
    }

    #[test]
    fn hypergeometric_tail_matches_hand_computation() {
        let lf = log_factorials(10);
        // 10 items, 4 marked, draw 3: P(X >= 2) = (C(4,2)C(6,1) + C(4,3)) / C(10,3) = 40/120.
        assert!((hypergeometric_tail(2, 10, 4, 3, &lf) - 40.0 / 120.0).abs() < 1e-12);
        assert!((hypergeometric_tail(0, 10, 4, 3, &lf) - 1.0).abs() < 1e-12);
        assert_eq!(hypergeometric_tail(4, 10, 4, 3, &lf), 0.0);
    }

    #[test]
    fn benjamini_hochberg_is_monotone_and_capped() {
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.5]);
        assert_eq!(q, [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.5].iter().map(|&x: &f64| x.min(1.0)).collect::<Vec<_>>());
    }

    #[test]
    fn a_program_equal_to_a_regulon_is_enriched_and_its_shuffle_is_not() {
        let dir = tempfile::tempdir().unwrap();
        // Truth: TF0 regulates g0..g9; TF1 regulates g10..g19; 40 measured genes.
        let mut s = Vec::new();
        let mut t = Vec::new();
        for i in 0..20 {
            s.push(format!("TF{}", i / 10));
            t.push(format!("g{i}"));
        }
        let truth_path = dir.path().join("truth.parquet");
        Table::new()
            .with("source", Column::Str(s))
            .with("target", Column::Str(t))
            .with("weight", Column::F64(vec![0.5; 20]))
            .write_parquet(&truth_path)
            .unwrap();
        let truth = TruthNetwork::read(&truth_path).unwrap();
        let programs = dir.path().join("programs.parquet");
        let genes: Vec<String> = (0..40).map(|i| format!("g{i}")).collect();
        Table::new()
            .with("gene", Column::Str(genes))
            .with("program", Column::I64((0..40).map(|i| (i / 10) as i64).collect()))
            .with("measured", Column::Bool(vec![true; 40]))
            .write_parquet(&programs)
            .unwrap();
        let rows = score_programs(&truth, &programs, "double", 1, "modules").unwrap();
        let real: Vec<&ProgramRow> = rows.iter().filter(|r| r.partition == "programs").collect();
        assert_eq!(real.len(), 4);
        assert_eq!((real[0].best_regulon.as_str(), real[0].overlap, real[0].size), ("TF0", 10, 10));
        assert!(real[0].q_value < 1e-5 && real[1].q_value < 1e-5, "{real:?}");
        assert!(real[2].best_regulon.is_empty() && real[2].q_value == 1.0);
        let shuffled_enriched = rows.iter().filter(|r| r.partition == "shuffled" && r.q_value < Q_LEVEL).count();
        assert!(shuffled_enriched <= 1, "{rows:?}");
    }

    #[test]
    fn grn_scores_compare_learned_prior_and_tied_rankings() {
        let dir = tempfile::tempdir().unwrap();
        let truth_path = dir.path().join("truth.parquet");
        let names = |v: &[&str]| Column::Str(v.iter().map(|s| s.to_string()).collect());
        Table::new()
            .with("source", names(&["A", "A", "B"]))
            .with("target", names(&["B", "C", "C"]))
            .with("weight", Column::F64(vec![0.5, -0.7, 0.3]))
            .write_parquet(&truth_path)
            .unwrap();
        let truth = TruthNetwork::read(&truth_path).unwrap();
        // Candidates: A->B, A->C (true), A->D (false), B->D (false); B->C is not a candidate.
        let grn = dir.path().join("grn.parquet");
        Table::new()
            .with("source", names(&["A", "A", "A", "B"]))
            .with("target", names(&["B", "C", "D", "D"]))
            .with("learned", Column::F64(vec![0.4, -0.6, 0.01, 0.0]))
            .with("prior_weight", Column::F64(vec![1.0, 1.0, 1.0, 1.0]))
            .with("prior_sign", Column::I64(vec![1, 0, 0, 0]))
            .with("source_perturbed", Column::Bool(vec![true, true, true, false]))
            .write_parquet(&grn)
            .unwrap();
        let rows = score_grn(&truth, &grn, "double", 1, "grn_vae").unwrap();
        let get = |edges: &str, ranking: &str| rows.iter().find(|r| r.edges == edges && r.ranking == ranking).unwrap();
        // Learned ranks both true candidates first; B->C is missed: recall 2/3.
        assert!((get("all", "learned").auprc - 2.0 / 3.0).abs() < 1e-12);
        // Prior: all tied at 1: precision 2/4 over recall 2/3.
        assert!((get("all", "prior").auprc - 0.5 * 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(get("all", "tied").auprc, get("all", "prior").auprc);
        assert_eq!((get("all", "learned").sign_agreement, get("all", "prior").sign_agreement), (1.0, 0.5));
        // Out of perturbed sources (A only): both of A's true edges are candidates.
        let p = get("source_perturbed", "learned");
        assert_eq!((p.n_candidates, p.n_true_candidates, p.n_true, p.auprc), (3, 2, 2, 1.0));
    }
}

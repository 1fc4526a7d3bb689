//! The honest baselines. Each predicts the pseudobulk expression profile (all genes) of
//! every test condition from the training conditions only: four that need nothing but the
//! screen ([`NAMES`]), two that read the prior network ([`PRIOR_NAMES`]), one that reads
//! another screen ([`LINEAR_OTHER_P`]) and two that read the same perturbations in other
//! contexts of the screen ([`OTHER_CONTEXT_NAMES`]).

use std::collections::{BTreeMap, HashMap};

use crate::data::Screen;
use crate::linalg::{solve_spd, symmetric_eigen};
use crate::prior::PriorGraph;
use crate::split::{Set, Split};

pub const NAMES: [&str; 4] = ["no_change", "mean", "additive", "linear"];

/// The baselines built on the prior network (`EvalOptions::graph`): graph nearest
/// neighbours ([`graph_knn`]) and ridge regression on the targets' network neighbourhoods
/// ([`linear_prior`]).
pub const PRIOR_NAMES: [&str; 2] = ["graph_knn", "linear_prior"];

/// How many of a target's strongest neighbours [`graph_knn`] averages over.
pub const GRAPH_KNN_K: usize = 10;

/// The linear baseline with P taken from another data set (`EvalOptions::linear_p_from`).
pub const LINEAR_OTHER_P: &str = "linear_p_other";

/// The baselines that read the same perturbation in other contexts (cell lines,
/// stimulation states: `EvalOptions::other_contexts`): its effect there, averaged over the
/// contexts that measured it; the other contexts' mean effect (the `mean` baseline carried
/// over); and this context's mean shift plus the perturbation's
/// departure from the other contexts' mean shift, scaled by a factor fitted on the
/// training perturbations (see [`other_contexts`]).
pub const OTHER_CONTEXT_NAMES: [&str; 3] = ["other_contexts", "other_contexts_mean", "other_contexts_fit"];

/// Every model name a baseline can take, in report order; a model scored beside the
/// baselines must be called otherwise, or its rows would merge into the baseline's.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    NAMES.into_iter().chain(PRIOR_NAMES).chain([LINEAR_OTHER_P]).chain(OTHER_CONTEXT_NAMES)
}

/// The baselines every model (and every [`OTHER_CONTEXT_NAMES`] challenger) is paired
/// with in the comparisons: all but the transfer baselines, which are paired as models are.
pub fn references() -> impl Iterator<Item = &'static str> {
    all_names().filter(|b| !OTHER_CONTEXT_NAMES.contains(b))
}

/// Each perturbation's effect in the other contexts of a screen, on the evaluated
/// screen's genes: the mean over the contexts that measured it.
pub struct OtherContexts {
    /// Ordered, so that `mean_effect` is summed in the same order in every run.
    pub effects: BTreeMap<String, Vec<f64>>,
    /// The mean of `effects` over their perturbations: the shift the other contexts'
    /// perturbations share.
    pub mean_effect: Vec<f64>,
}

impl OtherContexts {
    /// The effects of `others` (ingest folders of the other contexts) on `screen`'s genes;
    /// every gene of `screen` must be measured in each of them.
    pub fn read(screen: &Screen, others: &[std::path::PathBuf]) -> perturb_core::Result<OtherContexts> {
        let effects: BTreeMap<String, Vec<f64>> =
            perturb_core::ingested::effects_elsewhere(others, &screen.genes)?.into_iter().map(|(c, e)| (c, e.effect)).collect();
        let mut mean_effect = vec![0.0; screen.n_genes()];
        for e in effects.values() {
            for (m, v) in mean_effect.iter_mut().zip(e) {
                *m += v / effects.len() as f64;
            }
        }
        Ok(OtherContexts { effects, mean_effect })
    }
}

/// The [`OTHER_CONTEXT_NAMES`] baselines on the test conditions the other contexts
/// measured. `other_contexts`: the control plus the perturbation's effect there.
/// `other_contexts_mean`: the control plus the other contexts' mean effect.
/// `other_contexts_fit`: the `mean` baseline's profile plus β times the perturbation's
/// departure from the other contexts' mean effect, where β is the least-squares factor
/// (over every gene) from those departures to this context's departures from its mean
/// shift, on the training perturbations. Every context shifts its perturbed cells in its
/// own way (depth, stress), so only the perturbation-specific part is carried over; β = 0
/// is `mean`. Without a training perturbation the other contexts measured, β cannot be
/// fitted and only `other_contexts` is given.
pub fn other_contexts(screen: &Screen, train: &[usize], test: &[usize], others: &OtherContexts) -> Vec<(&'static str, HashMap<usize, Vec<f64>>)> {
    let control = screen.control();
    let effect_of = |i: usize| others.effects.get(&screen.conditions[i]);
    let carried = |effect: &[f64]| -> Vec<f64> { control.iter().zip(effect).map(|(c, x)| c + x).collect() };
    let mut out = vec![
        (OTHER_CONTEXT_NAMES[0], test.iter().filter_map(|&i| effect_of(i).map(|e| (i, carried(e)))).collect()),
        (OTHER_CONTEXT_NAMES[1], test.iter().filter(|&&i| effect_of(i).is_some()).map(|&i| (i, carried(&others.mean_effect))).collect()),
    ];
    let shift = perturbed_shift(screen, train);
    let (mut xy, mut xx) = (0.0, 0.0);
    for &k in train {
        let Some(x) = effect_of(k) else { continue };
        for g in 0..screen.n_genes() {
            let departure = x[g] - others.mean_effect[g];
            xy += departure * (screen.row(k)[g] - control[g] - shift[g]);
            xx += departure * departure;
        }
    }
    if xx > 0.0 {
        let beta = xy / xx;
        let fit = test
            .iter()
            .filter_map(|&i| effect_of(i).map(|e| (i, (0..screen.n_genes()).map(|g| control[g] + shift[g] + beta * (e[g] - others.mean_effect[g])).collect())))
            .collect();
        out.push((OTHER_CONTEXT_NAMES[2], fit));
    }
    out
}

/// What the baselines are fitted with beyond the screen and its split.
pub struct BaselineInputs<'a> {
    pub linear_k: usize,
    /// The ridge penalty of `linear`, `linear_p_other` and `linear_prior`.
    pub ridge: f64,
    /// Perturbation embeddings from another screen: adds `linear_p_other`.
    pub other_p: Option<&'a HashMap<String, Vec<f64>>>,
    /// The prior network: adds [`PRIOR_NAMES`].
    pub prior: Option<&'a PriorGraph>,
    /// The screen's other contexts: adds [`OTHER_CONTEXT_NAMES`].
    pub other_contexts: Option<&'a OtherContexts>,
}

/// Predictions per baseline: test condition index -> profile. `additive` only covers
/// conditions whose every gene was measured alone.
/// With `other_p`, also `linear_p_other`: the linear model with perturbation embeddings
/// from another screen (see [`perturbation_pca`]); with `prior`, [`graph_knn`] and
/// [`linear_prior`].
pub fn predict_all(screen: &Screen, split: &Split, inputs: &BaselineInputs) -> Vec<(&'static str, HashMap<usize, Vec<f64>>)> {
    let (linear_k, ridge) = (inputs.linear_k, inputs.ridge);
    let test = split.indices(Set::Test);
    let control = screen.control();
    let train = perturbed_training(screen, split);

    let no_change = test.iter().map(|&i| (i, control.to_vec())).collect();

    let mean_shift = perturbed_shift(screen, &train);
    let centroid: Vec<f64> = control.iter().zip(&mean_shift).map(|(c, d)| c + d).collect();
    let mean = test.iter().map(|&i| (i, centroid.clone())).collect();

    let mut additive = HashMap::new();
    for &i in &test {
        let singles: Option<Vec<usize>> = screen.targets[i].iter().map(|g| screen.single(g)).collect();
        if let Some(singles) = singles.filter(|s| s.len() >= 2) {
            let mut p = control.to_vec();
            for s in singles {
                for (g, v) in p.iter_mut().enumerate() {
                    *v += screen.row(s)[g] - control[g];
                }
            }
            additive.insert(i, p);
        }
    }

    let mut out = vec![("no_change", no_change), ("mean", mean), ("additive", additive)];
    if let Some(others) = inputs.other_contexts {
        out.extend(other_contexts(screen, &train, &test, others));
    }
    if train.is_empty() {
        // Nothing to fit (the unseen_context task): a regression on no perturbation is no
        // baseline, and `mean` is the control.
        return out;
    }
    let model = LinearModel::fit(screen, &train, linear_k, ridge, None);
    out.push(("linear", test.iter().map(|&i| (i, model.predict(screen, &screen.targets[i]))).collect()));
    if let Some(prior) = inputs.prior {
        out.push((PRIOR_NAMES[0], graph_knn(screen, &train, &test, &mean_shift, prior)));
        out.push((PRIOR_NAMES[1], linear_prior(screen, &train, &test, prior, ridge)));
    }
    if let Some(p) = inputs.other_p {
        let model = LinearModel::fit(screen, &train, linear_k, ridge, Some(p));
        out.push((LINEAR_OTHER_P, test.iter().map(|&i| (i, model.predict(screen, &screen.targets[i]))).collect()));
    }
    out
}

/// The mean profile of the perturbed training conditions (`train` holds no control): the
/// `mean` baseline's prediction, and the reference of Systema's centroid Pearson delta
/// (the "perturbed mean" of Viñas Torné et al. 2025). The control when there are none.
pub fn perturbed_centroid(screen: &Screen, train: &[usize]) -> Vec<f64> {
    // The control plus the mean shift, summed in this order so that `mean` keeps the
    // figures it had before the centroid was shared.
    screen.control().iter().zip(perturbed_shift(screen, train)).map(|(c, d)| c + d).collect()
}

/// The mean effect of the perturbed training conditions (zero when there are none): the
/// `mean` baseline's shift from the control, and `graph_knn`'s fallback.
fn perturbed_shift(screen: &Screen, train: &[usize]) -> Vec<f64> {
    let control = screen.control();
    let mut shift = vec![0.0; screen.n_genes()];
    for &k in train {
        for (g, (y, c)) in screen.row(k).iter().zip(control).enumerate() {
            shift[g] += (y - c) / train.len() as f64;
        }
    }
    shift
}

/// The perturbed training conditions of a split (the control is never one).
pub fn perturbed_training(screen: &Screen, split: &Split) -> Vec<usize> {
    split.indices(Set::Train).into_iter().filter(|&i| !screen.targets[i].is_empty()).collect()
}

/// Graph nearest neighbours (after Valence's kNN baseline): a gene's effect is its
/// measured single effect when it was perturbed alone in training, otherwise the mean of
/// the measured single effects of its (at most [`GRAPH_KNN_K`]) strongest prior
/// neighbours that were, weighted by edge weight; a gene with no such neighbour gets
/// `fallback` (the `mean` baseline's shift). A multi-gene perturbation adds its genes'
/// effects, as `additive` does, so on doubles whose singles were all measured the two
/// coincide.
pub fn graph_knn(screen: &Screen, train: &[usize], test: &[usize], fallback: &[f64], prior: &PriorGraph) -> HashMap<usize, Vec<f64>> {
    let control = screen.control();
    let measured: HashMap<&str, usize> = train.iter().filter(|&&i| screen.targets[i].len() == 1).map(|&i| (screen.targets[i][0].as_str(), i)).collect();
    let effect_of = |i: usize| -> Vec<f64> { screen.row(i).iter().zip(control).map(|(y, c)| y - c).collect() };
    let gene_effect = |gene: &str| -> Vec<f64> {
        if let Some(&i) = measured.get(gene) {
            return effect_of(i);
        }
        let near: Vec<(usize, f64)> =
            prior.neighbours(gene).iter().filter_map(|n| measured.get(n.node.as_str()).map(|&i| (i, n.weight))).take(GRAPH_KNN_K).collect();
        if near.is_empty() {
            return fallback.to_vec();
        }
        let (total, count): (f64, usize) = (near.iter().map(|(_, w)| w).sum(), near.len());
        let mut e = vec![0.0; control.len()];
        for (i, w) in near {
            // All-zero weights (a user's edge file may hold them) count every neighbour alike.
            let share = if total > 0.0 { w / total } else { 1.0 / count as f64 };
            e.iter_mut().zip(effect_of(i)).for_each(|(x, d)| *x += share * d);
        }
        e
    };
    test.iter()
        .map(|&i| {
            let mut p = control.to_vec();
            for gene in &screen.targets[i] {
                p.iter_mut().zip(gene_effect(gene)).for_each(|(x, d)| *x += d);
            }
            (i, p)
        })
        .collect()
}

/// Ridge regression from the perturbed genes' network neighbourhoods to their effects
/// (GenePert's recipe with the prior in place of text embeddings). A gene's feature vector
/// is its row of I + A over the prior's nodes (A the undirected edge weights), scaled to
/// unit length, so two genes are alike as far as they are adjacent or share neighbours; a
/// perturbation's features are the sum of its genes'. Fitted in the dual (kernel) form over
/// the training conditions' centred profiles; a test gene that shares nothing with any
/// training gene gets the training mean.
pub fn linear_prior(screen: &Screen, train: &[usize], test: &[usize], prior: &PriorGraph, ridge: f64) -> HashMap<usize, Vec<f64>> {
    let ng = screen.n_genes();
    let nt = train.len();
    if nt == 0 {
        return test.iter().map(|&i| (i, screen.control().to_vec())).collect();
    }
    let features: Vec<BTreeMap<&str, f64>> = train.iter().map(|&i| neighbourhood(&screen.targets[i], prior)).collect();
    let mut offset = vec![0.0; ng];
    for &t in train {
        offset.iter_mut().zip(screen.row(t)).for_each(|(b, y)| *b += y / nt as f64);
    }
    // (K + λI) α = Yc, K the training conditions' feature inner products.
    let mut kernel = vec![0.0; nt * nt];
    for a in 0..nt {
        for b in a..nt {
            let v = dot(&features[a], &features[b]);
            kernel[a * nt + b] = v + if a == b { ridge } else { 0.0 };
            kernel[b * nt + a] = kernel[a * nt + b];
        }
    }
    let centred: Vec<f64> = train.iter().flat_map(|&t| screen.row(t).iter().zip(&offset).map(|(y, b)| y - b).collect::<Vec<_>>()).collect();
    let alpha = solve_spd(&kernel, &centred, nt, ng);
    test.iter()
        .map(|&i| {
            let f = neighbourhood(&screen.targets[i], prior);
            let mut p = offset.clone();
            for (t, ft) in features.iter().enumerate() {
                let k = dot(&f, ft);
                if k != 0.0 {
                    p.iter_mut().zip(&alpha[t * ng..(t + 1) * ng]).for_each(|(x, a)| *x += k * a);
                }
            }
            (i, p)
        })
        .collect()
}

/// The features of [`linear_prior`]: the sum over `genes` of each gene's unit-length row
/// of I + A, as a sparse map node -> value.
fn neighbourhood<'a>(genes: &'a [String], prior: &'a PriorGraph) -> BTreeMap<&'a str, f64> {
    let mut f: BTreeMap<&str, f64> = BTreeMap::new();
    for gene in genes {
        let row = prior.neighbours(gene);
        let norm = (1.0 + row.iter().map(|n| n.weight * n.weight).sum::<f64>()).sqrt();
        *f.entry(gene.as_str()).or_default() += 1.0 / norm;
        for n in row {
            *f.entry(n.node.as_str()).or_default() += n.weight / norm;
        }
    }
    f
}

/// The inner product of two sparse vectors, summed in key order so that the same inputs
/// give the same bits on every run (a hash map's order would vary).
fn dot(a: &BTreeMap<&str, f64>, b: &BTreeMap<&str, f64>) -> f64 {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small.iter().filter_map(|(k, v)| large.get(k).map(|w| v * w)).sum()
}

/// Perturbation embeddings from another screen, as Ahlmann-Eltze et al. transfer P between
/// data sets: the top-`k` principal-component scores of its single perturbations'
/// centred pseudobulk profiles, by perturbed gene (padded with zeros when the screen has
/// fewer than `k + 1` singles). A gene the other screen did not perturb gets no entry and
/// so a zero embedding.
pub fn perturbation_pca(other: &Screen, k: usize) -> HashMap<String, Vec<f64>> {
    let singles: Vec<usize> = (0..other.conditions.len()).filter(|&i| other.targets[i].len() == 1).collect();
    let (n, ng) = (singles.len(), other.n_genes());
    if n == 0 {
        return HashMap::new();
    }
    let mut centre = vec![0.0; ng];
    for &i in &singles {
        for (c, v) in centre.iter_mut().zip(other.row(i)) {
            *c += v / n as f64;
        }
    }
    let centred: Vec<f64> = singles.iter().flat_map(|&i| other.row(i).iter().zip(&centre).map(|(v, c)| v - c).collect::<Vec<_>>()).collect();
    let gram = gram_of_rows(&centred, n, ng);
    // Scores = U S = Yc Ycᵀ U S⁻¹ = the Gram's eigenvectors scaled by sqrt(eigenvalue).
    let (vals, vecs) = symmetric_eigen(&gram, n);
    singles
        .iter()
        .enumerate()
        .map(|(row, &i)| {
            let scores = (0..k).map(|c| if c < n { vecs[row * n + c] * vals[c].max(0.0).sqrt() } else { 0.0 }).collect();
            (other.targets[i][0].clone(), scores)
        })
        .collect()
}

/// The n × n matrix of inner products of the rows of `rows` (row-major n × width).
fn gram_of_rows(rows: &[f64], n: usize, width: usize) -> Vec<f64> {
    let mut gram = vec![0.0; n * n];
    for a in 0..n {
        for b in a..n {
            let s: f64 = rows[a * width..(a + 1) * width].iter().zip(&rows[b * width..(b + 1) * width]).map(|(x, y)| x * y).sum();
            gram[a * n + b] = s;
            gram[b * n + a] = s;
        }
    }
    gram
}

/// Ahlmann-Eltze et al.'s linear model: Y ≈ G W Pᵀ + b, G the genes' top-K PCA scores of
/// the centred training matrix, P a perturbation's row(s) of G, W by ridge on both sides.
pub struct LinearModel {
    /// genes × K, row-major.
    pub gene_embedding: Vec<f64>,
    /// K × K, row-major.
    pub w: Vec<f64>,
    pub offset: Vec<f64>,
    pub k: usize,
    gene_index: HashMap<String, usize>,
    /// P's rows from another data set, by perturbed gene; None: P is G's rows.
    other_p: Option<HashMap<String, Vec<f64>>>,
}

impl LinearModel {
    pub fn fit(screen: &Screen, train: &[usize], k: usize, ridge: f64, other_p: Option<&HashMap<String, Vec<f64>>>) -> LinearModel {
        let ng = screen.n_genes();
        let nt = train.len();
        let gene_index: HashMap<String, usize> = screen.genes.iter().enumerate().map(|(i, g)| (g.clone(), i)).collect();
        // b = row means of Y over training conditions; Yc = Y - b (genes × nt).
        let mut offset = vec![0.0; ng];
        for &t in train {
            for (g, v) in screen.row(t).iter().enumerate() {
                offset[g] += v / nt as f64;
            }
        }
        // Centred training matrix, condition-major (nt × genes) for contiguous dot products.
        let centred: Vec<f64> = train.iter().flat_map(|&t| screen.row(t).iter().zip(&offset).map(|(y, b)| y - b).collect::<Vec<_>>()).collect();
        let yc = |g: usize, t: usize| centred[t * ng + g];
        // Gram = Ycᵀ Yc (nt × nt); its eigenvectors give the gene scores G = Yc V.
        let gram = gram_of_rows(&centred, nt, ng);
        let k = k.min(nt.saturating_sub(1)).max(1);
        let (_vals, vecs) = symmetric_eigen(&gram, nt);
        let mut gene_embedding = vec![0.0; ng * k];
        for g in 0..ng {
            for c in 0..k {
                gene_embedding[g * k + c] = (0..nt).map(|t| yc(g, t) * vecs[t * nt + c]).sum();
            }
        }
        // P's width must match G's: K columns, truncated or zero-padded.
        let other_p = other_p.map(|p| p.iter().map(|(g, v)| (g.clone(), (0..k).map(|c| v.get(c).copied().unwrap_or(0.0)).collect())).collect());
        let model = LinearModel { gene_embedding, w: vec![0.0; k * k], offset: offset.clone(), k, gene_index, other_p };
        // P (nt × K): each training condition's embedding.
        let p: Vec<f64> = train.iter().flat_map(|&t| model.embed(&screen.targets[t])).collect();
        // GᵀG + λI and PᵀP + λI (K × K).
        let gtg: Vec<f64> = (0..k * k)
            .map(|ij| {
                (0..ng).map(|g| model.gene_embedding[g * k + ij / k] * model.gene_embedding[g * k + ij % k]).sum::<f64>()
                    + if ij / k == ij % k { ridge } else { 0.0 }
            })
            .collect();
        let ptp: Vec<f64> =
            (0..k * k).map(|ij| (0..nt).map(|t| p[t * k + ij / k] * p[t * k + ij % k]).sum::<f64>() + if ij / k == ij % k { ridge } else { 0.0 }).collect();
        // M = Gᵀ Yc P (K × K).
        let mut gty = vec![0.0; k * nt];
        for c in 0..k {
            for t in 0..nt {
                gty[c * nt + t] = (0..ng).map(|g| model.gene_embedding[g * k + c] * yc(g, t)).sum();
            }
        }
        let m: Vec<f64> = (0..k * k).map(|ij| (0..nt).map(|t| gty[(ij / k) * nt + t] * p[t * k + ij % k]).sum()).collect();
        // W = (GᵀG+λI)⁻¹ M (PᵀP+λI)⁻¹; the right inverse by solving on the transpose.
        let left = solve_spd(&gtg, &m, k, k);
        let left_t: Vec<f64> = (0..k * k).map(|ij| left[(ij % k) * k + ij / k]).collect();
        let w_t = solve_spd(&ptp, &left_t, k, k);
        let w = (0..k * k).map(|ij| w_t[(ij % k) * k + ij / k]).collect();
        LinearModel { w, ..model }
    }

    /// A perturbation's embedding: the sum of its genes' rows of P (G's rows, or the other
    /// data set's; an unknown gene adds nothing).
    pub fn embed(&self, genes: &[String]) -> Vec<f64> {
        let mut e = vec![0.0; self.k];
        for g in genes {
            if let Some(other) = &self.other_p {
                if let Some(v) = other.get(g) {
                    e.iter_mut().zip(v).for_each(|(x, y)| *x += y);
                }
            } else if let Some(&i) = self.gene_index.get(g) {
                for c in 0..self.k {
                    e[c] += self.gene_embedding[i * self.k + c];
                }
            }
        }
        e
    }

    pub fn predict(&self, screen: &Screen, genes: &[String]) -> Vec<f64> {
        let k = self.k;
        let p = self.embed(genes);
        let wp: Vec<f64> = (0..k).map(|r| (0..k).map(|c| self.w[r * k + c] * p[c]).sum()).collect();
        (0..screen.n_genes()).map(|g| self.offset[g] + (0..k).map(|c| self.gene_embedding[g * k + c] * wp[c]).sum::<f64>()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A screen of two genes: the control, then one row per perturbed gene.
    fn screen(rows: &[(&str, [f64; 2])]) -> Screen {
        Screen {
            genes: vec!["G1".into(), "G2".into()],
            conditions: rows.iter().map(|r| r.0.to_string()).collect(),
            targets: rows.iter().map(|r| if r.0 == "ctrl" { vec![] } else { vec![r.0.to_string()] }).collect(),
            n_cells: vec![10; rows.len()],
            mean: rows.iter().flat_map(|r| r.1).collect(),
            variance: vec![0.1; rows.len() * 2],
        }
    }

    #[test]
    fn other_contexts_carry_the_effect_the_mean_and_the_fitted_departure() {
        // Here: control (1, 1); A and B train, C tests.
        let here = screen(&[("ctrl", [1.0, 1.0]), ("A", [3.0, 1.0]), ("B", [1.0, 3.0]), ("C", [2.0, 2.0])]);
        // There (one other context): effects A (+1, 0), B (0, +1), C (+1, +1); mean (2/3, 2/3).
        let others = OtherContexts {
            effects: [("A", vec![1.0, 0.0]), ("B", vec![0.0, 1.0]), ("C", vec![1.0, 1.0])].into_iter().map(|(c, e)| (c.to_string(), e)).collect(),
            mean_effect: vec![2.0 / 3.0, 2.0 / 3.0],
        };
        let out: HashMap<&str, HashMap<usize, Vec<f64>>> = other_contexts(&here, &[1, 2], &[3], &others).into_iter().collect();
        assert_eq!(out["other_contexts"][&3], vec![2.0, 2.0]);
        assert_eq!(out["other_contexts_mean"][&3], vec![1.0 + 2.0 / 3.0, 1.0 + 2.0 / 3.0]);
        // Here's training departures from its mean shift (+1, +1): A (+1, −1), B (−1, +1);
        // there's: A (1/3, −2/3), B (−2/3, 1/3). β = Σxy / Σxx = (1/3+2/3+2/3+1/3) / (1/9+4/9+4/9+1/9) = 2 / (10/9).
        let beta = 2.0 / (10.0 / 9.0);
        let fit = &out["other_contexts_fit"][&3];
        for g in 0..2 {
            assert!((fit[g] - (2.0 + beta * (1.0 - 2.0 / 3.0))).abs() < 1e-12, "{fit:?}");
        }
        // Nothing of this context trains: no factor to fit.
        let strict: Vec<&str> = other_contexts(&here, &[], &[1, 2, 3], &others).into_iter().map(|(n, _)| n).collect();
        assert_eq!(strict, ["other_contexts", "other_contexts_mean"]);
    }
}

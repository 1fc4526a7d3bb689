//! Gene-relation clustering: the gene programs of the `modules` model.
//!
//! Every graph node gets two coordinate blocks — its place in the prior network (the leading
//! non-trivial eigenvectors of the symmetrically normalised adjacency, a spectral embedding)
//! and how it co-varies across the training conditions (its leading left singular vectors
//! of the genes × training-conditions log-fold-change matrix, scaled by the singular
//! values) — each standardised to unit total variance, so neither block dominates by its
//! scale. Seeded k-means++ then groups the nodes into K programs. Only training conditions
//! are read, so a test perturbation never shapes the programs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::features::Edge;

/// Coordinates per block.
const DIMENSIONS: usize = 8;
/// Subspace-iteration sweeps for the eigenvectors and singular vectors.
const SWEEPS: usize = 40;
const KMEANS_ITERATIONS: usize = 60;

/// Orthonormalises the columns of a row-major [n, k] matrix in place (modified
/// Gram–Schmidt); a column that vanishes (the matrix has lower rank) is set to zero.
fn orthonormalise(m: &mut [f64], n: usize, k: usize) {
    for j in 0..k {
        for i in 0..j {
            let dot: f64 = (0..n).map(|r| m[r * k + i] * m[r * k + j]).sum();
            (0..n).for_each(|r| m[r * k + j] -= dot * m[r * k + i]);
        }
        let norm = (0..n).map(|r| m[r * k + j].powi(2)).sum::<f64>().sqrt();
        if norm > 1e-12 {
            (0..n).for_each(|r| m[r * k + j] /= norm);
        } else {
            (0..n).for_each(|r| m[r * k + j] = 0.0);
        }
    }
}

fn seeded_block(n: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    (0..n * k).map(|_| rng.random::<f64>() - 0.5).collect()
}

/// Spectral coordinates [n, DIMENSIONS] of the undirected, weighted graph with self loops:
/// the eigenvectors 2..=DIMENSIONS+1 of D^-1/2 (W + Wᵀ + I) D^-1/2 (the first only
/// reflects degree).
pub fn spectral_coordinates(n: usize, edges: &[Edge], rng: &mut ChaCha8Rng) -> Vec<f64> {
    let k = DIMENSIONS + 1;
    let mut degree = vec![1.0f64; n];
    for e in edges {
        let w = f64::from(e.weight.abs());
        degree[e.source] += w;
        degree[e.target] += w;
    }
    let scale: Vec<f64> = degree.iter().map(|d| 1.0 / d.sqrt()).collect();
    // S + I keeps the spectrum in [0, 2], so the largest eigenvalues are also the largest in
    // magnitude and plain subspace iteration finds them.
    let apply = |x: &[f64]| {
        let mut y: Vec<f64> = (0..n * k).map(|i| x[i] * (1.0 + scale[i / k] * scale[i / k])).collect();
        for e in edges {
            let w = f64::from(e.weight.abs()) * scale[e.source] * scale[e.target];
            for j in 0..k {
                y[e.target * k + j] += w * x[e.source * k + j];
                y[e.source * k + j] += w * x[e.target * k + j];
            }
        }
        y
    };
    let mut v = seeded_block(n, k, rng);
    orthonormalise(&mut v, n, k);
    for _ in 0..SWEEPS {
        v = apply(&v);
        orthonormalise(&mut v, n, k);
    }
    (0..n).flat_map(|r| v[r * k + 1..(r + 1) * k].to_vec()).collect()
}

/// Co-variation coordinates [rows, DIMENSIONS] of a row-major [rows, cols] matrix: its
/// leading left singular vectors times the singular values (subspace iteration on X Xᵀ).
pub fn covariation_coordinates(x: &[f32], rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let k = DIMENSIONS;
    if cols == 0 {
        return vec![0.0; rows * k];
    }
    let mut u = seeded_block(rows, k, rng);
    orthonormalise(&mut u, rows, k);
    // Xᵀ·u ([cols, k]) and X·t ([rows, k]) in one pass over X each.
    let product = |m: &[f64], transposed: bool| {
        let mut y = vec![0.0f64; if transposed { cols } else { rows } * k];
        for r in 0..rows {
            for c in 0..cols {
                let v = f64::from(x[r * cols + c]);
                let (from, to) = if transposed { (r, c) } else { (c, r) };
                for j in 0..k {
                    y[to * k + j] += v * m[from * k + j];
                }
            }
        }
        y
    };
    let xt_u = |u: &[f64]| product(u, true);
    let x_t = |t: &[f64]| product(t, false);
    for _ in 0..SWEEPS {
        u = x_t(&xt_u(&u));
        orthonormalise(&mut u, rows, k);
    }
    // Scores: X Xᵀ U = U Σ² at convergence, so X (Xᵀ U) / σ = U σ; |Xᵀ u_j| = σ_j.
    let t = xt_u(&u);
    let sigma: Vec<f64> = (0..k).map(|j| (0..cols).map(|c| t[c * k + j].powi(2)).sum::<f64>().sqrt()).collect();
    (0..rows * k).map(|i| u[i] * sigma[i % k]).collect()
}

/// Scales a row-major [n, k] block to unit total variance (centred per column).
fn standardise_block(m: &mut [f64], n: usize, k: usize) {
    let mut total = 0.0;
    for j in 0..k {
        let mean = (0..n).map(|r| m[r * k + j]).sum::<f64>() / n.max(1) as f64;
        (0..n).for_each(|r| m[r * k + j] -= mean);
        total += (0..n).map(|r| m[r * k + j].powi(2)).sum::<f64>() / n.max(1) as f64;
    }
    if total > 0.0 {
        let s = total.sqrt();
        m.iter_mut().for_each(|v| *v /= s);
    }
}

/// Seeded k-means++ then Lloyd iterations on row-major [n, d] points; returns the cluster
/// of every point, clusters renumbered by first appearance. Empty clusters are re-seeded
/// on the point farthest from its centre, so every cluster of the result has members.
pub fn kmeans(points: &[f64], n: usize, d: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let k = k.clamp(1, n.max(1));
    let dist = |i: usize, c: &[f64]| (0..d).map(|j| (points[i * d + j] - c[j]).powi(2)).sum::<f64>();
    let mut centres: Vec<Vec<f64>> = vec![points[rng.random_range(0..n) * d..][..d].to_vec()];
    let mut nearest: Vec<f64> = (0..n).map(|i| dist(i, &centres[0])).collect();
    while centres.len() < k {
        let total: f64 = nearest.iter().sum();
        let pick = if total > 0.0 {
            let mut target = rng.random::<f64>() * total;
            nearest
                .iter()
                .position(|&w| {
                    target -= w;
                    target <= 0.0
                })
                .unwrap_or(n - 1)
        } else {
            rng.random_range(0..n)
        };
        centres.push(points[pick * d..][..d].to_vec());
        let c = centres.last().expect("just pushed").clone();
        nearest.iter_mut().enumerate().for_each(|(i, w)| *w = w.min(dist(i, &c)));
    }
    let mut assignment = vec![0usize; n];
    for _ in 0..KMEANS_ITERATIONS {
        let mut changed = false;
        for (i, a) in assignment.iter_mut().enumerate() {
            let best = (0..k).min_by(|&x, &y| dist(i, &centres[x]).total_cmp(&dist(i, &centres[y]))).expect("k >= 1");
            changed |= best != *a;
            *a = best;
        }
        let mut sums = vec![vec![0.0f64; d]; k];
        let mut counts = vec![0usize; k];
        for (i, &a) in assignment.iter().enumerate() {
            counts[a] += 1;
            (0..d).for_each(|j| sums[a][j] += points[i * d + j]);
        }
        for c in 0..k {
            if counts[c] == 0 {
                let far = (0..n).max_by(|&x, &y| dist(x, &centres[assignment[x]]).total_cmp(&dist(y, &centres[assignment[y]]))).expect("n >= 1");
                centres[c] = points[far * d..][..d].to_vec();
                assignment[far] = c;
                changed = true;
            } else {
                centres[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
            }
        }
        if !changed {
            break;
        }
    }
    let mut renumber = vec![usize::MAX; k];
    let mut next = 0;
    assignment
        .iter()
        .map(|&a| {
            if renumber[a] == usize::MAX {
                renumber[a] = next;
                next += 1;
            }
            renumber[a]
        })
        .collect()
}

/// The program of every graph node. `lfc` is row-major [outputs, training conditions]
/// (each output gene's observed changes), `outputs` the node of each of its rows; nodes
/// that are not measured have no co-variation coordinates (zeros).
pub fn gene_programs(n_nodes: usize, edges: &[Edge], outputs: &[usize], lfc: &[f32], n_conditions: usize, k: usize, seed: u64) -> Vec<usize> {
    if k <= 1 {
        return vec![0; n_nodes];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut spectral = spectral_coordinates(n_nodes, edges, &mut rng);
    standardise_block(&mut spectral, n_nodes, DIMENSIONS);
    let measured = covariation_coordinates(lfc, outputs.len(), n_conditions, &mut rng);
    let mut covariation = vec![0.0f64; n_nodes * DIMENSIONS];
    for (row, &node) in outputs.iter().enumerate() {
        covariation[node * DIMENSIONS..(node + 1) * DIMENSIONS].copy_from_slice(&measured[row * DIMENSIONS..(row + 1) * DIMENSIONS]);
    }
    standardise_block(&mut covariation, n_nodes, DIMENSIONS);
    let d = 2 * DIMENSIONS;
    let mut points = vec![0.0f64; n_nodes * d];
    for i in 0..n_nodes {
        points[i * d..i * d + DIMENSIONS].copy_from_slice(&spectral[i * DIMENSIONS..(i + 1) * DIMENSIONS]);
        points[i * d + DIMENSIONS..(i + 1) * d].copy_from_slice(&covariation[i * DIMENSIONS..(i + 1) * DIMENSIONS]);
    }
    kmeans(&points, n_nodes, d, k, &mut rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(source: usize, target: usize) -> Edge {
        Edge { source, target, weight: 1.0, sign: 1.0 }
    }

    #[test]
    fn kmeans_separates_well_separated_groups_and_is_seeded() {
        // Three tight groups on a line.
        let points: Vec<f64> = [0.0, 0.1, 0.2, 10.0, 10.1, 10.2, 20.0, 20.1].to_vec();
        let run = |seed| kmeans(&points, 8, 1, 3, &mut ChaCha8Rng::seed_from_u64(seed));
        let a = run(1);
        assert_eq!(a, [0, 0, 0, 1, 1, 1, 2, 2], "first-appearance numbering");
        assert_eq!(a, run(1));
        // More clusters than points: one point each, never an empty cluster.
        let b = kmeans(&points[..2], 2, 1, 5, &mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(b, [0, 1]);
    }

    #[test]
    fn programs_follow_graph_communities_and_co_variation() {
        // Two 5-cliques joined by one edge; genes 0..5 respond together in the data, 5..10
        // in the opposite direction of a second condition.
        let mut edges = Vec::new();
        for group in [0usize, 5] {
            for a in group..group + 5 {
                for b in a + 1..group + 5 {
                    edges.push(edge(a, b));
                }
            }
        }
        edges.push(edge(4, 5));
        let outputs: Vec<usize> = (0..10).collect();
        let lfc: Vec<f32> = (0..10).flat_map(|g| if g < 5 { [1.0, 0.1] } else { [0.0, -1.0] }).collect();
        let programs = gene_programs(10, &edges, &outputs, &lfc, 2, 2, 7);
        assert!(programs[..5].iter().all(|&p| p == programs[0]), "{programs:?}");
        assert!(programs[5..].iter().all(|&p| p == programs[5]), "{programs:?}");
        assert_ne!(programs[0], programs[5]);
        assert_eq!(gene_programs(10, &edges, &outputs, &lfc, 2, 1, 7), vec![0; 10], "one program: everyone in it");
    }

    #[test]
    fn covariation_scores_recover_a_rank_one_matrix() {
        // x = u vᵀ with |v| = 2: the first coordinate is ±2u, the rest vanish.
        let u = [0.6f64, 0.8, 0.0];
        let v = [2.0f64, 0.0];
        let x: Vec<f32> = (0..3).flat_map(|r| (0..2).map(move |c| (u[r] * v[c]) as f32)).collect();
        let s = covariation_coordinates(&x, 3, 2, &mut ChaCha8Rng::seed_from_u64(3));
        for r in 0..3 {
            assert!((s[r * DIMENSIONS].abs() - 2.0 * u[r]).abs() < 1e-6, "{:?}", &s[r * DIMENSIONS..(r + 1) * DIMENSIONS]);
            assert!(s[r * DIMENSIONS + 1..(r + 1) * DIMENSIONS].iter().all(|v| v.abs() < 1e-6));
        }
    }
}

//! The linear baseline's W is the least-squares solution: with a vanishing ridge the
//! normal equations Gᵀ (Yc − G W Pᵀ) P = 0 hold.

use perturb_eval::baselines::{perturbation_pca, LinearModel};
use perturb_eval::Screen;
use rand::{Rng, SeedableRng};

#[test]
fn w_satisfies_the_normal_equations() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let n_genes = 40;
    let genes: Vec<String> = (0..n_genes).map(|g| format!("G{g}")).collect();
    // Control plus 15 singles of the first 15 genes.
    let mut conditions = vec!["ctrl".to_string()];
    let mut targets = vec![vec![]];
    for g in 0..15 {
        conditions.push(genes[g].clone());
        targets.push(vec![genes[g].clone()]);
    }
    let mean: Vec<f64> = (0..conditions.len() * n_genes).map(|_| rng.random_range(0.0..3.0)).collect();
    let screen = Screen { genes, conditions, targets, n_cells: vec![100; 16], variance: vec![0.1; mean.len()], mean };
    let train: Vec<usize> = (1..16).collect();
    let k = 5;
    let model = LinearModel::fit(&screen, &train, k, 1e-10, None);
    let g = &model.gene_embedding;
    // Residual R = Yc − G W Pᵀ, then check Gᵀ R P ≈ 0 relative to Gᵀ Yc P.
    let p: Vec<Vec<f64>> = train.iter().map(|&t| model.embed(&screen.targets[t])).collect();
    let mut normal = vec![0.0; k * k];
    let mut scale = 0.0f64;
    for (ti, &t) in train.iter().enumerate() {
        let pred = model.predict(&screen, &screen.targets[t]);
        for gene in 0..n_genes {
            let resid = screen.row(t)[gene] - pred[gene];
            let yc = screen.row(t)[gene] - model.offset[gene];
            for a in 0..k {
                for b in 0..k {
                    normal[a * k + b] += g[gene * k + a] * resid * p[ti][b];
                    scale = scale.max((g[gene * k + a] * yc * p[ti][b]).abs());
                }
            }
        }
    }
    let worst = normal.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(worst < 1e-6 * scale, "normal equations violated: {worst} (scale {scale})");
}

fn random_screen(seed: u64, n_genes: usize, n_singles: usize) -> Screen {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let genes: Vec<String> = (0..n_genes).map(|g| format!("G{g}")).collect();
    let mut conditions = vec!["ctrl".to_string()];
    let mut targets = vec![vec![]];
    for g in genes.iter().take(n_singles) {
        conditions.push(g.clone());
        targets.push(vec![g.clone()]);
    }
    let mean: Vec<f64> = (0..conditions.len() * n_genes).map(|_| rng.random_range(0.0..3.0)).collect();
    let n = conditions.len();
    Screen { genes, conditions, targets, n_cells: vec![100; n], variance: vec![0.1; mean.len()], mean }
}

/// With as many components as singles, the PCA scores keep every inner product of the
/// centred profiles: S Sᵀ = Yc Ycᵀ.
#[test]
fn perturbation_pca_scores_preserve_the_centred_geometry() {
    let other = random_screen(5, 30, 8);
    let scores = perturbation_pca(&other, 8);
    assert_eq!(scores.len(), 8);
    let singles: Vec<usize> = (1..9).collect();
    let centre: Vec<f64> = (0..30).map(|g| singles.iter().map(|&i| other.row(i)[g]).sum::<f64>() / 8.0).collect();
    for &a in &singles {
        for &b in &singles {
            let direct: f64 = (0..30).map(|g| (other.row(a)[g] - centre[g]) * (other.row(b)[g] - centre[g])).sum();
            let (sa, sb) = (&scores[&other.targets[a][0]], &scores[&other.targets[b][0]]);
            let via: f64 = sa.iter().zip(sb).map(|(x, y)| x * y).sum();
            assert!((direct - via).abs() < 1e-8 * direct.abs().max(1.0), "{direct} vs {via}");
        }
    }
}

/// P from another screen: a gene it perturbed gets its embedding (so the prediction
/// moves), a gene it did not gets a zero one (so the prediction is the training mean).
#[test]
fn linear_with_p_from_another_screen() {
    let screen = random_screen(7, 40, 15);
    let other = random_screen(8, 40, 6); // perturbed G0..G5 only
    let p = perturbation_pca(&other, 5);
    let train: Vec<usize> = (1..12).collect();
    let model = LinearModel::fit(&screen, &train, 5, 0.1, Some(&p));
    assert_eq!(model.embed(&["G2".to_string()]), p["G2"]);
    let unknown = model.predict(&screen, &["G13".to_string()]);
    for (u, b) in unknown.iter().zip(&model.offset) {
        assert!((u - b).abs() < 1e-12);
    }
    let known = model.predict(&screen, &["G2".to_string()]);
    assert!(known.iter().zip(&model.offset).any(|(k, b)| (k - b).abs() > 1e-6));
}

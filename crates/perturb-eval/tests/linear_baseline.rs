//! The linear baseline's W is the least-squares solution: with a vanishing ridge the
//! normal equations Gᵀ (Yc − G W Pᵀ) P = 0 hold.

use perturb_eval::baselines::LinearModel;
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
    let model = LinearModel::fit(&screen, &train, k, 1e-10);
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

//! Training: Adam on the mean squared error between predicted and observed pseudobulk
//! log-fold changes of the training conditions, in mini-batches of conditions, with early
//! stopping on a held-out part of the training conditions.

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::model::{App, AppConfig, GraphTensors, PerturbationBatch};

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub seed: u64,
    pub learning_rate: f64,
    pub max_epochs: usize,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    pub batch_size: usize,
    /// Share of the training conditions held out for early stopping.
    pub validation_share: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { seed: 0, learning_rate: 3e-3, max_epochs: 300, patience: 25, batch_size: 16, validation_share: 0.1 }
    }
}

/// One training example: the perturbed genes (graph node indices) and the observed
/// log-fold change of every output gene.
#[derive(Debug, Clone)]
pub struct Example {
    pub genes: Vec<usize>,
    pub lfc: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct TrainReport {
    /// (epoch, training loss, validation loss) per epoch.
    pub history: Vec<(usize, f64, f64)>,
    pub best_epoch: usize,
    pub seconds: f64,
}

fn targets(examples: &[&Example], device: &Device) -> Tensor<2> {
    let width = examples[0].lfc.len();
    let flat: Vec<f32> = examples.iter().flat_map(|e| e.lfc.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [examples.len(), width]), device)
}

fn loss_of(model: &App, graph: &GraphTensors, batch: &[&Example], device: &Device) -> Tensor<1> {
    let genes: Vec<Vec<usize>> = batch.iter().map(|e| e.genes.clone()).collect();
    let out = model.forward(graph, &PerturbationBatch::new(&genes, device));
    (out.lfc - targets(batch, device)).powi_scalar(2).mean()
}

/// Trains a model of `config` on `examples`; returns the model with the best validation
/// loss (in validation mode) and the history.
pub fn train(config: &AppConfig, edges: &[(usize, usize, f32)], examples: &[Example], opts: &TrainOptions, device: &Device) -> (App, TrainReport) {
    let started = std::time::Instant::now();
    let autodiff = device.clone().autodiff();
    let graph = GraphTensors::new(config.n_genes, edges, &autodiff);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut rng);
    let n_val = if examples.len() >= 10 { ((examples.len() as f64) * opts.validation_share).round().max(1.0) as usize } else { 0 };
    let (val_idx, train_idx) = order.split_at(n_val);
    let val: Vec<&Example> = val_idx.iter().map(|&i| &examples[i]).collect();
    let mut train_set: Vec<&Example> = train_idx.iter().map(|&i| &examples[i]).collect();

    let mut model = config.init_seeded(opts.seed, &autodiff);
    let mut optim = AdamConfig::new().init();
    let mut best = (f64::INFINITY, 0usize, model.clone());
    let mut history = Vec::new();
    for epoch in 1..=opts.max_epochs {
        train_set.shuffle(&mut rng);
        let mut total = 0.0;
        for batch in train_set.chunks(opts.batch_size.max(1)) {
            let loss = loss_of(&model, &graph, batch, &autodiff);
            total += loss.clone().into_scalar::<f32>() as f64 * batch.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(opts.learning_rate, model, grads);
        }
        let train_loss = total / train_set.len().max(1) as f64;
        let val_loss = if val.is_empty() {
            train_loss
        } else {
            let valid = model.valid();
            let plain = GraphTensors::new(config.n_genes, edges, device);
            val.chunks(opts.batch_size.max(1)).map(|b| loss_of(&valid, &plain, b, device).into_scalar::<f32>() as f64 * b.len() as f64).sum::<f64>()
                / val.len() as f64
        };
        history.push((epoch, train_loss, val_loss));
        tracing::debug!(epoch, train_loss, val_loss, "epoch");
        if val_loss < best.0 {
            best = (val_loss, epoch, model.clone());
        } else if epoch - best.1 >= opts.patience {
            break;
        }
    }
    let report = TrainReport { history, best_epoch: best.1, seconds: started.elapsed().as_secs_f64() };
    (best.2.valid(), report)
}

/// Predicted log-fold changes for `perturbations` (each a list of node indices).
pub fn predict(model: &App, edges: &[(usize, usize, f32)], n_nodes: usize, perturbations: &[Vec<usize>], device: &Device) -> Vec<Vec<f32>> {
    let graph = GraphTensors::new(n_nodes, edges, device);
    let mut out = Vec::with_capacity(perturbations.len());
    for chunk in perturbations.chunks(32) {
        let lfc = model.forward(&graph, &PerturbationBatch::new(chunk, device)).lfc;
        let [b, w] = lfc.dims();
        let flat = lfc.into_data().try_to_vec::<f32>().expect("f32 output");
        out.extend((0..b).map(|i| flat[i * w..(i + 1) * w].to_vec()));
    }
    out
}

/// Attention weights over all graph nodes for `perturbations`.
pub fn attention(model: &App, edges: &[(usize, usize, f32)], n_nodes: usize, perturbations: &[Vec<usize>], device: &Device) -> Vec<Vec<f32>> {
    let graph = GraphTensors::new(n_nodes, edges, device);
    let mut out = Vec::with_capacity(perturbations.len());
    for chunk in perturbations.chunks(32) {
        let a = model.forward(&graph, &PerturbationBatch::new(chunk, device)).attention;
        let [b, w] = a.dims();
        let flat = a.into_data().try_to_vec::<f32>().expect("f32 output");
        out.extend((0..b).map(|i| flat[i * w..(i + 1) * w].to_vec()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain 0 -> 1 -> 2 -> 3 -> 4 -> 5; perturbing gene g raises g and, less, g+1.
    fn problem() -> (Vec<(usize, usize, f32)>, Vec<Example>) {
        let edges: Vec<(usize, usize, f32)> = (0..5).map(|g| (g, g + 1, 1.0)).collect();
        let example = |genes: Vec<usize>| {
            let mut lfc = vec![0.0f32; 6];
            for &g in &genes {
                lfc[g] += 1.0;
                if g + 1 < 6 {
                    lfc[g + 1] += 0.5;
                }
            }
            Example { genes, lfc }
        };
        let examples = (0..6).map(|g| example(vec![g])).chain([example(vec![0, 3]), example(vec![1, 4])]).collect();
        (edges, examples)
    }

    #[test]
    fn training_fits_a_small_problem_and_is_deterministic() {
        let device = Device::flex();
        let (edges, examples) = problem();
        let config = AppConfig::new(6, 6).with_hidden(16);
        let opts = TrainOptions { max_epochs: 400, patience: 400, batch_size: 4, learning_rate: 1e-2, ..TrainOptions::default() };
        let (model, report) = train(&config, &edges, &examples, &opts, &device);
        let first = report.history[0].1;
        let last = report.history.last().unwrap().1;
        assert!(last < 0.2 * first, "loss {first} -> {last}");
        let p = predict(&model, &edges, 6, &[vec![2]], &device);
        assert!(p[0][2] > 0.5 && p[0][3] > 0.2 && p[0][0].abs() < 0.3, "{:?}", p[0]);
        let (model2, _) = train(&config, &edges, &examples, &opts, &device);
        assert_eq!(p, predict(&model2, &edges, 6, &[vec![2]], &device), "same seed, same model");
    }

    #[test]
    fn save_then_load_gives_identical_predictions() {
        use burn::store::{BurnpackStore, ModuleSnapshot};
        let device = Device::flex();
        let (edges, examples) = problem();
        let config = AppConfig::new(6, 6).with_hidden(8);
        let opts = TrainOptions { max_epochs: 20, patience: 20, batch_size: 4, ..TrainOptions::default() };
        let (model, _) = train(&config, &edges, &examples, &opts, &device);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bpk");
        model.save_into(&mut BurnpackStore::from_file(&path)).unwrap();
        let mut loaded = config.init_seeded(99, &device);
        loaded.load_from(&mut BurnpackStore::from_file(&path)).unwrap();
        let q = [vec![1], vec![0, 4]];
        assert_eq!(predict(&model, &edges, 6, &q, &device), predict(&loaded, &edges, 6, &q, &device));
    }
}

//! Training: Adam on the mean squared error between predicted and observed pseudobulk
//! log-fold changes of the training conditions, in mini-batches of conditions, with early
//! stopping on the validation conditions' L2 over the most expressed genes (the metric of
//! record).

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::features::{Edge, HeadInputs, HeadRows};
use crate::inputs::{GraphTensors, PerturbationBatch};
use crate::predictor::{Model, ModelConfig};

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub seed: u64,
    pub learning_rate: f64,
    pub max_epochs: usize,
    /// Epochs without a better validation L2 before stopping.
    pub patience: usize,
    /// Epochs before early stopping may stop at all: a model whose attention starts flat
    /// sits at the mean solution (best validation L2 at epoch 2) for tens of epochs
    /// before it leaves it, longer than the patience. The best epoch is still the one kept.
    pub min_epochs: usize,
    pub batch_size: usize,
    /// Share of the training conditions held out for early stopping when the split names
    /// no validation conditions.
    pub validation_share: f64,
    /// Parametric bootstrap: each epoch draws every training target from N(observed,
    /// standard error²), as resampling the condition's cells would.
    pub bootstrap: bool,
    /// Output genes in each step's loss, drawn afresh per step, for models with a
    /// gene-wise head (0 or at least the number of output genes: all). Validation and
    /// prediction always use every gene.
    pub genes_per_step: usize,
    /// Draw a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 0,
            learning_rate: 3e-3,
            max_epochs: 300,
            patience: 25,
            min_epochs: 0,
            batch_size: 16,
            validation_share: 0.1,
            bootstrap: false,
            genes_per_step: 0,
            progress: false,
        }
    }
}

/// One training example: the perturbed genes (graph node indices), the observed
/// log-fold change of every output gene, and its standard error.
#[derive(Debug, Clone)]
pub struct Example {
    pub genes: Vec<usize>,
    pub lfc: Vec<f32>,
    pub standard_error: Vec<f32>,
}

/// Everything the model reads besides the perturbation: the network, which node each
/// output gene is, fixed node features, and the builder of the head's features.
#[derive(Debug, Clone)]
pub struct ModelInputs {
    pub n_nodes: usize,
    pub edges: Vec<Edge>,
    pub outputs: Vec<usize>,
    /// Row-major [n_nodes, node_width]; empty when node_width is 0.
    pub node_features: Vec<f32>,
    pub node_width: usize,
    pub head: Option<HeadInputs>,
    /// The program of every node and the number of programs (the `modules` model).
    pub programs: Option<(Vec<usize>, usize)>,
    /// GRN alignment targets, (edge position, supported weight) (the `grn_vae` model).
    pub edge_support: Vec<(usize, f32)>,
}

impl ModelInputs {
    pub fn graph(&self, device: &Device) -> GraphTensors {
        let edges: Vec<(usize, usize, f32)> = self.edges.iter().map(|e| (e.source, e.target, e.weight)).collect();
        let features = (self.node_width > 0).then_some((self.node_features.as_slice(), self.node_width));
        let signs: Vec<f32> = self.edges.iter().map(|e| e.sign).collect();
        let mut graph =
            GraphTensors::new(self.n_nodes, &edges, &self.outputs, features, device).with_edge_support(&self.edge_support, device).with_signs(&signs, device);
        if let Some((programs, k)) = &self.programs {
            graph = graph.with_programs(programs, *k, &self.outputs, device);
        }
        graph
    }

    /// The signed prior weight of every edge, where the GRN VAE starts its matrix.
    pub fn prior_weights(&self) -> Vec<f32> {
        self.edges.iter().map(|e| crate::grn_vae::PRIOR_SCALE * e.sign * e.weight).collect()
    }

    /// Whether the model's gene-wise head runs on every output gene: its batches may then
    /// name the output columns to compute ([`PerturbationBatch::columns`]), at a fraction of
    /// the cost. (A local head runs on its candidates, and without a head the decoder's
    /// whole row costs little.)
    fn computes_chosen_columns(&self) -> bool {
        self.head.as_ref().is_some_and(|h| !h.is_local())
    }

    /// Head features and base of one perturbation (None without a head).
    fn head_rows(&self, genes: &[usize]) -> Option<HeadRows> {
        self.head.as_ref().map(|h| h.rows(genes))
    }

    /// A batch from per-perturbation head rows computed earlier; with `columns`, of those
    /// output positions only (never with local candidates, which choose their own).
    fn batch_from(&self, perturbations: &[Vec<usize>], rows: &[&Option<HeadRows>], columns: Option<&[usize]>, device: &Device) -> PerturbationBatch {
        let mut batch = PerturbationBatch::new(perturbations, device);
        let Some(head) = &self.head else {
            return batch;
        };
        let rows: Vec<&HeadRows> = rows.iter().map(|r| r.as_ref().expect("head rows")).collect();
        let (g, width) = (head.n_outputs(), head.width());
        let local = head.is_local();
        assert!(!(local && columns.is_some()), "local candidates choose their own output genes");
        let kept = columns.map_or(if local { head.row_genes() } else { g }, <[usize]>::len);
        let mut features: Vec<f32> = Vec::with_capacity(rows.len() * kept * width);
        for r in &rows {
            match columns {
                Some(cols) => cols.iter().for_each(|&c| features.extend_from_slice(&r.features[c * width..(c + 1) * width])),
                None => features.extend_from_slice(&r.features),
            }
        }
        batch = batch.with_features(features, kept, width, device);
        if local {
            let candidates: Vec<usize> =
                rows.iter().flat_map(|r| r.candidates.as_deref().expect("every row of a local head has candidates").iter().copied()).collect();
            batch = batch.with_candidates(&candidates, kept, device);
        }
        if rows.iter().any(|r| r.base.is_some()) {
            // The base covers every output gene even when the head runs on a few.
            let base_genes = columns.map_or(g, <[usize]>::len);
            let mut base: Vec<f32> = Vec::with_capacity(rows.len() * base_genes);
            for r in &rows {
                match (&r.base, columns) {
                    (Some(all), Some(cols)) => base.extend(cols.iter().map(|&c| all[c])),
                    (Some(all), None) => base.extend_from_slice(all),
                    (None, _) => base.extend(std::iter::repeat_n(0.0, base_genes)),
                }
            }
            batch = batch.with_base(base, base_genes, device);
        }
        match columns {
            Some(cols) => batch.with_columns(cols, device),
            None => batch,
        }
    }

    /// Head rows of each perturbation, on all the machine's cores: each is independent,
    /// and at tens of thousands of genes they cost as much as the model's forward pass.
    fn head_rows_parallel(&self, perturbations: &[Vec<usize>]) -> Vec<Option<HeadRows>> {
        let cores = crate::cores();
        let share = perturbations.len().div_ceil(cores).max(1);
        if self.head.is_none() || share == perturbations.len() {
            return perturbations.iter().map(|p| self.head_rows(p)).collect();
        }
        std::thread::scope(|scope| {
            let parts: Vec<_> =
                perturbations.chunks(share).map(|part| scope.spawn(move || part.iter().map(|p| self.head_rows(p)).collect::<Vec<_>>())).collect();
            parts.into_iter().flat_map(|part| part.join().expect("a head-rows thread panicked")).collect()
        })
    }

    pub fn batch(&self, perturbations: &[Vec<usize>], device: &Device) -> PerturbationBatch {
        let rows = self.head_rows_parallel(perturbations);
        self.batch_from(perturbations, &rows.iter().collect::<Vec<_>>(), None, device)
    }
}

/// Whether training ends after `epoch` (1-based) when the best validation L2 so far was at
/// `best_epoch`: `patience` epochs without a better one, once `min_epochs` have run.
fn stops_early(epoch: usize, best_epoch: usize, opts: &TrainOptions) -> bool {
    epoch >= opts.min_epochs && epoch - best_epoch >= opts.patience
}

#[derive(Debug, Clone)]
pub struct TrainReport {
    /// (epoch, training loss, validation L2) per epoch.
    pub history: Vec<(usize, f64, f64)>,
    pub best_epoch: usize,
    pub seconds: f64,
    pub n_train: usize,
    pub n_validation: usize,
}

impl TrainReport {
    pub fn best_validation_l2(&self) -> f64 {
        self.history.get(self.best_epoch.saturating_sub(1)).map_or(f64::NAN, |h| h.2)
    }
}

/// An example with its head rows computed once.
struct Prepared<'a> {
    example: &'a Example,
    head: Option<HeadRows>,
}

fn prepare<'a>(inputs: &ModelInputs, example: &'a Example) -> Prepared<'a> {
    Prepared { example, head: inputs.head_rows(&example.genes) }
}

/// `values` at `columns`, or all of them borrowed (no copy per example per step).
fn pick<'v>(values: &'v [f32], columns: Option<&[usize]>) -> std::borrow::Cow<'v, [f32]> {
    match columns {
        Some(cols) => std::borrow::Cow::Owned(cols.iter().map(|&c| values[c]).collect()),
        None => std::borrow::Cow::Borrowed(values),
    }
}

fn tensor_2d(rows: impl Iterator<Item = f32>, b: usize, g: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(rows.collect::<Vec<f32>>(), [b, g]), device)
}

/// Trains a model of `config`. Early stopping watches the mean L2 over `scored` output
/// genes of `validation` (or, when that is empty, of a seeded share of `examples`).
/// Returns the model of the best validation epoch, in validation mode, and the history;
/// a loss that stops being finite (a learning rate too large for the data) is an error,
/// never a model.
pub fn train(
    config: &ModelConfig,
    inputs: &ModelInputs,
    examples: &[Example],
    validation: &[Example],
    scored: &[usize],
    opts: &TrainOptions,
    device: &Device,
) -> Result<(Model, TrainReport), perturb_core::Error> {
    let started = std::time::Instant::now();
    let autodiff = device.clone().autodiff();
    let graph = inputs.graph(&autodiff);
    let plain_graph = inputs.graph(device);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let Sets { mut train_set, validation: val } = Sets::split(inputs, examples, validation, opts, &mut rng);

    let progress = progress_bar(opts);
    let mut model = config.init_seeded(opts.seed, &inputs.prior_weights(), &autodiff);
    let step = Step { inputs, graph: &graph, opts, device: &autodiff, n_outputs: config.n_outputs(), latent: model.latent_width() };
    let mut optim = AdamConfig::new().init();
    let mut best = (f64::INFINITY, 0usize, model.clone());
    let mut history = Vec::new();
    for epoch in 1..=opts.max_epochs {
        train_set.shuffle(&mut rng);
        let mut total = 0.0;
        for chunk in train_set.chunks(opts.batch_size.max(1)) {
            let (stepped, summed_loss) = step.run(model, &mut optim, chunk, &mut rng);
            model = stepped;
            total += summed_loss;
        }
        let train_loss = total / train_set.len().max(1) as f64;
        let val_l2 = if val.is_empty() { train_loss.sqrt() } else { validation_l2(&model.valid(), inputs, &plain_graph, &val, scored, device) };
        history.push((epoch, train_loss, val_l2));
        tracing::debug!(epoch, train_loss, val_l2, "epoch");
        if !train_loss.is_finite() || !val_l2.is_finite() {
            if let Some(bar) = &progress {
                bar.finish_and_clear();
            }
            return Err(perturb_core::Error::bad_option(
                "--learning-rate",
                format!(
                    "training diverged at epoch {epoch} (loss {train_loss}, validation L2 {val_l2}) with a learning rate of {}; lower it",
                    opts.learning_rate
                ),
            ));
        }
        let status =
            format!("loss {train_loss:.4}  validation L2 {val_l2:.3}  (best {:.3} at {})", best.0.min(val_l2), if val_l2 < best.0 { epoch } else { best.1 });
        show_progress(progress.as_ref(), opts, epoch, status);
        if val_l2 < best.0 {
            best = (val_l2, epoch, model.clone());
        } else if stops_early(epoch, best.1, opts) {
            break;
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let report = TrainReport { history, best_epoch: best.1, seconds: started.elapsed().as_secs_f64(), n_train: train_set.len(), n_validation: val.len() };
    Ok((best.2.valid(), report))
}

/// The examples a run trains on and the ones early stopping watches.
struct Sets<'a> {
    train_set: Vec<Prepared<'a>>,
    validation: Vec<Prepared<'a>>,
}

impl<'a> Sets<'a> {
    /// Without validation examples, a seeded share of the training examples (at least 10
    /// of them) is held out for early stopping.
    fn split(inputs: &ModelInputs, examples: &'a [Example], validation: &'a [Example], opts: &TrainOptions, rng: &mut ChaCha8Rng) -> Sets<'a> {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.shuffle(rng);
        let carve = if validation.is_empty() && examples.len() >= 10 { ((examples.len() as f64) * opts.validation_share).round().max(1.0) as usize } else { 0 };
        let prepare = |e| prepare(inputs, e);
        let mut held_out: Vec<Prepared> = order[..carve].iter().map(|&i| prepare(&examples[i])).collect();
        held_out.extend(validation.iter().map(prepare));
        let train_set = order[carve..].iter().map(|&i| prepare(&examples[i])).collect();
        Sets { train_set, validation: held_out }
    }
}

/// What one optimisation step reads besides the model and the batch.
struct Step<'a> {
    inputs: &'a ModelInputs,
    graph: &'a GraphTensors,
    opts: &'a TrainOptions,
    device: &'a Device,
    n_outputs: usize,
    /// Width of the noise a latent model draws per perturbed gene (0: none).
    latent: usize,
}

impl Step<'_> {
    /// One Adam step on `chunk`; returns the stepped model and the batch's squared error
    /// summed over its examples. Draws from `rng` in a fixed order: output genes, noise,
    /// bootstrap targets.
    fn run(&self, model: Model, optim: &mut burn::optim::ModuleOptimizer, chunk: &[Prepared], rng: &mut ChaCha8Rng) -> (Model, f64) {
        let (inputs, opts, g) = (self.inputs, self.opts, self.n_outputs);
        let genes: Vec<Vec<usize>> = chunk.iter().map(|p| p.example.genes.clone()).collect();
        let rows: Vec<_> = chunk.iter().map(|p| &p.head).collect();
        // A fresh random subset of output genes per step: an unbiased estimate of the
        // full loss at a fraction of the cost when there are many more genes than that.
        // Only the gene-wise head does per-gene work worth saving; the plain decoder's
        // output row is cheap, and subsampling it would only slow its convergence.
        // A local head (`--local-genes`) runs on a few genes per perturbation already.
        let subsample = inputs.computes_chosen_columns() && opts.genes_per_step > 0 && opts.genes_per_step < g;
        let columns: Option<Vec<usize>> = subsample.then(|| {
            let mut cols = rand::seq::index::sample(rng, g, opts.genes_per_step).into_vec();
            cols.sort_unstable();
            cols
        });
        let mut batch = inputs.batch_from(&genes, &rows, columns.as_deref(), self.device);
        if self.latent > 0 {
            let slots = batch.genes.dims().iter().product::<usize>();
            let noise: Vec<f32> = (0..slots * self.latent).map(|_| Distribution::<f64>::sample(&StandardNormal, rng) as f32).collect();
            batch = batch.with_noise(noise, self.latent, self.device);
        }
        let target = self.targets(chunk, columns.as_deref(), rng);
        let out = model.forward(self.graph, &batch);
        let squared_error = (out.lfc.clone() - target.clone()).powi_scalar(2).mean();
        let summed = squared_error.clone().into_scalar::<f32>() as f64 * chunk.len() as f64;
        let mut loss = squared_error;
        if let Some(penalty) = out.penalty {
            loss = loss + penalty;
        }
        if let Some(structure) = model.structure_loss(self.graph, out.lfc, target) {
            loss = loss + structure;
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (optim.step(opts.learning_rate, model, grads), summed)
    }

    /// The chunk's observed log-fold changes at `columns` (all without), each drawn from
    /// N(observed, standard error²) with `--bootstrap`.
    fn targets(&self, chunk: &[Prepared], columns: Option<&[usize]>, rng: &mut ChaCha8Rng) -> Tensor<2> {
        let kept = columns.map_or(self.n_outputs, <[usize]>::len);
        let mut target: Vec<f32> = Vec::with_capacity(chunk.len() * kept);
        for p in chunk {
            target.extend_from_slice(&pick(&p.example.lfc, columns));
            if self.opts.bootstrap {
                let start = target.len() - kept;
                for (y, se) in target[start..].iter_mut().zip(pick(&p.example.standard_error, columns).iter()) {
                    *y += se * Distribution::<f64>::sample(&StandardNormal, rng) as f32;
                }
            }
        }
        tensor_2d(target.into_iter(), chunk.len(), kept, self.device)
    }
}

/// An epoch's status on the progress bar, or one line on stderr when stderr is no terminal.
fn show_progress(progress: Option<&indicatif::ProgressBar>, opts: &TrainOptions, epoch: usize, status: String) {
    match progress {
        Some(bar) => {
            bar.set_position(epoch as u64);
            bar.set_message(status);
        }
        // Not a terminal (a log file, a pipeline runner reading it): one line per epoch.
        None if opts.progress => eprintln!("epoch {epoch}/{}: {status}", opts.max_epochs),
        None => {}
    }
}

fn progress_bar(opts: &TrainOptions) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !opts.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(opts.max_epochs as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("  training [{bar:30}] epoch {pos}/{len} {msg}").expect("valid template").progress_chars("=> "));
    Some(bar)
}

/// Mean over `val` of the L2 distance between predicted and observed log-fold changes on
/// the `scored` output genes. A head that runs on every gene computes only those (each
/// column's value is the full forward's, bit for bit): at 19,000 genes and 1,000 scored,
/// the head's work in validation falls 19-fold.
fn validation_l2(model: &Model, inputs: &ModelInputs, graph: &GraphTensors, val: &[Prepared], scored: &[usize], device: &Device) -> f64 {
    let columns: Option<Vec<usize>> = inputs.computes_chosen_columns().then(|| {
        let mut columns = scored.to_vec();
        columns.sort_unstable();
        columns.dedup();
        columns
    });
    // Where each scored gene's value sits in a row of the forward's output.
    let position: Vec<usize> = match &columns {
        Some(columns) => scored.iter().map(|o| columns.binary_search(o).expect("every scored gene is a column")).collect(),
        None => scored.to_vec(),
    };
    let mut total = 0.0;
    let h = model.embed(graph);
    for chunk in val.chunks(64) {
        let genes: Vec<Vec<usize>> = chunk.iter().map(|p| p.example.genes.clone()).collect();
        let rows: Vec<_> = chunk.iter().map(|p| &p.head).collect();
        let lfc = model.forward_embedded(h.clone(), graph, &inputs.batch_from(&genes, &rows, columns.as_deref(), device)).lfc;
        let flat = lfc.into_data().try_to_vec::<f32>().expect("f32 output");
        let g = flat.len() / chunk.len();
        for (i, p) in chunk.iter().enumerate() {
            let sq: f64 = scored.iter().zip(&position).map(|(&o, &at)| (f64::from(flat[i * g + at]) - f64::from(p.example.lfc[o])).powi(2)).sum();
            total += sq.sqrt();
        }
    }
    total / val.len() as f64
}

fn rows_of(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [b, w] = t.dims();
    let flat = t.into_data().try_to_vec::<f32>().expect("f32 output");
    (0..b).map(|i| flat[i * w..(i + 1) * w].to_vec()).collect()
}

/// Predicted log-fold changes and attention weights (over all graph nodes; no rows for a
/// model without attention) for `perturbations` (each a list of node indices), in batches
/// of `batch`.
pub fn predict_with_attention(
    model: &Model,
    inputs: &ModelInputs,
    perturbations: &[Vec<usize>],
    batch: usize,
    device: &Device,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    Embedded::new(model, inputs, device).predict(perturbations, batch)
}

/// A model with its graph's tensors and gene embeddings computed once, for any number of
/// perturbations.
pub struct Embedded<'a> {
    model: &'a Model,
    inputs: &'a ModelInputs,
    device: &'a Device,
    graph: GraphTensors,
    embeddings: Tensor<2>,
}

impl<'a> Embedded<'a> {
    pub fn new(model: &'a Model, inputs: &'a ModelInputs, device: &'a Device) -> Embedded<'a> {
        let graph = inputs.graph(device);
        let embeddings = model.embed(&graph);
        Embedded { model, inputs, device, graph, embeddings }
    }

    /// Waits for the embeddings (a backend may compute them lazily), so a timer stopped
    /// after it counts them.
    pub fn ready(self) -> Self {
        let _ = self.embeddings.clone().into_data();
        self
    }

    /// As [`predict_with_attention`].
    pub fn predict(&self, perturbations: &[Vec<usize>], batch: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let (mut lfc, mut attention) = (Vec::with_capacity(perturbations.len()), Vec::with_capacity(perturbations.len()));
        for chunk in perturbations.chunks(batch.max(1)) {
            for piece in pieces(chunk.len()) {
                let out = self.model.forward_embedded(self.embeddings.clone(), &self.graph, &self.inputs.batch(&chunk[piece], self.device));
                lfc.extend(rows_of(out.lfc));
                if let Some(a) = out.attention {
                    attention.extend(rows_of(a));
                }
            }
        }
        (lfc, attention)
    }
}

/// Perturbations a prediction call takes as one batch (`perturb predict`, the latency
/// measurement); each batch is then computed in [`pieces`].
pub const PREDICTION_BATCH: usize = 64;

/// Perturbations one forward pass of a prediction holds at most. A pass over 64 at
/// 19,000 genes builds [64, 19,000, 16] attention tensors, 78 MB each, far beyond the
/// caches; in pieces of 16, `app_plus`'s batched prediction there fell from 10.9 to
/// 7.6 ms per perturbation (medians of five 1-epoch runs each).
const PREDICTION_PIECE: usize = 16;

/// A batch of `len` perturbations cut into forward passes of at most [`PREDICTION_PIECE`],
/// none of a single perturbation unless the batch is one: a product of a one-row matrix
/// takes another of gemm's kernels, which rounds differently, while passes of two or
/// more gave the whole batch's values bit for bit wherever checked (2 to 70
/// perturbations at 19,000 genes, every model of the quick study).
fn pieces(len: usize) -> Vec<std::ops::Range<usize>> {
    let mut starts: Vec<usize> = (0..len).step_by(PREDICTION_PIECE).collect();
    if len > 1 && len % PREDICTION_PIECE == 1 {
        // The lone last perturbation joins the piece before it.
        starts.pop();
    }
    starts.iter().enumerate().map(|(i, &start)| start..starts.get(i + 1).copied().unwrap_or(len)).collect()
}

/// Predicted log-fold changes for `perturbations`.
pub fn predict(model: &Model, inputs: &ModelInputs, perturbations: &[Vec<usize>], device: &Device) -> Vec<Vec<f32>> {
    predict_with_attention(model, inputs, perturbations, PREDICTION_BATCH, device).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppConfig;
    use crate::features::FeatureSpec;

    /// A chain 0 -> 1 -> 2 -> 3 -> 4 -> 5; perturbing gene g raises g and, less, g+1.
    fn problem(spec: &FeatureSpec) -> (ModelInputs, Vec<Example>) {
        let edges: Vec<Edge> = (0..5).map(|g| Edge { source: g, target: g + 1, weight: 1.0, sign: 1.0 }).collect();
        let example = |genes: Vec<usize>| {
            let mut lfc = vec![0.0f32; 6];
            for &g in &genes {
                lfc[g] += 1.0;
                if g + 1 < 6 {
                    lfc[g + 1] += 0.5;
                }
            }
            Example { genes, lfc, standard_error: vec![0.05; 6] }
        };
        let examples = (0..6).map(|g| example(vec![g])).chain([example(vec![0, 3]), example(vec![1, 4])]).collect();
        let outputs: Vec<usize> = (0..6).collect();
        let head = spec.has_head().then(|| HeadInputs::new(spec, 6, &edges, &outputs, &[1.0; 6], Default::default()));
        (ModelInputs { n_nodes: 6, edges, outputs, node_features: Vec::new(), node_width: 0, head, programs: None, edge_support: Vec::new() }, examples)
    }

    fn config(spec: &FeatureSpec, hidden: usize) -> ModelConfig {
        ModelConfig::App(AppConfig::new(6, 6).with_hidden(hidden).with_head_features(spec.head_width()))
    }

    #[test]
    fn prediction_pieces_cover_the_batch_and_never_leave_one_perturbation_alone() {
        let lengths = |len| pieces(len).iter().map(|r| r.len()).collect::<Vec<_>>();
        assert_eq!(lengths(0), Vec::<usize>::new());
        assert_eq!(lengths(1), [1]);
        assert_eq!(lengths(2), [2]);
        assert_eq!(lengths(16), [16]);
        assert_eq!(lengths(17), [17]);
        assert_eq!(lengths(18), [16, 2]);
        assert_eq!(lengths(64), [16, 16, 16, 16]);
        for len in 0..100 {
            let ranges = pieces(len);
            assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), len);
            assert!(ranges.windows(2).all(|w| w[0].end == w[1].start) && ranges.first().is_none_or(|r| r.start == 0));
            assert!(len <= 1 || ranges.iter().all(|r| r.len() >= 2 && r.len() <= PREDICTION_PIECE + 1), "{len}: {ranges:?}");
        }
    }

    #[test]
    fn training_fits_a_small_problem_and_is_deterministic() {
        let device = Device::flex();
        let spec = FeatureSpec::default();
        let (inputs, examples) = problem(&spec);
        let opts = TrainOptions { max_epochs: 400, patience: 400, batch_size: 4, learning_rate: 1e-2, ..TrainOptions::default() };
        let scored: Vec<usize> = (0..6).collect();
        let (model, report) = train(&config(&spec, 16), &inputs, &examples, &[], &scored, &opts, &device).unwrap();
        let first = report.history[0].1;
        let last = report.history.last().unwrap().1;
        assert!(last < 0.2 * first, "loss {first} -> {last}");
        let p = predict(&model, &inputs, &[vec![2]], &device);
        assert!(p[0][2] > 0.5 && p[0][3] > 0.2 && p[0][0].abs() < 0.3, "{:?}", p[0]);
        let (model2, _) = train(&config(&spec, 16), &inputs, &examples, &[], &scored, &opts, &device).unwrap();
        assert_eq!(p, predict(&model2, &inputs, &[vec![2]], &device), "same seed, same model");
    }

    #[test]
    fn a_diverging_loss_is_an_error_not_a_model() {
        let device = Device::flex();
        let spec = FeatureSpec::default();
        let (inputs, examples) = problem(&spec);
        let opts = TrainOptions { max_epochs: 50, patience: 50, batch_size: 4, learning_rate: 1e30, ..TrainOptions::default() };
        let e = train(&config(&spec, 16), &inputs, &examples, &[], &[0, 1, 2], &opts, &device).expect_err("diverges");
        assert!(e.to_string().contains("--learning-rate") && e.to_string().contains("diverged"), "{e}");
    }

    #[test]
    fn propagation_generalises_to_an_unseen_perturbation() {
        // Trained without gene 3 perturbed alone, the propagation head still predicts that
        // perturbing it raises gene 3 and its target 4 — the plain decoder cannot know.
        let device = Device::flex();
        let spec = FeatureSpec { propagation_hops: 1, ..Default::default() };
        let (inputs, examples) = problem(&spec);
        let train_set: Vec<Example> = examples.into_iter().filter(|e| e.genes != [3] && !e.genes.contains(&3)).collect();
        let opts = TrainOptions { max_epochs: 300, patience: 300, batch_size: 4, learning_rate: 1e-2, ..TrainOptions::default() };
        let (model, _) = train(&config(&spec, 8), &inputs, &train_set, &[], &[0, 1, 2, 3, 4, 5], &opts, &device).unwrap();
        let p = &predict(&model, &inputs, &[vec![3]], &device)[0];
        assert!(p[3] > 0.7 && p[4] > 0.3 && p[1].abs() < 0.2, "{p:?}");
    }

    #[test]
    fn early_stopping_waits_for_min_epochs() {
        let opts = TrainOptions { patience: 15, ..TrainOptions::default() };
        // Best at epoch 2: the seed design stops at 17.
        assert!(!stops_early(16, 2, &opts) && stops_early(17, 2, &opts));
        let warm = TrainOptions { min_epochs: 150, ..opts };
        assert!(!stops_early(17, 2, &warm) && !stops_early(149, 2, &warm) && stops_early(150, 2, &warm));
        assert!(!stops_early(150, 140, &warm), "patience still counts after the warm-up");
    }

    #[test]
    fn save_then_load_gives_identical_predictions() {
        use burn::store::{BurnpackStore, ModuleSnapshot};
        let device = Device::flex();
        let spec = FeatureSpec { propagation_hops: 2, ..Default::default() };
        let (inputs, examples) = problem(&spec);
        let opts = TrainOptions { max_epochs: 20, patience: 20, batch_size: 4, ..TrainOptions::default() };
        let (model, _) = train(&config(&spec, 8), &inputs, &examples, &[], &[0, 1], &opts, &device).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bpk");
        model.save_into(&mut BurnpackStore::from_file(&path)).unwrap();
        let mut loaded = config(&spec, 8).init_seeded(99, &[], &device);
        loaded.load_from(&mut BurnpackStore::from_file(&path)).unwrap();
        let q = [vec![1], vec![0, 4]];
        assert_eq!(predict(&model, &inputs, &q, &device), predict(&loaded, &inputs, &q, &device));
    }

    #[test]
    fn a_column_subset_computes_exactly_those_columns_of_the_full_forward() {
        let device = Device::flex();
        let spec = FeatureSpec { propagation_hops: 2, additive_gate: true, ..Default::default() };
        let (inputs, _) = problem(&spec);
        let model = config(&spec, 8).init_seeded(3, &[], &device);
        let graph = inputs.graph(&device);
        let perts = [vec![1], vec![0, 4]];
        let rows: Vec<_> = perts.iter().map(|p| inputs.head_rows(p)).collect();
        let rows: Vec<_> = rows.iter().collect();
        let full = rows_of(model.forward(&graph, &inputs.batch_from(&perts, &rows, None, &device)).lfc);
        let cols = [1usize, 4, 5];
        let part = rows_of(model.forward(&graph, &inputs.batch_from(&perts, &rows, Some(&cols), &device)).lfc);
        for (f, p) in full.iter().zip(&part) {
            let picked: Vec<f32> = cols.iter().map(|&c| f[c]).collect();
            assert_eq!(&picked, p);
        }
    }

    #[test]
    fn a_local_model_trains_on_its_candidates_and_predicts_every_gene() {
        let device = Device::flex();
        // Two genes per perturbation: the perturbed one and the next along the chain.
        let spec = FeatureSpec { propagation_hops: 1, local_genes: 2, ..Default::default() };
        let (inputs, examples) = problem(&spec);
        let config = ModelConfig::App(AppConfig::new(6, 6).with_hidden(16).with_head_features(spec.head_width()).with_local_genes(2));
        let opts = TrainOptions { max_epochs: 400, patience: 400, batch_size: 4, learning_rate: 1e-2, genes_per_step: 3, ..TrainOptions::default() };
        let (model, report) = train(&config, &inputs, &examples, &[], &[0, 1, 2, 3, 4, 5], &opts, &device).unwrap();
        let (first, last) = (report.history[0].1, report.history.last().unwrap().1);
        assert!(last < 0.2 * first, "loss {first} -> {last}");
        let p = predict(&model, &inputs, &[vec![2]], &device);
        assert_eq!(p[0].len(), 6);
        assert!(p[0][2] > 0.5 && p[0][3] > 0.2 && p[0][0].abs() < 0.3, "{:?}", p[0]);
    }

    #[test]
    fn training_on_a_gene_subset_per_step_still_fits() {
        let device = Device::flex();
        // A head, so the subset is in force: 3 of the 6 output genes per step.
        let spec = FeatureSpec { propagation_hops: 1, ..Default::default() };
        assert!(spec.has_head());
        let (inputs, examples) = problem(&spec);
        let opts = TrainOptions { max_epochs: 400, patience: 400, batch_size: 4, learning_rate: 1e-2, genes_per_step: 3, ..TrainOptions::default() };
        let (model, report) = train(&config(&spec, 16), &inputs, &examples, &[], &[0, 1, 2, 3, 4, 5], &opts, &device).unwrap();
        let (first, last) = (report.history[0].1, report.history.last().unwrap().1);
        assert!(last < 0.2 * first, "loss {first} -> {last}");
        let p = predict(&model, &inputs, &[vec![2]], &device);
        assert!(p[0][2] > 0.5 && p[0][3] > 0.2 && p[0][0].abs() < 0.3, "{:?}", p[0]);
    }
}

//! The training stage of perturb: the AdaptivePerturbPredictor and its two siblings (the
//! module-inductive `modules` model and the GRN-aligned VAE `grn_vae`) on burn.
//!
//! Modules, each depending only on those listed before it:
//! - `fdlibm_tanh`: tanh of f32 as the C library computes it, vectorised;
//! - `kernels`: CPU kernels for the GNN's message passing, tanh, and the additive
//!   attention's scores and the gene-wise head at inference, bit for bit burn's ops;
//! - `device`: CPU or wgpu, probed without panicking;
//! - `features`: fixed inputs (node statistics, the gene-wise head's per-(perturbation,
//!   gene) features);
//! - `inputs`: the graph and perturbation batches as tensors, what every model reads;
//! - `layers`: the layers more than one model is built from (GNN layer, additive
//!   attention);
//! - `app`, `modules`, `grn_vae`: one file per model (config + module + forward);
//!   `programs`: the gene-program clustering `modules` reads;
//! - `predictor`: the three models behind one interface and their seeded initialisation;
//! - `train`: optimisation and prediction; `data`: targets and graph from the artifacts of
//!   earlier stages;
//! - `stage`: the model folder, `perturb train` / `perturb predict`.

pub mod app;
pub mod data;
pub mod device;
mod fdlibm_tanh;
pub mod features;
pub mod grn_vae;
pub mod inputs;
pub mod kernels;
pub mod layers;
pub mod modules;
pub mod predictor;
pub mod programs;
pub mod stage;
pub mod train;

/// The machine's cores, asked once: `available_parallelism` reads the cgroup's quota files
/// on every call, and the tanh and the head rows ask at every training step and batch.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Holds the lock on burn's random generator, which is process-global: two models
/// initialised at once (tests, an ablation runner's threads) would draw from one
/// interleaved stream. `ModelConfig::init_seeded` holds it while it seeds and draws; so
/// must anything else that draws from the generator while a seeded initialisation may run
/// beside it, such as a test's random tensors or lazily drawn parameters: one draw in
/// between changes the seeded weights.
pub(crate) fn lock_global_rng() -> std::sync::MutexGuard<'static, ()> {
    static GLOBAL_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GLOBAL_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

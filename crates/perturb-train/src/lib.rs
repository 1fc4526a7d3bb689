//! The training stage of perturb: the AdaptivePerturbPredictor and its two siblings (the
//! module-inductive `modules` model and the GRN-aligned VAE `grn_vae`) on burn.
//!
//! `model` (config + module), `device` (CPU or wgpu, probed without panicking), `features` (fixed inputs: node statistics, the gene-wise
//! head's per-(perturbation, gene) features), `train` (optimisation, prediction), `data`
//! (targets and graph from the artifacts of earlier stages), `grn_vae`, `modules` and `programs` (the siblings and their
//! gene-program clustering), `kernels` (CPU kernels for the GNN's message passing and tanh, bit for bit burn's ops), `predictor` (the three behind one interface), `stage` (the model folder,
//! `perturb train` / `perturb predict`).

pub mod data;
pub mod device;
pub mod features;
pub mod grn_vae;
pub mod kernels;
pub mod model;
pub mod modules;
pub mod predictor;
pub mod programs;
pub mod stage;
pub mod train;

//! The training stage of perturb: the AdaptivePerturbPredictor on burn.
//!
//! `model` (config + module), `device` (CPU or wgpu, probed without panicking), `features` (fixed inputs: node statistics, the gene-wise
//! head's per-(perturbation, gene) features), `train` (optimisation, prediction), `data`
//! (targets and graph from the artifacts of earlier stages), `stage` (the model folder,
//! `perturb train` / `perturb predict`).

pub mod data;
pub mod device;
pub mod features;
pub mod model;
pub mod stage;
pub mod train;

//! The training stage of perturb: the AdaptivePerturbPredictor on burn.
//!
//! `model` (config + module), `train` (optimisation, prediction), `data` (targets and
//! graph from the artifacts of earlier stages), `stage` (the model folder, `perturb
//! train` / `perturb predict`).

pub mod data;
pub mod model;
pub mod stage;
pub mod train;

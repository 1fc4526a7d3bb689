//! The training stage of perturb: the AdaptivePerturbPredictor on burn.

pub mod model;
pub mod train;

//! The ingested screen as the evaluator sees it (read by perturb-core).

pub use perturb_core::ingested::IngestedScreen as Screen;

//! `perturb simulate`: a pooled CRISPR screen simulated over a real regulatory network.

pub mod h5ad_write;

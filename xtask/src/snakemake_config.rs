//! `cargo xtask snakemake-config --scale S`: the Snakemake config of a scale, written by
//! perturb-pipeline from the definitions `perturb reproduce` runs.

use perturb_pipeline::Scale;

#[derive(clap::Args)]
pub struct SnakemakeConfig {
    /// quick or default (the scales pipelines/config holds), or norman / full.
    #[arg(long, default_value = "default")]
    scale: String,
}

pub fn run(args: SnakemakeConfig) -> Result<(), String> {
    let scale: Scale = args.scale.parse().map_err(|e| format!("--scale: {e}"))?;
    print!("{}", perturb_pipeline::snakemake::config(scale));
    Ok(())
}

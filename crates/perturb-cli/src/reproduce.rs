//! `perturb reproduce`: the whole study, resumable.

use std::path::PathBuf;

use clap::Args;

use crate::ranges;

#[derive(Args)]
pub(crate) struct ReproduceArgs {
    /// The tests' scale: a 1,000-gene screen, 2 seeds, a short network study.
    #[arg(long, conflicts_with_all = ["full", "norman"])]
    quick: bool,
    /// The size of GEARS' Norman file: 91,205 cells x 5,045 genes.
    #[arg(long, conflicts_with = "full")]
    norman: bool,
    /// The size of the published benchmark's Norman file: ~85,000 cells x 19,000 genes.
    #[arg(long)]
    full: bool,
    /// Your own screen (h5ad or CSV) instead of the simulated one.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Extra `perturb ingest` arguments for --input, e.g. --ingest-arg=--layer --ingest-arg=counts.
    #[arg(long = "ingest-arg", value_name = "ARG", allow_hyphen_values = true)]
    ingest_args: Vec<String>,
    /// Gene-network source for the graph stage (go, regulon, ppi, edges:PATH, unions with +).
    #[arg(long, default_value = perturb_pipeline::DEFAULT_GRN)]
    grn: String,
    /// auto | cpu | wgpu[:vulkan|metal|dx12|gl], for training and prediction.
    #[arg(long, default_value = perturb_pipeline::DEFAULT_DEVICE)]
    device: String,
    /// Split seeds [default: 1,2 with --quick, else 1-5].
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Model variants to train (see `perturb reproduce --list-variants`).
    #[arg(long, value_delimiter = ',')]
    variants: Option<Vec<String>>,
    /// Print the model variants and what each is, then exit.
    #[arg(long)]
    list_variants: bool,
    /// Skip the network-quality study.
    #[arg(long)]
    no_network_study: bool,
    /// Skip the real example screens (data/examples) that run beside the simulated one.
    #[arg(long)]
    no_examples: bool,
    /// Stages run at once [default: the number of cores].
    #[arg(long, value_parser = ranges::count(1, 256))]
    jobs: Option<usize>,
    /// Output folder: every stage's artifacts, report.html, report.md, metrics.parquet.
    #[arg(long, short, default_value = "results", value_name = "DIR")]
    out: PathBuf,
    /// Run every stage again, ignoring finished ones.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run_reproduce(a: ReproduceArgs) -> perturb_core::Result<()> {
    use perturb_pipeline::{variants, Options, Scale};
    if a.list_variants {
        for (name, flags, what) in variants::VARIANTS {
            println!("{name:<18} {what}{}", if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join(" ")) });
        }
        return Ok(());
    }
    let scale = if a.quick {
        Scale::Quick
    } else if a.norman {
        Scale::Norman
    } else if a.full {
        Scale::Full
    } else {
        Scale::Default
    };
    let started = std::time::Instant::now();
    let perturb = std::env::current_exe().map_err(|e| perturb_core::Error::Other(format!("cannot locate the perturb binary: {e}")))?;
    let workdir = std::env::current_dir().map_err(|e| perturb_core::Error::Other(format!("no working folder: {e}")))?;
    let mut o = Options::new(perturb, workdir, a.out, scale);
    o.input = a.input;
    o.ingest_args = a.ingest_args;
    o.grn = a.grn;
    o.device = a.device;
    o.seeds = a.seeds;
    if let Some(v) = a.variants {
        o.variants = v;
    }
    o.network_study = !a.no_network_study;
    o.examples = !a.no_examples;
    if let Some(j) = a.jobs {
        o.parallel = j;
    }
    o.force = a.force;
    println!("reproducing the {} study -> {}", scale.name(), o.out.display());
    let outcome = perturb_pipeline::reproduce(&o).map_err(perturb_core::Error::Other)?;
    println!(
        "{} stages run, {} up to date, in {:.0} s; report: {} (also report.md, metrics.parquet)",
        outcome.ran,
        outcome.up_to_date,
        started.elapsed().as_secs_f64(),
        outcome.report.display()
    );
    Ok(())
}

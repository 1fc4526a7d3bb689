//! `perturb eval`: splits, baselines, scores and the report.

use std::path::PathBuf;

use clap::Args;
use perturb_core::guard::{claim, NamedPath};
use perturb_eval::{EvalOptions, Task};

use crate::parsers::named;
use crate::ranges;

#[derive(Args)]
pub(crate) struct EvalArgs {
    /// The ingest stage's output folder.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// double (Norman protocol), unseen_single (GEARS simulation split) and/or unseen_context
    /// (every perturbation, predicted from --other-context folders; one seed), comma-separated.
    #[arg(long, default_value = "double", value_delimiter = ',', value_parser = named::<Task>())]
    task: Vec<Task>,
    /// Split seeds, comma-separated.
    #[arg(long, default_value = "1,2,3,4,5", value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Output folder (splits, metrics.parquet, summary.parquet, report.md, manifest.json).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Genes for L2 and Pearson delta: the N most expressed in control (at least 1).
    #[arg(long, default_value_t = EvalOptions::new("", "").top_genes, value_parser = ranges::count(1, 1_000_000))]
    top_genes: usize,
    /// Score a model's predictions too: NAME=FILE (from `perturb predict`); with several
    /// seeds write the path with {seed} (and {task}), e.g. app=pred_s{seed}.parquet.
    #[arg(long, value_name = "NAME=FILE")]
    predictions: Vec<String>,
    /// A model's run measurements for the efficiency table: NAME=FILE (timing.json of
    /// `perturb train`), with {seed} / {task} as for --predictions.
    #[arg(long, value_name = "NAME=FILE")]
    timing: Vec<String>,
    /// Attention weights for the report: NAME=FILE (from `perturb predict --attention`).
    #[arg(long, value_name = "NAME=FILE")]
    attention: Vec<String>,
    /// A model's training manifest: NAME=FILE (manifest.json of `perturb train`), with
    /// {seed} / {task} as for --predictions. The models given pick one by their validation
    /// L2 (the report's "Model selection"), which is then compared on test with the rest.
    #[arg(long, value_name = "NAME=FILE")]
    validation: Vec<String>,
    /// The recommended model (the one `perturb train --preset best` trains): its test
    /// figures against every baseline and model, beside the validation pick.
    #[arg(long, value_name = "NAME")]
    recommended: Option<String>,
    /// The prior network the models get (the output folder of `perturb graph`): also score
    /// the baselines built on it, `graph_knn` (the target's strongest measured network
    /// neighbours' mean effect) and `linear_prior` (ridge on network neighbourhoods).
    #[arg(long, value_name = "DIR")]
    graph: Option<PathBuf>,
    /// Another screen's ingest folder: also score `linear_p_other`, the linear baseline with
    /// its perturbation embeddings P taken from that screen's singles (PCA, K = 10).
    #[arg(long, value_name = "DIR")]
    linear_p_from: Option<PathBuf>,
    /// The ingest folder of another context of the same screen (`perturb ingest
    /// --context-key`; repeat for each): also score `other_contexts` (the perturbation's
    /// effect there) and `other_contexts_fit` (the mean baseline plus the perturbation's
    /// departure there from those contexts' mean, scaled by a factor fitted on the training
    /// perturbations).
    #[arg(long = "other-context", value_name = "DIR")]
    other_contexts: Vec<PathBuf>,
    /// The network a simulated screen was generated with (`perturb simulate` writes
    /// <screen>.network.parquet): --grn and --programs are scored against it.
    #[arg(long, value_name = "FILE")]
    truth_network: Option<PathBuf>,
    /// A learned network to score: NAME=FILE (grn.parquet of a grn_vae model), with
    /// {seed} / {task} as for --predictions.
    #[arg(long, value_name = "NAME=FILE")]
    grn: Vec<String>,
    /// Gene programs to score: NAME=FILE (programs.parquet of a modules model), with
    /// {seed} / {task} as for --predictions.
    #[arg(long, value_name = "NAME=FILE")]
    programs: Vec<String>,
}

/// `NAME=FILE` pairs of an eval option.
pub(crate) fn named_files(option: &str, values: &[String]) -> perturb_core::Result<Vec<(String, PathBuf)>> {
    values
        .iter()
        .map(|p| {
            let (name, file) = p.split_once('=').ok_or_else(|| perturb_core::Error::bad_option(option, format!("'{p}' should be NAME=FILE")))?;
            if name.is_empty() {
                return Err(perturb_core::Error::bad_option(option, format!("'{p}' has no model name before '='")));
            }
            Ok((name.to_string(), PathBuf::from(file)))
        })
        .collect()
}

pub(crate) fn run_eval(a: EvalArgs) -> perturb_core::Result<()> {
    let o = EvalOptions {
        tasks: a.task,
        linear_p_from: a.linear_p_from,
        other_contexts: a.other_contexts,
        graph: a.graph,
        seeds: a.seeds,
        top_genes: a.top_genes,
        predictions: named_files("--predictions", &a.predictions)?,
        timing: named_files("--timing", &a.timing)?,
        attention: named_files("--attention", &a.attention)?,
        validation: named_files("--validation", &a.validation)?,
        recommended: a.recommended,
        truth_network: a.truth_network,
        grn: named_files("--grn", &a.grn)?,
        programs: named_files("--programs", &a.programs)?,
        ..EvalOptions::new(a.data, a.out)
    };
    let mut inputs = vec![NamedPath::new("--data", &o.data)];
    inputs.extend(o.linear_p_from.as_deref().map(|p| NamedPath::new("--linear-p-from", p)));
    inputs.extend(o.other_contexts.iter().map(|p| NamedPath::new("--other-context", p)));
    inputs.extend(o.graph.as_deref().map(|p| NamedPath::new("--graph", p)));
    inputs.extend(o.truth_network.as_deref().map(|p| NamedPath::new("--truth-network", p)));
    inputs.extend(o.named_files().into_iter().flat_map(|(option, files)| files.iter().map(move |(_, path)| NamedPath::new(option, path))));
    let _lock = claim(NamedPath::new("--out", &o.out), &inputs)?;
    let s = perturb_eval::evaluate(&o)?;
    println!("evaluated {} (task, seed, model, perturbation) rows -> {} in {:.1}s", s.n_rows, o.out.display(), s.seconds);
    for ((task, model), l2) in &s.mean_l2 {
        println!("  {task:<14} {model:<10} mean L2 {l2:.3}");
    }
    Ok(())
}

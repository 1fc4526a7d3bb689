//! `perturb train` and `perturb predict`: the model's flags, and the runs.

use std::path::PathBuf;

use clap::Args;
use perturb_core::guard::{claim, NamedPath};
use perturb_train::app::{Decoder, GeneEmbedding, Pooling};
use perturb_train::data::TargetMode;
use perturb_train::device::{DeviceChoice, Selected};
use perturb_train::features::FeatureSpec;
use perturb_train::layers::Aggregation;
use perturb_train::stage::{AppConfigChoice, ModelChoice, TrainStage};
use perturb_train::train::TrainOptions;

use crate::ranges;

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// The ingest stage's output folder.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The graph stage's output folder.
    #[arg(long, value_name = "DIR")]
    graph: PathBuf,
    /// A split file written by `perturb eval` (its train conditions are used; its val
    /// conditions, if any, decide early stopping).
    #[arg(long, value_name = "FILE")]
    split: PathBuf,
    #[arg(long, default_value_t = TrainOptions::default().seed)]
    seed: u64,
    /// A named model, trained exactly as the default study trains it: `best` (the
    /// recommended model, the default study's validation pick) or any variant of `perturb
    /// reproduce --list-variants`. It sets that variant's flags and the study's epochs,
    /// patience, batch size and learning rate; flags given beside it override them.
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Output model folder (config.json, model.bpk, index.json, edges.parquet, singles.parquet, manifest.json).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// gnn | random | identity
    #[arg(long, default_value = "gnn", value_parser = parse_embedding)]
    gene_embedding: GeneEmbedding,
    /// GNN input features, comma-separated: learned (per-gene vectors), control (control
    /// mean, variance, rank), prior (network degrees and edge signs).
    #[arg(long, default_value = "learned", value_delimiter = ',')]
    gene_features: Vec<String>,
    /// attention (additive, the seed design) | dot (scaled dot-product) | cosine (cosine with a
    /// learned temperature) | mean
    #[arg(long, default_value = "attention", value_parser = parse_pooling)]
    pooling: Pooling,
    /// linear | mlp
    #[arg(long, default_value = "linear", value_parser = parse_decoder)]
    decoder: Decoder,
    /// mean | sum | max
    #[arg(long, default_value = "mean", value_parser = parse_aggregation)]
    aggregation: Aggregation,
    #[arg(long, default_value_t = AppConfigChoice::default().hidden, value_parser = ranges::count(1, ranges::MAX_WIDTH))]
    hidden: usize,
    #[arg(long, default_value_t = AppConfigChoice::default().layers, value_parser = ranges::count(1, 16))]
    layers: usize,
    #[arg(long, default_value_t = TrainOptions::default().max_epochs, value_parser = ranges::count(1, 1_000_000))]
    epochs: usize,
    /// Epochs without a better validation L2 before stopping.
    #[arg(long, default_value_t = TrainOptions::default().patience)]
    patience: usize,
    /// Epochs before early stopping may stop (the best epoch is still the one kept): a
    /// model whose attention starts flat needs them to leave the mean solution.
    #[arg(long, default_value_t = TrainOptions::default().min_epochs, value_parser = ranges::count(0, 1_000_000))]
    min_epochs: usize,
    /// Conditions per optimisation step.
    #[arg(long, default_value_t = TrainOptions::default().batch_size, value_parser = ranges::count(1, 1_000_000))]
    batch_size: usize,
    /// Adam's step size, above 0 and at most 1.
    #[arg(long, default_value_t = TrainOptions::default().learning_rate, value_parser = ranges::learning_rate)]
    learning_rate: f64,
    /// Parametric bootstrap augmentation: every epoch draws each training condition's
    /// pseudobulk change from N(observed, standard error^2).
    #[arg(long)]
    bootstrap: bool,
    /// Output genes in each training step's loss for models with a gene-wise head
    /// (--propagation, --additive-gate), a fresh random subset per step (0 = all). Screens
    /// with fewer genes train on all of them; at Norman size (19,000 genes) it cuts the
    /// time per epoch by a third. Validation and prediction use every gene.
    #[arg(long, default_value_t = 2048)]
    genes_per_step: usize,
    /// auto (wgpu on a hardware adapter if one answers, else cpu) | cpu | wgpu (any adapter,
    /// software renderers included) | wgpu:vulkan, wgpu:metal, wgpu:dx12, wgpu:gl (that API only).
    #[arg(long, default_value = "auto")]
    device: String,
    /// full (the seed design) | residual (learn a double's deviation from the sum of its
    /// measured singles, add that sum back when predicting; app and grn_vae)
    #[arg(long, default_value = "full", value_parser = parse_target)]
    target: TargetMode,
    /// Add the perturbation query to the pooled state before decoding (beyond the seed design).
    #[arg(long)]
    query_skip: bool,
    /// Start the attention on the perturbed genes (a learnable score bonus, beyond the seed
    /// design): without it the attention starts flat and the plain model predicts the mean.
    #[arg(long)]
    attention_focus: bool,
    /// Start the attention on the genes reached from the perturbed ones within K hops of
    /// the network (a learnable score bonus, beyond the seed design; 0 = off): the
    /// perturbation's neighbourhood, with the rest of the genes as the fallback.
    #[arg(long, default_value_t = AppConfigChoice::default().attention_hops, value_parser = ranges::count(0, 8))]
    attention_hops: usize,
    /// Gene-wise head reading how the perturbation reaches each gene through the network,
    /// over 1..=K hops (beyond the seed design; 0 = off).
    #[arg(long, default_value_t = FeatureSpec::default().propagation_hops, value_parser = ranges::count(0, ranges::MAX_HOPS))]
    propagation: usize,
    /// Gene-wise head reading the measured singles' effects on each gene and adding their
    /// sum: a learned gate between the additive prediction and the model (beyond the seed
    /// design).
    #[arg(long)]
    additive_gate: bool,
    /// The ingest folder of another context of the same screen (`perturb ingest
    /// --context-key`; repeat for each): the gene-wise head also reads the perturbed genes'
    /// single effects measured there, and learns how much of them carries over (beyond the
    /// seed design).
    #[arg(long = "other-context", value_name = "DIR")]
    other_contexts: Vec<PathBuf>,
    /// Learn how far to trust each prior edge the head's propagation features run over
    /// (a weight 2σ(10ℓ) per edge, ℓ held near 0 = the prior unless the training
    /// perturbations' responses say otherwise; needs --propagation; beyond the seed design).
    #[arg(long)]
    edge_trust: bool,
    /// Run the attention and the gene-wise head on K genes per perturbation (0 = all): the
    /// perturbed genes, those the perturbation reaches most strongly through the network
    /// or its measured singles, then the most expressed; the other genes keep the
    /// decoder's output plus the singles' sum. A step then costs O(K), not O(all genes),
    /// per perturbation (--genes-per-step does not apply; beyond the seed design).
    #[arg(long, default_value_t = FeatureSpec::default().local_genes, value_parser = ranges::count(0, 1_000_000))]
    local_genes: usize,
    /// Of the --local-genes K candidates, always the E genes most expressed in control
    /// (below K; 0 = none): their changes are measured most precisely, and the metric of
    /// record scores them. The perturbed and the most reached genes fill the other K - E.
    #[arg(long, default_value_t = FeatureSpec::default().local_expressed, value_parser = ranges::count(0, 1_000_000))]
    local_expressed: usize,
    /// Hidden width of the gene-wise head.
    #[arg(long, default_value_t = AppConfigChoice::default().head_hidden, value_parser = ranges::count(1, ranges::MAX_WIDTH))]
    head_hidden: usize,
    /// app (the AdaptivePerturbPredictor) | modules (gene programs, scBIG-style) | grn_vae
    /// (latent effects through a learned GRN, GPO-VAE-style). --hidden and --layers apply
    /// to all three; the options above from --gene-embedding on are APP's.
    #[arg(long, default_value = "app")]
    model: String,
    /// modules: number of gene programs (1 = the ablation without programs) [default: 16].
    #[arg(long, value_parser = ranges::count(1, 1024))]
    programs: Option<usize>,
    /// modules: weight of the within-program correlation loss (0 = off) [default: 0.01].
    #[arg(long, value_parser = ranges::non_negative)]
    coherence_weight: Option<f64>,
    /// modules: weight of the pathway-consistency loss (0 = off) [default: 1].
    #[arg(long, value_parser = ranges::non_negative)]
    pathway_weight: Option<f64>,
    /// grn_vae: width of the latent perturbation effect [default: 8].
    #[arg(long, value_parser = ranges::count(1, ranges::MAX_WIDTH))]
    latent: Option<usize>,
    /// grn_vae: propagation steps through the learned GRN [default: 3].
    #[arg(long, value_parser = ranges::count(0, ranges::MAX_HOPS))]
    hops: Option<usize>,
    /// grn_vae: keep the GRN at the prior's signed weights (the ablation without a learned GRN).
    #[arg(long)]
    fixed_grn: bool,
    /// grn_vae: weight of the KL term [default: 0.001].
    #[arg(long, value_parser = ranges::non_negative)]
    kl_weight: Option<f64>,
    /// grn_vae: weight of the L1 sparsity term on the GRN [default: 0.0001].
    #[arg(long, value_parser = ranges::non_negative)]
    sparsity_weight: Option<f64>,
    /// grn_vae: weight of the GRN-alignment term (0 = off) [default: 0.01].
    #[arg(long, value_parser = ranges::non_negative)]
    alignment_weight: Option<f64>,
}

pub(crate) fn parse_target(s: &str) -> Result<TargetMode, String> {
    choice(s, &[("full", TargetMode::Full), ("residual", TargetMode::ResidualOverAdditive)])
}

#[derive(Args)]
pub(crate) struct PredictArgs {
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Comma-separated perturbations, e.g. "CBL+CNN1,KLF1".
    #[arg(long, required_unless_present = "split", conflicts_with = "split")]
    perturbations: Option<String>,
    /// Predict the conditions of a split file's --set instead (default: its test set).
    #[arg(long, value_name = "FILE")]
    split: Option<PathBuf>,
    #[arg(long, default_value = "test", requires = "split", value_parser = ["train", "val", "test"])]
    set: String,
    /// Output Parquet: perturbation, gene, lfc.
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// Also write <out>.attention.parquet with every gene's attention weight.
    #[arg(long)]
    attention: bool,
    /// auto | cpu | wgpu[:vulkan|metal|dx12|gl], as for train.
    #[arg(long, default_value = "auto")]
    device: String,
}

pub(crate) fn choice<T: Copy>(s: &str, options: &[(&str, T)]) -> Result<T, String> {
    options
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("'{s}' is not one of {}", options.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")))
}

pub(crate) fn parse_embedding(s: &str) -> Result<GeneEmbedding, String> {
    choice(s, &[("gnn", GeneEmbedding::Gnn), ("random", GeneEmbedding::Random), ("identity", GeneEmbedding::Identity)])
}

pub(crate) fn parse_pooling(s: &str) -> Result<Pooling, String> {
    choice(s, &[("attention", Pooling::Attention), ("dot", Pooling::Dot), ("cosine", Pooling::Cosine), ("mean", Pooling::Mean)])
}

pub(crate) fn parse_decoder(s: &str) -> Result<Decoder, String> {
    choice(s, &[("linear", Decoder::Linear), ("mlp", Decoder::Mlp)])
}

pub(crate) fn parse_aggregation(s: &str) -> Result<Aggregation, String> {
    choice(s, &[("mean", Aggregation::Mean), ("sum", Aggregation::Sum), ("max", Aggregation::Max)])
}

/// The compute device: `auto` probes wgpu without risking a panic and falls back to the
/// CPU backend; an explicit `wgpu` without an adapter is an error.
pub(crate) fn device_for(name: &str) -> perturb_core::Result<Selected> {
    let choice: DeviceChoice = name.parse().map_err(|m: String| perturb_core::Error::bad_option("--device", m))?;
    let selected = perturb_train::device::select(choice)?;
    tracing::info!("device: {}", selected.description);
    Ok(selected)
}

pub(crate) fn run_train(a: TrainArgs) -> perturb_core::Result<()> {
    if let Some(preset) = &a.preset {
        tracing::info!("preset {preset}: {}", perturb_pipeline::preset_flags(preset).map_err(|e| perturb_core::Error::bad_option("--preset", e))?.join(" "));
    }
    let gene_features = GeneFeatures::parse(&a)?;
    let model = model_choice(&a)?;
    let mut inputs = vec![NamedPath::new("--data", &a.data), NamedPath::new("--graph", &a.graph), NamedPath::new("--split", &a.split)];
    inputs.extend(a.other_contexts.iter().map(|p| NamedPath::new("--other-context", p)));
    let _lock = claim(NamedPath::new("--out", &a.out), &inputs)?;
    let device = device_for(&a.device)?;
    let stage = TrainStage {
        model,
        data: a.data,
        graph: a.graph,
        split: a.split,
        out: a.out,
        other_contexts: a.other_contexts,
        config: AppConfigChoice {
            hidden: a.hidden,
            layers: a.layers,
            gene_embedding: a.gene_embedding,
            aggregation: a.aggregation,
            pooling: a.pooling,
            decoder: a.decoder,
            query_skip: a.query_skip,
            attention_focus: a.attention_focus,
            attention_hops: a.attention_hops,
            learned_vectors: gene_features.learned_vectors,
            features: gene_features.spec,
            head_hidden: a.head_hidden,
            edge_trust: a.edge_trust,
        },
        options: TrainOptions {
            seed: a.seed,
            learning_rate: a.learning_rate,
            max_epochs: a.epochs,
            patience: a.patience,
            min_epochs: a.min_epochs,
            batch_size: a.batch_size,
            bootstrap: a.bootstrap,
            genes_per_step: a.genes_per_step,
            progress: true,
            ..TrainOptions::default()
        },
        target_mode: a.target,
    };
    let s = perturb_train::stage::run_train(&stage, &device)?;
    let r = &s.report;
    println!(
        "trained {} parameters on {} conditions ({} for early stopping) for {} epochs (best {}: validation L2 {:.3}) in {:.1}s on {} -> {}",
        s.n_params,
        r.n_train,
        r.n_validation,
        r.history.len(),
        r.best_epoch,
        r.best_validation_l2(),
        r.seconds,
        device.description,
        stage.out.display()
    );
    Ok(())
}

/// What `--gene-features`, `--propagation`, `--additive-gate` and `--other-context` ask the
/// model to read.
pub(crate) struct GeneFeatures {
    spec: FeatureSpec,
    /// `--gene-features learned`: learned gene vectors beside the node features.
    learned_vectors: bool,
}

impl GeneFeatures {
    fn parse(a: &TrainArgs) -> perturb_core::Result<GeneFeatures> {
        let mut spec = FeatureSpec {
            propagation_hops: a.propagation,
            additive_gate: a.additive_gate,
            context_effects: !a.other_contexts.is_empty(),
            local_genes: a.local_genes,
            local_expressed: a.local_expressed,
            ..FeatureSpec::default()
        };
        let mut learned_vectors = false;
        for f in &a.gene_features {
            match f.as_str() {
                "learned" => learned_vectors = true,
                "control" => spec.control_node_features = true,
                "prior" => spec.prior_node_features = true,
                other => return Err(perturb_core::Error::bad_option("--gene-features", format!("'{other}' is not one of learned, control, prior"))),
            }
        }
        Ok(GeneFeatures { spec, learned_vectors })
    }
}

/// `--model` with its own options, each left out at the model's config default; a
/// sibling's option given to another model would be silently ignored, so it is refused.
pub(crate) fn model_choice(a: &TrainArgs) -> perturb_core::Result<ModelChoice> {
    let modules_options =
        [("--programs", a.programs.is_some()), ("--coherence-weight", a.coherence_weight.is_some()), ("--pathway-weight", a.pathway_weight.is_some())];
    let vae_options = [
        ("--latent", a.latent.is_some()),
        ("--hops", a.hops.is_some()),
        ("--fixed-grn", a.fixed_grn),
        ("--kl-weight", a.kl_weight.is_some()),
        ("--sparsity-weight", a.sparsity_weight.is_some()),
        ("--alignment-weight", a.alignment_weight.is_some()),
    ];
    let foreign: Vec<(&str, &str)> = [("modules", &modules_options[..]), ("grn_vae", &vae_options[..])]
        .iter()
        .filter(|(owner, _)| *owner != a.model)
        .flat_map(|(owner, options)| options.iter().filter(|o| o.1).map(move |o| (o.0, *owner)))
        .collect();
    if let Some((option, owner)) = foreign.first() {
        return Err(perturb_core::Error::bad_option(*option, format!("is an option of --model {owner}, not of --model {}", a.model)));
    }
    // The configs' own defaults (the sizes are the screen's, filled in at training).
    let modules = perturb_train::modules::ModulesConfig::new(0, 0);
    let vae = perturb_train::grn_vae::GrnVaeConfig::new(0, 0, 0);
    Ok(match a.model.as_str() {
        "app" => ModelChoice::App,
        "modules" => ModelChoice::Modules {
            programs: a.programs.unwrap_or(modules.programs),
            coherence_weight: a.coherence_weight.unwrap_or(modules.coherence_weight),
            pathway_weight: a.pathway_weight.unwrap_or(modules.pathway_weight),
        },
        "grn_vae" => ModelChoice::GrnVae {
            latent: a.latent.unwrap_or(vae.latent),
            hops: a.hops.unwrap_or(vae.hops),
            learn_grn: !a.fixed_grn,
            kl_weight: a.kl_weight.unwrap_or(vae.kl_weight),
            sparsity_weight: a.sparsity_weight.unwrap_or(vae.sparsity_weight),
            alignment_weight: a.alignment_weight.unwrap_or(vae.alignment_weight),
        },
        other => return Err(perturb_core::Error::bad_option("--model", format!("'{other}' is not one of app, modules, grn_vae"))),
    })
}

pub(crate) fn run_predict(a: PredictArgs) -> perturb_core::Result<()> {
    let attention = perturb_core::schema::attention::file_beside(&a.out);
    let mut inputs = vec![NamedPath::new("--model", &a.model)];
    inputs.extend(a.split.as_deref().map(|s| NamedPath::new("--split", s)));
    let _lock = claim(NamedPath::new("--out", &a.out), &inputs)?;
    perturb_core::guard::refuse_overlap(NamedPath::new("--out (its attention table)", &attention), &inputs)?;
    let device = device_for(&a.device)?;
    let started = std::time::Instant::now();
    let perturbations = match (&a.perturbations, &a.split) {
        (Some(p), _) => p.clone(),
        (None, Some(split)) => {
            // The control is in every training set but is no perturbation to predict.
            let conditions: Vec<String> = perturb_train::data::split_conditions(split, &a.set)?
                .into_iter()
                .filter(|c| !perturb_core::Condition::parse_canonical(c).is_ok_and(|c| c.is_control()))
                .collect();
            if conditions.is_empty() {
                return Err(perturb_core::Error::bad_input(split, format!("--set {}: no perturbed conditions in that set of the split", a.set)));
            }
            conditions.join(",")
        }
        (None, None) => unreachable!("clap requires one of --perturbations and --split"),
    };
    let from = if a.split.is_some() { "--split" } else { "--perturbations" };
    let n = perturb_train::stage::run_predict(&a.model, &perturbations, from, &a.out, a.attention, &device.device)?;
    println!("predicted {n} perturbation(s) -> {} in {:.3}s", a.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{with_preset, Cli, Command};
    use clap::Parser;

    fn train_args(line: &str) -> Result<TrainArgs, String> {
        let args = with_preset(line.split_whitespace().map(std::ffi::OsString::from).collect())?;
        match Cli::try_parse_from(args).map_err(|e| e.to_string())?.command {
            Command::Train(a) => Ok(a),
            _ => Err("not train".into()),
        }
    }

    #[test]
    fn a_preset_sets_the_study_flags_and_the_users_own_override_them() {
        let base = "perturb -v train --data d --graph g --split s --out o";
        let best = train_args(&format!("{base} --preset best --epochs 7")).unwrap();
        let expected = perturb_pipeline::preset_flags(perturb_pipeline::variants::RECOMMENDED).unwrap();
        assert!(expected.contains(&"--patience"), "{expected:?}");
        // app_plus: query skip, 3 hops of propagation, the additive gate; the study's
        // patience and learning rate; the user's epochs.
        assert_eq!((best.query_skip, best.propagation, best.additive_gate), (true, 3, true));
        assert_eq!((best.epochs, best.patience, best.learning_rate), (7, 15, 0.01));
        let named = train_args(&format!("{base} --preset=app_mean_pool")).unwrap();
        assert_eq!(named.pooling, Pooling::Mean);
        assert!(!named.query_skip);
        let plain = train_args(base).unwrap();
        assert_eq!((plain.epochs, plain.patience, plain.propagation), (300, 25, 0));
        let e = train_args(&format!("{base} --preset gears")).err().unwrap();
        assert!(e.contains("unknown model variant 'gears'") && e.contains("best"), "{e}");
    }
}

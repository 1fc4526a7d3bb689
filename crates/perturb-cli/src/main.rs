//! `perturb`: every pipeline stage as a subcommand.
//!
//! Errors print as one line (`error: <file>: <problem>`) and exit with status 1; usage
//! errors exit with status 2 (clap's convention).

mod ranges;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use perturb_core::guard::{claim, NamedPath};
use perturb_core::ConditionSyntax;
use perturb_eval::{EvalOptions, Task};
use perturb_graph::{GraphOptions, Source};
use perturb_ingest::hvg::HvgFlavor;
use perturb_ingest::{AssumeScale, IngestOptions, InputFormat};
use perturb_simulate::{Preset, Scale, SimulateOptions, Sizes};
use perturb_train::app::{Decoder, GeneEmbedding, Pooling};
use perturb_train::data::TargetMode;
use perturb_train::device::{DeviceChoice, Selected};
use perturb_train::features::FeatureSpec;
use perturb_train::layers::Aggregation;
use perturb_train::stage::{AppConfigChoice, ModelChoice, TrainStage};
use perturb_train::train::TrainOptions;

#[derive(Parser)]
#[command(name = "perturb", version, about = "Predict transcriptome responses to genetic perturbations with a gene-network prior")]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a screen (h5ad or CSV) and write normalised pseudobulk Parquet artifacts.
    Ingest(IngestArgs),
    /// Simulate a pooled CRISPR screen over the real regulon network (raw-count h5ad,
    /// GEARS schema) plus its ground-truth network.
    Simulate(SimulateArgs),
    /// Build the gene network over the ingested genes and perturbation targets.
    Graph(GraphArgs),
    /// Evaluate the honest baselines (and models) on benchmark splits.
    Eval(EvalArgs),
    /// Train APP (or an ablation), `modules` or `grn_vae` on a split's training conditions.
    // A flag given twice keeps its last value: --preset's flags come first, so the
    // user's own override them.
    #[command(args_override_self = true)]
    Train(TrainArgs),
    /// Predict log-fold changes (and attention) for perturbations with a trained model.
    Predict(PredictArgs),
    /// The whole study, resumable: simulate (or your --input) -> ingest -> graph -> splits
    /// and baselines -> every model per task and seed -> network-quality study -> report.
    Reproduce(ReproduceArgs),
}

#[derive(Args)]
struct ReproduceArgs {
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
    #[arg(long, default_value = "go+regulon")]
    grn: String,
    /// auto | cpu | wgpu[:vulkan|metal|dx12|gl], for training and prediction.
    #[arg(long, default_value = "auto")]
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

#[derive(Args)]
struct TrainArgs {
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
    #[arg(long, default_value_t = 0)]
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
    #[arg(long, default_value_t = 64, value_parser = ranges::count(1, ranges::MAX_WIDTH))]
    hidden: usize,
    #[arg(long, default_value_t = 2, value_parser = ranges::count(1, 16))]
    layers: usize,
    #[arg(long, default_value_t = 300, value_parser = ranges::count(1, 1_000_000))]
    epochs: usize,
    /// Epochs without a better validation L2 before stopping.
    #[arg(long, default_value_t = 25)]
    patience: usize,
    /// Epochs before early stopping may stop (the best epoch is still the one kept): a
    /// model whose attention starts flat needs them to leave the mean solution.
    #[arg(long, default_value_t = perturb_train::train::TrainOptions::default().min_epochs, value_parser = ranges::count(0, 1_000_000))]
    min_epochs: usize,
    /// Conditions per optimisation step.
    #[arg(long, default_value_t = 16, value_parser = ranges::count(1, 1_000_000))]
    batch_size: usize,
    /// Adam's step size, above 0 and at most 1.
    #[arg(long, default_value_t = 3e-3, value_parser = ranges::learning_rate)]
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
    #[arg(long, default_value_t = 0, value_parser = ranges::count(0, 8))]
    attention_hops: usize,
    /// Gene-wise head reading how the perturbation reaches each gene through the network,
    /// over 1..=K hops (beyond the seed design; 0 = off).
    #[arg(long, default_value_t = 0, value_parser = ranges::count(0, ranges::MAX_HOPS))]
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
    /// Hidden width of the gene-wise head.
    #[arg(long, default_value_t = 32, value_parser = ranges::count(1, ranges::MAX_WIDTH))]
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

fn parse_target(s: &str) -> Result<TargetMode, String> {
    choice(s, &[("full", TargetMode::Full), ("residual", TargetMode::ResidualOverAdditive)])
}

#[derive(Args)]
struct PredictArgs {
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

fn choice<T: Copy>(s: &str, options: &[(&str, T)]) -> Result<T, String> {
    options
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("'{s}' is not one of {}", options.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")))
}
fn parse_embedding(s: &str) -> Result<GeneEmbedding, String> {
    choice(s, &[("gnn", GeneEmbedding::Gnn), ("random", GeneEmbedding::Random), ("identity", GeneEmbedding::Identity)])
}
fn parse_pooling(s: &str) -> Result<Pooling, String> {
    choice(s, &[("attention", Pooling::Attention), ("dot", Pooling::Dot), ("cosine", Pooling::Cosine), ("mean", Pooling::Mean)])
}
fn parse_decoder(s: &str) -> Result<Decoder, String> {
    choice(s, &[("linear", Decoder::Linear), ("mlp", Decoder::Mlp)])
}
fn parse_aggregation(s: &str) -> Result<Aggregation, String> {
    choice(s, &[("mean", Aggregation::Mean), ("sum", Aggregation::Sum), ("max", Aggregation::Max)])
}

/// The compute device: `auto` probes wgpu without risking a panic and falls back to the
/// CPU backend; an explicit `wgpu` without an adapter is an error.
fn device_for(name: &str) -> perturb_core::Result<Selected> {
    let choice: DeviceChoice = name.parse().map_err(|m: String| perturb_core::Error::bad_option("--device", m))?;
    let selected = perturb_train::device::select(choice)?;
    tracing::info!("device: {}", selected.description);
    Ok(selected)
}

fn run_train(a: TrainArgs) -> perturb_core::Result<()> {
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
struct GeneFeatures {
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
fn model_choice(a: &TrainArgs) -> perturb_core::Result<ModelChoice> {
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

fn run_predict(a: PredictArgs) -> perturb_core::Result<()> {
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

#[derive(Args)]
struct EvalArgs {
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
    #[arg(long, default_value_t = 1000, value_parser = ranges::count(1, 1_000_000))]
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
fn named_files(option: &str, values: &[String]) -> perturb_core::Result<Vec<(String, PathBuf)>> {
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

#[derive(Args)]
struct GraphArgs {
    /// The ingest stage's genes.parquet (conditions.parquet is read from the same folder).
    #[arg(long, value_name = "FILE")]
    genes: PathBuf,
    /// go | regulon | ppi | coexpression | edges:PATH, or a union joined with + (e.g. go+regulon).
    #[arg(long, default_value = "go", value_parser = parse_sources)]
    source: SourceSpec,
    /// Output folder (edges.parquet, nodes.parquet, manifest.json).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Folder holding the prior tables.
    #[arg(long, default_value = "data/priors", value_name = "DIR")]
    priors: PathBuf,
    /// GO ontologies to use (comma-separated).
    #[arg(long, default_value = "BP,MF,CC", value_delimiter = ',')]
    go_ontologies: Vec<String>,
    /// GO evidence codes to keep (comma-separated; default all), e.g. EXP,IDA,IPI,IMP,IGI,IEP.
    #[arg(long, value_delimiter = ',')]
    go_evidence: Vec<String>,
    /// GO: keep gene pairs with Jaccard similarity above this.
    #[arg(long, default_value_t = 0.1, value_parser = ranges::fraction)]
    min_jaccard: f64,
    /// GO and coexpression: neighbours kept per gene.
    #[arg(long, default_value_t = 20, value_parser = ranges::count(1, 10_000))]
    top_k: usize,
    /// regulon/ppi: keep edges supported by one of these resources (e.g. CollecTRI).
    #[arg(long, value_delimiter = ',')]
    resources: Vec<String>,
    /// regulon/ppi/edges: add the reverse of every edge.
    #[arg(long)]
    symmetrise: bool,
    /// coexpression: the training conditions (one per line); test conditions never shape the prior.
    #[arg(long, value_name = "FILE")]
    train_conditions: Option<PathBuf>,
    /// coexpression: keep pairs with |Pearson| above this.
    #[arg(long, default_value_t = 0.4, value_parser = ranges::fraction)]
    min_correlation: f64,
    /// Remove this fraction of edges at random (network-quality study).
    #[arg(long, default_value_t = 0.0, value_parser = ranges::fraction)]
    drop_edges: f64,
    /// Add this many random edges per edge of the network (network-quality study), at most 10.
    #[arg(long, default_value_t = 0.0, value_parser = ranges::edge_multiple)]
    add_edges: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The parsed `--source` (a newtype: clap reads a bare `Vec` as a repeated option).
#[derive(Clone)]
struct SourceSpec(Vec<Source>);

fn parse_sources(s: &str) -> Result<SourceSpec, String> {
    perturb_graph::spec::parse(s).map(SourceSpec)
}

#[derive(Args)]
struct SimulateArgs {
    /// norman-like (CRISPRa singles + doubles) | adamson-like | replogle-like (CRISPRi singles)
    #[arg(long, default_value = "norman-like", value_parser = named::<Preset>())]
    preset: Preset,
    /// quick (seconds; 3,000 genes) | full (Norman-size: 85,000 cells x 19,000 genes)
    #[arg(long, default_value = "quick", value_parser = named::<Scale>())]
    scale: Scale,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output .h5ad; the network is written beside it as <name>.network.parquet.
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// Regulon table (columns source, target, sign).
    #[arg(long, default_value = "data/priors/regulons.parquet", value_name = "FILE")]
    network: PathBuf,
    /// Table whose `gene` column pads the gene list when the network names too few genes.
    #[arg(long, value_name = "FILE")]
    padding_genes: Option<PathBuf>,
    /// Comma-separated genes to perturb instead of the preset's.
    #[arg(long, value_delimiter = ',', value_name = "GENES")]
    targets: Option<Vec<String>>,
    /// Override the number of measured genes.
    #[arg(long, value_parser = ranges::size)]
    n_genes: Option<usize>,
    /// Override the number of cells.
    #[arg(long, value_parser = ranges::size)]
    n_cells: Option<usize>,
    /// Measure the screen with the benchmark's definitions beside the real Norman and
    /// Replogle figures.
    #[arg(long)]
    report: bool,
    /// Cell lines: each holds the whole design, later ones with another baseline and 30% of
    /// the true edges inactive; obs `cell_type` names them line1, line2, … (ingest with
    /// --context-key cell_type).
    #[arg(long, default_value_t = 1, value_parser = ranges::count(1, 8))]
    contexts: usize,
    /// Share of the prior's regulon edges that are true in the simulated cell type
    /// [default: the calibrated realistic world, see `perturb_simulate::PriorNoise`].
    #[arg(long, value_parser = ranges::fraction)]
    prior_precision: Option<f64>,
    /// Share of the true edges the prior holds (the rest are hidden edges) [default: as precision].
    #[arg(long, value_parser = ranges::fraction)]
    prior_recall: Option<f64>,
    /// Share of kept prior edges whose true sign is flipped [default: 0].
    #[arg(long, value_parser = ranges::fraction)]
    prior_sign_error: Option<f64>,
    /// The truth is the prior itself (the simulator's world before realistic priors).
    #[arg(long, conflicts_with_all = ["prior_precision", "prior_recall", "prior_sign_error"])]
    exact_prior: bool,
}

#[derive(Args)]
struct IngestArgs {
    /// The screen: an AnnData .h5ad, a cells x genes count CSV/TSV (optionally .gz), or
    /// with --format csv-pseudobulk a conditions x genes table.
    #[arg(long, short, value_name = "FILE")]
    input: PathBuf,
    /// Output folder (created; artifacts appear only when all are complete).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// auto | h5ad | csv-counts | csv-pseudobulk
    #[arg(long, default_value = "auto", value_parser = named::<InputFormat>())]
    format: InputFormat,
    /// Matrix to read: X, raw (raw/X) or a layer name such as counts.
    #[arg(long, value_name = "NAME")]
    layer: Option<String>,
    /// var column holding gene symbols [default: gene_name if present, else the var index]
    #[arg(long, value_name = "COLUMN")]
    gene_key: Option<String>,
    /// obs column holding condition labels [default: condition if present, else the first
    /// present of target, target_gene, gene, guide_target, perturbation]
    #[arg(long, value_name = "COLUMN")]
    condition_key: Option<String>,
    /// Label (or label token) of unperturbed cells, e.g. ctrl (GEARS) or control (scPerturb)
    /// [default: the one label that is a known control label: ctrl, control, non-targeting,
    /// NT, NTC, safe-targeting, negative_control, unperturbed, … ignoring case]
    #[arg(long, value_name = "LABEL")]
    control: Option<String>,
    /// Keep only the cells whose obs column KEY equals VALUE (a context: a cell line, a
    /// stimulation); repeat to AND several.
    #[arg(long, value_name = "KEY=VALUE", value_parser = |s: &str| match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("'{s}': expected KEY=VALUE, e.g. perturbation_2=stimulated")),
    })]
    subset: Vec<(String, String)>,
    /// obs column whose values are contexts (a cell line, a stimulation state): each
    /// context is ingested into DIR/<value>/ against its own control, and DIR/contexts.parquet
    /// lists them; repeat to combine columns.
    #[arg(long = "context-key", value_name = "COLUMN")]
    context_keys: Vec<String>,
    /// obs column of each cell's batch (a 10x lane, gem_group): each cell is read against
    /// its batch's own control cells, then the effects are averaged.
    #[arg(long, value_name = "COLUMN")]
    batch_key: Option<String>,
    /// gears (A+B, A+ctrl) | scperturb (A_B) | auto (gears if any label has '+')
    #[arg(long, default_value = "auto", value_parser = parse::<ConditionSyntax>)]
    condition_syntax: ConditionSyntax,
    /// auto | counts | lognorm. auto: raw counts if the first block holds only
    /// non-negative integers, else already log-normalised.
    #[arg(long, default_value = "auto", value_parser = named::<AssumeScale>())]
    assume: AssumeScale,
    /// Total counts per cell after normalisation (scanpy normalize_total).
    #[arg(long, default_value_t = 1e4, value_parser = ranges::positive)]
    target_sum: f64,
    /// seurat | cell_ranger | seurat_v3 (needs raw counts)
    #[arg(long, default_value = "seurat", value_parser = named::<HvgFlavor>())]
    hvg_flavor: HvgFlavor,
    /// Number of highly-variable genes to flag (all genes are still summarised).
    #[arg(long, default_value_t = 2000, value_parser = ranges::count(1, 1_000_000))]
    n_top_genes: usize,
    /// Select HVGs by scanpy's default mean/dispersion cutoffs instead of --n-top-genes.
    #[arg(long)]
    hvg_cutoffs: bool,
    /// Drop cells with fewer total counts (raw counts only).
    #[arg(long, default_value_t = 0.0, value_parser = ranges::non_negative)]
    min_counts: f64,
    /// CSV input: read empty cells (how pandas writes NaN) as 0 instead of refusing the file.
    #[arg(long)]
    missing_as_zero: bool,
}

impl SimulateArgs {
    fn scale_name(&self) -> &'static str {
        match self.scale {
            Scale::Quick => "quick",
            Scale::Full => "full",
        }
    }
}

fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

/// The parser of a [`perturb_core::named_enum!`]: `--help` and a refusal list its names.
fn named<T: perturb_core::names::Named + Clone + Send + Sync + 'static>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::NAMES).try_map(|s| s.parse::<T>())
}

/// Training allocates and frees tensors of a few megabytes every step; glibc serves those
/// with fresh mmaps by default and the page faults then cost more than the arithmetic.
/// Keeping them on the heap makes CPU training about twice as fast.
fn keep_large_allocations_on_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// `perturb train ... --preset NAME ...` with the preset's flags put right after `train`:
/// flags the user gives anywhere after them override them. Other commands pass as given.
fn with_preset(args: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>, String> {
    let Some(train) = args.iter().skip(1).position(|a| !a.to_string_lossy().starts_with('-')).map(|i| i + 1) else { return Ok(args) };
    if args[train] != "train" {
        return Ok(args);
    }
    let mut name = None;
    for (i, a) in args.iter().enumerate().skip(train + 1) {
        let a = a.to_string_lossy();
        if let Some(value) = a.strip_prefix("--preset=") {
            name = Some(value.to_string());
        } else if a == "--preset" {
            name = args.get(i + 1).map(|v| v.to_string_lossy().into_owned());
        }
    }
    let Some(name) = name else { return Ok(args) };
    let flags = perturb_pipeline::preset_flags(&name)?;
    let mut out = args[..=train].to_vec();
    out.extend(flags.iter().map(std::ffi::OsString::from));
    out.extend(args[train + 1..].iter().cloned());
    Ok(out)
}

fn main() -> ExitCode {
    keep_large_allocations_on_the_heap();
    let args = match with_preset(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();

    let result = match cli.command {
        Command::Ingest(a) => run_ingest(a),
        Command::Simulate(a) => run_simulate(a),
        Command::Graph(a) => run_graph(a),
        Command::Eval(a) => run_eval(a),
        Command::Train(a) => run_train(a),
        Command::Predict(a) => run_predict(a),
        Command::Reproduce(a) => run_reproduce(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error: the message already names the file.
            eprintln!("error: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn run_reproduce(a: ReproduceArgs) -> perturb_core::Result<()> {
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

fn run_eval(a: EvalArgs) -> perturb_core::Result<()> {
    let mut o = EvalOptions::new(a.data, a.out);
    o.tasks = a.task;
    o.linear_p_from = a.linear_p_from;
    o.other_contexts = a.other_contexts;
    o.graph = a.graph;
    o.seeds = a.seeds;
    o.top_genes = a.top_genes;
    o.predictions = named_files("--predictions", &a.predictions)?;
    o.timing = named_files("--timing", &a.timing)?;
    o.attention = named_files("--attention", &a.attention)?;
    o.validation = named_files("--validation", &a.validation)?;
    o.recommended = a.recommended;
    o.truth_network = a.truth_network;
    o.grn = named_files("--grn", &a.grn)?;
    o.programs = named_files("--programs", &a.programs)?;
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

fn run_graph(a: GraphArgs) -> perturb_core::Result<()> {
    let edge_files: Vec<PathBuf> = a.source.0.iter().filter_map(|s| if let Source::Edges(p) = s { Some(p.clone()) } else { None }).collect();
    let mut inputs = vec![NamedPath::new("--genes", &a.genes), NamedPath::new("--priors", &a.priors)];
    inputs.extend(edge_files.iter().map(|p| NamedPath::new("--source edges:", p)));
    inputs.extend(a.train_conditions.as_deref().map(|p| NamedPath::new("--train-conditions", p)));
    let _lock = claim(NamedPath::new("--out", &a.out), &inputs)?;
    let sources = a.source.0;
    let mut o = GraphOptions::new(a.genes, a.out, sources);
    o.priors = a.priors;
    o.go_ontologies = a.go_ontologies;
    o.go_evidence = a.go_evidence;
    o.go_min_jaccard = a.min_jaccard;
    o.top_k = a.top_k;
    o.resources = a.resources;
    o.symmetrise = a.symmetrise;
    o.train_conditions = a.train_conditions;
    o.coexpression_min = a.min_correlation;
    o.drop_edges = a.drop_edges;
    o.add_edges = a.add_edges;
    o.seed = a.seed;
    let c = perturb_graph::build(&o)?;
    if c.self_loops_dropped > 0 || c.duplicates_merged > 0 {
        eprintln!("note: {} self-loops dropped, {} duplicate edges merged", c.self_loops_dropped, c.duplicates_merged);
    }
    if c.edges_with_unknown_genes > 0 {
        eprintln!(
            "note: {} edge-file edges name genes outside the screen and were skipped: {}",
            c.edges_with_unknown_genes,
            c.unknown_edge_genes.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if c.n_unmapped > 0 {
        eprintln!(
            "note: {} names not found in the priors (isolated nodes, kept): {}",
            c.n_unmapped,
            c.unmapped_names.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    println!(
        "graph: {} nodes, {} edges ({}); {}/{} measured genes and {}/{} perturbation targets have an edge; {} isolated -> {} in {:.1}s",
        c.n_nodes,
        c.n_edges,
        c.edges_per_source.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
        c.genes_with_edges,
        c.n_measured_genes,
        c.targets_with_edges,
        c.n_targets,
        c.isolated_nodes,
        o.out.display(),
        c.seconds
    );
    Ok(())
}

fn run_simulate(a: SimulateArgs) -> perturb_core::Result<()> {
    let network_out = perturb_simulate::network_path_for(&a.out);
    let mut inputs = vec![NamedPath::new("--network", &a.network)];
    inputs.extend(a.padding_genes.as_deref().map(|p| NamedPath::new("--padding-genes", p)));
    let _lock = claim(NamedPath::new("--out", &a.out), &inputs)?;
    perturb_core::guard::refuse_overlap(NamedPath::new("--out (its network file)", &network_out), &inputs)?;
    let started = std::time::Instant::now();
    let scale_name = a.scale_name();
    let mut opts = SimulateOptions::new(a.preset, a.scale, a.seed, a.out);
    opts.network = a.network;
    opts.padding_genes = a.padding_genes.or_else(|| {
        // The committed GO annotations name more real genes than the regulons do.
        let go = std::path::Path::new("data/priors/go_annotations.parquet");
        (a.scale == Scale::Full && go.exists()).then(|| go.to_path_buf())
    });
    // The alias table beside the network lists the official symbols.
    opts.symbols = Some(opts.network.with_file_name("gene_aliases.parquet")).filter(|p| p.exists());
    opts.targets = a.targets;
    opts.sizes = Sizes { n_genes: a.n_genes, n_cells: a.n_cells };
    opts.report = a.report;
    opts.contexts = a.contexts;
    let base = if a.exact_prior { perturb_simulate::PriorNoise::EXACT } else { perturb_simulate::PriorNoise::REALISTIC };
    opts.prior_noise = perturb_simulate::PriorNoise {
        precision: a.prior_precision.unwrap_or(base.precision),
        recall: a.prior_recall.or(a.prior_precision).unwrap_or(base.recall),
        sign_error: a.prior_sign_error.unwrap_or(base.sign_error),
    };
    let s = perturb_simulate::simulate(&opts)?;
    println!(
        "simulated {} ({} preset, seed {}): {} cells x {} genes, {} conditions, {} non-zeros -> {} (+ {}) in {:.1}s",
        scale_name,
        opts.preset.name(),
        opts.seed,
        s.n_cells,
        s.n_genes,
        s.n_conditions,
        s.n_nonzero,
        opts.out.display(),
        s.network_file.display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(r) = &s.report {
        for line in r.lines() {
            println!("{line}");
        }
    }
    Ok(())
}

/// The ingest's notes on stderr; a context's note that every context shares is said once.
fn print_ingest_notes(s: &perturb_ingest::IngestSummary) {
    for w in &s.warnings {
        eprintln!("note: {w}");
    }
    let shared = |w: &String| s.contexts.iter().all(|c| c.warnings.contains(w));
    for w in s.contexts.first().map_or(&[][..], |c| &c.warnings[..]).iter().filter(|w| shared(w)) {
        eprintln!("note: {w}");
    }
    for c in &s.contexts {
        for w in c.warnings.iter().filter(|w| !shared(w)) {
            eprintln!("note: context {}: {w}", c.context.as_deref().unwrap_or(""));
        }
    }
}

fn run_ingest(a: IngestArgs) -> perturb_core::Result<()> {
    let _lock = claim(NamedPath::new("--out", &a.out), &[NamedPath::new("--input", &a.input)])?;
    let started = std::time::Instant::now();
    let opts = IngestOptions {
        input: a.input,
        out: a.out,
        format: a.format,
        layer: a.layer,
        gene_key: a.gene_key,
        condition_key: a.condition_key,
        control: a.control,
        subset: a.subset,
        context_keys: a.context_keys,
        batch_key: a.batch_key,
        syntax: a.condition_syntax,
        assume: a.assume,
        target_sum: a.target_sum,
        hvg_flavor: a.hvg_flavor,
        n_top_genes: a.n_top_genes,
        hvg_cutoffs: a.hvg_cutoffs,
        min_counts: a.min_counts,
        missing_as_zero: a.missing_as_zero,
    };
    let s = perturb_ingest::ingest(&opts)?;
    print_ingest_notes(&s);
    if !s.contexts.is_empty() {
        for c in &s.contexts {
            println!(
                "context {}: {} cells, {} conditions ({} singles, {} doubles), {} highly variable genes -> {}",
                c.context.as_deref().unwrap_or(""),
                c.n_cells,
                c.n_conditions,
                c.n_singles,
                c.n_doubles,
                c.n_highly_variable,
                c.out.display()
            );
        }
        println!(
            "ingested {} cells x {} genes from {} in {} contexts, each against its own control -> {} in {:.1}s",
            s.n_cells,
            s.n_genes,
            s.matrix,
            s.contexts.len(),
            s.out.display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    println!(
        "ingested {} cells x {} genes from {} ({}; genes from {}): {} conditions ({} singles, {} doubles), {} highly variable genes -> {} in {:.1}s",
        s.n_cells,
        s.n_genes,
        s.matrix,
        match s.value_scale.as_str() {
            "counts" => "raw counts, normalised + log1p",
            _ => "already log-normalised, used as is",
        },
        s.gene_names_from,
        s.n_conditions,
        s.n_singles,
        s.n_doubles,
        s.n_highly_variable,
        s.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

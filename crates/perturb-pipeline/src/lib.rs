//! The whole study as one resumable run of `perturb` stages: simulate (when no screen is
//! given) -> ingest -> graph -> splits and baselines -> train and predict every model
//! variant per task and seed -> the network-quality study -> one evaluation with the
//! report.
//!
//! Every stage is a `perturb` subcommand run as its own process — exactly what a cluster
//! node or the Snakemake workflow in `pipelines/` runs — so this crate computes nothing
//! itself: it plans the jobs, keys them by their inputs and parameters (`runner`), and
//! runs those that are not up to date, two at a time on two cores. `cargo xtask
//! reproduce` and `perturb reproduce` call [`reproduce`].

pub mod runner;
pub mod snakemake;
pub mod variants;

use std::path::{Path, PathBuf};

use perturb_core::schema::conditions as cs;
use perturb_core::Table;

pub use runner::{Job, RunSummary, Runner, StageRecord};

/// How big a study to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The tests' scale: a 1,000-gene screen, 2 seeds, a short network study (minutes).
    Quick,
    /// The embedded default: the 2,000-gene norman-like screen, 5 seeds, the full study.
    Default,
    /// The size of GEARS' Norman file: 91,205 cells × 5,045 genes, 5 seeds.
    Norman,
    /// The size of the published benchmark's Norman file: ~85,000 cells × 19,000 genes,
    /// 5 seeds.
    Full,
}

perturb_core::named_enum!(Scale, "scale", name, { Quick => "quick", Default => "default", Norman => "norman", Full => "full" });

impl Scale {
    pub const ALL: [Scale; 4] = [Scale::Quick, Scale::Default, Scale::Norman, Scale::Full];

    /// `perturb simulate` arguments for the screen of this scale.
    fn simulate_args(self) -> Vec<&'static str> {
        match self {
            Scale::Quick => vec!["--scale", "quick", "--n-genes", "1000", "--n-cells", "25000"],
            Scale::Default => vec!["--scale", "quick"],
            Scale::Norman => vec!["--scale", "full", "--n-genes", "5045", "--n-cells", "91205"],
            Scale::Full => vec!["--scale", "full"],
        }
    }

    pub fn default_seeds(self) -> Vec<u64> {
        match self {
            Scale::Quick => vec![1, 2],
            _ => vec![1, 2, 3, 4, 5],
        }
    }

    /// The degraded networks of the network-quality study, besides the intact network:
    /// the drops, then the additions.
    fn network_study(self) -> Vec<Degradation> {
        let (drops, adds) = match self {
            Scale::Quick => (vec![0.5], vec![1.0]),
            _ => (vec![0.1, 0.25, 0.5], vec![0.25, 0.5, 1.0]),
        };
        let at = |kind, option, fractions: Vec<f64>| fractions.into_iter().map(move |fraction| Degradation { kind, option, fraction });
        at("drop", "--drop-edges", drops).chain(at("add", "--add-edges", adds)).collect()
    }

    /// `perturb train` optimisation flags.
    fn train_args(self) -> Vec<&'static str> {
        match self {
            Scale::Quick => vec!["--epochs", "60", "--patience", "10", "--batch-size", "32", "--learning-rate", "0.01"],
            _ => vec!["--epochs", "150", "--patience", "15", "--batch-size", "32", "--learning-rate", "0.01"],
        }
    }
}

/// One degraded network of the network-quality study: `perturb graph OPTION FRACTION`.
struct Degradation {
    /// `drop` or `add`, as model names spell it ([`network_model_name`]).
    kind: &'static str,
    option: &'static str,
    fraction: f64,
}

/// What `perturb train --preset NAME` adds: the default study's optimisation flags, then
/// the variant's own, so the preset trains a model exactly as the study does. `best` is
/// [`variants::RECOMMENDED`]; any variant name is a preset too.
pub fn preset_flags(name: &str) -> Result<Vec<&'static str>, String> {
    let variant = if name == "best" { variants::RECOMMENDED } else { name };
    let mut flags = Scale::Default.train_args();
    flags.extend(variants::flags(variant).map_err(|e| format!("--preset: {e}, or best ({})", variants::RECOMMENDED))?);
    Ok(flags)
}

/// The `perturb graph --source` spec a study builds its network from unless told otherwise.
pub const DEFAULT_GRN: &str = "go+regulon";
/// The device a study trains and predicts on unless told otherwise.
pub const DEFAULT_DEVICE: &str = "auto";
/// The task the network-quality study measures (when the screen has it): unseen singles,
/// where the network matters most.
pub const STUDY_TASK: &str = "unseen_single";

#[derive(Debug, Clone)]
pub struct Options {
    /// The `perturb` binary that runs every stage.
    pub perturb: PathBuf,
    /// Where the stages run: the repository root, whose data/priors the graph stage reads.
    pub workdir: PathBuf,
    pub out: PathBuf,
    pub scale: Scale,
    /// A screen of one's own (h5ad or CSV) instead of the simulated one.
    pub input: Option<PathBuf>,
    /// Extra `perturb ingest` arguments for `input` (e.g. --condition-key, --layer).
    pub ingest_args: Vec<String>,
    /// `perturb graph --source` spec.
    pub grn: String,
    /// auto | cpu | wgpu, for training and prediction.
    pub device: String,
    pub seeds: Option<Vec<u64>>,
    pub variants: Vec<String>,
    pub network_study: bool,
    /// Run the real example screens (`data/examples`) beside the simulated one.
    pub examples: bool,
    pub parallel: usize,
    pub force: bool,
}

impl Options {
    pub fn new(perturb: impl Into<PathBuf>, workdir: impl Into<PathBuf>, out: impl Into<PathBuf>, scale: Scale) -> Options {
        Options {
            perturb: perturb.into(),
            workdir: workdir.into(),
            out: out.into(),
            scale,
            input: None,
            ingest_args: Vec::new(),
            grn: DEFAULT_GRN.into(),
            device: DEFAULT_DEVICE.into(),
            seeds: None,
            variants: variants::DEFAULT_VARIANTS.iter().map(|v| v.to_string()).collect(),
            network_study: true,
            examples: true,
            parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
            force: false,
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ran: usize,
    pub up_to_date: usize,
    pub report: PathBuf,
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// Model name of a network-quality study variant on a degraded network.
pub fn network_model_name(variant: &str, kind: &str, fraction: f64) -> String {
    format!("{variant}_{kind}{}", (fraction * 100.0).round() as i64)
}

/// Which benchmark tasks the ingested screen supports.
fn tasks_for(ingest: &Path) -> Result<Vec<&'static str>, String> {
    let path = ingest.join(cs::FILE);
    let t = Table::read_parquet(&path).map_err(|e| e.to_string())?;
    let kinds = t.strings(cs::KIND, &path).map_err(|e| e.to_string())?;
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    let mut tasks = Vec::new();
    if count("double") >= 2 {
        tasks.push("double");
    }
    if count("single") >= 4 {
        tasks.push("unseen_single");
    }
    if tasks.is_empty() {
        return Err(format!("{}: the screen has neither 2 doubles (double task) nor 4 singles (unseen_single task)", path.display()));
    }
    Ok(tasks)
}

/// A real screen shipped in `data/examples` (see its NOTICE.md) and how it is ingested.
#[derive(Debug, Clone, Copy)]
pub struct ExampleScreen {
    pub name: &'static str,
    /// Relative to the repository root.
    pub file: &'static str,
    pub ingest_args: &'static [&'static str],
}

/// The real screens every study without `--input` also runs (unseen singles): THP-1
/// knockouts, and Jurkat knockouts in each stimulation state on its own (the two states
/// are never pooled into one pseudobulk).
pub const EXAMPLES: &[ExampleScreen] = &[
    ExampleScreen {
        name: "papalexi2021_thp1",
        file: "data/examples/papalexi2021_lowmoi_299genes_20729cells.h5ad",
        ingest_args: &["--condition-key", "target", "--control", "non-targeting"],
    },
    ExampleScreen {
        name: "datlinger2021_jurkat_stimulated",
        file: "data/examples/datlinger2021_subset_7500cells_2000genes.h5ad",
        ingest_args: &["--condition-key", "target", "--control", "control", "--subset", "perturbation_2=stimulated"],
    },
    ExampleScreen {
        name: "datlinger2021_jurkat_unstimulated",
        file: "data/examples/datlinger2021_subset_7500cells_2000genes.h5ad",
        ingest_args: &["--condition-key", "target", "--control", "control", "--subset", "perturbation_2=unstimulated"],
    },
];

/// The real screens whose contexts share perturbations: every study without `--input`
/// ingests each with `--context-key` and predicts each context's perturbations from the
/// other contexts' (the `unseen_context` task, baselines only): the three glioblastoma
/// lines of McFaline-Figueroa 2023, and the two Jurkat stimulation states.
pub const TRANSFERS: &[ExampleScreen] = &[
    ExampleScreen {
        name: "mcfaline2023_gbm_lines",
        file: "data/examples/mcfaline2023_3lines_9targets_500genes.h5ad",
        ingest_args: &["--condition-key", "condition", "--control", "control", "--context-key", "cell_type"],
    },
    ExampleScreen {
        name: "datlinger2021_jurkat_states",
        file: "data/examples/datlinger2021_subset_7500cells_2000genes.h5ad",
        ingest_args: &["--condition-key", "target", "--control", "control", "--context-key", "perturbation_2"],
    },
];

/// The simulated two-line screen of every study without `--input` (`perturb simulate
/// --contexts 2`: the lines share the network and guides but differ in baseline and in
/// 30% of the true edges), and its size.
const SIMULATED_LINES: &str = "simulated_two_lines";
const SIMULATED_LINES_SIZE: [&str; 4] = ["--n-genes", "1000", "--n-cells", "20000"];

/// The study of the main screen: one screen, or — when `--ingest-arg=--context-key` split
/// it into contexts — every context on its own (`contexts/CONTEXT`, the first one's report
/// the headline, the others its sections), then each context predicted from the others
/// (see [`transfer_jobs`]). Returns the headline evaluation and the sections' (title,
/// evaluation folder).
fn main_screen_jobs(o: &Options, seeds: &[u64], out: &Path, ingest_key: &str, jobs: &mut Vec<Job>) -> Result<(PathBuf, Vec<(String, PathBuf)>), String> {
    let ingest = &out.join("ingest");
    let plan = |home: PathBuf, ingest: PathBuf, label: String| -> Result<ScreenPlan, String> {
        Ok(ScreenPlan {
            tasks: tasks_for(&ingest)?,
            home,
            ingest,
            ingest_key: ingest_key.to_string(),
            network_study: o.network_study,
            truth_network: o.input.is_none().then(|| perturb_core::schema::truth_network::file_beside(&out.join(SIMULATED_SCREEN))),
            label,
            select_on_validation: true,
            models: None,
            eval_args: Vec::new(),
        })
    };
    if !ingest.join(perturb_core::schema::contexts::FILE).exists() {
        return Ok((screen_jobs(o, seeds, &plan(out.to_path_buf(), ingest.to_path_buf(), String::new())?, jobs)?, Vec::new()));
    }
    let contexts = context_folders(ingest)?;
    let mut evals = Vec::new();
    for context in &contexts {
        let p = plan(out.join("contexts").join(context), ingest.join(context), format!("{context}: "))?;
        evals.push((format!("Context: {context}"), screen_jobs(o, seeds, &p, jobs)?));
    }
    if contexts.len() >= 2 {
        evals.extend(transfer_jobs(o, seeds, "the screen", ingest, ingest_key, jobs)?);
    }
    let (_, headline) = evals.remove(0);
    Ok((headline, evals))
}

/// The job ingesting a committed screen into `dir`, keyed by the file's content.
fn example_ingest(o: &Options, screen: &ExampleScreen, dir: &Path, what: &str) -> Result<Job, String> {
    let file = o.workdir.join(screen.file);
    let (sha, _) = perturb_core::manifest::sha256_file(&file).map_err(|e| e.to_string())?;
    let mut a = args(&["ingest", "--input", &s(&file), "--out", &s(dir)]);
    a.extend(screen.ingest_args.iter().map(|x| x.to_string()));
    let mut job = Job::new(format!("{}: {what}", screen.name), a, dir, vec![]);
    job.salt = sha;
    Ok(job)
}

/// The context folders of an ingest with `--context-key`, from its `contexts.parquet`.
fn context_folders(ingest: &Path) -> Result<Vec<String>, String> {
    let path = ingest.join(perturb_core::schema::contexts::FILE);
    let table = perturb_core::Table::read_parquet(&path).map_err(|e| e.to_string())?;
    Ok(table.strings(perturb_core::schema::contexts::FOLDER, &path).map_err(|e| e.to_string())?.to_vec())
}

/// Per context of a transfer screen: its perturbations predicted from the other contexts'
/// alone (`unseen_context`, baselines, folder `to_CONTEXT`); and its unseen singles with
/// its other perturbations training too (`unseen_single`, folder `CONTEXT`), where the
/// recommended model is trained as it is and as `{RECOMMENDED}_context`, reading the
/// other contexts' single effects (`perturb train --other-context`), beside the transfer
/// baselines and `linear_p_other` from the first other context. Returns (report title,
/// evaluation folder) per evaluation.
fn transfer_jobs(o: &Options, seeds: &[u64], name: &str, ingest: &Path, ingest_key: &str, jobs: &mut Vec<Job>) -> Result<Vec<(String, PathBuf)>, String> {
    let contexts = context_folders(ingest)?;
    let home = ingest.parent().expect("transfer/NAME/ingest");
    let mut evals = Vec::new();
    for target in &contexts {
        let other_dirs: Vec<String> = contexts.iter().filter(|c| *c != target).map(|c| s(&ingest.join(c))).collect();
        let others: Vec<String> = other_dirs.iter().flat_map(|d| ["--other-context".to_string(), d.clone()]).collect();
        let eval = home.join(format!("to_{target}"));
        let mut a = vec!["eval".to_string(), "--data".into(), s(&ingest.join(target)), "--task".into(), "unseen_context".into(), "--seeds".into(), "1".into()];
        a.extend(others.iter().cloned());
        a.extend(["--out".into(), s(&eval)]);
        let mut job = Job::new(format!("{name}: predict {target} from the other contexts"), a, &eval, vec![]);
        job.salt = ingest_key.to_string();
        jobs.push(job);
        evals.push((format!("Transfer across contexts: {name}, {target} from the other contexts"), eval));

        let flags: Vec<String> = variants::flags(variants::RECOMMENDED)?.iter().map(|f| f.to_string()).collect();
        let reading: Vec<String> = flags.iter().cloned().chain(others.iter().cloned()).collect();
        // The linear baseline with its perturbation embeddings from another context (the
        // first other one): Ahlmann-Eltze's transfer across screens.
        let mut eval_args = others.clone();
        eval_args.extend(["--linear-p-from".to_string(), other_dirs[0].clone()]);
        let plan = ScreenPlan {
            home: home.join(target),
            ingest: ingest.join(target),
            ingest_key: ingest_key.to_string(),
            tasks: vec!["unseen_single"],
            network_study: false,
            truth_network: None,
            label: format!("{name} {target}: "),
            select_on_validation: false,
            models: Some(vec![(variants::RECOMMENDED.to_string(), flags), (format!("{}_context", variants::RECOMMENDED), reading)]),
            eval_args,
        };
        let eval = screen_jobs(o, seeds, &plan, jobs)?;
        evals.push((format!("Transfer across contexts: {name}, {target}'s unseen singles from its own and the other contexts"), eval));
    }
    Ok(evals)
}

/// The headline `report.md` / `report.html` with a section per example screen appended
/// (each screen's own evaluation report, its headings one level down); other files as
/// they are.
fn with_screen_sections(file: &str, main: Vec<u8>, screens: &[(String, PathBuf)]) -> Result<Vec<u8>, String> {
    let read = |dir: &Path| std::fs::read_to_string(dir.join(file)).map_err(|e| format!("{}: {e}", dir.join(file).display()));
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|e| format!("{file}: {e}"));
    match file {
        "report.md" => {
            let mut text = text(main)?;
            for (name, eval) in screens {
                let section: String = read(eval)?.lines().map(|l| if l.starts_with('#') { format!("#{l}\n") } else { format!("{l}\n") }).collect();
                text.push_str(&format!("\n# {name}\n\n{section}"));
            }
            Ok(text.into_bytes())
        }
        "report.html" => {
            let mut text = text(main)?;
            let at = text.rfind("</main>").ok_or_else(|| format!("{file}: no </main> in the main report"))?;
            let mut sections = String::new();
            for (name, eval) in screens {
                let page = read(eval)?;
                let body = page.split_once("<main>").and_then(|(_, rest)| rest.rsplit_once("</main>")).map(|(b, _)| b).unwrap_or("");
                let body = body.replace("<h2>", "<h3>").replace("</h2>", "</h3>").replace("<h1>", "<h2>").replace("</h1>", "</h2>");
                // The titles are the study's own (screen and context names), no user text.
                sections.push_str(&format!("<section>\n<h1>{name}</h1>\n{body}</section>\n"));
            }
            text.insert_str(at, &sections);
            Ok(text.into_bytes())
        }
        _ => Ok(main),
    }
}

/// The evaluation's files that a study also puts at the top of its results folder.
/// Where a study without `--input` simulates its screen, under the results folder.
const SIMULATED_SCREEN: &str = "data/screen.h5ad";

const REPORT_COPIES: [&str; 4] = ["report.md", "report.html", perturb_core::schema::metrics::FILE, perturb_core::schema::summary::FILE];
/// The record (in `.state/keys`) that those copies are the study's.
const REPORT_COPIES_KEY: &str = "report_copies";

/// Refuses a study whose own inputs (`--input`, an `edges:` file of `--grn`) lie where one
/// of `jobs` writes: the stage would delete them.
fn refuse_inputs_inside(o: &Options, jobs: &[Job]) -> Result<(), String> {
    let edge_files = o.grn.split('+').filter_map(|part| part.strip_prefix("edges:")).map(PathBuf::from);
    for (option, input) in o.input.iter().map(|i| ("--input", i.clone())).chain(edge_files.map(|e| ("--grn edges:", e))) {
        let input = if input.is_absolute() { input } else { o.workdir.join(input) };
        if let Some(job) = jobs.iter().find(|j| perturb_core::guard::is_within(&input, &j.output)) {
            return Err(format!(
                "{}: {option} lies inside {}, which the study's stage '{}' writes; move it out of --out or choose another --out",
                input.display(),
                job.output.display(),
                job.id
            ));
        }
    }
    Ok(())
}

/// One screen's part of the study: where its stages write and what its evaluation reads.
struct ScreenPlan {
    /// The screen's folder: the results folder for the main screen, `screens/NAME` for an
    /// example screen.
    home: PathBuf,
    ingest: PathBuf,
    ingest_key: String,
    tasks: Vec<&'static str>,
    network_study: bool,
    /// The network a simulated screen was generated with.
    truth_network: Option<PathBuf>,
    /// Job-id prefix: empty for the main screen, `NAME: ` for an example.
    label: String,
    /// Whether the evaluation picks a model on this screen's validation perturbations
    /// (the main screen; an example screen only reports the recommended model).
    select_on_validation: bool,
    /// The models to train, (name, `perturb train` flags); `None`: the study's variants.
    models: Option<Vec<(String, Vec<String>)>>,
    /// More arguments of the screen's evaluation (a transfer context's other contexts).
    eval_args: Vec<String>,
}

/// Appends the jobs of one screen — graphs, splits and baselines, every model variant per
/// task and seed (and the network-quality study), the evaluation — to `jobs`; returns
/// the evaluation folder. Dependencies are indices within this screen's jobs.
fn screen_jobs(o: &Options, seeds: &[u64], plan: &ScreenPlan, jobs: &mut Vec<Job>) -> Result<PathBuf, String> {
    let mut screen = ScreenJobs { plan, base: jobs.len(), jobs };
    let (out, ingest, tasks) = (&plan.home, &plan.ingest, &plan.tasks);
    let task_list = tasks.join(",");
    let seed_list = seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let genes = s(&ingest.join("genes.parquet"));
    let graph = out.join("graph");
    let graph_job =
        screen.push(Job::new(format!("graph {}", o.grn), args(&["graph", "--genes", &genes, "--source", &o.grn, "--out", &s(&graph)]), &graph, vec![]));
    let splits = out.join("splits");
    let splits_job = screen.push(Job::new(
        "splits and baselines",
        args(&["eval", "--data", &s(ingest), "--task", &task_list, "--seeds", &seed_list, "--out", &s(&splits)]),
        &splits,
        vec![],
    ));
    let chosen: Vec<(String, Vec<String>)> = match &plan.models {
        Some(models) => models.clone(),
        None => o.variants.iter().map(|v| (v.clone(), variants::flags(v).expect("checked").iter().map(|f| f.to_string()).collect())).collect(),
    };
    let mut models: Vec<ModelRun> =
        chosen.into_iter().map(|(name, flags)| ModelRun { name, flags, graph: graph.clone(), graph_job, tasks: tasks.clone() }).collect();
    if plan.network_study {
        models.extend(network_study_models(o, &genes, &mut screen)?);
    }
    let mut eval_inputs = EvalInputs::default();
    let mut eval_deps = vec![splits_job];
    for model in &models {
        eval_deps.extend(model_jobs(o, seeds, model, &splits, splits_job, &mut screen)?);
        eval_inputs.add(o, seeds, plan, model);
    }
    let eval = out.join("eval");
    // The prior-network baselines read the graph every default-graph model gets.
    let mut a = args(&["eval", "--data", &s(ingest), "--graph", &s(&graph), "--task", &task_list, "--seeds", &seed_list, "--out", &s(&eval)]);
    eval_deps.push(graph_job);
    a.extend(eval_inputs.args(plan));
    screen.push(Job::new("evaluate and report", a, &eval, eval_deps));
    Ok(eval)
}

/// One screen's jobs, appended to the study's: ids carry the screen's label, keys its
/// ingest's key, and dependencies are numbered within the screen.
struct ScreenJobs<'a> {
    plan: &'a ScreenPlan,
    jobs: &'a mut Vec<Job>,
    /// Where the screen's jobs start in `jobs`.
    base: usize,
}

impl ScreenJobs<'_> {
    /// Appends `job`; returns its number within the screen.
    fn push(&mut self, mut job: Job) -> usize {
        job.salt = format!("{}{}", self.plan.ingest_key, job.salt);
        job.id = format!("{}{}", self.plan.label, job.id);
        job.deps.iter_mut().for_each(|d| *d += self.base);
        self.jobs.push(job);
        self.jobs.len() - 1 - self.base
    }
}

/// A model the study trains: a variant's flags on a graph (the screen's own, or a
/// degraded copy of the network study), on some of the tasks.
struct ModelRun {
    name: String,
    flags: Vec<String>,
    graph: PathBuf,
    /// The job that writes `graph`.
    graph_job: usize,
    tasks: Vec<&'static str>,
}

/// The network-quality study: one degraded graph per (kind, fraction), shared by the
/// study's variants (app_plus always; those that learn which edges to trust when the
/// study trains them), on unseen singles, where the network matters most.
fn network_study_models(o: &Options, genes: &str, screen: &mut ScreenJobs) -> Result<Vec<ModelRun>, String> {
    let study_variants: Vec<&str> = std::iter::once(variants::NETWORK_STUDY_VARIANT)
        .chain(variants::NETWORK_STUDY_WHEN_TRAINED.iter().copied().filter(|v| o.variants.iter().any(|x| x == v)))
        .collect();
    let tasks = &screen.plan.tasks;
    let study_tasks: Vec<&'static str> = tasks.iter().copied().filter(|t| *t == STUDY_TASK).collect();
    let study_tasks = if study_tasks.is_empty() { tasks.clone() } else { study_tasks };
    let home = screen.plan.home.clone();
    let mut models = Vec::new();
    for Degradation { kind, option, fraction: f } in o.scale.network_study() {
        let dir = home.join("network").join(network_model_name(variants::NETWORK_STUDY_VARIANT, kind, f));
        let job = screen.push(Job::new(
            format!("graph {} {kind} {f}", o.grn),
            args(&["graph", "--genes", genes, "--source", &o.grn, option, &f.to_string(), "--seed", "1", "--out", &s(&dir)]),
            &dir,
            vec![],
        ));
        for variant in &study_variants {
            let flags: Vec<String> = variants::flags(variant)?.iter().map(|f| f.to_string()).collect();
            models.push(ModelRun { name: network_model_name(variant, kind, f), flags, graph: dir.clone(), graph_job: job, tasks: study_tasks.clone() });
        }
    }
    Ok(models)
}

/// A model's train and predict jobs for every task and seed; returns the predict jobs.
fn model_jobs(o: &Options, seeds: &[u64], model: &ModelRun, splits: &Path, splits_job: usize, screen: &mut ScreenJobs) -> Result<Vec<usize>, String> {
    let (out, ingest, name) = (screen.plan.home.clone(), screen.plan.ingest.clone(), &model.name);
    let mut predicts = Vec::new();
    for task in &model.tasks {
        for (k, seed) in seeds.iter().enumerate() {
            let split = s(&splits.join(perturb_core::schema::split::file(task, *seed)));
            let dir = out.join("models").join(name).join(format!("{task}_s{seed}"));
            let mut a =
                args(&["train", "--data", &s(&ingest), "--graph", &s(&model.graph), "--split", &split, "--seed", &seed.to_string(), "--device", &o.device]);
            a.extend(o.scale.train_args().iter().map(|x| x.to_string()));
            a.extend(model.flags.iter().cloned());
            a.extend(["--out".into(), s(&dir)]);
            let train = screen.push(Job::new(format!("train {name} {task} seed {seed}"), a, &dir, vec![model.graph_job, splits_job]));
            let pred = out.join("predictions").join(name).join(format!("{task}_s{seed}.parquet"));
            std::fs::create_dir_all(pred.parent().expect("has a parent")).map_err(|e| format!("{}: {e}", out.display()))?;
            let mut a = args(&["predict", "--model", &s(&dir), "--split", &split, "--device", &o.device, "--out", &s(&pred)]);
            // Attention of the first seed's test perturbations, for the report.
            if k == 0 && variants::ATTENTION_VARIANTS.contains(&name.as_str()) {
                a.push("--attention".into());
            }
            predicts.push(screen.push(Job::new(format!("predict {name} {task} seed {seed}"), a, &pred, vec![train])));
        }
    }
    Ok(predicts)
}

/// What the screen's evaluation reads of every model, as `NAME=PATTERN` values.
#[derive(Default)]
struct EvalInputs {
    predictions: Vec<String>,
    structure: Vec<(&'static str, String)>,
    timings: Vec<String>,
    validation: Vec<String>,
    attention: Vec<String>,
}

impl EvalInputs {
    fn add(&mut self, o: &Options, seeds: &[u64], plan: &ScreenPlan, model: &ModelRun) {
        let (out, name) = (&plan.home, &model.name);
        let run = out.join("models").join(name).join("{task}_s{seed}");
        // Named by task and seed; eval skips a model on a task it was not run on.
        self.predictions.push(format!("{name}={}", s(&out.join("predictions").join(name).join("{task}_s{seed}.parquet"))));
        self.timings.push(format!("{name}={}", s(&run.join("timing.json"))));
        // The candidates are the study's variants, not their copies on degraded networks.
        if plan.select_on_validation && o.variants.contains(name) {
            self.validation.push(format!("{name}={}", s(&run.join(perturb_core::schema::MANIFEST))));
        }
        let flag_refs: Vec<&str> = model.flags.iter().map(String::as_str).collect();
        if let Some((option, file)) = variants::structure_artifact(&flag_refs) {
            self.structure.push((option, format!("{name}={}", s(&run.join(file)))));
        }
        if variants::ATTENTION_VARIANTS.contains(&name.as_str()) {
            for task in &model.tasks {
                self.attention.push(format!("{name}={}", s(&out.join("predictions").join(name).join(format!("{task}_s{}.attention.parquet", seeds[0])))));
            }
        }
    }

    /// The evaluation's arguments for them, the recommended variant and the plan's own.
    fn args(&self, plan: &ScreenPlan) -> Vec<String> {
        let mut a = Vec::new();
        for (option, values) in
            [("--predictions", &self.predictions), ("--timing", &self.timings), ("--attention", &self.attention), ("--validation", &self.validation)]
        {
            for v in values {
                a.extend([option.to_string(), v.clone()]);
            }
        }
        a.extend(["--recommended".into(), variants::RECOMMENDED.into()]);
        a.extend(plan.eval_args.iter().cloned());
        // A simulated screen comes with the network it was generated with: what the siblings
        // learned about the structure, and the attention, are scored against it.
        if let (Some(truth), false) = (&plan.truth_network, self.structure.is_empty() && self.attention.is_empty()) {
            a.extend(["--truth-network".into(), s(truth)]);
            for (option, value) in &self.structure {
                a.extend([option.to_string(), value.clone()]);
            }
        }
        a
    }
}

pub fn reproduce(o: &Options) -> Result<Outcome, String> {
    check_options(o)?;
    if o.out.exists() && !o.out.is_dir() {
        return Err(format!("{}: --out is a file, not a folder; the study needs a folder of its own", o.out.display()));
    }
    std::fs::create_dir_all(&o.out).map_err(|e| format!("{}: cannot create the results folder ({e})", o.out.display()))?;
    let out = o.out.canonicalize().map_err(|e| format!("{}: {e}", o.out.display()))?;
    let state = out.join(".state");
    std::fs::create_dir_all(&state).map_err(|e| format!("{}: {e}", state.display()))?;
    // One study at a time per results folder: a second would remove the first's files.
    let _lock = perturb_core::guard::OutputLock::at(&state.join("lock"), &out).map_err(|e| e.to_string())?;
    let runner = Runner { perturb: o.perturb.clone(), workdir: o.workdir.clone(), state, parallel: o.parallel, force: o.force };
    let seeds = o.seeds.clone().unwrap_or_else(|| o.scale.default_seeds());

    // Phase 1: the screens, ingested.
    let data = DataJobs::plan(o, &out)?;
    refuse_inputs_inside(o, &data.jobs)?;
    let summary = runner.run(&data.jobs)?;
    let keys = runner.keys(&data.jobs)?;

    // Phase 2: per screen, graphs, splits and baselines, models, evaluation.
    let mut jobs: Vec<Job> = Vec::new();
    let (eval, mut example_evals) = main_screen_jobs(o, &seeds, &out, &keys[data.main_ingest], &mut jobs)?;
    for ingest in &data.example_ingests {
        example_evals.push((format!("Real screen: {}", ingest.name), example_screen_jobs(o, &seeds, ingest, &keys, &mut jobs)?));
    }
    for ingest in &data.transfer_ingests {
        example_evals.extend(transfer_jobs(o, &seeds, ingest.name, &ingest.dir, &keys[ingest.job], &mut jobs)?);
    }
    refuse_inputs_inside(o, &jobs)?;
    let summary2 = runner.run(&jobs)?;
    copy_headline_files(&out, &runner.state, &eval, &example_evals)?;
    Ok(Outcome { ran: summary.ran + summary2.ran, up_to_date: summary.up_to_date + summary2.up_to_date, report: out.join("report.html") })
}

/// Refuses an unknown variant and repeated variants or seeds.
fn check_options(o: &Options) -> Result<(), String> {
    for v in &o.variants {
        variants::flags(v)?;
    }
    perturb_core::guard::refuse_duplicates("--variants", &o.variants).map_err(|e| e.to_string())?;
    if let Some(seeds) = &o.seeds {
        perturb_core::guard::refuse_duplicates("--seeds", seeds).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// An ingest job of phase 1 and the folder it writes.
struct IngestJob {
    /// Its position among phase 1's jobs (its key's, too).
    job: usize,
    dir: PathBuf,
    /// The screen's name.
    name: &'static str,
}

/// Phase 1: the main screen (simulated unless `--input`), the real example screens and the
/// transfer screens, each ingested.
struct DataJobs {
    jobs: Vec<Job>,
    main_ingest: usize,
    example_ingests: Vec<IngestJob>,
    transfer_ingests: Vec<IngestJob>,
}

impl DataJobs {
    fn plan(o: &Options, out: &Path) -> Result<DataJobs, String> {
        let mut jobs = Vec::new();
        let (screen, salt) = match &o.input {
            Some(input) => {
                let (sha, _) = perturb_core::manifest::sha256_file(input).map_err(|e| e.to_string())?;
                (input.clone(), sha)
            }
            None => {
                let screen = out.join(SIMULATED_SCREEN);
                std::fs::create_dir_all(screen.parent().expect("a folder")).map_err(|e| format!("{}: {e}", out.display()))?;
                let mut a = args(&["simulate", "--preset", "norman-like", "--seed", "1", "--report"]);
                a.extend(o.scale.simulate_args().iter().map(|x| x.to_string()));
                a.extend(["--out".into(), s(&screen)]);
                jobs.push(Job::new(format!("simulate {} screen", o.scale.name()), a, &screen, vec![]));
                (screen, String::new())
            }
        };
        let ingest = out.join("ingest");
        let mut a = args(&["ingest", "--input", &s(&screen), "--out", &s(&ingest)]);
        a.extend(o.ingest_args.iter().cloned());
        let mut job = Job::new("ingest", a, &ingest, (0..jobs.len()).collect());
        job.salt = salt;
        jobs.push(job);
        let main_ingest = jobs.len() - 1;
        // The real example screens run beside the simulated one (not beside a screen of one's own).
        let with_examples = o.input.is_none() && o.examples;
        let examples: &'static [ExampleScreen] = if with_examples { EXAMPLES } else { &[] };
        let mut example_ingests = Vec::new();
        for example in examples {
            let dir = out.join("screens").join(example.name).join("ingest");
            jobs.push(example_ingest(o, example, &dir, "ingest")?);
            example_ingests.push(IngestJob { job: jobs.len() - 1, dir, name: example.name });
        }
        let mut transfer_ingests = Vec::new();
        if with_examples {
            transfer_ingests.push(simulated_lines_jobs(out, &mut jobs)?);
            for screen in TRANSFERS {
                let dir = out.join("transfer").join(screen.name).join("ingest");
                jobs.push(example_ingest(o, screen, &dir, "ingest each context")?);
                transfer_ingests.push(IngestJob { job: jobs.len() - 1, dir, name: screen.name });
            }
        }
        Ok(DataJobs { jobs, main_ingest, example_ingests, transfer_ingests })
    }
}

/// A simulated screen of two lines whose truth is known to carry over in part, simulated
/// and ingested per line.
fn simulated_lines_jobs(out: &Path, jobs: &mut Vec<Job>) -> Result<IngestJob, String> {
    let home = out.join("transfer").join(SIMULATED_LINES);
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let (screen, ingest) = (home.join("screen.h5ad"), home.join("ingest"));
    let mut a = args(&["simulate", "--preset", "norman-like", "--seed", "1", "--contexts", "2"]);
    a.extend(SIMULATED_LINES_SIZE.iter().map(|x| x.to_string()));
    a.extend(["--out".into(), s(&screen)]);
    jobs.push(Job::new(format!("{SIMULATED_LINES}: simulate"), a, &screen, vec![]));
    let a = args(&["ingest", "--input", &s(&screen), "--context-key", "cell_type", "--out", &s(&ingest)]);
    jobs.push(Job::new(format!("{SIMULATED_LINES}: ingest each context"), a, &ingest, vec![jobs.len() - 1]));
    Ok(IngestJob { job: jobs.len() - 1, dir: ingest, name: SIMULATED_LINES })
}

/// A real example screen's jobs: it has no doubles, so it is scored on unseen singles.
fn example_screen_jobs(o: &Options, seeds: &[u64], ingest: &IngestJob, keys: &[String], jobs: &mut Vec<Job>) -> Result<PathBuf, String> {
    let dir = &ingest.dir;
    let tasks: Vec<&'static str> = tasks_for(dir)?.into_iter().filter(|t| *t == "unseen_single").collect();
    if tasks.is_empty() {
        return Err(format!("{}: the example screen {} has too few singles for the unseen_single task", dir.display(), ingest.name));
    }
    let plan = ScreenPlan {
        home: dir.parent().expect("screens/NAME/ingest").to_path_buf(),
        ingest: dir.clone(),
        ingest_key: keys[ingest.job].clone(),
        tasks,
        network_study: false,
        truth_network: None,
        label: format!("{}: ", ingest.name),
        select_on_validation: false,
        models: None,
        eval_args: Vec::new(),
    };
    screen_jobs(o, seeds, &plan, jobs)
}

/// The headline files, copied to the top of the results folder with a section per example
/// screen: a file of that name that the study did not put there (no key of the report job
/// yet) is the user's, and nothing is replaced.
fn copy_headline_files(out: &Path, state: &Path, eval: &Path, example_evals: &[(String, PathBuf)]) -> Result<(), String> {
    let copies = REPORT_COPIES.map(|f| out.join(f));
    if let Some(foreign) = copies.iter().find(|c| c.exists() && !state.join("keys").join(REPORT_COPIES_KEY).exists()) {
        return Err(format!("{}: exists but this study did not write it; move it away or choose another --out — nothing was replaced", foreign.display()));
    }
    perturb_core::table::write_bytes_atomically(&state.join("keys").join(REPORT_COPIES_KEY), b"copied").map_err(|e| e.to_string())?;
    for f in REPORT_COPIES {
        let from = eval.join(f);
        let bytes = std::fs::read(&from).map_err(|e| format!("{}: {e}", from.display()))?;
        let bytes = if example_evals.is_empty() { bytes } else { with_screen_sections(f, bytes, example_evals)? };
        perturb_core::table::write_bytes_atomically(&out.join(f), &bytes).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_example_screen_becomes_a_section_of_the_headline_report() {
        let dir = tempfile::tempdir().unwrap();
        let eval = dir.path().join("eval");
        std::fs::create_dir_all(&eval).unwrap();
        std::fs::write(eval.join("report.md"), "# Evaluation\n\n## Task: unseen_single\ntext\n").unwrap();
        std::fs::write(eval.join("report.html"), "<html><body><main>\n<h1>Evaluation</h1>\n<section><h2>Task</h2></section>\n</main></body></html>").unwrap();
        let screens = [("Real screen: thp1".to_string(), eval.clone())];
        let md = String::from_utf8(with_screen_sections("report.md", b"# Main\n".to_vec(), &screens).unwrap()).unwrap();
        assert_eq!(md, "# Main\n\n# Real screen: thp1\n\n## Evaluation\n\n### Task: unseen_single\ntext\n");
        let main = b"<html><body><main>\n<h1>Main</h1>\n</main></body></html>".to_vec();
        let html = String::from_utf8(with_screen_sections("report.html", main, &screens).unwrap()).unwrap();
        assert!(html.contains("<h1>Real screen: thp1</h1>\n\n<h2>Evaluation</h2>\n<section><h3>Task</h3></section>\n</section>\n</main>"), "{html}");
        assert_eq!(with_screen_sections("metrics.parquet", b"PAR1".to_vec(), &screens).unwrap(), b"PAR1");
    }
}

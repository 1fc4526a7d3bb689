//! `cargo xtask bench ingest`: `perturb ingest` against the same steps in scanpy on a
//! Norman-size screen, each measured once in the same run (wall time, peak RSS).

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Subcommand};
use perturb_core::schema::genes as gs;
use perturb_core::Table;

use crate::measure::{gib, run_measured, Measured};

#[derive(Subcommand)]
pub enum Bench {
    /// Ingestion of a generated Norman-size h5ad: perturb vs scanpy.
    Ingest(IngestBench),
    /// Training and prediction of APP variants on the simulated quick and full screens.
    Train(TrainBench),
    /// The whole default study at a scale: wall time and peak memory of each kind of stage.
    Study(StudyBench),
}

#[derive(Args)]
pub struct StudyBench {
    /// quick | default | norman (GEARS' Norman file: 91,205 cells x 5,045 genes) | full.
    #[arg(long, default_value = "norman")]
    scale: String,
    /// The study's results folder; it must not exist yet, so that every stage runs and
    /// is timed.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the table of the study already in --out (e.g. one run on a cluster, or
    /// stopped part-way) instead of running one.
    #[arg(long, requires = "out")]
    existing: bool,
    /// Further `perturb reproduce` arguments, e.g. --seeds 1.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    reproduce_args: Vec<String>,
}

#[derive(Args)]
pub struct TrainBench {
    /// Screens: quick (2,000 genes) and/or full (Norman-size, 19,000 genes).
    #[arg(long, default_value = "quick,full", value_delimiter = ',')]
    scales: Vec<String>,
    /// Model variants (as in `perturb reproduce --list-variants`).
    #[arg(long, default_value = "app,app_plus", value_delimiter = ',')]
    variants: Vec<String>,
    /// Split seeds of the double task, one training each.
    #[arg(long, default_value = "1,2,3", value_delimiter = ',')]
    seeds: Vec<u64>,
    /// auto | cpu | wgpu
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value = "results/bench")]
    workdir: PathBuf,
}

#[derive(Args)]
pub struct IngestBench {
    /// Cells in the generated screen (Norman 2019 has ~85,000 after filtering).
    #[arg(long, default_value_t = 85_000)]
    cells: usize,
    /// Genes in the generated screen.
    #[arg(long, default_value_t = 19_000)]
    genes: usize,
    #[arg(long, default_value_t = 2019)]
    seed: u64,
    #[arg(long, default_value_t = 2000)]
    n_top_genes: usize,
    /// Runs of each tool, alternating; the table gives each tool's median wall time
    /// (this 2-core VM's speed drifted by a third and more between runs) and its largest peak RSS.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    repeats: u32,
    /// A Python with anndata and scanpy (tests/reference/requirements.txt); default
    /// $PERTURB_PYTHON, else python3.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Where the generated screen and both tools' outputs go.
    #[arg(long, default_value = "results/bench")]
    workdir: PathBuf,
}

pub fn run(what: Bench) -> Result<(), String> {
    match what {
        Bench::Ingest(args) => ingest(args),
        Bench::Train(args) => train(args),
        Bench::Study(args) => study(args),
    }
}

fn ingest(args: IngestBench) -> Result<(), String> {
    let root = crate::workspace_root();
    let perturb = crate::build_release()?;
    let python = args.python.clone().or_else(|| std::env::var_os("PERTURB_PYTHON").map(PathBuf::from)).unwrap_or_else(|| PathBuf::from("python3"));
    check_python(&python)?;
    let workdir = root.join(&args.workdir);
    std::fs::create_dir_all(&workdir).map_err(|e| format!("{}: {e}", workdir.display()))?;

    let screen = workdir.join(format!("screen_{}x{}_seed{}.h5ad", args.cells, args.genes, args.seed));
    if screen.exists() {
        println!("reusing {}", screen.display());
    } else {
        println!("generating {} (takes a few minutes)", screen.display());
        let partial = screen.with_extension("h5ad.tmp");
        let mut c = Command::new(&python);
        c.arg(root.join("xtask/python/make_norman_size_h5ad.py")).arg(&partial).args([args.cells.to_string(), args.genes.to_string(), args.seed.to_string()]);
        let made = run_measured(c, "the screen generator")?;
        std::fs::rename(&partial, &screen).map_err(|e| format!("{}: {e}", screen.display()))?;
        print!("{}", made.stdout);
    }
    let size = std::fs::metadata(&screen).map_err(|e| format!("{}: {e}", screen.display()))?.len();
    // Both tools then read the file from the page cache, so neither pays for the disk.
    // Read through a small buffer: Linux starts a forked child's peak RSS at the
    // parent's, so this process must stay small for the children's figures to be true.
    warm_page_cache(&screen)?;

    let out = workdir.join("perturb_ingest");
    let hvg_list = workdir.join("scanpy_hvg.txt");
    let (mut ours, mut scanpy) = (Vec::new(), Vec::new());
    for _ in 0..args.repeats {
        if out.exists() {
            std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        }
        let mut c = Command::new(&perturb);
        c.args(["ingest", "--input"]).arg(&screen).arg("--out").arg(&out);
        c.args(["--hvg-flavor", "seurat", "--n-top-genes", &args.n_top_genes.to_string()]);
        ours.push(run_measured(c, "perturb ingest")?);

        let mut c = Command::new(&python);
        c.arg(root.join("xtask/python/scanpy_ingest.py")).arg(&screen).arg(args.n_top_genes.to_string()).arg(&hvg_list);
        scanpy.push(run_measured(c, "scanpy")?);
    }
    let agreement = compare_hvg(&out, &hvg_list)?;
    report(&args, size, &Runs(ours), &Runs(scanpy), &agreement);
    Ok(())
}

fn warm_page_cache(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    while file.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))? > 0 {}
    Ok(())
}

fn check_python(python: &Path) -> Result<(), String> {
    let ok = Command::new(python).args(["-c", "import anndata, scanpy"]).output().map(|o| o.status.success()).unwrap_or(false);
    if ok {
        return Ok(());
    }
    Err(format!(
        "{} cannot import anndata and scanpy; make a venv with `python3 -m venv .venv && \
         .venv/bin/pip install -r tests/reference/requirements.txt` and pass --python .venv/bin/python",
        python.display()
    ))
}

/// Both tools must have selected the same highly variable genes, or the timing compares
/// different work.
fn compare_hvg(out: &Path, scanpy_list: &Path) -> Result<String, String> {
    let genes_file = out.join(gs::FILE);
    let table = Table::read_parquet(&genes_file).map_err(|e| e.to_string())?;
    let genes = table.strings(gs::GENE, &genes_file).map_err(|e| e.to_string())?;
    let hv = table.bools(gs::HIGHLY_VARIABLE, &genes_file).map_err(|e| e.to_string())?;
    let mut ours: Vec<&str> = genes.iter().zip(hv).filter(|(_, &h)| h).map(|(g, _)| g.as_str()).collect();
    let text = std::fs::read_to_string(scanpy_list).map_err(|e| format!("{}: {e}", scanpy_list.display()))?;
    let mut theirs: Vec<&str> = text.lines().collect();
    ours.sort_unstable();
    theirs.sort_unstable();
    if ours != theirs {
        let only_ours = ours.iter().filter(|g| theirs.binary_search(g).is_err()).count();
        return Err(format!("HVG sets differ: {} selected by perturb only, of {}", only_ours, ours.len()));
    }
    Ok(format!("identical HVG sets ({} genes)", ours.len()))
}

/// One tool's repeated runs.
struct Runs(Vec<Measured>);

impl Runs {
    fn median_wall(&self) -> f64 {
        perturb_core::metrics::median(&self.0.iter().map(|m| m.wall.as_secs_f64()).collect::<Vec<_>>())
    }

    fn walls(&self) -> String {
        self.0.iter().map(|m| format!("{:.1}", m.wall.as_secs_f64())).collect::<Vec<_>>().join(", ")
    }

    fn peak_rss(&self) -> u64 {
        self.0.iter().map(|m| m.peak_rss).max().unwrap_or(0)
    }
}

fn report(args: &IngestBench, size: u64, ours: &Runs, scanpy: &Runs, agreement: &str) {
    println!();
    println!(
        "ingest benchmark: {} cells x {} genes, h5ad {:.2} GiB, seurat HVG n_top_genes {}, {} runs each (alternating)",
        args.cells,
        args.genes,
        gib(size),
        args.n_top_genes,
        args.repeats
    );
    println!("{:<16} {:>16} {:>14}  every run (s)", "tool", "median wall (s)", "peak RSS (GiB)");
    for (name, m) in [("perturb ingest", ours), ("scanpy", scanpy)] {
        println!("{:<16} {:>16.2} {:>14.2}  {}", name, m.median_wall(), gib(m.peak_rss()), m.walls());
    }
    let speedup = scanpy.median_wall() / ours.median_wall();
    let memory = ours.peak_rss() as f64 / scanpy.peak_rss() as f64;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("speed-up {speedup:.1}x (goal >= 5x: {}); memory {:.3} of scanpy's (goal <= 0.25: {})", verdict(speedup >= 5.0), memory, verdict(memory <= 0.25));
    println!("{agreement}");
    if let Some(last) = scanpy.0.last() {
        println!("scanpy: {}", last.stdout.trim());
    }
}

/// Trains each variant once per seed on each screen, one process at a time so that the
/// timings do not share the cores, and prints what the efficiency table reports.
fn train(args: TrainBench) -> Result<(), String> {
    use perturb_core::timing::ModelTiming;
    use perturb_pipeline::{variants, Runner};
    for v in &args.variants {
        variants::flags(v)?;
    }
    let root = crate::workspace_root();
    let perturb = crate::build_release()?;
    let mut rows = Vec::new();
    for scale in &args.scales {
        let dir = root.join(&args.workdir).join(format!("train_{scale}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (jobs, models) = train_jobs(&args, scale, &dir)?;
        let runner = Runner { perturb: perturb.clone(), workdir: root.clone(), state: dir.join(".state"), parallel: 1, force: false };
        runner.run(&jobs)?;
        for v in &args.variants {
            let timings: Vec<ModelTiming> = models
                .iter()
                .filter(|m| &m.variant == v)
                .map(|m| ModelTiming::read(&Path::new(&m.folder).join(perturb_core::timing::FILE)).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            rows.push(TimedVariant { scale: scale.clone(), variant: v.clone(), timings });
        }
    }
    print_train_table(&args, &rows);
    Ok(())
}

/// A model the training benchmark trains.
struct BenchModel {
    variant: String,
    folder: String,
}

/// The jobs of one scale: simulate, ingest, graph, splits, then every variant × seed.
fn train_jobs(args: &TrainBench, scale: &str, dir: &Path) -> Result<(Vec<perturb_pipeline::Job>, Vec<BenchModel>), String> {
    use perturb_pipeline::{variants, Job};
    let p = |rel: &str| dir.join(rel).to_string_lossy().into_owned();
    let seeds: Vec<String> = args.seeds.iter().map(u64::to_string).collect();
    let a = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut jobs = vec![
        Job::new(
            format!("simulate {scale}"),
            a(&["simulate", "--preset", "norman-like", "--scale", scale, "--seed", "1", "--out", &p("screen.h5ad")]),
            p("screen.h5ad"),
            vec![],
        ),
        Job::new("ingest", a(&["ingest", "--input", &p("screen.h5ad"), "--out", &p("ingest")]), p("ingest"), vec![0]),
        Job::new("graph", a(&["graph", "--genes", &p("ingest/genes.parquet"), "--source", "go+regulon", "--out", &p("graph")]), p("graph"), vec![1]),
        Job::new("splits", a(&["eval", "--data", &p("ingest"), "--task", "double", "--seeds", &seeds.join(","), "--out", &p("splits")]), p("splits"), vec![1]),
    ];
    let mut models = Vec::new();
    for v in &args.variants {
        for (&seed_number, seed) in args.seeds.iter().zip(&seeds) {
            let model = p(&format!("models/{v}_s{seed}"));
            let split = p(&format!("splits/{}", perturb_core::schema::split::file("double", seed_number)));
            let mut t = a(&["train", "--data", &p("ingest"), "--graph", &p("graph"), "--split", &split, "--seed", seed, "--device", &args.device]);
            t.extend(a(&["--epochs", "150", "--patience", "15", "--batch-size", "32", "--learning-rate", "0.01"]));
            t.extend(a(variants::flags(v)?));
            t.extend(["--out".to_string(), model.clone()]);
            jobs.push(Job::new(format!("train {v} seed {seed}"), t, &model, vec![2, 3]));
            models.push(BenchModel { variant: v.clone(), folder: model });
        }
    }
    Ok((jobs, models))
}

/// One variant's timings over the seeds at one scale.
struct TimedVariant {
    scale: String,
    variant: String,
    timings: Vec<perturb_core::timing::ModelTiming>,
}

fn print_train_table(args: &TrainBench, rows: &[TimedVariant]) {
    use perturb_core::timing::ModelTiming;
    println!();
    println!("training benchmark (double task, go+regulon graph, {} seeds, device {}):", args.seeds.len(), args.device);
    println!(
        "{:<6} {:<14} {:>10} {:>16} {:>7} {:>14} {:>15} {:>8} {:>15} {:>9}",
        "scale", "variant", "params", "train s/seed", "epochs", "ms/pert single", "ms/pert batched", "setup ms", "ms/pert reused", "peak GiB"
    );
    for TimedVariant { scale, variant, timings: t } in rows {
        let n = t.len() as f64;
        let mean = |f: fn(&ModelTiming) -> f64| t.iter().map(f).sum::<f64>() / n;
        let secs: Vec<f64> = t.iter().map(|x| x.train_seconds).collect();
        let sd = (secs.iter().map(|s| (s - mean(|x| x.train_seconds)).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        println!(
            "{:<6} {:<14} {:>10} {:>9.1} ± {:<4.1} {:>7.0} {:>14.3} {:>15.3} {:>8.1} {:>15.3} {:>9.2}",
            scale,
            variant,
            t[0].n_params,
            mean(|x| x.train_seconds),
            sd,
            mean(|x| x.epochs as f64),
            mean(|x| x.predict_ms_single),
            mean(|x| x.predict_ms_batched),
            mean(|x| x.predict_setup_ms),
            mean(|x| x.predict_ms_batched - x.predict_setup_ms / x.batch as f64),
            t.iter().map(|x| gib(x.peak_rss_bytes)).fold(0.0, f64::max)
        );
    }
    println!("ms/pert batched: one call on up to 64 perturbations, its setup (graph tensors, gene embeddings) included;");
    println!("ms/pert reused: the same call less its setup, the cost of each further perturbation");
    println!("goals: < 60 s per seed at full scale on 2 cores, < 1 ms per perturbation batched");
}

/// Runs `perturb reproduce` at a scale into a new folder, then prints, per kind of
/// stage, how many ran, their summed and longest wall time and their largest peak RSS
/// (from the runner's stage records), and the whole study's wall time.
fn study(args: StudyBench) -> Result<(), String> {
    use perturb_pipeline::Scale;
    let scale: Scale = args.scale.parse().map_err(|e| format!("--scale: {e}"))?;
    // `perturb reproduce`'s flag for the scale.
    let flag = match scale {
        Scale::Quick => Some("--quick"),
        Scale::Default => None,
        Scale::Norman => Some("--norman"),
        Scale::Full => Some("--full"),
    };
    let root = crate::workspace_root();
    let out = args.out.clone().unwrap_or_else(|| root.join(format!("results/bench/study_{}", args.scale)));
    let whole = if args.existing {
        None
    } else {
        if out.exists() {
            return Err(format!("{}: exists; a benchmark times every stage, so give a new --out (nothing was removed)", out.display()));
        }
        let perturb = crate::build_release()?;
        let mut c = Command::new(&perturb);
        c.arg("reproduce").args(flag).arg("--out").arg(&out).args(&args.reproduce_args).current_dir(&root);
        Some(run_measured(c, "perturb reproduce")?)
    };
    let records = perturb_pipeline::runner::stage_records(&out.join(".state"))?;
    if records.is_empty() {
        return Err(format!("{}: no stage records (.state/stages); was the study run by this version of perturb?", out.display()));
    }
    println!();
    println!("study benchmark, scale {} ({}):", args.scale, out.display());
    print!("{}", stage_table(&records));
    let peak = gib(records.iter().filter_map(|r| r.peak_rss_bytes).max().unwrap_or(0));
    let stage_sum: f64 = records.iter().map(|r| r.wall_seconds).sum();
    match whole {
        Some(w) => println!("whole study: {} stages, {:.1} min wall, largest stage peak RSS {peak:.2} GiB", records.len(), w.wall.as_secs_f64() / 60.0),
        None => println!("{} stages recorded, their wall times summed {:.1} min, largest stage peak RSS {peak:.2} GiB", records.len(), stage_sum / 60.0),
    }
    Ok(())
}

/// The kind of a stage: its subcommand, and for training and prediction the variant
/// (the word after `train` / `predict` in the job's id).
fn stage_kind(r: &perturb_pipeline::StageRecord) -> String {
    let words: Vec<&str> = r.id.split_whitespace().collect();
    match words.iter().position(|w| *w == r.stage) {
        Some(i) if matches!(r.stage.as_str(), "train" | "predict") && i + 1 < words.len() => format!("{} {}", r.stage, words[i + 1]),
        _ => r.stage.clone(),
    }
}

fn stage_table(records: &[perturb_pipeline::StageRecord]) -> String {
    let mut kinds: std::collections::BTreeMap<String, Vec<&perturb_pipeline::StageRecord>> = Default::default();
    for r in records {
        kinds.entry(stage_kind(r)).or_default().push(r);
    }
    let mut text = format!("{:<28} {:>7} {:>12} {:>11} {:>11} {:>15}\n", "stage", "stages", "wall sum (s)", "mean (s)", "max (s)", "peak RSS (GiB)");
    for (kind, rs) in &kinds {
        let walls: Vec<f64> = rs.iter().map(|r| r.wall_seconds).collect();
        let sum: f64 = walls.iter().sum();
        let max = walls.iter().copied().fold(0.0, f64::max);
        let peak = rs.iter().filter_map(|r| r.peak_rss_bytes).max().unwrap_or(0);
        text.push_str(&format!("{:<28} {:>7} {:>12.1} {:>11.2} {:>11.1} {:>15.2}\n", kind, rs.len(), sum, sum / rs.len() as f64, max, gib(peak)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use perturb_pipeline::StageRecord;

    fn record(id: &str, stage: &str, wall: f64, rss: u64) -> StageRecord {
        StageRecord { id: id.into(), stage: stage.into(), wall_seconds: wall, peak_rss_bytes: Some(rss) }
    }

    #[test]
    fn stages_group_by_subcommand_and_variant() {
        assert_eq!(stage_kind(&record("train app_plus double seed 1", "train", 1.0, 1)), "train app_plus");
        assert_eq!(stage_kind(&record("A172: predict app unseen_single seed 2", "predict", 1.0, 1)), "predict app");
        assert_eq!(stage_kind(&record("graph go+regulon", "graph", 1.0, 1)), "graph");
        assert_eq!(stage_kind(&record("ingest", "ingest", 1.0, 1)), "ingest");
        let table = stage_table(&[
            record("train app double seed 1", "train", 2.0, 1 << 30),
            record("train app double seed 2", "train", 4.0, 2 << 30),
            record("ingest", "ingest", 1.5, 1 << 29),
        ]);
        let app = table.lines().find(|l| l.starts_with("train app")).unwrap();
        let cells: Vec<&str> = app.split_whitespace().collect();
        assert_eq!(cells[2..], ["2", "6.0", "3.00", "4.0", "2.00"]);
        assert!(table.lines().any(|l| l.starts_with("ingest ")), "{table}");
    }
}

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
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let mut c = Command::new(&perturb);
    c.args(["ingest", "--input"]).arg(&screen).arg("--out").arg(&out);
    c.args(["--hvg-flavor", "seurat", "--n-top-genes", &args.n_top_genes.to_string()]);
    let ours = run_measured(c, "perturb ingest")?;

    let hvg_list = workdir.join("scanpy_hvg.txt");
    let mut c = Command::new(&python);
    c.arg(root.join("xtask/python/scanpy_ingest.py")).arg(&screen).arg(args.n_top_genes.to_string()).arg(&hvg_list);
    let scanpy = run_measured(c, "scanpy")?;

    let agreement = compare_hvg(&out, &hvg_list)?;
    report(&args, size, &ours, &scanpy, &agreement);
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

fn report(args: &IngestBench, size: u64, ours: &Measured, scanpy: &Measured, agreement: &str) {
    println!();
    println!("ingest benchmark: {} cells x {} genes, h5ad {:.2} GiB, seurat HVG n_top_genes {}", args.cells, args.genes, gib(size), args.n_top_genes);
    println!("{:<16} {:>10} {:>14}", "tool", "wall (s)", "peak RSS (GiB)");
    for (name, m) in [("perturb ingest", ours), ("scanpy", scanpy)] {
        println!("{:<16} {:>10.1} {:>14.2}", name, m.wall.as_secs_f64(), gib(m.peak_rss));
    }
    let speedup = scanpy.wall.as_secs_f64() / ours.wall.as_secs_f64();
    let memory = ours.peak_rss as f64 / scanpy.peak_rss as f64;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("speed-up {speedup:.1}x (goal >= 5x: {}); memory {:.3} of scanpy's (goal <= 0.25: {})", verdict(speedup >= 5.0), memory, verdict(memory <= 0.25));
    println!("{agreement}");
    println!("scanpy: {}", scanpy.stdout.trim());
}

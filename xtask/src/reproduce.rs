//! `cargo xtask reproduce`: the whole pipeline on the embedded default data, through the
//! `perturb` binary, stage by stage — simulate -> ingest -> graph -> splits and baselines
//! -> train and predict every APP variant per seed -> evaluate everything together.
//! Finished stages are reused (their outputs exist), so an interrupted run resumes.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;
use perturb_core::Table;

#[derive(Args)]
pub struct Reproduce {
    /// quick (2,000 genes) or full (Norman-size) simulated screen.
    #[arg(long, default_value = "quick")]
    scale: String,
    /// Split seeds.
    #[arg(long, default_value = "1,2,3,4,5", value_delimiter = ',')]
    seeds: Vec<u64>,
    /// APP variants to train: app, app_residual, app_random_emb, app_identity_emb,
    /// app_mean_pool, app_mlp_decoder, app_query_skip.
    #[arg(long, default_value = "app,app_residual,app_query_skip,app_random_emb,app_identity_emb,app_mean_pool,app_mlp_decoder", value_delimiter = ',')]
    variants: Vec<String>,
    /// Graph source spec for the graph stage.
    #[arg(long, default_value = "go+regulon")]
    graph: String,
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    #[arg(long, default_value = "results/reproduce")]
    out: PathBuf,
    /// Start from scratch instead of reusing finished stages.
    #[arg(long)]
    force: bool,
}

/// `perturb train` flags of each named variant.
fn variant_flags(name: &str) -> Result<&'static [&'static str], String> {
    Ok(match name {
        "app" => &[],
        "app_residual" => &["--target", "residual"],
        "app_random_emb" => &["--gene-embedding", "random"],
        "app_identity_emb" => &["--gene-embedding", "identity"],
        "app_mean_pool" => &["--pooling", "mean"],
        "app_mlp_decoder" => &["--decoder", "mlp"],
        "app_query_skip" => &["--query-skip"],
        other => {
            return Err(format!(
                "unknown variant '{other}' (app, app_residual, app_random_emb, app_identity_emb, app_mean_pool, app_mlp_decoder, app_query_skip)"
            ))
        }
    })
}

pub fn run(args: Reproduce) -> Result<(), String> {
    for v in &args.variants {
        variant_flags(v)?;
    }
    let root = crate::workspace_root();
    let perturb = crate::build_release()?;
    let out = root.join(&args.out);
    if args.force && out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let p = |rel: &str| out.join(rel);
    let seeds: Vec<String> = args.seeds.iter().map(u64::to_string).collect();
    let started = std::time::Instant::now();

    let screen = p("screen.h5ad");
    step(&perturb, &screen, &["simulate", "--preset", "norman-like", "--scale", &args.scale, "--seed", "1", "--report", "--out", s(&screen)], &root)?;
    let ingest = p("ingest");
    step(&perturb, &ingest, &["ingest", "--input", s(&screen), "--out", s(&ingest)], &root)?;
    let graph = p("graph");
    let genes = ingest.join("genes.parquet");
    step(&perturb, &graph, &["graph", "--genes", s(&genes), "--source", &args.graph, "--out", s(&graph)], &root)?;
    let baselines = p("baselines");
    step(&perturb, &baselines, &["eval", "--data", s(&ingest), "--task", "double", "--seeds", &seeds.join(","), "--out", s(&baselines)], &root)?;

    std::fs::create_dir_all(p("predictions")).map_err(|e| e.to_string())?;
    for seed in &seeds {
        let split = baselines.join(format!("split_double_seed{seed}.parquet"));
        let test = test_conditions(&split)?;
        for variant in &args.variants {
            let model = p(&format!("models/{variant}_s{seed}"));
            let mut train: Vec<&str> = vec!["train", "--data", s(&ingest), "--graph", s(&graph), "--split", s(&split), "--seed", seed];
            let epochs = args.epochs.to_string();
            train.extend(["--epochs", &epochs, "--out", s(&model)]);
            train.extend(variant_flags(variant)?);
            step(&perturb, &model, &train, &root)?;
            let pred = p(&format!("predictions/{variant}_s{seed}.parquet"));
            step(&perturb, &pred, &["predict", "--model", s(&model), "--perturbations", &test.join(","), "--out", s(&pred)], &root)?;
        }
    }

    let eval = p("eval");
    if eval.exists() {
        std::fs::remove_dir_all(&eval).map_err(|e| e.to_string())?;
    }
    let mut cmd: Vec<String> =
        ["eval", "--data", s(&ingest), "--task", "double", "--seeds", &seeds.join(","), "--out", s(&eval)].iter().map(|x| x.to_string()).collect();
    for variant in &args.variants {
        cmd.push("--predictions".into());
        cmd.push(format!("{variant}={}", p(&format!("predictions/{variant}_s{{seed}}.parquet")).display()));
    }
    step(&perturb, &eval, &cmd.iter().map(String::as_str).collect::<Vec<_>>(), &root)?;
    let report = std::fs::read_to_string(eval.join("report.md")).map_err(|e| e.to_string())?;
    println!("\n{report}\nreproduced in {:.0} s -> {}", started.elapsed().as_secs_f64(), out.display());
    Ok(())
}

fn s(p: &Path) -> &str {
    p.to_str().expect("paths under the workspace are UTF-8")
}

/// Runs one `perturb` step unless `output` already exists.
fn step(perturb: &Path, output: &Path, args: &[&str], root: &Path) -> Result<(), String> {
    if output.exists() {
        println!("[reuse] {}", output.display());
        return Ok(());
    }
    println!("[run] perturb {}", args.iter().take(1).copied().collect::<Vec<_>>().join(" "));
    let status = Command::new(perturb).args(args).current_dir(root).status().map_err(|e| format!("cannot run perturb: {e}"))?;
    if !status.success() {
        return Err(format!("perturb {} failed ({status}); finished stages are kept, rerun to resume", args[0]));
    }
    Ok(())
}

fn test_conditions(split: &Path) -> Result<Vec<String>, String> {
    let t = Table::read_parquet(split).map_err(|e| e.to_string())?;
    let (c, set) = (t.strings("condition", split).map_err(|e| e.to_string())?, t.strings("set", split).map_err(|e| e.to_string())?);
    Ok(c.iter().zip(set).filter(|(_, x)| *x == "test").map(|(c, _)| c.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_variant_has_flags_and_unknown_ones_are_listed() {
        for v in ["app", "app_residual", "app_query_skip", "app_random_emb", "app_identity_emb", "app_mean_pool", "app_mlp_decoder"] {
            assert!(variant_flags(v).is_ok(), "{v}");
        }
        assert!(variant_flags("gears").unwrap_err().contains("app_residual"));
    }
}

//! `cargo xtask compare-metrics A B`: do two runs of the study agree? Used by CI to check
//! that the Snakemake workflow and `cargo xtask reproduce` compute the same numbers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use perturb_core::schema::metrics as ms;

#[derive(clap::Args)]
pub struct CompareMetrics {
    /// A metrics.parquet (or a results folder holding one).
    a: PathBuf,
    /// The other metrics.parquet (or results folder).
    b: PathBuf,
    /// Largest accepted absolute difference of any metric.
    #[arg(long, default_value_t = 1e-9)]
    tolerance: f64,
}

/// (task, model, perturbation, seed) -> every float metric's value, by name.
fn read(path: &Path) -> Result<BTreeMap<String, BTreeMap<String, f64>>, String> {
    let path = if path.is_dir() { path.join(ms::FILE) } else { path.to_path_buf() };
    let mut rows = BTreeMap::new();
    for r in perturb_core::scores::read_metrics(&path).map_err(|e| e.to_string())? {
        let key = format!("{} {} {} seed {}", r.task, r.model, r.perturbation, r.seed);
        let values = ms::PER_PERTURBATION.iter().map(|m| m.to_string()).zip(r.values()).collect();
        if rows.insert(key, values).is_some() {
            return Err(format!("{}: row {} {} {} seed {} appears twice", path.display(), r.task, r.model, r.perturbation, r.seed));
        }
    }
    Ok(rows)
}

pub fn run(args: CompareMetrics) -> Result<(), String> {
    let (a, b) = (read(&args.a)?, read(&args.b)?);
    let only = |x: &BTreeMap<String, BTreeMap<String, f64>>, y: &BTreeMap<String, BTreeMap<String, f64>>| -> Vec<String> {
        x.keys().filter(|k| !y.contains_key(*k)).take(5).cloned().collect()
    };
    let (only_a, only_b) = (only(&a, &b), only(&b, &a));
    if !only_a.is_empty() || !only_b.is_empty() {
        return Err(format!("the runs scored different rows; only in {}: {only_a:?}; only in {}: {only_b:?}", args.a.display(), args.b.display()));
    }
    let mut worst = (0f64, String::new());
    for (key, va) in &a {
        let vb = &b[key];
        for (column, x) in va {
            // Both were read as typed rows, so both hold every metric.
            let y = &vb[column];
            // Undefined in both (a Pearson of a constant prediction) is agreement.
            let d = if x.is_nan() && y.is_nan() { 0.0 } else { (x - y).abs() };
            // `!(d <= worst)` and not `d > worst`: a NaN difference must count as the worst.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let worse = !(d <= worst.0);
            if worse {
                worst = (if d.is_nan() { f64::INFINITY } else { d }, format!("{key} {column}: {x} vs {y}"));
            }
        }
    }
    println!("{} rows compared; largest difference {:.3e}{}", a.len(), worst.0, if worst.0 > 0.0 { format!(" ({})", worst.1) } else { String::new() });
    if worst.0 > args.tolerance {
        return Err(format!("the runs differ by more than {}: {}", args.tolerance, worst.1));
    }
    Ok(())
}

//! `cargo xtask readme-tables RESULTS [--write README.md]`: the README's result tables,
//! written from a study's `summary.parquet` files, so a figure in the README is always one
//! the code produced. Without `--write` the tables are printed; with it, the text between
//! each pair of markers (`<!-- readme-tables:NAME -->` … `<!-- /readme-tables:NAME -->`)
//! is replaced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use perturb_core::schema::{metrics, summary};
use perturb_core::scores::SummaryRow;
use perturb_pipeline::EXAMPLES;

#[derive(clap::Args)]
pub struct ReadmeTables {
    /// A results folder of `cargo xtask reproduce` (default scale for the README).
    results: PathBuf,
    /// Replace the marked tables in this file instead of printing them.
    #[arg(long, value_name = "FILE")]
    write: Option<PathBuf>,
}

/// A model's mean L2 on a task, over the (seed, perturbation) pairs it is ranked on.
#[derive(Debug, Clone, Copy)]
struct Cell {
    l2: f64,
    n: usize,
    /// Over a smaller set than the task's (the model covers fewer pairs), so not comparable
    /// with the column's other figures.
    own_set: bool,
}

/// (task, model) -> its cell from an evaluation's summary.parquet, models in its order:
/// the `all` set's figures, or for a model that covers fewer pairs its own set's.
fn mean_l2(eval: &Path) -> Result<(Vec<String>, BTreeMap<(String, String), Cell>), String> {
    let path = eval.join(summary::FILE);
    let rows = perturb_core::scores::read_summary(&path).map_err(|e| e.to_string())?;
    let mut order = Vec::new();
    let mut values = BTreeMap::new();
    // A smaller set is named after the model(s) covering only it, `+`-joined.
    let own = |r: &SummaryRow| r.perturbation_set.split('+').any(|m| m == r.model);
    for r in rows.iter().filter(|r| r.metric == metrics::L2 && (r.perturbation_set == summary::ALL || own(r))) {
        if !order.contains(&r.model) {
            order.push(r.model.clone());
        }
        values.insert((r.task.clone(), r.model.clone()), Cell { l2: r.mean, n: r.n, own_set: r.perturbation_set != summary::ALL });
    }
    Ok((order, values))
}

/// A markdown table: a row per model, a column per (screen, task).
fn table(columns: &[(String, PathBuf, &str)]) -> Result<String, String> {
    let mut models: Vec<String> = Vec::new();
    let mut cells = Vec::new();
    for (_, eval, task) in columns {
        let (order, values) = mean_l2(eval)?;
        for m in order.into_iter().filter(|m| values.contains_key(&(task.to_string(), m.clone()))) {
            if !models.contains(&m) {
                models.push(m);
            }
        }
        cells.push((values, *task));
    }
    let mut out = format!("| model | {} |\n|---{}|\n", columns.iter().map(|c| c.0.as_str()).collect::<Vec<_>>().join(" | "), "|---".repeat(columns.len()));
    for m in &models {
        let row: Vec<String> = cells
            .iter()
            .map(|(v, task)| {
                v.get(&(task.to_string(), m.clone())).map_or("—".to_string(), |c| {
                    if c.own_set {
                        format!("{:.3} (on its own {} pairs)", c.l2, c.n)
                    } else {
                        format!("{:.3}", c.l2)
                    }
                })
            })
            .collect();
        out.push_str(&format!("| {m} | {} |\n", row.join(" | ")));
    }
    let n: Vec<String> =
        cells.iter().map(|(v, task)| v.iter().filter(|((t, _), c)| t == task && !c.own_set).map(|(_, c)| c.n).max().unwrap_or(0).to_string()).collect();
    out.push_str(&format!("| (seed, perturbation) pairs | {} |\n", n.join(" | ")));
    Ok(out)
}

fn tables(results: &Path) -> Result<Vec<(&'static str, String)>, String> {
    let eval = results.join("eval");
    let simulated = table(&[("double".into(), eval.clone(), "double"), ("unseen_single".into(), eval, "unseen_single")])?;
    let screens: Vec<(String, PathBuf, &str)> = EXAMPLES
        .iter()
        .map(|e| (e.name.to_string(), results.join("screens").join(e.name).join("eval"), "unseen_single"))
        .filter(|(_, dir, _)| dir.join(summary::FILE).is_file())
        .collect();
    let mut out = vec![("simulated", simulated)];
    if !screens.is_empty() {
        out.push(("real", table(&screens)?));
    }
    Ok(out)
}

/// `text` with the block between the markers of `name` replaced by `table`.
fn replace_block(text: &str, name: &str, table: &str, file: &Path) -> Result<String, String> {
    let (open, close) = (format!("<!-- readme-tables:{name} -->"), format!("<!-- /readme-tables:{name} -->"));
    let start = text.find(&open).ok_or_else(|| format!("{}: no marker {open}", file.display()))? + open.len();
    let end = text[start..].find(&close).ok_or_else(|| format!("{}: no marker {close}", file.display()))? + start;
    Ok(format!("{}\n{}{}", &text[..start], table, &text[end..]))
}

pub fn run(args: ReadmeTables) -> Result<(), String> {
    let tables = tables(&args.results)?;
    match &args.write {
        None => tables.iter().for_each(|(name, t)| println!("<!-- {name} -->\n{t}")),
        Some(file) => {
            let mut text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            for (name, t) in &tables {
                text = replace_block(&text, name, t, file)?;
            }
            perturb_core::table::write_bytes_atomically(file, text.as_bytes()).map_err(|e| e.to_string())?;
            println!("{}: {} tables written from {}", file.display(), tables.len(), args.results.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_marked_block_is_replaced() {
        let text = "intro\n<!-- readme-tables:simulated -->\nold\n<!-- /readme-tables:simulated -->\noutro\n";
        let new = replace_block(text, "simulated", "| a |\n", Path::new("README.md")).unwrap();
        assert_eq!(new, "intro\n<!-- readme-tables:simulated -->\n| a |\n<!-- /readme-tables:simulated -->\noutro\n");
        assert!(replace_block(text, "real", "x", Path::new("README.md")).unwrap_err().contains("no marker <!-- readme-tables:real -->"));
    }
}

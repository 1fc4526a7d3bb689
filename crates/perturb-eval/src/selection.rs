//! Choosing one model on validation perturbations only, then reporting it on test.
//!
//! Every `perturb train` run records in its manifest the L2 (over the metric's top genes)
//! of its best epoch on the validation perturbations: the split's `val` set (unseen
//! singles) or, where a split has none (doubles), the tenth of the training perturbations
//! held out by the training seed. Those are the same perturbations for every model trained
//! with one seed, and no model saw them — nor any test perturbation — when it was chosen.
//! A model's score is its mean validation L2 over seeds, relative to the best model's on
//! the same task, averaged over the tasks. The models within [`TIE`] of the lowest score
//! are tied — validation cannot tell them apart — and the one that trains fastest among
//! them is the pick (the parsimony of the one-standard-error rule). A model not run on
//! every task cannot be picked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use perturb_core::manifest::Manifest;
use perturb_core::{Column, Error, Result, Table};

use crate::paired::Comparison;
use crate::report_html::TextTable;
use crate::split::Task;
use crate::MetricRow;

pub const FILE: &str = "selection.parquet";

/// Scores within this share of the lowest are a tie, broken by training time.
pub const TIE: f64 = 0.01;

/// One model's validation record on one task.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionRow {
    pub model: String,
    pub task: &'static str,
    pub n_seeds: usize,
    /// Mean over seeds of the best epoch's validation L2.
    pub validation_l2: f64,
    /// `validation_l2` over the lowest of any model on this task (1 = the best).
    pub relative: f64,
    /// Mean of `relative` over the tasks (the model's score; NaN when not on every task).
    pub score: f64,
    /// Mean training seconds per run (`timing.json`; NaN when not given).
    pub train_seconds: f64,
    pub chosen: bool,
}

/// The best validation L2 a training run recorded (`summary.best_validation_l2`).
fn validation_l2(path: &Path) -> Result<f64> {
    let manifest = Manifest::read(path)?;
    let value = manifest.summary.get("best_validation_l2").and_then(serde_json::Value::as_f64);
    match value {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(Error::bad_input(path, "has no finite summary.best_validation_l2: is it the manifest.json of a `perturb train` run?")),
    }
}

/// Reads every model's training manifests ((task, seed) -> manifest.json) and ranks the
/// models, `train_seconds` breaking ties; empty when no manifest is given.
pub fn select(files: &[(String, BTreeMap<(Task, u64), PathBuf>)], train_seconds: &BTreeMap<String, f64>) -> Result<Vec<SelectionRow>> {
    let mut rows = Vec::new();
    for (model, by_split) in files {
        let mut per_task: BTreeMap<Task, Vec<f64>> = BTreeMap::new();
        for ((task, _), path) in by_split {
            per_task.entry(*task).or_default().push(validation_l2(path)?);
        }
        for (task, values) in per_task {
            let validation_l2 = values.iter().sum::<f64>() / values.len() as f64;
            rows.push(SelectionRow {
                model: model.clone(),
                task: task.name(),
                n_seeds: values.len(),
                validation_l2,
                relative: f64::NAN,
                score: f64::NAN,
                train_seconds: train_seconds.get(model).copied().unwrap_or(f64::NAN),
                chosen: false,
            });
        }
    }
    rank(&mut rows);
    Ok(rows)
}

/// Fills `relative`, `score` and `chosen`: among the models within [`TIE`] of the lowest
/// score, the fastest to train (a model without a time counts as slowest; then the
/// lower score, then the one listed first).
fn rank(rows: &mut [SelectionRow]) {
    let mut best: BTreeMap<&'static str, f64> = BTreeMap::new();
    for r in rows.iter() {
        let b = best.entry(r.task).or_insert(f64::INFINITY);
        *b = b.min(r.validation_l2);
    }
    for r in rows.iter_mut() {
        r.relative = r.validation_l2 / best[r.task];
    }
    let mut scores: Vec<(String, f64)> = Vec::new();
    for r in rows.iter() {
        if scores.iter().any(|s| s.0 == r.model) {
            continue;
        }
        let mine: Vec<f64> = rows.iter().filter(|o| o.model == r.model).map(|o| o.relative).collect();
        let score = if mine.len() == best.len() { mine.iter().sum::<f64>() / mine.len() as f64 } else { f64::NAN };
        scores.push((r.model.clone(), score));
    }
    let lowest = scores.iter().map(|s| s.1).filter(|s| s.is_finite()).fold(f64::INFINITY, f64::min);
    let cost =
        |model: &str| rows.iter().find(|r| r.model == model).map_or(f64::INFINITY, |r| if r.train_seconds.is_nan() { f64::INFINITY } else { r.train_seconds });
    let chosen = scores
        .iter()
        .filter(|s| s.1.is_finite() && s.1 <= lowest * (1.0 + TIE))
        .fold(None::<&(String, f64)>, |b, s| if b.is_none_or(|b| (cost(&s.0), s.1) < (cost(&b.0), b.1)) { Some(s) } else { b })
        .map(|s| s.0.clone());
    for r in rows.iter_mut() {
        r.score = scores.iter().find(|s| s.0 == r.model).map_or(f64::NAN, |s| s.1);
        r.chosen = chosen.as_deref() == Some(r.model.as_str());
    }
}

/// The pick, if any model could be picked.
pub fn chosen(rows: &[SelectionRow]) -> Option<&str> {
    rows.iter().find(|r| r.chosen).map(|r| r.model.as_str())
}

pub fn write(rows: &[SelectionRow], path: &Path) -> Result<()> {
    Table::new()
        .with("model", Column::Str(rows.iter().map(|r| r.model.clone()).collect()))
        .with("task", Column::Str(rows.iter().map(|r| r.task.to_string()).collect()))
        .with("n_seeds", Column::I64(rows.iter().map(|r| r.n_seeds as i64).collect()))
        .with("validation_l2", Column::F64(rows.iter().map(|r| r.validation_l2).collect()))
        .with("relative", Column::F64(rows.iter().map(|r| r.relative).collect()))
        .with("score", Column::F64(rows.iter().map(|r| r.score).collect()))
        .with("train_seconds", Column::F64(rows.iter().map(|r| r.train_seconds).collect()))
        .with("chosen", Column::I64(rows.iter().map(|r| i64::from(r.chosen)).collect()))
        .write_parquet(path)
}

/// The ranking: one row per model, best score first, its validation L2 per task.
pub fn ranking_table(rows: &[SelectionRow]) -> Option<TextTable> {
    if rows.is_empty() {
        return None;
    }
    let mut tasks: Vec<&str> = rows.iter().map(|r| r.task).collect();
    tasks.sort_by_key(|t| (*t != "double", *t));
    tasks.dedup();
    let mut models: Vec<(&str, f64)> = Vec::new();
    for r in rows {
        if !models.iter().any(|m| m.0 == r.model) {
            models.push((&r.model, r.score));
        }
    }
    models.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut header = vec!["model".to_string(), "score".to_string()];
    header.extend(tasks.iter().map(|t| format!("{t}: validation L2 (× best)")));
    header.push("training s".into());
    header.push("picked".into());
    let table_rows = models
        .iter()
        .map(|(model, score)| {
            let mut row = vec![model.to_string(), if score.is_finite() { format!("{score:.3}") } else { "not on every task".into() }];
            for t in &tasks {
                row.push(rows.iter().find(|r| r.model == *model && r.task == *t).map_or("—".into(), |r| format!("{:.3} ({:.3})", r.validation_l2, r.relative)));
            }
            let seconds = rows.iter().find(|r| r.model == *model).map_or(f64::NAN, |r| r.train_seconds);
            row.push(if seconds.is_finite() { format!("{seconds:.1}") } else { "—".into() });
            row.push(if rows.iter().any(|r| r.model == *model && r.chosen) { "yes".into() } else { String::new() });
            row
        })
        .collect();
    Some(TextTable {
        title: "Model selection on validation perturbations".into(),
        caption: "Each model's L2 on the validation perturbations (unseen singles: the split's validation genes; doubles: the tenth of the training perturbations the training seed holds out), at its best epoch, mean over seeds; in brackets, over the best model's on that task. Score: the mean of the brackets over the tasks. Scores within 1% of the lowest are a tie that validation cannot break; of those, the model with the shortest mean training time is picked. No test perturbation took part in the choice.".into(),
        header,
        rows: table_rows,
    })
}

/// The picked (or recommended) model on test, against every baseline and every other
/// model: the paired differences of `comparisons` for `model` on all perturbations, with
/// the difference as a share of the other's L2.
pub fn on_test_table(model: &str, how: &str, comparisons: &[Comparison]) -> Option<TextTable> {
    let mine: Vec<&Comparison> = comparisons.iter().filter(|c| c.model == model && c.perturbation_set == crate::coverage::ALL && c.metric == "l2").collect();
    if mine.is_empty() {
        return None;
    }
    let cell =
        |c: &Comparison| format!("{:+.3} [{:+.3}, {:+.3}] ({:+.1}%)", c.mean_difference, c.ci_low, c.ci_high, 100.0 * c.mean_difference / c.mean_baseline);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut ordered = mine.clone();
    ordered.sort_by_key(|c| c.task != "double");
    for c in ordered {
        let no_target = comparisons.iter().find(|o| {
            o.task == c.task && o.perturbation_set == c.perturbation_set && o.model == c.model && o.baseline == c.baseline && o.metric == "l2_no_target"
        });
        rows.push(vec![
            c.task.clone(),
            c.baseline.clone(),
            c.n_pairs.to_string(),
            format!("{:.3}", c.mean_model),
            format!("{:.3}", c.mean_baseline),
            cell(c),
            c.verdict().to_string(),
            no_target.map_or("—".into(), cell),
            no_target.map_or("—".into(), |o| o.verdict().to_string()),
        ]);
    }
    Some(TextTable {
        title: format!("The {how} model on test: {model}"),
        caption: format!("{model} against every baseline and every other model on the test (seed, perturbation) pairs both predicted (n): mean L2 difference, negative when {model} is closer to the truth, with its paired 95% bootstrap interval and the difference as a share of the other's L2; then the same with the perturbed genes left out. Better or worse only where the interval excludes 0."),
        header: ["task", "against", "n", "L2", "its L2", "difference [95% interval] (share)", "verdict", "without the targets", "verdict"].iter().map(|h| h.to_string()).collect(),
        rows,
    })
}

/// Paired comparisons of `model` against every other model (not the baselines, already
/// compared) on all perturbations.
pub fn against_models(rows: &[MetricRow], model: &str) -> Vec<Comparison> {
    let others: Vec<&str> = {
        let mut names: Vec<&str> = rows.iter().map(|r| r.model.as_str()).filter(|m| *m != model && !crate::baselines::all_names().any(|b| b == *m)).collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let kept: Vec<MetricRow> = rows.iter().filter(|r| r.model == model || others.contains(&r.model.as_str())).cloned().collect();
    crate::paired::compare(&kept, &others, crate::coverage::ALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, task: &'static str, l2: f64) -> SelectionRow {
        SelectionRow { model: model.into(), task, n_seeds: 1, validation_l2: l2, relative: f64::NAN, score: f64::NAN, train_seconds: f64::NAN, chosen: false }
    }

    #[test]
    fn the_pick_has_the_lowest_mean_relative_l2_over_every_task() {
        // a: best on doubles, 1.5× on singles (score 1.25); b: 1.2× and best (1.1);
        // c: best of all on singles but not run on doubles: never picked.
        let mut rows = vec![
            row("a", "double", 2.0),
            row("a", "unseen_single", 3.0),
            row("b", "double", 2.4),
            row("b", "unseen_single", 2.0),
            row("c", "unseen_single", 1.0),
        ];
        rank(&mut rows);
        assert_eq!(chosen(&rows), Some("b"));
        let b: Vec<f64> = rows.iter().filter(|r| r.model == "b").map(|r| r.relative).collect();
        assert_eq!(b, [1.2, 2.0], "relative to c's 1.0 on singles");
        assert!(rows.iter().filter(|r| r.model == "c").all(|r| r.score.is_nan() && !r.chosen));
        let table = ranking_table(&rows).unwrap();
        assert_eq!(table.rows[0][0], "b");
        assert_eq!(table.rows.last().unwrap()[1], "not on every task");
    }

    #[test]
    fn a_tie_within_one_percent_goes_to_the_faster_model() {
        let timed = |model: &str, task, l2, seconds| SelectionRow { train_seconds: seconds, ..row(model, task, l2) };
        // slow is 0.5% better than fast: a tie, and fast trains in a third of the time.
        let mut rows = vec![timed("slow", "double", 1.990, 60.0), timed("fast", "double", 2.0, 20.0), timed("worse", "double", 2.1, 1.0)];
        rank(&mut rows);
        assert_eq!(chosen(&rows), Some("fast"), "worse is 5.5% behind: not tied");
        // 2% better is not a tie.
        let mut rows = vec![timed("slow", "double", 1.96, 60.0), timed("fast", "double", 2.0, 20.0)];
        rank(&mut rows);
        assert_eq!(chosen(&rows), Some("slow"));
        // Without timings the lower score wins a tie.
        let mut rows = vec![row("slow", "double", 1.99), row("fast", "double", 2.0)];
        rank(&mut rows);
        assert_eq!(chosen(&rows), Some("slow"));
    }

    #[test]
    fn validation_l2_is_read_from_a_training_manifest_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        let mut m = Manifest::new("train", Vec::new(), serde_json::json!({}));
        m.summary = serde_json::json!({ "best_validation_l2": 2.5 });
        m.write(&good).unwrap();
        assert_eq!(validation_l2(&good).unwrap(), 2.5);
        let bad = dir.path().join("bad.json");
        Manifest::new("eval", Vec::new(), serde_json::json!({})).write(&bad).unwrap();
        let e = validation_l2(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("best_validation_l2"), "{e}");
    }
}

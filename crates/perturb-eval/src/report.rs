//! The evaluation's reports: `report.md` and the self-contained `report.html`, both from
//! the same parts — the summary per task, per-perturbation L2, the genetic-interaction
//! curves, the network-quality study, attention top genes, the learned structure scored
//! against a known truth and the efficiency table.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use perturb_core::timing::ModelTiming;
use perturb_core::{Column, Error, Result, Table};

use crate::coverage::{PerturbationSet, ALL};
use crate::report_html::{self, AttentionTop, EfficiencyRow, NetworkPoint, ReportData, SummaryLine, TaskSection, TextTable};
use crate::split::Task;
use crate::structure::{self, GrnRow, ProgramRow, Q_LEVEL};
use crate::{baselines, EvalOptions, GiRow, MetricRow, Screen, SummaryRow};

/// Everything a report is made of.
pub struct Parts<'a> {
    pub screen: &'a Screen,
    pub opts: &'a EvalOptions,
    pub rows: &'a [MetricRow],
    pub summary: &'a [SummaryRow],
    /// The perturbation sets the summary is over (see `coverage`).
    pub sets: &'a [PerturbationSet],
    pub gi: &'a [GiRow],
    pub efficiency: &'a [EfficiencyRow],
    pub attention: &'a [AttentionTop],
    /// Learned structure scored against a known truth (see `structure`).
    pub structure: &'a [TextTable],
    pub notes: &'a [String],
}

const TABLE_METRICS: [(&str, &str); 9] = [
    ("l2", "L2"),
    ("l2_no_target", "L2 without the targets"),
    ("pearson_delta", "Pearson delta"),
    ("pearson_delta_centroid", "Pearson delta vs perturbed centroid"),
    ("mse_top20_de", "top-20 DE MSE"),
    ("mae", "MAE"),
    ("des_overlap_20", "DES@20"),
    ("pds_l1", "PDS (L1)"),
    ("vcc_score", "VCC score vs mean"),
];

fn task_description(task: &str) -> &'static str {
    match task {
        "double" => "Combinatorial doubles (Norman 2019 protocol): every single and half of the doubles train, the other doubles are predicted.",
        "unseen_single" => {
            "Unseen single perturbations (GEARS simulation split): singles of a quarter of the perturbed genes are predicted, none of them seen in training."
        }
        "unseen_context" => {
            "Unseen context: every perturbation of this context (a cell line, a stimulation state) is predicted, none of its perturbed cells seen, from the same perturbations in the screen's other contexts (--other-context). With nothing of this context to train on, mean and linear have only its control and equal no_change."
        }
        _ => "",
    }
}

/// The rows over every test perturbation of a task (the ranking's set).
fn in_all(summary: &[SummaryRow]) -> impl Iterator<Item = &SummaryRow> {
    summary.iter().filter(|r| r.perturbation_set == ALL)
}

/// Why the pairs outside a smaller perturbation set have no prediction from its models.
fn left_out_reason(set: &PerturbationSet) -> &'static str {
    if set.name == baselines::NAMES[2] {
        "additive predicts a perturbation only when each of its genes was measured alone in training"
    } else {
        "these models wrote no prediction for them"
    }
}

/// The caption of a smaller perturbation set's table: its n and the pairs left out.
fn subset_caption(set: &PerturbationSet) -> String {
    let total = set.pairs.len() + set.left_out.len();
    let shown: Vec<String> = set.left_out.iter().take(10).map(|(seed, p)| format!("{p} (seed {seed})")).collect();
    let more = if set.left_out.len() > shown.len() { format!(" and {} more", set.left_out.len() - shown.len()) } else { String::new() };
    format!(
        "{} {} only {} of the {total} (seed, perturbation) pairs, so {} ranked here, beside every model on the same pairs, and not above. Left out: {}{more} — {}.",
        set.name,
        if set.name.contains('+') { "cover" } else { "covers" },
        set.pairs.len(),
        if set.name.contains('+') { "they are" } else { "it is" },
        shown.join(", "),
        left_out_reason(set)
    )
}

fn tasks(summary: &[SummaryRow]) -> Vec<String> {
    let mut t: Vec<String> = summary.iter().map(|r| r.task.clone()).collect();
    t.dedup();
    t.sort_by_key(|t| if t == "double" { 0 } else { 1 });
    t.dedup();
    t
}

fn models(summary: &[SummaryRow], task: &str, set: &str) -> Vec<String> {
    summary.iter().filter(|r| r.task == task && r.perturbation_set == set && r.metric == "l2").map(|r| r.model.clone()).collect()
}

fn mean_l2<'a>(summary: &'a [SummaryRow], task: &str, model: &str) -> Option<&'a SummaryRow> {
    in_all(summary).find(|r| r.task == task && r.model == model && r.metric == "l2")
}

/// A network-quality study model's name split into (study model, "drop" | "add",
/// fraction): `app_plus_drop25` -> (`app_plus`, `drop`, 0.25).
pub fn network_study_name(model: &str) -> Option<(&str, &'static str, f64)> {
    for kind in ["drop", "add"] {
        if let Some((base, pct)) = model.rsplit_once(&format!("_{kind}")) {
            if !base.is_empty() && !pct.is_empty() && pct.bytes().all(|b| b.is_ascii_digit()) {
                return Some((base, kind, pct.parse::<f64>().ok()? / 100.0));
            }
        }
    }
    None
}

/// The network-quality points of `task`: each study model on each degraded network, plus
/// its intact-network result as the 0% point of both series; the references are the
/// baselines and each study model on the intact network.
fn network_points(summary: &[SummaryRow], task: &str) -> (Vec<NetworkPoint>, Vec<(String, f64)>) {
    let mut points = Vec::new();
    let mut bases: Vec<String> = Vec::new();
    for r in in_all(summary).filter(|r| r.task == task && r.metric == "l2") {
        if let Some((base, kind, fraction)) = network_study_name(&r.model) {
            points.push(NetworkPoint { model: base.to_string(), kind: kind.to_string(), fraction, mean_l2: r.mean, sd_l2: r.sd, n: r.n });
            if !bases.iter().any(|b| b == base) {
                bases.push(base.to_string());
            }
        }
    }
    if bases.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut references: Vec<(String, f64)> = baselines::all_names().filter_map(|m| mean_l2(summary, task, m).map(|r| (m.to_string(), r.mean))).collect();
    for base in &bases {
        if let Some(intact) = mean_l2(summary, task, base) {
            for kind in ["drop", "add"] {
                points.push(NetworkPoint { model: base.clone(), kind: kind.to_string(), fraction: 0.0, mean_l2: intact.mean, sd_l2: intact.sd, n: intact.n });
            }
            references.push((format!("{base} (intact network)"), intact.mean));
        }
    }
    points.sort_by(|a, b| a.model.cmp(&b.model).then(a.kind.cmp(&b.kind)).then(a.fraction.total_cmp(&b.fraction)));
    (points, references)
}

/// Mean figures of each model's runs.
pub fn efficiency(files: &[(String, BTreeMap<(Task, u64), PathBuf>)]) -> Result<Vec<EfficiencyRow>> {
    let mut rows = Vec::new();
    for (model, runs) in files {
        let timings = runs.values().map(|p| ModelTiming::read(p)).collect::<Result<Vec<_>>>()?;
        if timings.is_empty() {
            continue;
        }
        let n = timings.len() as f64;
        let mean = |f: fn(&ModelTiming) -> f64| timings.iter().map(f).sum::<f64>() / n;
        rows.push(EfficiencyRow {
            model: model.clone(),
            n_params: timings[0].n_params,
            train_seconds: mean(|t| t.train_seconds),
            predict_ms_single: mean(|t| t.predict_ms_single),
            predict_ms_batched: mean(|t| t.predict_ms_batched),
            peak_rss_bytes: timings.iter().map(|t| t.peak_rss_bytes).max().unwrap_or(0),
            device: timings[0].device.clone(),
            runs: timings.len(),
        });
    }
    Ok(rows)
}

pub fn write_efficiency(rows: &[EfficiencyRow], path: &Path) -> Result<()> {
    Table::new()
        .with("model", Column::Str(rows.iter().map(|r| r.model.clone()).collect()))
        .with("n_params", Column::I64(rows.iter().map(|r| r.n_params as i64).collect()))
        .with("train_seconds", Column::F64(rows.iter().map(|r| r.train_seconds).collect()))
        .with("predict_ms_single", Column::F64(rows.iter().map(|r| r.predict_ms_single).collect()))
        .with("predict_ms_batched", Column::F64(rows.iter().map(|r| r.predict_ms_batched).collect()))
        .with("peak_rss_bytes", Column::I64(rows.iter().map(|r| r.peak_rss_bytes as i64).collect()))
        .with("device", Column::Str(rows.iter().map(|r| r.device.clone()).collect()))
        .with("runs", Column::I64(rows.iter().map(|r| r.runs as i64).collect()))
        .write_parquet(path)
}

/// The `top` most attended genes of the first `perturbations` perturbations of an
/// attention table (perturbation, gene, attention).
pub fn attention_tops(model: &str, path: &Path, perturbations: usize, top: usize) -> Result<Vec<AttentionTop>> {
    let t = Table::read_parquet(path)?;
    let (p, g, a) = (t.strings("perturbation", path)?, t.strings("gene", path)?, t.floats("attention", path)?);
    let mut order: Vec<&str> = Vec::new();
    let mut by: BTreeMap<&str, Vec<(String, f64)>> = BTreeMap::new();
    for i in 0..p.len() {
        if !by.contains_key(p[i].as_str()) {
            order.push(&p[i]);
        }
        by.entry(&p[i]).or_default().push((g[i].clone(), a[i]));
    }
    if order.is_empty() {
        return Err(Error::bad_input(path, "the attention table is empty"));
    }
    Ok(order
        .into_iter()
        .take(perturbations)
        .map(|name| {
            let mut genes = by.remove(name).unwrap_or_default();
            let uniform = 1.0 / genes.len().max(1) as f64;
            genes.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            genes.truncate(top);
            let task = if name.contains('+') { "double" } else { "unseen_single" };
            AttentionTop { model: model.to_string(), task: task.to_string(), perturbation: name.to_string(), genes, uniform }
        })
        .collect())
}

fn fmt(r: Option<&SummaryRow>) -> String {
    r.filter(|r| !r.mean.is_nan()).map_or("—".to_string(), |r| if r.sd.is_nan() { format!("{:.3}", r.mean) } else { format!("{:.3} ± {:.3}", r.mean, r.sd) })
}

fn bytes_text(b: u64) -> String {
    let mib = b as f64 / (1u64 << 20) as f64;
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

pub fn markdown(p: &Parts) -> String {
    let mut s = String::new();
    let (screen, opts) = (p.screen, p.opts);
    let _ = writeln!(
        s,
        "# Evaluation\n\nData: `{}` ({} conditions × {} genes). Seeds: {:?}. L2 and Pearson delta over the {} genes most expressed in control; every model is scored by the same code on the same split files.",
        opts.data.display(),
        screen.conditions.len(),
        screen.n_genes(),
        opts.seeds,
        opts.top_genes.min(screen.n_genes())
    );
    for task in tasks(p.summary) {
        let _ = write!(s, "\n## {task}\n\n{}\n", task_description(&task));
        for set in p.sets.iter().filter(|set| set.task == task) {
            if set.is_partial() {
                let _ = write!(s, "\n### Where {} predicts (n = {} pairs)\n\n{}\n", set.name, set.pairs.len(), subset_caption(set));
            } else {
                let _ = write!(s, "\nEvery model below is scored on the same {} (seed, perturbation) pairs.\n", set.pairs.len());
            }
            s.push_str(&summary_markdown(p.summary, &task, &set.name));
        }
        let l2 = |m: &str| mean_l2(p.summary, &task, m).map(|r| r.mean);
        if let (Some(nc), Some(add)) = (l2("no_change"), l2("additive")) {
            let _ = writeln!(s, "\nno-change / additive L2 ratio: {:.2} (real Norman 2019 in Ahlmann-Eltze et al. 2025: 5.616 / 2.766 = 2.03)", nc / add);
        }
        s.push_str(&network_study_markdown(p.summary, &task));
        if task == "double" {
            s.push_str(&gi_markdown(p.gi));
        }
    }
    s.push_str(&efficiency_markdown(p.efficiency));
    s.push_str(&attention_markdown(p.attention));
    for t in p.structure {
        let _ = write!(s, "\n## {}\n\n{}\n\n| {} |\n|{}\n", t.title, t.caption, t.header.join(" | "), "---|".repeat(t.header.len()));
        for r in &t.rows {
            let _ = writeln!(s, "| {} |", r.join(" | "));
        }
    }
    if !p.notes.is_empty() {
        s.push_str("\n## Notes\n\n");
        for n in p.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

/// The network-quality study's rows of a task (none when the study did not run).
fn network_study_markdown(summary: &[SummaryRow], task: &str) -> String {
    let mut s = String::new();
    let (points, references) = network_points(summary, task);
    if !points.is_empty() {
        s.push_str("\nNetwork-quality study (mean L2; 0% is the intact network):\n\n| model | network | L2 (mean ± sd) | n |\n|---|---|---|---|\n");
        for pt in points.iter().filter(|pt| pt.fraction > 0.0) {
            let what = if pt.kind == "drop" { "edges removed" } else { "random edges added" };
            let _ = writeln!(s, "| {} | {:.0}% {what} | {:.3} ± {:.3} | {} |", pt.model, pt.fraction * 100.0, pt.mean_l2, pt.sd_l2, pt.n);
        }
        for (label, v) in references {
            let _ = writeln!(s, "| reference | {label} | {v:.3} | |");
        }
    }
    s
}

/// The efficiency table (empty without timing files).
fn efficiency_markdown(efficiency: &[EfficiencyRow]) -> String {
    let mut s = String::new();
    if efficiency.is_empty() {
        return s;
    }
    s.push_str("\n## Efficiency\n\n| model | parameters | training s | predict ms/perturbation (single) | predict ms/perturbation (batched) | peak memory | device | runs |\n|---|---|---|---|---|---|---|---|\n");
    for r in efficiency {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.2} | {:.3} | {} | {} | {} |",
            r.model,
            r.n_params,
            r.train_seconds,
            r.predict_ms_single,
            r.predict_ms_batched,
            bytes_text(r.peak_rss_bytes),
            r.device,
            r.runs
        );
    }
    s
}

/// The genes each model attends to most (empty without attention tables).
fn attention_markdown(attention: &[AttentionTop]) -> String {
    let mut s = String::new();
    if attention.is_empty() {
        return s;
    }
    s.push_str("\n## Attention\n\nThe genes each model attends to most (uniform attention would give every gene the same weight):\n\n");
    for a in attention {
        let genes: Vec<String> = a.genes.iter().map(|(g, w)| format!("{g} {:.1}×", w / a.uniform)).collect();
        let _ = writeln!(s, "- {} — {}: {}", a.model, a.perturbation, genes.join(", "));
    }
    for note in report_html::flat_attention_notes(attention) {
        let _ = writeln!(s, "\n{note}");
    }
    s
}

/// The summary table of one task and perturbation set.
fn summary_markdown(summary: &[SummaryRow], task: &str, set: &str) -> String {
    let mut s = String::from("\n| model | ");
    for (_, label) in TABLE_METRICS {
        let _ = write!(s, "{label} | ");
    }
    let _ = writeln!(s, "n |\n|---|{}---|", "---|".repeat(TABLE_METRICS.len()));
    for m in models(summary, task, set) {
        let get = |metric: &str| summary.iter().find(|r| r.task == task && r.perturbation_set == set && r.model == m && r.metric == metric);
        let _ = write!(s, "| {m} | ");
        for (metric, _) in TABLE_METRICS {
            let _ = write!(s, "{} | ", fmt(get(metric)));
        }
        let _ = writeln!(s, "{} |", get("l2").map_or(0, |r| r.n));
    }
    s
}

fn gi_markdown(rows: &[GiRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n### Genetic interactions\n\n");
    let seeds: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.seed).collect();
    for seed in &seeds {
        if let Some(r) = rows.iter().find(|r| r.seed == *seed) {
            let _ = writeln!(
                s,
                "- seed {seed}: {} double × gene entries, {} synergy (d ≥ {:+.3}), {} buffering (d ≤ {:+.3}) by local FDR < 0.2 (Norman 2019: +0.195 / −0.205)",
                r.entries, r.synergy, r.synergy_above, r.buffering, r.buffering_below
            );
        }
    }
    s.push_str("\n| model | TPR at FDP ≤ 0.25 (mean over seeds) |\n|---|---|\n");
    for m in gi_models(rows) {
        let v: Vec<f64> = rows.iter().filter(|r| r.model == m).map(|r| r.tpr_at_fdp_25).collect();
        let _ = writeln!(s, "| {m} | {:.3} |", v.iter().sum::<f64>() / v.len() as f64);
    }
    s
}

/// Models with interaction results, baselines first, each once.
fn gi_models(rows: &[GiRow]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in baselines::all_names().map(|m| m.to_string()).chain(rows.iter().map(|r| r.model.clone())) {
        if rows.iter().any(|r| r.model == m) && !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

/// The TPR–FDP curve of each model, pooled over seeds by averaging the TPR at each FDP
/// of a common grid.
fn gi_curves(rows: &[GiRow]) -> Vec<(String, Vec<(f64, f64)>)> {
    gi_models(rows)
        .into_iter()
        .map(|m| {
            let curves: Vec<&GiRow> = rows.iter().filter(|r| r.model == m).collect();
            let grid: Vec<(f64, f64)> = (0..=50)
                .map(|k| {
                    let fdp = k as f64 / 50.0;
                    let tpr = curves.iter().map(|r| crate::gi::tpr_at_fdp(&r.curve, fdp)).sum::<f64>() / curves.len() as f64;
                    (fdp, tpr)
                })
                .collect();
            (m, grid)
        })
        .collect()
}

/// The summary lines of one task and perturbation set, for the HTML report.
fn summary_lines(summary: &[SummaryRow], task: &str, set: &str) -> Vec<SummaryLine> {
    models(summary, task, set)
        .iter()
        .map(|m| SummaryLine {
            model: m.clone(),
            metrics: TABLE_METRICS
                .iter()
                .map(|(metric, _)| {
                    let r = summary.iter().find(|r| r.task == task && r.perturbation_set == set && &r.model == m && r.metric == *metric);
                    (metric.to_string(), r.map_or(f64::NAN, |r| r.mean), r.map_or(f64::NAN, |r| r.sd), r.map_or(0, |r| r.n))
                })
                .collect(),
        })
        .collect()
}

pub fn html(p: &Parts) -> String {
    let mut data = ReportData {
        title: "perturb — evaluation report".to_string(),
        intro: vec![
            format!(
                "Data: {} ({} conditions × {} genes). Seeds: {:?}. L2 and Pearson delta are computed over the {} genes most expressed in control, on pseudobulk log-normalised expression; every model is scored by the same code on the same split files.",
                p.opts.data.display(),
                p.screen.conditions.len(),
                p.screen.n_genes(),
                p.opts.seeds,
                p.opts.top_genes.min(p.screen.n_genes())
            ),
            "The four baselines — no change, mean, additive, linear — are shown beside every model: in the published benchmark (Ahlmann-Eltze et al., Nat Methods 2025) no deep model beat the additive baseline on doubles.".to_string(),
        ],
        efficiency: p.efficiency.to_vec(),
        attention: p.attention.to_vec(),
        tables: p.structure.to_vec(),
        notes: p.notes.to_vec(),
        ..ReportData::default()
    };
    for task in tasks(p.summary) {
        let model_names = models(p.summary, &task, ALL);
        let summary = summary_lines(p.summary, &task, ALL);
        let subsets = p
            .sets
            .iter()
            .filter(|set| set.task == task && set.is_partial())
            .map(|set| (subset_caption(set), summary_lines(p.summary, &task, &set.name)))
            .collect();
        let l2_points = model_names.iter().map(|m| (m.clone(), p.rows.iter().filter(|r| r.task == task && &r.model == m).map(|r| r.l2).collect())).collect();
        let (network, network_references) = network_points(p.summary, &task);
        data.tasks.push(TaskSection {
            task: task.clone(),
            description: task_description(&task).to_string(),
            summary,
            subsets,
            l2_points,
            baselines: baselines::all_names().map(|m| m.to_string()).collect(),
            gi_curves: if task == "double" { gi_curves(p.gi) } else { Vec::new() },
            network,
            network_references,
        });
    }
    report_html::render(&data)
}

fn mean_sd(values: &[f64]) -> String {
    let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return "—".into();
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    if v.len() < 2 {
        return format!("{mean:.3}");
    }
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
    format!("{mean:.3} ± {sd:.3}")
}

/// The attention of each model against the simulator's network (none without it).
pub fn attention_truth_table(rows: &[structure::AttentionRow]) -> Vec<TextTable> {
    if rows.is_empty() {
        return Vec::new();
    }
    vec![TextTable {
        title: "Attention against the truth network".to_string(),
        caption: format!(
            "Does a model attend to the genes the perturbation really reaches? Per perturbation of each attention table given (the study exports its first seed's), the average precision of its attention weights (the perturbed genes left out) for the genes within {} hop(s) downstream of the perturbed genes in the network the screen was generated with, averaged over perturbations with at least one such gene; a random ranking scores the base rate.",
            structure::ATTENTION_HOPS
        ),
        header: ["model", "task", "perturbations", "attention AUPRC", "random ranking"].iter().map(|h| h.to_string()).collect(),
        rows: rows.iter().map(|r| vec![r.model.clone(), r.task.clone(), r.perturbations.to_string(), format!("{:.3}", r.auprc), format!("{:.3}", r.base_rate)]).collect(),
    }]
}

/// The report's tables of learned structure: network recovery per model, edge set and
/// ranking (mean ± sd over tasks and seeds); program enrichment per model against the
/// shuffled reference; and the programs of each model's first run.
pub fn structure_tables(grn: &[GrnRow], programs: &[ProgramRow]) -> Vec<TextTable> {
    let mut tables = Vec::new();
    if !grn.is_empty() {
        tables.push(grn_table(grn));
    }
    if !programs.is_empty() {
        tables.extend(program_tables(programs));
    }
    tables
}

/// The learned networks' AUPRC against the truth, per (model, edge set, ranking).
fn grn_table(grn: &[GrnRow]) -> TextTable {
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    for r in grn {
        let k = (r.model.as_str(), r.edges, r.ranking);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let rows = keys
        .iter()
        .map(|&(model, edges, ranking)| {
            let runs: Vec<&GrnRow> = grn.iter().filter(|r| (r.model.as_str(), r.edges, r.ranking) == (model, edges, ranking)).collect();
            let of = |f: fn(&GrnRow) -> f64| runs.iter().map(|r| f(r)).collect::<Vec<f64>>();
            let label = match ranking {
                "learned" => "learned weights",
                "prior" => "prior weights alone",
                _ => "no ranking (base rate)",
            };
            vec![
                model.to_string(),
                if edges == "all" { "all".into() } else { "out of perturbed genes".into() },
                label.to_string(),
                mean_sd(&of(|r| r.auprc)),
                mean_sd(&of(|r| r.sign_agreement)),
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    mean(&of(|r| r.n_true_candidates as f64)),
                    mean(&of(|r| r.n_true as f64)),
                    mean(&of(|r| r.n_candidates as f64))
                ),
                runs.len().to_string(),
            ]
        })
        .collect();
    TextTable {
        title: "Learned network vs the simulator's truth".into(),
        caption: "AUPRC of ranking the prior graph's edges (the learned matrix's support) by weight against the network the screen was simulated with; the prior's own weights and no ranking at all are the references. 'Out of perturbed genes' keeps the edges whose source was perturbed alone in training: only their effects were observed directly. Sign agreement: share of true candidate edges whose sign is right. The simulator's truth is a noisy version of the regulon prior (by default it keeps 10% of the prior's edges and hides nine true edges for every one it keeps), so the prior's own weights rank it only a little above the base rate; with `perturb simulate --exact-prior` the prior holds every true edge.".into(),
        header: ["model", "edges", "ranking", "AUPRC", "sign agreement", "true candidates / true / candidates", "runs"].iter().map(|h| h.to_string()).collect(),
        rows,
    }
}

/// The programs' enrichment in true regulons per model (and shuffled), and the first
/// run's programs.
fn program_tables(programs: &[ProgramRow]) -> [TextTable; 2] {
    let mut keys: Vec<&str> = Vec::new();
    for r in programs {
        if !keys.contains(&r.model.as_str()) {
            keys.push(&r.model);
        }
    }
    let mut summary = Vec::new();
    let mut first_runs = Vec::new();
    for model in keys {
        let mine: Vec<&ProgramRow> = programs.iter().filter(|r| r.model == model).collect();
        let mut runs: Vec<(&str, u64)> = Vec::new();
        for r in &mine {
            if !runs.contains(&(r.task.as_str(), r.seed)) {
                runs.push((&r.task, r.seed));
            }
        }
        for partition in ["programs", "shuffled"] {
            let per_run: Vec<(f64, f64, usize)> = runs
                .iter()
                .map(|&(task, seed)| {
                    let rows: Vec<&&ProgramRow> = mine.iter().filter(|r| r.task == task && r.seed == seed && r.partition == partition).collect();
                    let enriched = rows.iter().filter(|r| r.q_value < Q_LEVEL).count();
                    let genes_enriched: usize = rows.iter().filter(|r| r.q_value < Q_LEVEL).map(|r| r.size).sum();
                    let genes: usize = rows.iter().map(|r| r.size).sum();
                    (enriched as f64 / rows.len().max(1) as f64, genes_enriched as f64 / genes.max(1) as f64, rows.len())
                })
                .collect();
            summary.push(vec![
                model.to_string(),
                if partition == "programs" { "programs".into() } else { "same sizes, genes shuffled".into() },
                format!("{:.1}", mean(&per_run.iter().map(|r| r.2 as f64).collect::<Vec<_>>())),
                mean_sd(&per_run.iter().map(|r| r.0).collect::<Vec<_>>()),
                mean_sd(&per_run.iter().map(|r| r.1).collect::<Vec<_>>()),
                runs.len().to_string(),
            ]);
        }
        let (task, seed) = runs[0];
        let mut rows: Vec<&&ProgramRow> = mine.iter().filter(|r| r.task == task && r.seed == seed && r.partition == "programs").collect();
        rows.sort_by(|a, b| b.size.cmp(&a.size).then(a.program.cmp(&b.program)));
        for r in rows {
            first_runs.push(vec![
                format!("{model} ({task}, seed {seed})"),
                r.program.to_string(),
                r.size.to_string(),
                if r.best_regulon.is_empty() { "—".into() } else { format!("{} ({} of its {} targets)", r.best_regulon, r.overlap, r.regulon_size) },
                format!("{:.2e}", r.q_value),
            ]);
        }
    }
    let enrichment = TextTable {
        title: "Gene programs vs the simulator's regulons".into(),
        caption: format!("A program is enriched when its most enriched true regulon (a source's targets, at least {} measured) has a Benjamini–Hochberg q below {Q_LEVEL} (hypergeometric test over every program × regulon). The shuffled rows keep the programs' sizes and permute the genes: the enrichment expected by chance.", structure::MIN_REGULON),
        header: ["model", "partition", "programs", "share of programs enriched", "share of genes in enriched programs", "runs"].iter().map(|h| h.to_string()).collect(),
        rows: summary,
    };
    let first = TextTable {
        title: "Gene programs of the first run".into(),
        caption: "Every program of each model's first task and seed, largest first, with its most enriched true regulon.".into(),
        header: ["model", "program", "genes", "most enriched regulon", "q"].iter().map(|h| h.to_string()).collect(),
        rows: first_runs,
    };
    [enrichment, first]
}

/// One table per task: each model against each baseline on their common perturbations,
/// with the paired 95% interval and the verdict it supports.
pub fn paired_tables(comparisons: &[crate::paired::Comparison]) -> Vec<TextTable> {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for c in comparisons {
        if !groups.contains(&(c.task.as_str(), c.perturbation_set.as_str())) {
            groups.push((c.task.as_str(), c.perturbation_set.as_str()));
        }
    }
    // Doubles first; within a task the sets in the order evaluated (all first).
    groups.sort_by_key(|(t, _)| *t != "double");
    groups
        .into_iter()
        .map(|(task, set)| TextTable {
            title: if set == ALL { format!("Paired comparisons: {task}") } else { format!("Paired comparisons: {task}, where {set} predicts") },
            caption: format!(
                "Each model against each baseline on the (seed, perturbation) pairs both predicted (n). Difference: mean of model − baseline L2, negative when the model is closer to the truth, with a 95% interval from {} bootstrap resamples of perturbations within each seed. Wins: share of pairs where the model's L2 is lower. A model is called better or worse only when the interval excludes 0. The last two columns repeat the comparison with the perturbed genes left out of the L2: their own change dominates it and says nothing of how the other genes respond.",
                crate::paired::RESAMPLES
            ),
            header: ["model", "baseline", "n", "model L2", "baseline L2", "difference [95% interval]", "wins", "verdict", "without the targets: difference [95% interval]", "verdict"]
                .iter()
                .map(|h| h.to_string())
                .collect(),
            rows: comparisons
                .iter()
                .filter(|c| c.task == task && c.perturbation_set == set && c.metric == "l2")
                .map(|c| {
                    let no_target = comparisons.iter().find(|o| {
                        o.task == c.task && o.perturbation_set == c.perturbation_set && o.model == c.model && o.baseline == c.baseline && o.metric == "l2_no_target"
                    });
                    vec![
                        c.model.clone(),
                        c.baseline.clone(),
                        c.n_pairs.to_string(),
                        format!("{:.3}", c.mean_model),
                        format!("{:.3}", c.mean_baseline),
                        format!("{:+.3} [{:+.3}, {:+.3}]", c.mean_difference, c.ci_low, c.ci_high),
                        format!("{:.0}%", 100.0 * c.win_share),
                        c.verdict().to_string(),
                        no_target.map_or("—".into(), |o| format!("{:+.3} [{:+.3}, {:+.3}]", o.mean_difference, o.ci_low, o.ci_high)),
                        no_target.map_or("—".into(), |o| o.verdict().to_string()),
                    ]
                })
                .collect(),
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_study_names_parse() {
        assert_eq!(network_study_name("app_plus_drop25"), Some(("app_plus", "drop", 0.25)));
        assert_eq!(network_study_name("app_add100"), Some(("app", "add", 1.0)));
        assert_eq!(network_study_name("app_plus"), None);
        assert_eq!(network_study_name("app_dropx"), None);
        assert_eq!(network_study_name("_drop10"), None);
    }

    #[test]
    fn each_network_study_model_gets_its_own_points_and_intact_reference() {
        let row = |model: &str, mean: f64| SummaryRow {
            task: "unseen_single".into(),
            model: model.into(),
            metric: "l2".into(),
            mean,
            sd: 0.1,
            n: 5,
            ..crate::empty_summary_row()
        };
        let summary = [row("mean", 3.0), row("a", 2.0), row("a_drop10", 2.1), row("b", 1.8), row("b_add100", 1.9), row("b_drop10", 1.7)];
        let (points, references) = network_points(&summary, "unseen_single");
        let of = |m: &str| points.iter().filter(|p| p.model == m).map(|p| (p.kind.as_str(), p.fraction, p.mean_l2)).collect::<Vec<_>>();
        assert_eq!(of("a"), [("add", 0.0, 2.0), ("drop", 0.0, 2.0), ("drop", 0.1, 2.1)]);
        assert_eq!(of("b"), [("add", 0.0, 1.8), ("add", 1.0, 1.9), ("drop", 0.0, 1.8), ("drop", 0.1, 1.7)]);
        let labels: Vec<&str> = references.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(labels, ["mean", "a (intact network)", "b (intact network)"]);
    }

    #[test]
    fn attention_tops_keep_file_order_and_rank_genes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.parquet");
        Table::new()
            .with("perturbation", Column::Str(["B", "B", "B", "A+C", "A+C", "A+C"].iter().map(|s| s.to_string()).collect()))
            .with("gene", Column::Str(["x", "y", "z", "x", "y", "z"].iter().map(|s| s.to_string()).collect()))
            .with("attention", Column::F64(vec![0.2, 0.5, 0.3, 0.6, 0.1, 0.3]))
            .write_parquet(&path)
            .unwrap();
        let tops = attention_tops("app", &path, 5, 2).unwrap();
        assert_eq!(tops.len(), 2);
        assert_eq!((tops[0].perturbation.as_str(), tops[0].task.as_str()), ("B", "unseen_single"));
        assert_eq!(tops[0].genes, [("y".to_string(), 0.5), ("z".to_string(), 0.3)]);
        assert_eq!((tops[1].perturbation.as_str(), tops[1].task.as_str()), ("A+C", "double"));
        assert!((tops[1].uniform - 1.0 / 3.0).abs() < 1e-12);
    }
}

//! The evaluator's scores as typed rows: `metrics.parquet` (one row per task, seed, model
//! and test perturbation) and `summary.parquet` (their means per task, perturbation set,
//! model and metric, with the paired comparison against the best baseline), which a study
//! copies to its top and `cargo xtask` reads (columns in [`crate::schema::metrics`] and
//! [`crate::schema::summary`]).

use std::path::Path;

use crate::schema::{metrics as ms, summary as ss};
use crate::{Column, Result, Table};

/// One test perturbation's scores. Each metric is defined in docs/metrics.md with its
/// source.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub task: String,
    pub seed: u64,
    pub model: String,
    pub perturbation: String,
    pub combo_seen: i64,
    pub l2: f64,
    /// L2 over the same genes without the perturbed genes themselves: their own change
    /// dominates L2, and cell-eval leaves them out too.
    pub l2_no_target: f64,
    pub pearson_delta: f64,
    /// Pearson delta over the top genes without the perturbed genes.
    pub pearson_delta_no_target: f64,
    /// Systema's Pearson delta: effects measured from the perturbed training conditions'
    /// centroid instead of the control, so a shift every perturbation shares earns nothing.
    pub pearson_delta_centroid: f64,
    pub pearson_delta_all: f64,
    pub mse_top20_de: f64,
    /// Mean absolute error over every gene (the Virtual Cell Challenge's MAE).
    pub mae: f64,
    /// Share of the truth's top-20 (top-100) genes by |effect| among the prediction's.
    pub des_overlap_20: f64,
    pub des_overlap_100: f64,
    pub discrimination_rank: i64,
    pub discrimination_score: f64,
    /// cell-eval's L1 perturbation discrimination, over every gene but the targets.
    pub pds_l1: f64,
}

impl MetricRow {
    /// The values of [`ms::PER_PERTURBATION`], in its order.
    pub fn values(&self) -> [f64; ms::PER_PERTURBATION.len()] {
        [
            self.l2,
            self.l2_no_target,
            self.pearson_delta,
            self.pearson_delta_no_target,
            self.pearson_delta_centroid,
            self.pearson_delta_all,
            self.mse_top20_de,
            self.mae,
            self.des_overlap_20,
            self.des_overlap_100,
            self.discrimination_score,
            self.pds_l1,
        ]
    }
}

/// One (task, perturbation set, model, metric) summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub task: String,
    /// The perturbation set the figures are over ([`ss::ALL`] or a smaller coverage).
    pub perturbation_set: String,
    pub model: String,
    pub metric: String,
    pub mean: f64,
    pub sd: f64,
    pub n: usize,
    /// On the paired metrics, the comparison against the best baseline of the set (lowest
    /// mean; not the model itself): its name (empty when there is none), and the
    /// comparison's mean difference, 95% interval and win share (NaN without one).
    pub versus: String,
    pub mean_difference: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub win_share: f64,
}

/// Writes the metrics atomically, columns in [`ms::COLUMNS`]' order.
pub fn write_metrics(rows: &[MetricRow], path: &Path) -> Result<()> {
    let mut t = Table::new()
        .with(ms::TASK, Column::of_strings(rows, |r| &r.task))
        .with(ms::SEED, Column::of_ints(rows, |r| r.seed as i64))
        .with(ms::MODEL, Column::of_strings(rows, |r| &r.model))
        .with(ms::PERTURBATION, Column::of_strings(rows, |r| &r.perturbation))
        .with(ms::COMBO_SEEN, Column::of_ints(rows, |r| r.combo_seen));
    let values: Vec<[f64; ms::PER_PERTURBATION.len()]> = rows.iter().map(MetricRow::values).collect();
    for name in &ms::COLUMNS[5..] {
        let column = match ms::PER_PERTURBATION.iter().position(|m| m == name) {
            Some(m) => Column::of_floats(&values, |v| v[m]),
            None => Column::of_ints(rows, |r| r.discrimination_rank),
        };
        t.push(name, column);
    }
    t.write_parquet(path)
}

/// The rows of a metrics file; a missing column is an error naming the file.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricRow>> {
    let t = Table::read_parquet(path)?;
    let (task, model, perturbation) = (t.strings(ms::TASK, path)?, t.strings(ms::MODEL, path)?, t.strings(ms::PERTURBATION, path)?);
    let (seed, combo_seen, rank) = (t.ints(ms::SEED, path)?, t.ints(ms::COMBO_SEEN, path)?, t.ints(ms::DISCRIMINATION_RANK, path)?);
    let metric = ms::PER_PERTURBATION.map(|m| t.floats(m, path));
    let mut v = Vec::with_capacity(metric.len());
    for m in metric {
        v.push(m?);
    }
    Ok((0..t.n_rows())
        .map(|i| MetricRow {
            task: task[i].clone(),
            seed: seed[i] as u64,
            model: model[i].clone(),
            perturbation: perturbation[i].clone(),
            combo_seen: combo_seen[i],
            l2: v[0][i],
            l2_no_target: v[1][i],
            pearson_delta: v[2][i],
            pearson_delta_no_target: v[3][i],
            pearson_delta_centroid: v[4][i],
            pearson_delta_all: v[5][i],
            mse_top20_de: v[6][i],
            mae: v[7][i],
            des_overlap_20: v[8][i],
            des_overlap_100: v[9][i],
            discrimination_rank: rank[i],
            discrimination_score: v[10][i],
            pds_l1: v[11][i],
        })
        .collect())
}

/// Writes the summary atomically.
pub fn write_summary(rows: &[SummaryRow], path: &Path) -> Result<()> {
    Table::new()
        .with(ss::TASK, Column::of_strings(rows, |r| &r.task))
        .with(ss::PERTURBATION_SET, Column::of_strings(rows, |r| &r.perturbation_set))
        .with(ss::MODEL, Column::of_strings(rows, |r| &r.model))
        .with(ss::METRIC, Column::of_strings(rows, |r| &r.metric))
        .with(ss::MEAN, Column::of_floats(rows, |r| r.mean))
        .with(ss::SD, Column::of_floats(rows, |r| r.sd))
        .with(ss::N, Column::of_ints(rows, |r| r.n as i64))
        .with(ss::VERSUS, Column::of_strings(rows, |r| &r.versus))
        .with(ss::MEAN_DIFFERENCE, Column::of_floats(rows, |r| r.mean_difference))
        .with(ss::CI_LOW, Column::of_floats(rows, |r| r.ci_low))
        .with(ss::CI_HIGH, Column::of_floats(rows, |r| r.ci_high))
        .with(ss::WIN_SHARE, Column::of_floats(rows, |r| r.win_share))
        .write_parquet(path)
}

/// The rows of a summary file; a missing column is an error naming the file.
pub fn read_summary(path: &Path) -> Result<Vec<SummaryRow>> {
    let t = Table::read_parquet(path)?;
    let text = |c| t.strings(c, path);
    let number = |c| t.floats(c, path);
    let (task, set, model, metric, versus) = (text(ss::TASK)?, text(ss::PERTURBATION_SET)?, text(ss::MODEL)?, text(ss::METRIC)?, text(ss::VERSUS)?);
    let (mean, sd, n) = (number(ss::MEAN)?, number(ss::SD)?, t.ints(ss::N, path)?);
    let (difference, low, high, wins) = (number(ss::MEAN_DIFFERENCE)?, number(ss::CI_LOW)?, number(ss::CI_HIGH)?, number(ss::WIN_SHARE)?);
    Ok((0..t.n_rows())
        .map(|i| SummaryRow {
            task: task[i].clone(),
            perturbation_set: set[i].clone(),
            model: model[i].clone(),
            metric: metric[i].clone(),
            mean: mean[i],
            sd: sd[i],
            n: n[i] as usize,
            versus: versus[i].clone(),
            mean_difference: difference[i],
            ci_low: low[i],
            ci_high: high[i],
            win_share: wins[i],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::docs;

    fn metric_row(model: &str, l2: f64) -> MetricRow {
        let v = |k: f64| l2 + k / 100.0;
        MetricRow {
            task: "double".into(),
            seed: 2,
            model: model.into(),
            perturbation: "A+B".into(),
            combo_seen: 1,
            l2,
            l2_no_target: v(1.0),
            pearson_delta: v(2.0),
            pearson_delta_no_target: v(3.0),
            pearson_delta_centroid: v(4.0),
            pearson_delta_all: f64::NAN,
            mse_top20_de: v(6.0),
            mae: v(7.0),
            des_overlap_20: v(8.0),
            des_overlap_100: v(9.0),
            discrimination_rank: 3,
            discrimination_score: v(10.0),
            pds_l1: v(11.0),
        }
    }

    #[test]
    fn metrics_keep_every_value_in_its_own_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ms::FILE);
        let rows = vec![metric_row("additive", 1.0), metric_row("app", 0.5)];
        write_metrics(&rows, &path).unwrap();
        let t = Table::read_parquet(&path).unwrap();
        assert_eq!(t.column_names(), ms::COLUMNS);
        assert_eq!(t.floats("mae", &path).unwrap(), [rows[0].mae, rows[1].mae]);
        assert_eq!(t.floats("pds_l1", &path).unwrap(), [rows[0].pds_l1, rows[1].pds_l1]);
        let back = read_metrics(&path).unwrap();
        assert!(back[1].pearson_delta_all.is_nan());
        let same = |a: &MetricRow, b: &MetricRow| {
            a.values().iter().zip(b.values()).all(|(x, y)| x.to_bits() == y.to_bits()) && a.discrimination_rank == b.discrimination_rank
        };
        assert!(rows
            .iter()
            .zip(&back)
            .all(|(a, b)| same(a, b) && (a.task == b.task && a.model == b.model && a.seed == b.seed && a.combo_seen == b.combo_seen)));
    }

    #[test]
    fn a_summary_reads_back_and_a_metrics_file_is_no_summary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ss::FILE);
        let row = SummaryRow {
            task: "double".into(),
            perturbation_set: ss::ALL.into(),
            model: "app".into(),
            metric: ms::L2.into(),
            mean: 1.5,
            sd: 0.25,
            n: 40,
            versus: "additive".into(),
            mean_difference: -0.5,
            ci_low: -0.75,
            ci_high: -0.25,
            win_share: 0.875,
        };
        write_summary(std::slice::from_ref(&row), &path).unwrap();
        assert_eq!(read_summary(&path).unwrap(), [row]);
        let metrics = dir.path().join(ms::FILE);
        write_metrics(&[metric_row("app", 1.0)], &metrics).unwrap();
        let e = read_summary(&metrics).unwrap_err().to_string();
        assert!(e.contains(ms::FILE) && e.contains("'perturbation_set'"), "{e}");
    }

    #[test]
    fn the_documented_columns_are_the_schema_columns() {
        assert_eq!(docs::columns_of("`metrics.parquet`", &[]), ms::COLUMNS);
        let values = ["all", "additive", "metrics.parquet", "vcc_score", "l2", "l2_no_target", "comparisons.parquet"];
        assert_eq!(docs::columns_of("`summary.parquet`", &values), ss::COLUMNS);
    }
}

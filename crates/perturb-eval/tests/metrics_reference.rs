//! perturb-eval's metrics against numpy/scipy on random data
//! (tests/reference/metrics_reference.py wrote the CSVs).

use std::collections::BTreeMap;
use std::path::Path;

use perturb_core::metrics::top_expressed_genes;
use perturb_eval::metrics::{l2, mse_over, pearson_over, top_de_genes};

fn read(name: &str) -> Vec<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/reference").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

#[test]
fn metrics_match_numpy() {
    let mut cases: BTreeMap<usize, [Vec<f64>; 5]> = BTreeMap::new();
    for row in read("metrics_inputs.csv") {
        let case: usize = row[0].parse().unwrap();
        let entry = cases.entry(case).or_default();
        for (k, v) in row[2..7].iter().enumerate() {
            entry[k].push(v.parse().unwrap());
        }
    }
    let mut checked = 0;
    for row in read("metrics_values.csv") {
        let case: usize = row[0].parse().unwrap();
        let want: f64 = row[2].parse().unwrap();
        let [pred, obs, obs_var, ctrl, ctrl_var] = &cases[&case];
        let top = top_expressed_genes(ctrl, 100);
        let all: Vec<usize> = (0..ctrl.len()).collect();
        let delta = |v: &[f64]| v.iter().zip(ctrl).map(|(a, c)| a - c).collect::<Vec<f64>>();
        let got = match row[1].as_str() {
            "l2" => l2(pred, obs, &top),
            "pearson_delta" => pearson_over(&delta(pred), &delta(obs), &top),
            "pearson_delta_all" => pearson_over(&delta(pred), &delta(obs), &all),
            "mse_top20_de" => mse_over(pred, obs, &top_de_genes(obs, obs_var, 50.0, ctrl, ctrl_var, 200.0, 20)),
            other => panic!("unknown quantity {other}"),
        };
        assert!((got - want).abs() <= 1e-10 * want.abs().max(1.0), "case {case} {}: {got} vs numpy {want}", row[1]);
        checked += 1;
    }
    assert_eq!(checked, 20);
}

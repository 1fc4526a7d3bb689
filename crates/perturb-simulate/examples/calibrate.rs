//! Sweeps response parameters and prints the calibration report of each setting (the
//! tool used to choose `ResponseParams::default()`).
//!
//! cargo run --release -p perturb-simulate --example calibrate -- NETWORK.parquet [full]
//!   with KEY=VALUE pairs such as amplitude=0.8 edge_weight=0.5 threshold_share=0.25

use perturb_simulate::{simulate, Preset, Scale, SimulateOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let network = args.first().expect("usage: calibrate NETWORK.parquet [full] [key=value ...]");
    let scale = if args.iter().any(|a| a == "full") { Scale::Full } else { Scale::Quick };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = SimulateOptions::new(Preset::NormanLike, scale, 1, dir.path().join("screen.h5ad"));
    opts.network = network.into();
    opts.report = true;
    for kv in args.iter().filter(|a| a.contains('=')) {
        let (k, v) = kv.split_once('=').expect("key=value");
        if k == "padding" {
            opts.padding_genes = Some(v.into());
            continue;
        }
        let x: f64 = v.parse().expect("number");
        let p = &mut opts.response;
        match k {
            "amplitude" => p.amplitude = x,
            "edge_weight" => p.edge_weight = x,
            "threshold_share" => p.threshold_share = x,
            "half_saturation" => p.half_saturation = x,
            "shift_lo" => p.activation_shift.0 = x,
            "shift_hi" => p.activation_shift.1 = x,
            "dispersion" => p.dispersion = x,
            "seed" => opts.seed = x as u64,
            other => panic!("unknown key {other}"),
        }
    }
    let s = simulate(&opts).expect("simulate");
    for line in s.report.expect("report asked for").lines() {
        println!("{line}");
    }
}

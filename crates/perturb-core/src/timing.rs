//! Measurements of one run — wall time, prediction latency, peak memory — written to
//! `timing.json` beside a stage's artifacts. They change from run to run, so they are
//! kept out of the manifests, whose bytes depend on the inputs alone.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The file name of a run's measurements.
pub const FILE: &str = "timing.json";

/// What the efficiency table needs of one trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTiming {
    pub n_params: usize,
    pub epochs: usize,
    pub train_seconds: f64,
    /// Milliseconds per perturbation predicted one at a time (head features included).
    pub predict_ms_single: f64,
    /// Milliseconds per perturbation predicted in one batch.
    pub predict_ms_batched: f64,
    /// Of which once per prediction call, whatever the number of perturbations: the
    /// graph's tensors and the gene embeddings every perturbation reuses (milliseconds;
    /// NaN in a timing file from before it was measured).
    #[serde(default = "not_measured")]
    pub predict_setup_ms: f64,
    pub batch: usize,
    /// Peak resident memory of the training process.
    pub peak_rss_bytes: u64,
    pub device: String,
}

fn not_measured() -> f64 {
    f64::NAN
}

impl ModelTiming {
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("timing serialises");
        crate::table::write_bytes_atomically(path, &json)
    }

    pub fn read(path: &Path) -> Result<ModelTiming> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::bad_input(path, format!("not a timing file ({e})")))
    }
}

/// Peak resident set size of this process so far, in bytes (None where the platform
/// does not say).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_memory_grows_with_an_allocation() {
        let before = peak_rss_bytes();
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        if let (Some(b), Some(a)) = (before, peak_rss_bytes()) {
            assert!(a >= b + (60 << 20), "{b} -> {a}");
        }
    }

    #[test]
    fn timing_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let t = ModelTiming {
            n_params: 10,
            epochs: 3,
            train_seconds: 1.5,
            predict_ms_single: 0.4,
            predict_ms_batched: 0.1,
            predict_setup_ms: 2.0,
            batch: 32,
            peak_rss_bytes: 1 << 20,
            device: "cpu".into(),
        };
        let p = dir.path().join(FILE);
        t.write(&p).unwrap();
        assert_eq!(ModelTiming::read(&p).unwrap(), t);
        std::fs::write(&p, "{").unwrap();
        assert!(ModelTiming::read(&p).unwrap_err().to_string().contains("not a timing file"));
    }
}

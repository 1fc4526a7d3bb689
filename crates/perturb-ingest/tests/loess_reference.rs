//! Compares `loess_fitted` with fits from scikit-misc 0.5.3 (`skmisc.loess.loess(x, y,
//! span, degree).fit().outputs.fitted_values`), stored by
//! `tests/fixtures_loess/make_loess_reference.py` as `loess_<case>_span<s>_deg<d>.csv`.

use std::path::{Path, PathBuf};

use perturb_ingest::loess::loess_fitted;

const MAX_REL_ERR: f64 = 1e-7;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures_loess")
}

/// `loess_<case>_span<span>_deg<degree>.csv` -> (span, degree).
fn parse_name(name: &str) -> (f64, usize) {
    let stem = name.strip_suffix(".csv").unwrap();
    let (rest, deg) = stem.rsplit_once("_deg").expect("no _deg in fixture name");
    let (_, span) = rest.rsplit_once("_span").expect("no _span in fixture name");
    (span.parse().unwrap(), deg.parse().unwrap())
}

fn read_csv(path: &Path) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("x,y,fitted"), "{}", path.display());
    let (mut x, mut y, mut f) = (Vec::new(), Vec::new(), Vec::new());
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let v: Vec<f64> = line.split(',').map(|s| s.trim().parse().unwrap()).collect();
        assert_eq!(v.len(), 3, "{line}");
        x.push(v[0]);
        y.push(v[1]);
        f.push(v[2]);
    }
    (x, y, f)
}

#[test]
fn matches_skmisc_reference_fits() {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("loess_") && n.ends_with(".csv"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "missing fixtures: {names:?}");

    let mut failures = Vec::new();
    for name in &names {
        let (span, degree) = parse_name(name);
        let (x, y, reference) = read_csv(&fixture_dir().join(name));
        let fitted = loess_fitted(&x, &y, span, degree).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(fitted.len(), reference.len());
        let (mut worst, mut worst_i) = (0.0f64, 0);
        for (i, (&got, &want)) in fitted.iter().zip(&reference).enumerate() {
            let rel = (got - want).abs() / want.abs().max(1e-3);
            if rel.is_nan() || rel > worst {
                worst = rel;
                worst_i = i;
            }
        }
        println!("{name}: n={} max rel err {worst:.3e} at i={worst_i} (x={}, got {}, skmisc {})", x.len(), x[worst_i], fitted[worst_i], reference[worst_i]);
        if worst.is_nan() || worst > MAX_REL_ERR {
            failures.push(format!("{name}: max rel err {worst:.3e} at i={worst_i}: x={} got {} skmisc {}", x[worst_i], fitted[worst_i], reference[worst_i]));
        }
    }
    assert!(failures.is_empty(), "loess differs from skmisc:\n{}", failures.join("\n"));
}

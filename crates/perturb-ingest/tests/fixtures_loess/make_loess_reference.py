#!/usr/bin/env python3
"""Generate reference fits for crates/perturb-ingest/src/loess.rs.

Runs skmisc.loess.loess(x, y, span=..., degree=...).fit() with its defaults
(family="gaussian", surface="interpolate", statistics="approximate", cell=0.2)
exactly as scanpy's highly_variable_genes(flavor="seurat_v3") does, and writes
`loess_<case>_span<span>_deg<degree>.csv` with columns x,y,fitted.

Usage: /opt/refvenv/bin/python make_loess_reference.py   (scikit-misc 0.5.3)
"""
import os

import numpy as np
from skmisc.loess import loess

OUT = os.path.dirname(os.path.abspath(__file__))


def nb_trend(n_genes, n_cells, seed):
    """log10(mean) / log10(var) of simulated negative-binomial genes."""
    rng = np.random.default_rng(seed)
    mu = 10 ** rng.uniform(-2.5, 2.0, n_genes)
    theta = 10 ** rng.uniform(-0.5, 1.5, n_genes)
    p = theta / (theta + mu)
    counts = rng.negative_binomial(theta[:, None], p[:, None], size=(n_genes, n_cells))
    mean = counts.mean(axis=1)
    var = counts.var(axis=1, ddof=1)
    keep = var > 0  # scanpy fits only non-constant genes
    return np.log10(mean[keep]), np.log10(var[keep])


def case_nb150():
    # low-count genes share identical (mean, var) -> naturally duplicated x
    x, y = nb_trend(170, 300, seed=1)
    x, y = x[:150].copy(), y[:150].copy()
    # a few explicit duplicated x values with different y
    x[10:14] = x[3]
    x[40:42] = x[77]
    return x, y


def case_nb1000():
    x, y = nb_trend(1100, 400, seed=2)
    return x[:1000], y[:1000]


def case_ties():
    # 300 points on 25 distinct x values (k-d tree median-tie rule, tied
    # neighbourhood boundaries)
    rng = np.random.default_rng(3)
    levels = np.sort(rng.uniform(-3.0, 2.0, 25))
    x = levels[rng.integers(0, 25, 300)]
    y = 1.1 * x + 0.2 * np.sin(3 * x) + rng.normal(0, 0.25, 300)
    return x, y


def case_small():
    # n = 20, span 0.3 -> q = 6 neighbours, fc = floor(20*0.3*0.2) = 1 so the
    # k-d tree splits down to single points (every datum becomes a vertex)
    rng = np.random.default_rng(4)
    x = rng.uniform(-2.0, 1.5, 20)
    y = x + 0.3 * x**2 + rng.normal(0, 0.2, 20)
    return x, y


def case_deg1():
    rng = np.random.default_rng(5)
    x = rng.uniform(-3.0, 2.0, 200)
    y = x + 0.4 * np.cos(2 * x) + rng.normal(0, 0.3, 200)
    return x, y


CASES = [
    ("nb150", case_nb150, 0.3, 2),
    ("nb1000", case_nb1000, 0.3, 2),
    ("ties", case_ties, 0.3, 2),
    ("small", case_small, 0.3, 2),
    ("deg1", case_deg1, 0.75, 1),
]


def main():
    for name, fn, span, degree in CASES:
        x, y = fn()
        model = loess(x, y, span=span, degree=degree)
        model.fit()
        fitted = np.asarray(model.outputs.fitted_values)
        path = os.path.join(OUT, f"loess_{name}_span{span}_deg{degree}.csv")
        with open(path, "w") as fh:
            fh.write("x,y,fitted\n")
            for a, b, c in zip(x, y, fitted):
                fh.write(f"{float(a)!r},{float(b)!r},{float(c)!r}\n")
        print(f"{path}: n={len(x)} distinct_x={len(np.unique(x))}")


if __name__ == "__main__":
    main()

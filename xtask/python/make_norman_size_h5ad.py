"""Writes a Norman-2019-size screen for `cargo xtask bench ingest`.

usage: make_norman_size_h5ad.py OUT.h5ad N_CELLS N_GENES SEED

Counts are gamma-Poisson (negative binomial, dispersion 0.3) with log-normal gene means
(mu = exp(N(-3.0, 2.2))) and log-normal depth (sd 0.35): that gives ~10,600 UMIs and ~2,900
detected genes per cell (density ~15.7%), close to the Norman K562 screen. Labels follow
GEARS: 105 singles `G+ctrl`, 131 doubles `A+B` and `ctrl` (Norman's 237 conditions), with
~14% of cells as controls. X is CSR float32, written by anndata without compression, as GEARS
files are. Only the timing matters here; the biology is in perturb-simulate.
"""

import sys

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp


def main() -> None:
    out, n_cells, n_genes, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(seed)
    genes = [f"GENE{i:05d}" for i in range(n_genes)]
    targets = rng.choice(n_genes, size=105, replace=False)
    singles = [f"{genes[t]}+ctrl" for t in targets]
    pairs = set()
    while len(pairs) < 131:
        a, b = sorted(rng.choice(targets, size=2, replace=False))
        pairs.add(f"{genes[a]}+{genes[b]}")
    conditions = ["ctrl"] + singles + sorted(pairs)
    weights = np.full(len(conditions), 1.0)
    weights[0] = 0.14 / 0.86 * (len(conditions) - 1)
    labels = rng.choice(len(conditions), size=n_cells, p=weights / weights.sum())

    mu = np.exp(rng.normal(-3.0, 2.2, n_genes))
    r = 1.0 / 0.3
    blocks = []
    for start in range(0, n_cells, 1000):
        n = min(1000, n_cells - start)
        depth = np.exp(rng.normal(0.0, 0.35, n))[:, None]
        counts = rng.poisson(rng.gamma(r, (mu * depth) / r)).astype(np.float32)
        blocks.append(sp.csr_matrix(counts))
    x = sp.vstack(blocks, format="csr")
    obs = pd.DataFrame(
        {"condition": pd.Categorical.from_codes(labels, conditions)},
        index=[f"cell{i:06d}" for i in range(n_cells)],
    )
    var = pd.DataFrame({"gene_name": genes}, index=[f"ENSG{i:011d}" for i in range(n_genes)])
    ad.AnnData(x, obs=obs, var=var).write_h5ad(out)
    print(f"{n_cells} cells x {n_genes} genes, {x.nnz} non-zeros (density {x.nnz / n_cells / n_genes:.3f})")


if __name__ == "__main__":
    main()

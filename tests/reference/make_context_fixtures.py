"""Writes the fixtures and scanpy references of `perturb ingest --context-key`.

Run from the repository root with the pinned packages of tests/reference/requirements.txt:

    /tmp/refvenv/bin/python tests/reference/make_context_fixtures.py

Output:
- tests/fixtures/reference/datlinger_stimulated_pseudobulk.csv: scanpy's pseudobulk of the
  Datlinger 2021 Jurkat screen's stimulated cells *alone* (normalize_total 1e4, log1p, mean
  and ddof-1 variance per target), for the control and four targets over the 150 genes
  most expressed in that context's control. The Rust test ingests the whole file with
  `--context-key perturbation_2` and compares its `stimulated` folder with these numbers.
- tests/fixtures/reference/papalexi_batch_matched_pseudobulk.csv: the Papalexi 2021 THP-1
  screen read against each replicate's own controls (`--batch-key bio_rep`): every cell's
  log-normalised value minus its replicate's control mean plus the pooled control mean,
  then mean and ddof-1 variance per target, for the control and four targets over the 100
  genes most expressed in control.
- tests/fixtures/h5ad/contexts.h5ad: a small two-line screen (obs `condition`, `cell_line`
  with lines A and B, `donor` whose donor d2 has no control cells, `lane` with a lane of
  one cell) for the errors a user meets with `--context-key`.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]
DATLINGER = ROOT / "data" / "examples" / "datlinger2021_subset_7500cells_2000genes.h5ad"
REFERENCE = ROOT / "tests" / "fixtures" / "reference"
H5AD = ROOT / "tests" / "fixtures" / "h5ad"
TARGETS = ["control", "EGR1", "JUN", "NR4A1", "RELA"]
N_GENES = 150


def datlinger_reference() -> None:
    adata = ad.read_h5ad(DATLINGER)
    adata = adata[adata.obs["perturbation_2"] == "stimulated"].copy()
    adata.X = sp.csr_matrix(adata.X, dtype=np.float64)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    dense = adata.X.toarray()
    target = adata.obs["target"].astype(str).to_numpy()
    control_mean = dense[target == "control"].mean(axis=0)
    genes = np.argsort(-control_mean, kind="stable")[:N_GENES]
    rows = []
    for t in TARGETS:
        block = dense[target == t][:, genes]
        mean, var = block.mean(axis=0), block.var(axis=0, ddof=1)
        for j, g in enumerate(genes):
            rows.append((t, adata.var_names[g], mean[j], var[j], block.shape[0]))
    pd.DataFrame(rows, columns=["target", "gene", "mean", "variance", "n_cells"]).to_csv(
        REFERENCE / "datlinger_stimulated_pseudobulk.csv", index=False, float_format="%.17g"
    )


def papalexi_batch_reference() -> None:
    adata = ad.read_h5ad(ROOT / "data" / "examples" / "papalexi2021_lowmoi_299genes_20729cells.h5ad")
    adata.X = sp.csr_matrix(adata.X, dtype=np.float64)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    dense = adata.X.toarray()
    target = adata.obs["target"].astype(str).to_numpy()
    batch = adata.obs["bio_rep"].astype(str).to_numpy()
    control = target == "non-targeting"
    pooled = dense[control].mean(axis=0)
    adjusted = dense.copy()
    for b in np.unique(batch):
        adjusted[batch == b] += pooled - dense[control & (batch == b)].mean(axis=0)
    genes = np.argsort(-pooled, kind="stable")[:100]
    rows = []
    for t in ["non-targeting", "IFNGR2", "JAK2", "STAT1", "IRF1"]:
        block = adjusted[target == t][:, genes]
        mean, var = block.mean(axis=0), block.var(axis=0, ddof=1)
        for j, g in enumerate(genes):
            rows.append((t, adata.var_names[g], mean[j], var[j], block.shape[0]))
    pd.DataFrame(rows, columns=["target", "gene", "mean", "variance", "n_cells"]).to_csv(
        REFERENCE / "papalexi_batch_matched_pseudobulk.csv", index=False, float_format="%.17g"
    )


def contexts_fixture() -> None:
    rng = np.random.default_rng(2021)
    conditions = ["ctrl"] * 12 + ["AAA+ctrl"] * 8 + ["BBB+ctrl"] * 8
    labels = conditions * 2
    line = ["A"] * len(conditions) + ["B"] * len(conditions)
    # Donor d2 holds only perturbed cells of line B; lane L9 holds one cell.
    donor = ["d1"] * len(conditions) + ["d1" if c == "ctrl" else "d2" for c in conditions]
    lane = ["L1"] * (len(labels) - 1) + ["L9"]
    genes = ["AAA", "BBB"] + [f"G{i:02d}" for i in range(3, 21)]
    counts = rng.poisson(5.0, size=(len(labels), len(genes))).astype(np.float32)
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(labels),
            "cell_line": pd.Categorical(line),
            "donor": pd.Categorical(donor),
            "lane": pd.Categorical(lane),
        },
        index=[f"cell{i:03d}" for i in range(len(labels))],
    )
    ad.AnnData(sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(H5AD / "contexts.h5ad")


def main() -> None:
    datlinger_reference()
    papalexi_batch_reference()
    contexts_fixture()
    outputs = ["datlinger_stimulated_pseudobulk.csv", "papalexi_batch_matched_pseudobulk.csv"]
    for path in [REFERENCE / name for name in outputs] + [H5AD / "contexts.h5ad"]:
        print(f"{path.stat().st_size:>9}  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

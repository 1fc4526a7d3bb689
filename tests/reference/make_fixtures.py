"""Writes the h5ad fixtures and scanpy reference results the Rust tests compare against.

Run from the repository root with the pinned packages in tests/reference/requirements.txt:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install -r tests/reference/requirements.txt
    /tmp/refvenv/bin/python tests/reference/make_fixtures.py

Every file is written by the real `anndata` (or, for the deliberately broken ones, by
h5py editing a file anndata wrote), and every reference number comes from the real
`scanpy`. The data are deterministic (fixed seed), so re-running rewrites identical
references. Output: tests/fixtures/h5ad/*.h5ad and tests/fixtures/reference/*.csv.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]
H5AD = ROOT / "tests" / "fixtures" / "h5ad"
REFERENCE = ROOT / "tests" / "fixtures" / "reference"

N_TOP_GENES = 30
TARGET_SUM = 1e4

# Conditions in GEARS syntax with their cell counts. ZZZ9 is a perturbed gene that is
# not among the measured genes: ingestion must keep and flag it.
CONDITIONS = {
    "ctrl": 60,
    "AAA+ctrl": 30,
    "ctrl+BBB": 30,
    "CCC+ctrl": 30,
    "AAA+BBB": 30,
    "BBB+CCC": 30,
    "ZZZ9+ctrl": 30,
}
N_GENES = 150


def gene_symbols() -> list[str]:
    return ["AAA", "BBB", "CCC"] + [f"G{i:03d}" for i in range(4, N_GENES + 1)]


def ensembl_ids() -> list[str]:
    return [f"ENSG{i:011d}" for i in range(1, N_GENES + 1)]


def simulate_counts(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Negative-binomial counts with gene-specific means and dispersions, a per-condition
    shift for a handful of genes, one gene that is zero everywhere, and varying depth."""
    labels = [c for c, n in CONDITIONS.items() for _ in range(n)]
    n_cells = len(labels)
    base = np.exp(rng.normal(0.0, 1.6, N_GENES))  # wide spread of means, as in real data
    base[7] = 0.0  # a gene never detected
    dispersion = np.exp(rng.normal(-1.0, 0.7, N_GENES))
    effects = {c: np.exp(rng.normal(0.0, 0.5, N_GENES) * (rng.random(N_GENES) < 0.1)) for c in CONDITIONS}
    depth = np.exp(rng.normal(0.0, 0.4, n_cells))
    counts = np.zeros((n_cells, N_GENES), dtype=np.int64)
    for i, label in enumerate(labels):
        mu = base * effects[label] * depth[i]
        r = 1.0 / dispersion
        p = r / (r + mu)
        counts[i] = rng.negative_binomial(r, p)
    return counts, labels


def frame(labels: list[str], key: str = "condition") -> pd.DataFrame:
    obs = pd.DataFrame({key: pd.Categorical(labels)}, index=[f"cell{i:04d}" for i in range(len(labels))])
    return obs


def var_symbols() -> pd.DataFrame:
    return pd.DataFrame(index=gene_symbols())


def lognorm(counts) -> ad.AnnData:
    """scanpy's normalize_total + log1p in float64."""
    a = ad.AnnData(sp.csr_matrix(np.asarray(counts, dtype=np.float64)))
    sc.pp.normalize_total(a, target_sum=TARGET_SUM)
    sc.pp.log1p(a)
    return a


def write(adata: ad.AnnData, name: str, **kw) -> Path:
    path = H5AD / name
    adata.write_h5ad(path, **kw)
    return path


def write_count_encodings(counts: np.ndarray, labels: list[str]) -> None:
    obs, var = frame(labels), var_symbols()
    csr32 = sp.csr_matrix(counts.astype(np.float32))
    write(ad.AnnData(csr32, obs=obs, var=var), "csr_f32.h5ad")

    csr64 = sp.csr_matrix(counts.astype(np.float64))
    # scipy shrinks index arrays to int32 when the values fit; force int64 as large files have.
    csr64.indices = csr64.indices.astype(np.int64)
    csr64.indptr = csr64.indptr.astype(np.int64)
    path = write(ad.AnnData(csr64, obs=obs, var=var), "csr_i64_f64.h5ad")
    with h5py.File(path, "r") as f:
        assert f["X/indptr"].dtype == np.int64 and f["X/indices"].dtype == np.int64, "int64 indices not kept"

    write(ad.AnnData(sp.csc_matrix(counts.astype(np.float64)), obs=obs, var=var), "csc_f64.h5ad")
    write(ad.AnnData(counts.astype(np.int64), obs=obs, var=var), "dense_int.h5ad")
    write(ad.AnnData(csr32, obs=obs, var=var), "csr_gzip.h5ad", compression="gzip")
    write(ad.AnnData(csr32, obs=obs, var=var), "lzf.h5ad", compression="lzf")


def write_layouts(counts: np.ndarray, labels: list[str]) -> None:
    """GEARS' own schema, the raw slot, and scPerturb-style labels."""
    obs = frame(labels)
    logx = lognorm(counts).X.astype(np.float32)
    var = pd.DataFrame({"gene_name": gene_symbols()}, index=ensembl_ids())
    gears = ad.AnnData(logx, obs=obs, var=var)
    gears.layers["counts"] = sp.csr_matrix(counts.astype(np.float32))
    write(gears, "gears_lognorm.h5ad")

    with_raw = ad.AnnData(logx, obs=obs, var=var_symbols())
    with_raw.raw = ad.AnnData(sp.csr_matrix(counts.astype(np.float32)), var=var_symbols())
    write(with_raw, "raw_slot.h5ad")

    scperturb = {"ctrl": "control", "AAA+ctrl": "AAA", "ctrl+BBB": "BBB", "AAA+BBB": "AAA_BBB"}
    keep = [i for i, l in enumerate(labels) if l in scperturb]
    sub = ad.AnnData(
        sp.csr_matrix(counts[keep].astype(np.float32)),
        obs=frame([scperturb[labels[i]] for i in keep], key="perturbation"),
        var=var_symbols(),
    )
    write(sub, "scperturb_style.h5ad")

    missing = pd.Categorical(labels)
    codes = missing.codes.copy()
    codes[[3, 70, 100, 150, 200]] = -1  # anndata stores a missing category as code -1
    obs_missing = pd.DataFrame(
        {"condition": pd.Categorical.from_codes(codes, missing.categories)}, index=obs.index
    )
    write(ad.AnnData(sp.csr_matrix(counts.astype(np.float32)), obs=obs_missing, var=var_symbols()), "missing_category.h5ad")


def write_bad_inputs(counts: np.ndarray, labels: list[str]) -> None:
    obs, var = frame(labels), var_symbols()
    good = H5AD / "csr_f32.h5ad"

    data = good.read_bytes()
    (H5AD / "truncated.h5ad").write_bytes(data[: len(data) // 2])
    (H5AD / "not_hdf5.h5ad").write_text("cell,condition,G1\nc1,ctrl,3\n")

    write(ad.AnnData(obs=obs, var=var), "no_x.h5ad")
    with h5py.File(H5AD / "no_x.h5ad", "r") as f:
        assert "X" not in f, "anndata wrote an X after all"

    negative = counts.astype(np.float32)
    negative[5, 10] = -3
    write(ad.AnnData(sp.csr_matrix(negative), obs=obs, var=var), "negative_counts.h5ad")

    nan = counts.astype(np.float32)
    nan[9, 2] = np.nan
    write(ad.AnnData(sp.csr_matrix(nan), obs=obs, var=var), "nan_counts.h5ad")

    dup = gene_symbols()
    dup[20] = dup[19]
    dup_ad = ad.AnnData(sp.csr_matrix(counts.astype(np.float32)), obs=obs, var=pd.DataFrame(index=dup))
    write(dup_ad, "dup_genes.h5ad")

    no_control = [l if l != "ctrl" else "AAA+ctrl" for l in labels]
    write(ad.AnnData(sp.csr_matrix(counts.astype(np.float32)), obs=frame(no_control), var=var), "no_control.h5ad")

    # A filter we do not decode: blosc (HDF5 filter id 32001) through hdf5plugin.
    import hdf5plugin

    blosc = H5AD / "blosc.h5ad"
    shutil.copyfile(good, blosc)
    with h5py.File(blosc, "r+") as f:
        values = f["X/data"][...]
        del f["X/data"]
        f.create_dataset("X/data", data=values, chunks=(256,), **hdf5plugin.Blosc())

    # A matrix encoding anndata defines elsewhere but h5ad X never uses here.
    coo = H5AD / "coo_encoding.h5ad"
    shutil.copyfile(good, coo)
    with h5py.File(coo, "r+") as f:
        f["X"].attrs["encoding-type"] = "coo_matrix"


def write_references(counts: np.ndarray, labels: list[str]) -> None:
    genes = gene_symbols()
    log = lognorm(counts)
    dense = log.X.toarray()
    label_array = np.array(labels)

    rows = []
    for label in CONDITIONS:
        block = dense[label_array == label]
        mean = block.mean(axis=0)
        var = block.var(axis=0, ddof=1)
        for g, gene in enumerate(genes):
            rows.append((label, gene, mean[g], var[g], block.shape[0]))
    pd.DataFrame(rows, columns=["condition", "gene", "mean", "variance", "n_cells"]).to_csv(
        REFERENCE / "lognorm_pseudobulk.csv", index=False, float_format="%.17g"
    )

    control_mean = dense[label_array == "ctrl"].mean(axis=0)
    rank = np.empty(len(genes), dtype=np.int64)
    rank[np.argsort(-control_mean, kind="stable")] = np.arange(1, len(genes) + 1)
    pd.DataFrame({"gene": genes, "control_mean": control_mean, "rank": rank}).to_csv(
        REFERENCE / "control_mean.csv", index=False, float_format="%.17g"
    )

    def hvg(adata: ad.AnnData, flavor: str, name: str, columns: list[str], **kw) -> None:
        a = adata.copy()
        a.var_names = genes
        sc.pp.highly_variable_genes(a, flavor=flavor, **kw)
        table = a.var[columns + ["highly_variable"]].copy()
        table.insert(0, "gene", genes)
        table.to_csv(REFERENCE / name, index=False, float_format="%.17g")

    dispersion_columns = ["means", "dispersions", "dispersions_norm"]
    hvg(log, "seurat", "hvg_seurat.csv", dispersion_columns, n_top_genes=N_TOP_GENES)
    hvg(log, "seurat", "hvg_seurat_cutoffs.csv", dispersion_columns)
    hvg(log, "cell_ranger", "hvg_cell_ranger.csv", dispersion_columns, n_top_genes=N_TOP_GENES)
    hvg(log, "cell_ranger", "hvg_cell_ranger_cutoffs.csv", dispersion_columns)
    raw = ad.AnnData(sp.csr_matrix(counts.astype(np.float64)))
    hvg(
        raw,
        "seurat_v3",
        "hvg_seurat_v3.csv",
        ["means", "variances", "variances_norm", "highly_variable_rank"],
        n_top_genes=N_TOP_GENES,
    )


def main() -> None:
    H5AD.mkdir(parents=True, exist_ok=True)
    REFERENCE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20190501)
    counts, labels = simulate_counts(rng)
    write_count_encodings(counts, labels)
    write_layouts(counts, labels)
    write_bad_inputs(counts, labels)
    write_references(counts, labels)
    # The README's first command runs on this small GEARS-schema screen.
    example = ROOT / "data" / "example"
    example.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(H5AD / "gears_lognorm.h5ad", example / "screen.h5ad")
    for path in sorted(H5AD.iterdir()) + sorted(REFERENCE.iterdir()):
        print(f"{path.stat().st_size:>9}  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

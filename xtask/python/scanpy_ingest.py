"""The steps of `perturb ingest`, done with scanpy, for `cargo xtask bench ingest`.

usage: scanpy_ingest.py IN.h5ad N_TOP_GENES HVG_OUT.txt

read_h5ad, normalize_total(1e4), log1p, highly_variable_genes(flavor="seurat"), then the
per-condition mean and variance of the log-normalised values (scanpy.get.aggregate) and the
control mean. Writes the selected genes (var gene_name), one per line, to HVG_OUT.txt and
prints one line so the caller can check both tools saw the same screen.
"""

import sys

import numpy as np
import scanpy as sc


def main() -> None:
    path, n_top, hvg_out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    adata = sc.read_h5ad(path)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, flavor="seurat", n_top_genes=n_top)
    pseudobulk = sc.get.aggregate(adata, by="condition", func=["mean", "var"])
    control_mean = np.asarray(pseudobulk[pseudobulk.obs_names == "ctrl"].layers["mean"]).ravel()
    selected = adata.var.loc[adata.var["highly_variable"], "gene_name"]
    with open(hvg_out, "w") as f:
        f.write("".join(f"{g}\n" for g in selected))
    print(
        f"{adata.n_obs} cells x {adata.n_vars} genes, {pseudobulk.n_obs} conditions, "
        f"{int(adata.var['highly_variable'].sum())} highly variable, control mean sum {control_mean.sum():.6f}"
    )


if __name__ == "__main__":
    main()

"""CI check: the simulated screen opens in the real anndata with GEARS' schema.

usage: check_simulated_h5ad.py SCREEN.h5ad
"""

import sys

import anndata as ad
import numpy as np
from importlib.metadata import version


def main() -> None:
    a = ad.read_h5ad(sys.argv[1])
    assert list(a.obs.columns) == ["condition", "cell_type"], list(a.obs.columns)
    assert "gene_name" in a.var.columns
    labels = set(a.obs["condition"].cat.categories)
    assert "ctrl" in labels
    assert any(l.endswith("+ctrl") for l in labels) and any("+" in l and "ctrl" not in l for l in labels)
    x = a.X
    assert x.format == "csr" and x.dtype == np.float32
    assert np.all(x.data > 0) and np.all(x.data == np.round(x.data)), "raw counts"
    assert a.var_names.is_unique
    print(f"anndata {version('anndata')} reads {sys.argv[1]}: {a.n_obs} cells x {a.n_vars} genes, {len(labels)} conditions")


if __name__ == "__main__":
    main()

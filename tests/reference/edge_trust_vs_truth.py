"""How far `perturb train --edge-trust` moved each prior edge, and whether the edges it
distrusts are the prior's wrong ones (absent from the network the simulated screen was
generated with). A diagnostic for the README's `app_plus_trust` figures, not a test.

    python3 -m venv /tmp/pa && /tmp/pa/bin/pip install pyarrow==26.0.1 numpy==2.4.6
    /tmp/pa/bin/python tests/reference/edge_trust_vs_truth.py RESULTS [MODEL]

RESULTS is a `perturb reproduce` folder of a simulated screen whose study trained MODEL
(default `app_plus_trust`); one line per model folder (task and seed).
"""
import glob
import sys

import numpy as np
import pyarrow.parquet as pq


def main(results: str, model: str) -> None:
    truth = pq.read_table(f"{results}/data/screen.network.parquet").to_pydict()
    true_edges = set(zip(truth["source"], truth["target"]))
    paths = sorted(glob.glob(f"{results}/models/{model}/*/trust.parquet"))
    if not paths:
        sys.exit(f"{results}/models/{model}: no trust.parquet (was the model trained with --edge-trust?)")
    for path in paths:
        t = pq.read_table(path).to_pydict()
        trust = np.array(t["trust"])
        perturbed = np.array(t["source_perturbed"])
        is_true = np.array([(a, b) in true_edges for a, b in zip(t["source"], t["target"])])
        moved = np.abs(trust - 1) > 0.05

        def share(mask):
            return f"{is_true[mask].mean():.3f} of {mask.sum()}" if mask.sum() else "none"

        print(
            f"{path.split('/')[-2]}: {len(trust)} edges, {moved.sum()} moved > 5% ({moved[perturbed].sum()} out of trained genes),"
            f" trust {trust.min():.3f}-{trust.max():.3f}; in the truth: all {is_true.mean():.3f},"
            f" trust < 0.9 {share(trust < 0.9)}, trust > 1.1 {share(trust > 1.1)}"
        )


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "app_plus_trust")

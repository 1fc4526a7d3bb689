"""Reference values for perturb-eval's metrics, computed with numpy/scipy on random data.

usage: python tests/reference/metrics_reference.py   (writes tests/fixtures/reference/metrics_*.csv)

For each case: a control profile, an observed and a predicted profile over 300 genes,
variances for the Welch test (50 perturbed cells, 200 control cells). Quantities: L2 and
Pearson delta over the 100 genes most expressed in control, Pearson delta on all genes,
MSE on the 20 genes with the largest Welch |t|.
"""

from pathlib import Path

import numpy as np
from scipy import stats

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
N_GENES, TOP, DE, N_OBS, N_CTRL = 300, 100, 20, 50, 200


def main() -> None:
    rng = np.random.default_rng(2025)
    inputs, values = [], []
    for case in range(5):
        ctrl = rng.gamma(1.0, 1.0, N_GENES)
        ctrl_var = rng.gamma(2.0, 0.1, N_GENES)
        obs = ctrl + rng.normal(0, 0.3, N_GENES) * (rng.random(N_GENES) < 0.3)
        obs_var = rng.gamma(2.0, 0.1, N_GENES)
        pred = obs + rng.normal(0, 0.2, N_GENES)
        top = np.argsort(-ctrl, kind="stable")[:TOP]
        t = (obs - ctrl) / np.sqrt(obs_var / N_OBS + ctrl_var / N_CTRL)
        # scipy's Welch statistic from the same summary statistics, as a cross-check.
        t_scipy = stats.ttest_ind_from_stats(obs, np.sqrt(obs_var), N_OBS, ctrl, np.sqrt(ctrl_var), N_CTRL, equal_var=False).statistic
        assert np.allclose(t, t_scipy)
        de = np.argsort(-np.abs(t), kind="stable")[:DE]
        values += [
            (case, "l2", float(np.linalg.norm(pred[top] - obs[top]))),
            (case, "pearson_delta", float(np.corrcoef(pred[top] - ctrl[top], obs[top] - ctrl[top])[0, 1])),
            (case, "pearson_delta_all", float(np.corrcoef(pred - ctrl, obs - ctrl)[0, 1])),
            (case, "mse_top20_de", float(np.mean((pred[de] - obs[de]) ** 2))),
        ]
        inputs += [(case, g, *(float(a[g]) for a in (pred, obs, obs_var, ctrl, ctrl_var))) for g in range(N_GENES)]
    with open(OUT / "metrics_inputs.csv", "w") as f:
        f.write("case,gene,pred,obs,obs_var,ctrl,ctrl_var\n")
        f.writelines(",".join(repr(x) if isinstance(x, float) else str(x) for x in row) + "\n" for row in inputs)
    with open(OUT / "metrics_values.csv", "w") as f:
        f.write("case,quantity,value\n")
        f.writelines(f"{c},{q},{v!r}\n" for c, q, v in values)


if __name__ == "__main__":
    main()

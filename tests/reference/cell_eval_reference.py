"""Reference values from Arc Institute's `cell-eval` (the Virtual Cell Challenge evaluator) on a
small pseudobulk fixture, so the Rust tests can check our metric definitions against it.

Regenerate (from the repository root):

    python3 -m venv /tmp/celleval-venv
    /tmp/celleval-venv/bin/pip install cell-eval==0.8.2 numpy==2.4.6 polars==2.1.0 \
        anndata==0.12.19 scipy==1.17.1 scikit-learn==1.9.1 pandas==2.3.3 pdex==0.3.0 scanpy==1.11.5
    /tmp/celleval-venv/bin/python tests/reference/cell_eval_reference.py --write-fixture

Pinned versions the committed files were produced with: cell-eval 0.8.2, numpy 2.4.6,
polars 2.1.0, anndata 0.12.19, scipy 1.17.1, scikit-learn 1.9.1, pandas 2.3.3, pdex 0.3.0,
scanpy 1.11.5 (Python 3.11). reference.json records the versions actually used.

--write-fixture rewrites tests/fixtures/cell_eval/pseudobulk.json from a fixed seed (the
generator is `make_fixture` below); without it the existing fixture is read. Every reference
number is then computed from the fixture *as parsed from the JSON* (so Rust sees the same
float64 inputs) with cell-eval's own functions, and written to
tests/fixtures/cell_eval/reference.json. Both files are deterministic.

How pseudobulk goes into cell-eval: each group (the control "non-targeting" and every
perturbation) is CELLS identical cells equal to its profile, in one AnnData for the real side
(truth) and one for the predicted side (predicted, or baseline); both sides carry the same
control cells. cell-eval pseudobulks by the mean per group, which then equals the profile
exactly (asserted). DE metrics take precomputed DE frames (target, feature, log2_fold_change,
p_value, fdr) built from the pseudobulk, in three variants (see DE_VARIANTS).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import math
import os
import tempfile
from pathlib import Path

os.environ["TQDM_DISABLE"] = "1"  # cell-eval's per-perturbation progress bars

import anndata as ad  # noqa: E402
import numpy as np
import pandas as pd
import polars as pl
from cell_eval import MetricsEvaluator, PerturbationAnndataPair, initialize_de_comparison, score_agg_metrics
from cell_eval._baseline import _build_pert_baseline
from cell_eval.metrics import (
    DEDirectionMatch,
    DESigGenesRecall,
    DESpearmanLFC,
    de_overlap_metric,
    discrimination_score,
    mae,
    mae_delta,
    mse,
    mse_delta,
    pearson_delta,
)
from pdex._math import log2_fold_change

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "cell_eval"
FIXTURE = FIXTURES / "pseudobulk.json"
REFERENCE = FIXTURES / "reference.json"

SEED = 20250701
N_GENES = 40
N_PERTS = 8
CELLS = 4  # identical cells per group; 4 keeps polars' group mean bit-exact
CONTROL = "non-targeting"
PERT_COL = "target"
DE_THRESHOLD = 0.2  # |lfc| cut-off of the "thresh_logdiff" DE variant
SIG_FDR, NONSIG_FDR = 1e-6, 1.0
OVERLAP_K = [None, 5, 10, 20]  # None is cell-eval's "N"
VERSIONS = ["cell-eval", "numpy", "polars", "anndata", "scipy", "scikit-learn", "pandas", "pdex", "scanpy"]

# DE variants: how log2_fold_change and significance are built from a pseudobulk profile.
#   all_sig_logdiff:  lfc = profile - control (log1p space), every gene significant
#                     -> top-N DE genes are the N genes with the largest |profile - control|.
#   thresh_logdiff:   lfc = profile - control, significant iff |lfc| >= DE_THRESHOLD.
#   all_sig_pdex_lfc: lfc = pdex's log2_fold_change(expm1(profile), expm1(control)) (what
#                     cell-eval's own pdex DE reports for log1p input with identical cells),
#                     every gene significant.
DE_VARIANTS = ["all_sig_logdiff", "thresh_logdiff", "all_sig_pdex_lfc"]


def make_fixture() -> dict:
    rng = np.random.default_rng(SEED)
    genes = [f"G{i}" for i in range(N_GENES)]
    control = rng.lognormal(mean=0.0, sigma=0.5, size=N_GENES)
    targets = sorted(rng.choice(N_GENES, size=N_PERTS, replace=False).tolist())
    # A program shared by all perturbations (so discrimination is not trivial) plus a sparse
    # specific effect, plus small dense noise so no two genes tie on |effect|.
    shared = rng.normal(0.0, 0.4, N_GENES) * (rng.random(N_GENES) < 0.25)
    # Prediction quality per perturbation: (effect scale, noise sd, predicts the knockdown).
    quality = [(1.0, 0.03, True), (0.9, 0.06, True), (0.8, 0.12, False), (1.0, 0.2, True),
               (0.5, 0.08, True), (0.3, 0.25, False), (1.2, 0.05, True), (0.0, 0.1, False)]
    perts = []
    for t, (scale, noise, knockdown) in zip(targets, quality):
        specific = rng.normal(0.0, 0.6, N_GENES) * (rng.random(N_GENES) < 0.2)
        effect = 0.6 * shared + specific + rng.normal(0.0, 0.03, N_GENES)
        effect[t] = 0.0
        truth = np.clip(control + effect, 0.01, None)
        truth[t] = 0.15 * control[t]  # knockdown of the target
        true_effect = truth - control
        pred_effect = scale * true_effect + rng.normal(0.0, noise, N_GENES)
        if not knockdown:
            pred_effect[t] = rng.normal(0.0, 0.05)
        predicted = np.clip(control + pred_effect, 0.01, None)  # > 0: no infinite pdex lfc
        perts.append({"name": genes[t], "target": genes[t], "truth": r6(truth), "predicted": r6(predicted)})
    # The baseline is the mean of the (rounded) truth profiles, not rounded itself.
    baseline = np.mean([p["truth"] for p in perts], axis=0).tolist()
    return {"genes": genes, "control": r6(control), "perturbations": [p | {"baseline": baseline} for p in perts]}


def r6(a: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in a]


def _fixture_json(fx: dict) -> str:
    """The fixture's layout with one line per array."""
    d = json.dumps
    perts = ",\n".join(
        "  {" + ", ".join(f"{d(k)}: {d(p[k])}" for k in ["name", "target"])
        + "".join(f",\n   {d(k)}: {d(p[k])}" for k in ["truth", "predicted", "baseline"]) + "}"
        for p in fx["perturbations"]
    )
    text = f'{{"genes": {d(fx["genes"])},\n "control": {d(fx["control"])},\n "perturbations": [\n{perts}\n ]}}\n'
    assert json.loads(text) == fx
    return text


def _adata(genes: list[str], control: np.ndarray, profiles: dict[str, np.ndarray]) -> ad.AnnData:
    names = [CONTROL] + list(profiles)
    rows = [control] + list(profiles.values())
    X = np.repeat(np.vstack(rows).astype(np.float64), CELLS, axis=0)
    obs = pd.DataFrame({PERT_COL: np.repeat(names, CELLS)}, index=[f"c{i}" for i in range(X.shape[0])])
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))


def _de_frame(genes: list[str], control: np.ndarray, profiles: dict[str, np.ndarray], variant: str) -> pl.DataFrame:
    rows = []
    for name, prof in profiles.items():
        if variant == "all_sig_pdex_lfc":
            lfc = log2_fold_change(np.expm1(prof), np.expm1(control))
        else:
            lfc = prof - control
        # cell-eval ranks by |lfc| cast to float32 (ordinal ranks): make sure there are no ties
        # and the float32 order is the float64 order, so the ranking is exactly by |lfc|.
        a = np.abs(lfc)
        assert np.all(np.isfinite(a)) and np.array_equal(np.argsort(-a), np.argsort(-a.astype(np.float32)))
        assert np.unique(a.astype(np.float32)).size == a.size
        if variant == "thresh_logdiff":
            fdr = np.where(np.abs(lfc) >= DE_THRESHOLD, SIG_FDR, NONSIG_FDR)
        else:
            fdr = np.full(len(genes), SIG_FDR)
        rows += [(name, g, float(l), float(f), float(f)) for g, l, f in zip(genes, lfc, fdr)]
    return pl.DataFrame(rows, schema=["target", "feature", "log2_fold_change", "p_value", "fdr"], orient="row")


def _clean(x):
    """JSON-safe: floats (NaN -> None), numpy scalars, nested dicts sorted by key."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(float(x)) else float(x)
    return x


def _mean(per_pert: dict) -> float:
    """Mean over perturbations, exactly rounded (math.fsum), so independent of dict order."""
    return math.fsum(per_pert.values()) / len(per_pert)


def side_metrics(fx: dict, which: str) -> tuple[dict, dict]:
    """Per-perturbation cell-eval metrics for one prediction side ("predicted" or "baseline")."""
    genes = fx["genes"]
    control = np.array(fx["control"])
    truth = {p["name"]: np.array(p["truth"]) for p in fx["perturbations"]}
    pred = {p["name"]: np.array(p[which]) for p in fx["perturbations"]}
    pair = PerturbationAnndataPair(real=_adata(genes, control, truth), pred=_adata(genes, control, pred),
                                   pert_col=PERT_COL, control_pert=CONTROL)
    # cell-eval's pseudobulk must equal the fixture profiles bit for bit.
    for b in pair.iter_bulk_arrays():
        assert np.array_equal(b.pert_real, truth[b.key]) and np.array_equal(b.pert_pred, pred[b.key])
        assert np.array_equal(b.ctrl_real, control) and np.array_equal(b.ctrl_pred, control)
    anndata = {
        "pearson_delta": pearson_delta(pair),
        "mae": mae(pair),
        "mse": mse(pair),
        "mae_delta": mae_delta(pair),
        "mse_delta": mse_delta(pair),
    }
    for m in ["l1", "l2", "cosine"]:
        anndata[f"discrimination_score_{m}"] = discrimination_score(pair, metric=m)
        anndata[f"discrimination_score_{m}_with_target"] = discrimination_score(pair, metric=m, exclude_target_gene=False)
    de = {}
    for variant in DE_VARIANTS:
        comp = initialize_de_comparison(real=_de_frame(genes, control, truth, variant),
                                        pred=_de_frame(genes, control, pred, variant))
        v = {}
        for k in OVERLAP_K:
            for metric in ["overlap", "precision"]:
                v[f"{metric}_at_{k or 'N'}"] = de_overlap_metric(comp, k=k, metric=metric)
        v["de_direction_match"] = DEDirectionMatch()(comp)
        v["de_spearman_lfc_sig"] = DESpearmanLFC()(comp)
        v["de_sig_genes_recall"] = DESigGenesRecall()(comp)
        de[variant] = v
    return anndata, de


def vcc_score(fx: dict, variant: str) -> dict:
    """cell-eval's VCC profile (mae, discrimination_score_l1, overlap_at_N) through MetricsEvaluator,
    aggregated with describe() and scored against the baseline with score_agg_metrics."""
    genes = fx["genes"]
    control = np.array(fx["control"])
    truth = {p["name"]: np.array(p["truth"]) for p in fx["perturbations"]}
    real = _adata(genes, control, truth)
    de_real = _de_frame(genes, control, truth, variant)
    agg = {}
    with tempfile.TemporaryDirectory() as outdir:
        for which in ["predicted", "baseline"]:
            prof = {p["name"]: np.array(p[which]) for p in fx["perturbations"]}
            ev = MetricsEvaluator(adata_pred=_adata(genes, control, prof), adata_real=real.copy(),
                                  de_pred=_de_frame(genes, control, prof, variant), de_real=de_real,
                                  control_pert=CONTROL, pert_col=PERT_COL, num_threads=1, outdir=outdir)
            _, agg[which] = ev.compute(profile="vcc", write_csv=False, break_on_error=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 when user == base == 1 (-> NaN -> 0)
        scored = score_agg_metrics(results_user=agg["predicted"], results_base=agg["baseline"])
    mean_row = {w: a.filter(pl.col("statistic") == "mean").drop("statistic").row(0, named=True) for w, a in agg.items()}
    return {
        "mean_predicted": mean_row["predicted"],
        "mean_baseline": mean_row["baseline"],
        "from_baseline": dict(zip(scored["metric"].to_list(), scored["from_baseline"].to_list())),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-fixture", action="store_true", help="regenerate pseudobulk.json from the seed")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    if args.write_fixture:
        FIXTURE.write_text(_fixture_json(make_fixture()))
    fx = json.loads(FIXTURE.read_text())

    out = {
        "versions": {p: importlib.metadata.version(p) for p in VERSIONS},
        "settings": {"control_pert": CONTROL, "cells_per_group": CELLS, "de_threshold": DE_THRESHOLD,
                     "sig_fdr": SIG_FDR, "nonsig_fdr": NONSIG_FDR, "fdr_threshold": 0.05,
                     "de_variants": DE_VARIANTS},
        "perturbations": [p["name"] for p in fx["perturbations"]],
    }
    for which in ["predicted", "baseline"]:
        anndata, de = side_metrics(fx, which)
        out[which] = {"anndata": anndata, "de": de}
    out["aggregate_mean"] = {
        which: {
            "anndata": {m: _mean(v) for m, v in out[which]["anndata"].items()},
            "de": {var: {m: _mean(v) for m, v in d.items()} for var, d in out[which]["de"].items()},
        }
        for which in ["predicted", "baseline"]
    }
    out["vcc_score"] = {variant: vcc_score(fx, variant) for variant in ["thresh_logdiff", "all_sig_logdiff"]}

    # cell-eval's own cell-mean baseline (build_base_mean_adata -> _build_pert_baseline) on the
    # truth AnnData: it averages the per-group means *including the control group*.
    genes, control = fx["genes"], np.array(fx["control"])
    truth_ad = _adata(genes, control, {p["name"]: np.array(p["truth"]) for p in fx["perturbations"]})
    # Rounded: polars' group_by row order varies between runs, and with it the last bits of the mean.
    base = _build_pert_baseline(truth_ad, pert_col=PERT_COL, control_pert=CONTROL)
    out["cell_eval_mean_baseline_incl_control"] = [round(float(x), 10) for x in base]

    REFERENCE.write_text(json.dumps(_clean(out), indent=1) + "\n")


if __name__ == "__main__":
    main()

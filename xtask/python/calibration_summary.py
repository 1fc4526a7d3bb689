"""Derives the small calibration summary the simulator ships with from the Norman 2019
source data of Ahlmann-Eltze, Huber & Anders (Nat Methods 2025, MIT licence).

usage: calibration_summary.py SHARED_CALIBRATION_DIR OUT.json

Only summaries are kept (the design's condition names, quantiles of cells per condition
and of the K562 control baseline, and the published headline figures), not the tables.
Standard library only.
"""

import csv
import json
import statistics
import sys
from pathlib import Path


def quantiles(values: list[float], n: int) -> list[float]:
    s = sorted(values)
    out = []
    for i in range(n + 1):
        pos = (len(s) - 1) * i / n
        lo = int(pos)
        hi = min(lo + 1, len(s) - 1)
        out.append(s[lo] + (s[hi] - s[lo]) * (pos - lo))
    return [round(v, 6) for v in out]


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    with open(src / "cells_per_perturbation.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"].startswith("norman")]
    conditions = sorted(r["pert"] for r in rows if r["pert"] != "ctrl")
    cells = [float(r["n"]) for r in rows if r["pert"] != "ctrl"]
    with open(src / "control_baseline_k562_rpe1.csv") as f:
        baseline = [float(r["k562_baseline"]) for r in csv.DictReader(f) if r["k562_baseline"] not in ("", "nan")]
    with open(src / "additivity_fractions.csv") as f:
        fractions = list(csv.DictReader(f))
    total = sum(int(r["n"]) for r in fractions)
    non_additive = sum(int(r["n"]) for r in fractions if r["is_additive"] == "Non-additive")
    with open(src / "published_per_perturbation_doubles.csv") as f:
        l2 = {}
        for r in csv.DictReader(f):
            if r["method"] in ("additive_model", "no_change") and r["l2"] not in ("", "NA"):
                l2.setdefault(r["method"], []).append(float(r["l2"]))
    summary = {
        "source": "Ahlmann-Eltze, Huber & Anders, Nat Methods 2025, source data (MIT); Norman et al. 2019 (GSE133344)",
        "norman_conditions": conditions,
        "cells_per_condition_quantiles": quantiles(cells, 20),
        "k562_control_baseline_quantiles": quantiles(baseline, 100),
        "k562_control_baseline_genes": len(baseline),
        "published_l2_mean": {m: round(statistics.fmean(v), 4) for m, v in sorted(l2.items())},
        "non_additive_share": round(non_additive / total, 6),
        "non_additive_thresholds": {"synergy_above": 0.195, "buffering_below": -0.205},
    }
    out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Regulon-prior calibration statistics on real Replogle 2022 knockdowns (K562-essential, RPE1).

Inputs (read-only):
  * ../shared/real/replogle2022_sigrecon_ranked_up_signatures/perturbseq.{k562,rpe1}.json.gz
      {perturbation: {"up": [<=100 significant up genes, ranked], "up_full": [top 1000 up genes, ranked]}}
  * data/priors/regulons.parquet (run from the repository root; needs pyarrow)  (source, target, sign, sources, curation_effort)

Definitions (per cell line; everything is sets of gene symbols, exact string match, no alias mapping):
  U        universe = union of all genes appearing in any `up_full` list of that cell line
           (7,225 genes; identical for K562 and RPE1 and a superset of every `up` list).
  ALLT     every gene that is a `target` of any `source` in regulons.parquet.
  U'       restricted universe = U ∩ ALLT (genes the prior says anything about).
  For a knocked-down gene r that is a `source` in the prior:
  T_r      = prior targets of r ∩ U          (|T_r| is the "n targets" used for thresholds)
  L_r      = responder list: `up_full` (N=1000) or `up` (N=5..98); all of L_r lies in U.
  hits_r   = |T_r ∩ L_r|
  exp_r    = |T_r| * |L_r| / |U|            (hypergeometric mean, universe U)      [main]
  exp'_r   = |T_r| * |L_r ∩ U'| / |U'|      (universe U'; T_r ⊆ U' automatically)  [variant]
  enr_r    = hits_r / exp_r
  pooled   = Σ hits_r / Σ exp_r            <- THE calibration statistic
  precision-like  = Σ hits_r / Σ |T_r|, chance = Σ exp_r / Σ |T_r| (= N/|U| for fixed N),
                    excess = precision - chance,
                    active-edge fraction a solving prec = a + (1-a)*chance -> a = excess/(1-chance)
  recall-like     = Σ hits_r / Σ |L_r ∩ ALLT| (share of prior-covered responders that are the
                    regulator's own targets), chance = Σ exp'_r / Σ |L_r ∩ ALLT|
  Regulators are included when |T_r| >= k, k in {5, 10, 20}.
  cross-null      = Σ hits_r / Σ_r mean_{p != r} |T_r ∩ L_p|: empirical null, the same targets against
                    the lists of all OTHER 584 knockdowns (controls for genes up in many screens)
  [lo,hi]         = 2.5/97.5 % of 10,000 regulator-level bootstrap resamples of the pooled statistic
Also reported: the same split by edge sign (+1 activation, -1 repression, 0 unknown), per-regulator
one-sided hypergeometric p-values (P[X >= hits]), alternative inclusion rules (every source with
|T_r| >= 1; >= 5 targets in the unrestricted prior; |T_r| >= 5 without MAX and RAD21, which hold 606
of the 797 in-universe targets), and a per-regulator table.
Deterministic: regulators in sorted order; the bootstrap uses random.Random(0).
"""
import collections
import gzip
import json
import math
import random
import statistics
import sys

import pyarrow.parquet as pq

DATA = "../shared/real/replogle2022_sigrecon_ranked_up_signatures/perturbseq.{}.json.gz"
PRIOR = "data/priors/regulons.parquet"
MIN_TARGETS = (5, 10, 20)
BOOT = 10000


def log_comb(n, k):
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def hypergeom_sf(x, M, n, N):
    """P[X >= x], X ~ Hypergeom(population M, successes n, draws N)."""
    hi = min(n, N)
    if x <= max(0, N - (M - n)):
        return 1.0
    terms = [log_comb(n, k) + log_comb(M - n, N - k) - log_comb(M, N) for k in range(x, hi + 1)]
    m = max(terms)
    return min(1.0, math.exp(m) * sum(math.exp(t - m) for t in terms))


def load_prior():
    rows = pq.read_table(PRIOR, columns=["source", "target", "sign"]).to_pylist()
    targets = collections.defaultdict(dict)  # source -> {target: sign}
    for r in rows:
        targets[r["source"]][r["target"]] = r["sign"]
    all_targets = {r["target"] for r in rows}
    return targets, all_targets


def per_regulator(sigs, prior, all_targets, U, Uprime, list_key, sign=None):
    """One record per knocked-down gene that is a prior source; T restricted to U (and sign)."""
    out = []
    others = {p: set(v[list_key]) for p, v in sigs.items()}
    for r in sorted(sigs):
        if r not in prior:
            continue
        T = {t for t, s in prior[r].items() if t in U and (sign is None or s == sign)}
        L = sigs[r][list_key]
        Ls = set(L)
        hits = len(T & Ls)
        exp = len(T) * len(L) / len(U)
        n_Lp = len(Ls & Uprime)  # == |L ∩ ALLT| since L ⊆ U
        exp_p = len(T) * n_Lp / len(Uprime)
        # empirical null: mean overlap of T_r with the same-kind list of every OTHER perturbation
        exp_x = sum(len(T & others[p]) for p in others if p != r) / (len(others) - 1)
        out.append(dict(reg=r, n_prior=len(prior[r]), nT=len(T), N=len(L), hits=hits, exp=exp,
                        exp_p=exp_p, n_Lp=n_Lp, exp_x=exp_x,
                        p=hypergeom_sf(hits, len(U), len(T), len(L)) if T else 1.0))
    return out


def summarise(recs, k, key="nT", exclude=()):
    sel = [x for x in recs if x[key] >= k and x["reg"] not in exclude]
    if not sel:
        return None
    H = sum(x["hits"] for x in sel)
    E = sum(x["exp"] for x in sel)
    Ep = sum(x["exp_p"] for x in sel)
    nT = sum(x["nT"] for x in sel)
    nLp = sum(x["n_Lp"] for x in sel)
    enr = [x["hits"] / x["exp"] for x in sel]
    prec, chance = H / nT, E / nT
    # regulator-level bootstrap 95% interval of the pooled statistic (fixed seed -> deterministic)
    rng = random.Random(0)
    boot = []
    for _ in range(BOOT):
        b = [sel[rng.randrange(len(sel))] for _ in sel]
        e = sum(x["exp"] for x in b)
        boot.append(sum(x["hits"] for x in b) / e if e else float("nan"))
    boot.sort()
    return dict(
        ci=(boot[int(0.025 * BOOT)], boot[int(0.975 * BOOT) - 1]),
        pooled_cross=H / sum(x["exp_x"] for x in sel),
        n_reg=len(sel), sum_T=nT, sum_hits=H, sum_exp=E, pooled=H / E,
        pooled_Uprime=H / Ep, median_enr=statistics.median(enr),
        share_gt1=sum(e > 1 for e in enr) / len(sel),
        share_p05=sum(x["p"] < 0.05 for x in sel) / len(sel),
        prec=prec, chance=chance, excess=prec - chance, active=(prec - chance) / (1 - chance),
        recall=H / nLp, recall_chance=Ep / nLp,
    )


def fmt(s):
    return (f"n_reg={s['n_reg']:4d}  sumT={s['sum_T']:6d}  hits={s['sum_hits']:5d}  exp={s['sum_exp']:8.1f}  "
            f"POOLED={s['pooled']:.3f} [{s['ci'][0]:.3f},{s['ci'][1]:.3f}] (U' {s['pooled_Uprime']:.3f}, "
            f"cross-null {s['pooled_cross']:.3f})  median={s['median_enr']:.3f}  "
            f">1: {s['share_gt1']:.3f}  p<.05: {s['share_p05']:.3f}\n"
            f"      precision={s['prec']:.4f}  chance={s['chance']:.4f}  excess={s['excess']:+.4f}  "
            f"active-edge={s['active']:+.4f}  recall={s['recall']:.4f} (chance {s['recall_chance']:.4f})")


def main():
    prior, all_targets = load_prior()
    w = sys.stdout.write
    w(f"prior: {sum(len(v) for v in prior.values())} edges, {len(prior)} sources, {len(all_targets)} targets\n")
    for cl in ("k562", "rpe1"):
        sigs = json.load(gzip.open(DATA.format(cl)))
        counts = collections.Counter(g for v in sigs.values() for g in v["up_full"])
        U = set(counts)
        Uprime = U & all_targets
        n_src = sum(r in prior for r in sigs)
        w(f"\n===== {cl.upper()} =====\n")
        w(f"perturbations={len(sigs)}  |U|={len(U)}  |U'|=|U∩ALLT|={len(Uprime)}  "
          f"perturbed genes that are prior sources={n_src}\n")
        w(f"U coverage: genes in only 1 list={sum(c == 1 for c in counts.values())}, "
          f"<=5 lists={sum(c <= 5 for c in counts.values())}, median lists/gene="
          f"{statistics.median(counts.values())}\n")
        for list_key, label in (("up_full", "top-1000 (up_full)"), ("up", "significant up (<=100)")):
            w(f"\n--- list: {label} ---\n")
            for sign, slabel in ((None, "all edges"), (1, "sign +1"), (-1, "sign -1"), (0, "sign 0")):
                recs = per_regulator(sigs, prior, all_targets, U, Uprime, list_key, sign)
                for k in MIN_TARGETS:
                    s = summarise(recs, k)
                    if s:
                        w(f"[{slabel:9s} |T|>={k:2d}] {fmt(s)}\n")
                if sign is None:
                    for tag, kw in (("|T|>= 1 (all sources)", dict(k=1)),
                                    ("prior>=5 (unrestricted)", dict(k=5, key="n_prior")),
                                    ("|T|>=5 w/o MAX,RAD21", dict(k=5, exclude=("MAX", "RAD21")))):
                        s = summarise(recs, **kw)
                        w(f"[{tag}] {fmt(s)}\n")
            if list_key == "up_full":
                recs = per_regulator(sigs, prior, all_targets, U, Uprime, list_key)
                w("\nper-regulator (|T|>=5), sorted by enrichment:\n")
                w(f"{'reg':10s} {'prior':>6s} {'|T∩U|':>6s} {'hits':>5s} {'exp':>7s} {'enr':>6s} {'p':>9s}\n")
                for x in sorted((x for x in recs if x["nT"] >= 5), key=lambda x: (-x["hits"] / x["exp"], x["reg"])):
                    w(f"{x['reg']:10s} {x['n_prior']:6d} {x['nT']:6d} {x['hits']:5d} {x['exp']:7.2f} "
                      f"{x['hits'] / x['exp']:6.2f} {x['p']:9.2e}\n")
                for g in ("MAX", "RAD21"):
                    x = next((x for x in recs if x["reg"] == g), None)
                    if x:
                        w(f"CHECK {g}: prior targets={x['n_prior']}  in U={x['nT']}  hits={x['hits']}  "
                          f"expected(U)={x['exp']:.2f}  expected(U')={x['exp_p']:.2f}\n")


if __name__ == "__main__":
    main()

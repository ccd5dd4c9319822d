"""Join nodal bench-sde and sde_bench.py JSON lines into one markdown table.

  python3 bench/join_sde.py nodal.jsonl anchors.jsonl

Per configuration (method, mode, dim, batch): nodal's median (the smaller of its runs), each
anchor's median by Brownian path, and nodal / the faster anchor.
"""
import json
import sys


def rows(paths):
    for p in paths:
        with open(p) as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("{"):
                    o = json.loads(line)
                    if o.get("kind") == "result":
                        yield o


def main():
    table = {}
    for o in rows(sys.argv[1:]):
        key = (o["method"], o["mode"], o["dim"], o["batch"])
        col = {"nodal": "nodal"}.get(o["backend"]) or f'{o["backend"]} {o["brownian"].split("(")[0].strip()}'
        cell = table.setdefault(key, {})
        cell[col] = min(cell.get(col, float("inf")), o["median_ms"])
    cols = ["torchsde BrownianInterval", "torchsde grid", "diffrax VirtualBrownianTree", "diffrax UnsafeBrownianPath"]
    print("| method | mode | dim | batch | nodal ms | " + " | ".join(c + " ms" for c in cols) + " | nodal / faster anchor |")
    print("|---|---|---:|---:|---:|" + "---:|" * len(cols) + "---:|")
    for key in sorted(table, key=lambda k: (k[2], k[3], k[0], ["solve", "direct", "adjoint"].index(k[1]))):
        cell = table[key]
        anchors = [cell[c] for c in cols if c in cell]
        ratio = f'{cell["nodal"] / min(anchors):.3f}' if anchors and "nodal" in cell else "-"
        fmt = lambda v: f"{v:.2f}" if v < 10 else f"{v:.0f}"
        vals = [fmt(cell[c]) if c in cell else "-" for c in cols]
        print(f'| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {fmt(cell["nodal"]) if "nodal" in cell else "-"} | ' + " | ".join(vals) + f" | {ratio} |")


if __name__ == "__main__":
    main()

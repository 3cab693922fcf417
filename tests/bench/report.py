#!/usr/bin/env python3
"""Turn the rows load.sh collected (results.tsv) into the Markdown report it prints.

Three tables: absolute figures; each proxy against the direct ceiling; each proxy against
each other proxy (Consentry first). Rows that were skipped keep their reason.
"""
import argparse
import csv
import itertools

MODES = {
    "http": "HTTP, keep-alive (wrk)",
    "https": "HTTPS intercepted, keep-alive (oha)",
    "https-newconn": "HTTPS intercepted, new CONNECT+TLS per request (oha)",
}
CONFIGS = ["direct", "consentry", "squid", "trafficserver"]
NAMES = {"direct": "direct", "consentry": "Consentry", "squid": "Squid", "trafficserver": "Traffic Server"}


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--date", default="")
    ap.add_argument("--machine", default="")
    ap.add_argument("--versions", default="")
    ap.add_argument("--method", default="")
    a = ap.parse_args()

    with open(a.results, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    by = {(r["config"], r["mode"], r["size"]): r for r in rows}
    cells = sorted({(r["mode"], r["size"]) for r in rows},
                   key=lambda ms: (list(MODES).index(ms[0]) if ms[0] in MODES else 9, ms[1] != "1k"))
    present = [c for c in CONFIGS if any(r["config"] == c for r in rows)]

    def val(cfg, mode, size, key):
        r = by.get((cfg, mode, size))
        return None if r is None else num(r[key])

    def hwm_mib(cfg, mode, size):
        v = val(cfg, mode, size, "hwm_kib")
        return None if v is None else v / 1024

    out = []
    p = out.append
    p(f"# Consentry load benchmark, {a.date}")
    p("")
    p(f"- machine: {a.machine}")
    p(f"- method: {a.method}")
    p(f"- versions: {a.versions}")
    p("")
    p("## Absolute figures")
    p("")
    p("| traffic | size | config | req/s | p50 ms | p99 ms | failed | proxy CPU µs/req | proxy core % | proxy peak RSS MiB | origin conns | load core % | note |")
    p("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for mode, size in cells:
        for cfg in present:
            r = by.get((cfg, mode, size))
            if r is None:
                continue
            note = "" if r["note"] in ("-", "") else r["note"]
            p(f"| {MODES.get(mode, mode)} | {size} | {NAMES[cfg]} | {fmt(num(r['rps']), '.0f')} "
              f"| {fmt(num(r['p50_ms']), '.2f')} | {fmt(num(r['p99_ms']), '.2f')} | {r['bad']} "
              f"| {fmt(num(r['cpu_us_per_req']), '.1f')} | {fmt(num(r['cpu_pct']), '.0f')} "
              f"| {fmt(hwm_mib(cfg, mode, size), '.1f')} | {fmt(num(r['origin_conns']), '.0f')} "
              f"| {fmt(num(r.get('load_core_pct')), '.0f')} | {note} |")
    p("")
    p("## Against direct (the rig's ceiling: no proxy)")
    p("")
    p("req/s as a share of direct; latency as a multiple of direct's.")
    p("")
    p("| traffic | size | config | req/s vs direct | p50 × direct | p99 × direct |")
    p("|---|---|---|--:|--:|--:|")
    for mode, size in cells:
        d_rps, d50, d99 = (val("direct", mode, size, k) for k in ("rps", "p50_ms", "p99_ms"))
        for cfg in present:
            if cfg == "direct" or (cfg, mode, size) not in by:
                continue
            r = ratio(val(cfg, mode, size, "rps"), d_rps)
            if r is None:
                continue
            p(f"| {MODES.get(mode, mode)} | {size} | {NAMES[cfg]} | {100 * r:.0f}% "
              f"| {fmt(ratio(val(cfg, mode, size, 'p50_ms'), d50), '.2f')} "
              f"| {fmt(ratio(val(cfg, mode, size, 'p99_ms'), d99), '.2f')} |")
    p("")
    p("## Proxy against proxy")
    p("")
    p("Each figure is A / B. req/s above 1 means A is faster; p99, CPU per request and peak RSS "
      "below 1 mean A is cheaper. – where either side has no figure.")
    p("")
    p("| traffic | size | A vs B | req/s | p50 | p99 | CPU µs/req | peak RSS |")
    p("|---|---|---|--:|--:|--:|--:|--:|")
    proxies = [c for c in present if c != "direct"]
    for mode, size in cells:
        for x, y in itertools.combinations(proxies, 2):
            if (x, mode, size) not in by or (y, mode, size) not in by:
                continue
            rr = [ratio(val(x, mode, size, k), val(y, mode, size, k))
                  for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req")]
            rr.append(ratio(hwm_mib(x, mode, size), hwm_mib(y, mode, size)))
            if all(v is None for v in rr):
                continue
            p(f"| {MODES.get(mode, mode)} | {size} | {NAMES[x]} vs {NAMES[y]} | "
              + " | ".join(fmt(v, ".2f") for v in rr) + " |")
    skipped = [r for r in rows if r["rps"] == "-"]
    if skipped:
        p("")
        p("## Skipped rows")
        p("")
        for r in skipped:
            p(f"- {NAMES.get(r['config'], r['config'])}, {MODES.get(r['mode'], r['mode'])}, {r['size']}: {r['note']}")
    print("\n".join(out))


if __name__ == "__main__":
    main()

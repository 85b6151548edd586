"""The 2021 MLP table (REFERENCE.md 6 and 6b) from `netmod reproduce` runs, beside the published numbers.

Reads every ``results.json`` under the folders given (default: results/2021-*), made with the
2021 protocol, and prints one markdown row per (dataset, condition): our n-cut mean, its training
spread (sd across networks), clustering noise (RMS over networks of the sd over k-means seeds),
null mean and sd, mean z, significant count and test accuracy, beside the paper's; "diff" is ours
minus the paper's mean n-cut. Rows with fewer networks than the paper say so.

Run: python bench/table_2021.py [FOLDER ...] [--out FILE]
"""

import argparse
import glob
import json
from pathlib import Path

ORDER = ["standard", "l1", "l2", "clusterable-init", "halves-diff", "halves-same"]
NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion", "embedded": "embedded MNIST"}


def rows_of(path: Path) -> list:
    res = json.loads(path.read_text())
    cfg = res["config"]
    if cfg["protocol"] != "2021":
        return []
    variant = cfg.get("variant", "standard")
    out = []
    for s in res["summary"]:
        if s["null"] != "layer":
            continue
        out.append({"dataset": cfg["dataset"], "variant": variant, "folder": path.parent.name, **s,
                    "commit": res["versions"].get("git_commit", "?")[:7]})
    return out


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    folders = args.folders or sorted(glob.glob("results/2021-*"))
    rows = [r for f in folders for p in sorted(Path(f).glob("results.json")) for r in rows_of(p)]
    rows.sort(key=lambda r: (ORDER.index(r["variant"]), r["dataset"] != "mnist", r["condition"]))
    lines = ["| dataset | condition | nets | n-cut mean | training sd | clustering sd | paper | diff | null mean "
             "+- sd | paper | mean z | paper | significant | paper | test acc | paper |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cond = r["condition"] if r["variant"] == "standard" else f"{r['variant']}, {r['condition']}"
        diff = None if r["paper_ncut"] is None else r["ncut_mean"] - r["paper_ncut"]
        lines.append(
            f"| {NAMES.get(r['dataset'], r['dataset'])} | {cond} | {r['networks']} | {r['ncut_mean']:.3f} "
            f"| {r['ncut_sd']:.3f} | {fmt(r.get('clustering_sd'), '.3f')} | {fmt(r['paper_ncut'], '.3f')} "
            f"| {fmt(diff, '+.3f')} | {r['null_mean']:.3f} +- {fmt(r.get('null_sd'), '.3f')} "
            f"| {fmt(r['paper_null_mean'], '.3f')} | {r['mean_z']:.1f} | {fmt(r['paper_mean_z'], '.1f')} "
            f"| {r['significant']}/{r['networks']} | {r['paper_significant'] or '-'} | {r['test_accuracy']:.3f} "
            f"| {fmt(r['paper_acc'], '.3f')} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

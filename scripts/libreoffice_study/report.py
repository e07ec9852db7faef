"""After runs finish: merge the grid's finished runs into docs/libreoffice_results.json (the
earlier protocol's runs kept under "earlier") and regenerate the status block of docs/results.md
section 0 (per run, per configuration from lrdrop-compare --report, what is running and queued).

    STUDY=/work/study python scripts/libreoffice_study/report.py      # from the repository, then commit
    STUDY=/work/study JOBS=compare_jobs python scripts/libreoffice_study/report.py   # issue 44's queue

On a machine that lost $STUDY/grid, first write back every committed run's result.json (the
runs without one, interrupted or not, start again from scratch when grid.sh runs them):

    STUDY=/work/study python scripts/libreoffice_study/report.py --restore
"""

import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDY = os.environ.get("STUDY", "/work/study")
MARK = "<!-- status: scripts/libreoffice_study/report.py -->"


def compare_report():
    args = ["--out", f"{STUDY}/grid", "--data-bin", f"{STUDY}/lo/data-bin", "--raw", f"{STUDY}/lo/corpus",
            "--corpus-name", "libreoffice", "--max-update", "8000",
            "--configs", "baseline,rdrop,lrdrop,attn,lrdrop_corr",
            "--dropouts", "0.1,0.3", "--seeds", "1,2,3", "--variant",
            "base_compute=--mode baseline --max-update 21000", "--variant",
            "lrdrop_h01=--mode lrdrop --hidden-weight 0.1", "--variant",
            "hidden_h01=--mode hidden --hidden-weight 0.1", "--variant",
            "lrdrop_a01=--mode lrdrop --hidden-weight 0.1 --attn-weight 0.1", "--variant",
            "lrdrop_wu=--mode lrdrop --hidden-weight 0.1 --consistency-warmup-updates 1000", "--variant",
            "rdrop_rerun=--mode rdrop", "--report"]  # fmt: skip
    p = subprocess.run([os.path.join(ROOT, ".venv", "bin", "python"), "-m", "lrdrop_cli.bin.compare", *args],
                       cwd="/tmp", capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})  # fmt: skip
    if p.returncode:
        sys.exit(f"report: lrdrop-compare --report failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return json.load(open(f"{STUDY}/grid/results.json")), open(f"{STUDY}/grid/results.md").read().strip()


def restore():
    """$STUDY/grid/NAME/result.json for every run in docs/libreoffice_results.json that has none."""
    runs = json.load(open(os.path.join(ROOT, "docs", "libreoffice_results.json")))["runs"]
    written = []
    for r in runs:
        path = os.path.join(STUDY, "grid", r["name"], "result.json")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            json.dump({k: v for k, v in r.items() if k != "config"}, open(path, "w"), indent=1)
            written.append(r["name"])
    names = ": " + ", ".join(written) if written else ""
    print(f"restored {len(written)} of {len(runs)} results into {STUDY}/grid{names}")


def main():
    report, table = compare_report()
    path = os.path.join(ROOT, "docs", "libreoffice_results.json")
    old = json.load(open(path))
    report["protocol"] = ("issue 28: fixed budget, 8,000 updates (the baseline at R-Drop's compute: 21,000), "
                          "linear decay to 0 after 150 warm-up updates, 2+2 x 128 transformer_lrdrop, corpus "
                          "built 2026-12-05; LR-Drop with every weight 1 (lrdrop) for seed 1 only, then as "
                          "lrdrop_h01 (hidden weight 0.1), and from 2026-12-06 also as lrdrop_a01 (hidden and "
                          "attention weight 0.1, after a 1,200-update screen): docs/results.md section 0; from "
                          "2026-12-07 issue 44's comparison, lrdrop_corr (attention by the scores' correlation) "
                          "with every weight 1, and R-Drop's seed-1 rerun at dropout 0.1 (rdrop_rerun): "
                          "section 00")  # fmt: skip
    report["in_progress"] = True
    report["earlier"] = old.get("earlier", old)
    json.dump(report, open(path, "w"), indent=1)
    runs = sorted(report["runs"], key=lambda r: r["name"])
    lines = ["", "Per run (finished):", "",
             "| run | budget | best valid nll (bits) at update | final valid nll | train nll at best | test BLEU "
             "| test chrF | train min |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in runs:
        lines.append(f"| {r['name']} | {r.get('budget', 8000)} | {r['best_valid_nll']:.3f} at {r['best_update']} "
                     f"| {r['final_valid_nll']:.3f} | {r.get('train_nll_at_best', float('nan')):.3f} | {r['bleu']:.2f} "
                     f"| {r['chrf']:.2f} | {r['train_minutes']:.0f} |")  # fmt: skip
    if runs:
        lines += ["", f"Signatures: BLEU `{runs[0]['signature']}`, chrF `{runs[0]['chrf_signature']}`."]
    lines += ["", "Per configuration (`lrdrop-compare --report`; the translation memory: 22.53 BLEU / 38.86 chrF):",
              "", table, ""]  # fmt: skip
    for src in glob.glob(f"{STUDY}/grid/curves-d*.png"):  # seed 1's runs, one figure per dropout
        shutil.copyfile(src, os.path.join(ROOT, "docs", "libreoffice_" + os.path.basename(src)))
    curves = []  # those committed stay where the grid has none (its logs lost: compare --report says so)
    for path in sorted(glob.glob(os.path.join(ROOT, "docs", "libreoffice_curves-d*.png"))):
        name = os.path.basename(path)
        curves.append(f"![seed 1 at dropout {name[len('libreoffice_curves-d') : -4]}]({name})")
    if curves:
        lines += ["Training curves of seed 1's finished runs (train and valid loss and nll, each consistency term, "
                  "over updates):", "", *curves, ""]  # fmt: skip
    done = {r["name"] for r in runs}
    running = []
    for d in sorted(glob.glob(f"{STUDY}/grid/*/")):
        name = os.path.basename(d.rstrip("/"))
        if name not in done and os.path.exists(d + "train.log"):
            ups = re.findall(r'"num_updates": "(\d+)"', open(d + "train.log").read())
            running.append((name, ups[-1] if ups else "0"))
    jobs_file = os.path.join(STUDY, os.environ.get("JOBS", "jobs"))  # grid.sh's JOBS: the queue being run
    jobs = [line.split("\t")[0] for line in open(jobs_file) if line.strip() and not line.startswith("#")]
    queued = [j for j in jobs if j not in done and j not in dict(running)]
    lines += [f"Unfinished at {datetime.datetime.now():%Y-%m-%d %H:%M}: "
              + ("; ".join(f"{n} at update {u}" for n, u in running) or "none") + ".",
              "Queued: " + (", ".join(queued) or "none") + "."]  # fmt: skip
    block = MARK + "\n" + "\n".join(lines) + "\n<!-- /status -->"
    doc_path = os.path.join(ROOT, "docs", "results.md")
    doc = open(doc_path).read()
    doc = re.sub(r"<!-- status: [^>]*-->.*?<!-- /status -->", lambda _m: block, doc, flags=re.S)
    open(doc_path, "w").write(doc)
    print("\n".join(lines))


if __name__ == "__main__":
    restore() if sys.argv[1:] == ["--restore"] else main()

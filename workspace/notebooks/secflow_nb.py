"""Shared helpers for the FL-SecFlow notebooks: run the project's commands and read its run folders.

The notebooks drive the project the way a researcher does from a terminal (`npm run federation`,
`npx secflow leakage audit`) and then read what those commands wrote: metrics.jsonl, state.json,
threshold.json, model/model-card.json, audit.json and the PNGs. Nothing here reaches into the TypeScript code.

Quick mode (SECFLOW_NB_QUICK=1, used by test/notebooks.test.ts): fewer rounds and images, so every notebook
runs in a minute or two; the conclusions then mean nothing, the plumbing is what is tested.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
QUICK = os.environ.get("SECFLOW_NB_QUICK") == "1"
#: Where the notebooks' runs go (each command makes its own time-stamped folder below).
RUNS = Path(os.environ.get("SECFLOW_NB_RUNS", REPO / "runs" / "notebooks"))


def run(command: list[str], echo_last: int = 25) -> str:
    """Runs a project command from the repository root; shows its last lines; raises if it failed."""
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = done.stdout
    lines = [line for line in output.splitlines() if "oneDNN" not in line and "absl::" not in line]
    print("\n".join(lines[-echo_last:]))
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} {' '.join(command[1:3])} exited {done.returncode}")
    return output


def federation(out: Path, rounds: int, *extra: str) -> Path:
    """`npm run federation` into `out`; returns the experiment's run folder."""
    quick = ["--train-limit", "900", "--test-limit", "200", "--width", "4"] if QUICK else []
    run(["npm", "run", "--silent", "federation", "--", "--rounds", str(rounds), "--no-dashboard", "--out", str(out), *quick, *extra])
    return latest_run(out)


def latest_run(root: Path = RUNS) -> Path:
    """The most recently updated experiment run folder below `root` (…/workspace/<federation>/<experiment>)."""
    states = sorted(Path(root).glob("**/workspace/*/*/state.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        raise FileNotFoundError(f"no run folder below {root}: run 01-run-an-experiment.ipynb first")
    return states[-1].parent


def metrics(run_dir: Path) -> pd.DataFrame:
    """metrics.jsonl as one row per record: round (1-based), scope, envoy, split and every metric as a column."""
    rows = []
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        rows.append({"round": record["round"] + 1, "scope": record["scope"], "envoy": record.get("envoy"),
                     "split": record["split"], **record["metrics"]})
    return pd.DataFrame(rows)


def director_test(run_dir: Path) -> pd.DataFrame:
    """The director's test-set metrics per round."""
    m = metrics(run_dir)
    return m[(m.scope == "director") & (m.split == "test")].set_index("round")


def rounds_axis(*axes) -> None:
    """Rounds are whole numbers: label the x axis so."""
    from matplotlib.ticker import MaxNLocator
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("round")


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def stamp() -> str:
    import datetime
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


if sys.version_info < (3, 9):
    raise RuntimeError("the notebooks need Python 3.9 or newer")

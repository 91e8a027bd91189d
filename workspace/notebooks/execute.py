"""Executes notebooks headless, as the tests do, and saves each executed copy (outputs included).

    ~/.cache/fl-secflow/notebook-venv/bin/python workspace/notebooks/execute.py [--out DIR] NOTEBOOK...

Exit status 1 if a cell raised; the error names the notebook and the cell. SECFLOW_NB_QUICK=1 makes the
notebooks run small (see secflow_nb.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def execute(path: Path, out: Path) -> dict:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}})
    try:
        client.execute()
    finally:
        nbformat.write(notebook, out / path.name)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    return {"notebook": path.name, "executed": str(out / path.name), "cells": len(notebook.cells),
            "images": sum(1 for o in outputs if "image/png" in o.get("data", {})),
            "errors": sum(1 for o in outputs if o.get("output_type") == "error")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=HERE / "executed")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for path in args.notebooks:
        try:
            print(json.dumps(execute(path.resolve(), args.out)), flush=True)
        except CellExecutionError as error:
            print(f"{path.name}: a cell failed:\n{error}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

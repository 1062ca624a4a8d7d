"""Executes every notebooks/*.ipynb headless with the finlora kernel, as CI and users do:

    jupyter nbconvert --to notebook --execute --ExecutePreprocessor.kernel_name=finlora NB

and checks the executed notebook (conventions in README.md):
  - no cell has an error output, except cells tagged "raises-exception" (nbclient's own tag for
    cells expected to fail), which must have one;
  - each line `// expect: TEXT` in a code cell requires TEXT in that cell's outputs (stream text,
    and every text-like MIME type of display_data / execute_result / update output);
  - each line `// expect-error: TEXT` requires TEXT in the cell's error (ename, evalue, traceback);
  - NOTEBOOK_CHECKS below may add checks of its own per notebook.
"""
import glob
import json
import os
import re
import subprocess

import pytest

from conftest import KERNEL_NAME

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
EXPECT = re.compile(r"^\s*//\s*expect:\s?(.*?)\s*$", re.M)
EXPECT_ERROR = re.compile(r"^\s*//\s*expect-error:\s?(.*?)\s*$", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def source(cell):
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def joined(v):
    return "".join(v) if isinstance(v, list) else str(v)


def output_text(cell):
    """Everything a reader sees in a cell's outputs, as one string."""
    parts = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            parts.append(joined(o.get("text", "")))
        elif o["output_type"] in ("display_data", "execute_result", "update_display_data"):
            for mime, v in o.get("data", {}).items():
                if mime.startswith("text/") or mime in ("image/svg+xml", "application/json"):
                    parts.append(v if isinstance(v, str) else json.dumps(v) if not isinstance(v, list) else joined(v))
    return "\n".join(parts)


def error_text(cell):
    parts = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "error":
            parts += [o.get("ename", ""), o.get("evalue", "")] + [ANSI.sub("", t) for t in o.get("traceback", [])]
    return "\n".join(parts)


def check_tour(nb):
    """00-kernel-tour: state across cells, a rich display, a progress bar, an error and recovery."""
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    kinds = {o["output_type"] for c in cells for o in c.get("outputs", [])}
    assert "display_data" in kinds or "execute_result" in kinds, "the tour shows no rich output"
    assert any("raises-exception" in c.get("metadata", {}).get("tags", []) for c in cells), \
        "the tour has no (tagged) error cell"


NOTEBOOK_CHECKS = {
    "00-kernel-tour.ipynb": check_tour,
}


def execute(path, tmp_path):
    out_dir = tmp_path / "executed"
    cmd = ["jupyter", "nbconvert", "--to", "notebook", "--execute",
           f"--ExecutePreprocessor.kernel_name={KERNEL_NAME}",
           "--ExecutePreprocessor.timeout=600",
           # Run every cell even after an error, so that all problems are reported at once, and
           # check the error rules per cell below (nbconvert alone would stop at the first one).
           "--allow-errors",
           "--output-dir", str(out_dir), path]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, f"nbconvert failed ({p.returncode}):\n{p.stderr[-6000:]}"
    with open(out_dir / os.path.basename(path)) as f:
        return json.load(f)


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks/*.ipynb yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nb = execute(path, tmp_path)
    problems = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = source(cell)
        where = f"cell {i} ({src.strip().splitlines()[0][:60] if src.strip() else 'empty'!r})"
        err = error_text(cell)
        expects_error = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        if err and not expects_error:
            problems.append(f"{where}: unexpected error:\n{err[:2000]}")
        if expects_error and not err:
            problems.append(f"{where}: tagged raises-exception but produced no error")
        if EXPECT_ERROR.search(src) and not expects_error:
            problems.append(f"{where}: has '// expect-error:' but lacks the cell tag raises-exception "
                            "(without it, Run All in Jupyter and nbconvert --execute stop at this cell)")
        text = output_text(cell)
        for want in EXPECT.findall(src):
            if want not in text:
                problems.append(f"{where}: expected {want!r} in the output, got:\n{text[:1500]}")
        for want in EXPECT_ERROR.findall(src):
            if want not in err:
                problems.append(f"{where}: expected {want!r} in the error, got:\n{err[:1500]}")
    assert not problems, "\n\n".join(problems)
    extra = NOTEBOOK_CHECKS.get(os.path.basename(path))
    if extra:
        extra(nb)

"""The notebooks run top to bottom on the CPU, in this Python, and are stored without outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TRAINS = {"02_compare_upsamplers.ipynb"}  # runs a tiny sweep when it finds none


def notebook_params():
    return [
        pytest.param(path, id=path.stem, marks=[pytest.mark.slow] if path.name in TRAINS else []) for path in NOTEBOOKS
    ]


def test_the_notebooks_are_there():
    # Parametrised tests over an empty glob would pass by running nothing.
    assert {"01_transposed_convolution.ipynb", "02_compare_upsamplers.ipynb"} <= {path.name for path in NOTEBOOKS}


@pytest.mark.parametrize("path", notebook_params())
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {number} has stored outputs"
            assert cell.execution_count is None, f"{path.name} cell {number} has an execution count"


@pytest.mark.parametrize("path", notebook_params())
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    # An empty logs folder, so that 02 neither picks up someone's sweep under logs/ nor writes there: it runs its
    # tiny sweep into this test's folder. The kernel inherits this environment.
    monkeypatch.delenv("UPSEG_SWEEP_DIR", raising=False)
    monkeypatch.setenv("UPSEG_LOGS_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("UPSEG_SWEEP_OUTPUT", str(tmp_path / "sweep"))
    notebook = nbformat.read(path, as_version=4)
    # The "python3" kernel must be this interpreter (this virtual environment, this upseg), not another Python.
    notebook.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))

    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    client.execute()  # raises CellExecutionError, with the failing cell and traceback, if any cell fails

    assert notebook.cells[-1].outputs[0]["text"].strip() == sys.prefix
    if path.name in TRAINS:
        assert (tmp_path / "sweep" / "comparison.csv").is_file()
        assert not (tmp_path / "logs").exists()

"""A fresh runtime, as Colab starts one: a new virtual environment without ``la_dl``.

The notebook's setup cell must install ``la_dl`` itself (from the local checkout here; from
the repository URL on Colab) and the notebook must then run top to bottom and print the
text stored in it. To stay fast and offline, the new environment gets only what the
notebook needs besides ``la_dl``, pinned to ``requirements.txt`` (torch from local disk,
the rest from pip's cache); the kernel runs in that environment's Python.

It works on a copy of the repository, so the in-tree build of ``pip install`` never
touches the working tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "chapters/01_matmul_chain.ipynb"
# What a Colab runtime already has (torch, numpy, matplotlib, ipywidgets, scikit-learn) and
# what runs a notebook (ipykernel, nbclient, nbformat); la_dl is deliberately absent.
PREINSTALLED = ["torch", "numpy", "matplotlib", "ipywidgets", "scikit-learn", "ipykernel", "nbclient",
                "nbformat"]
IGNORED = shutil.ignore_patterns(".venv", "_build", ".git", "__pycache__", "*.egg-info", "build",
                                 ".hypothesis", ".pytest_cache", ".jupyter_cache", "figures")

# Run inside the fresh environment: execute the notebook with nbclient in a kernel of *this*
# Python, then report each cell's text output and whether la_dl was importable before.
RUNNER = textwrap.dedent(
    """
    import importlib.util, json, sys
    import nbclient, nbformat
    from jupyter_client.kernelspec import KernelSpecManager

    before = importlib.util.find_spec("la_dl") is not None
    path = sys.argv[1]
    nb = nbformat.read(path, as_version=4)
    stored = [[o.get("text", "") for o in c.get("outputs", []) if o.get("output_type") == "stream"]
              for c in nb.cells]
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="fresh",
                                     resources={"metadata": {"path": sys.argv[2]}})
    client.execute()
    ran = [[o.get("text", "") for o in c.get("outputs", []) if o.get("output_type") == "stream"]
           for c in nb.cells]
    tags = [c.get("metadata", {}).get("tags", []) for c in nb.cells]
    print(json.dumps({"before": before, "stored": stored, "ran": ran, "tags": tags}))
    """
)


def _clean_env() -> dict[str, str]:
    """The environment without anything that points Python or Jupyter at this checkout."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHON", "VIRTUAL_ENV"))}


def make_fresh_env(path: Path) -> Path:
    """A new venv with only the notebook's third-party needs, pinned; returns its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    python = path / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "requirements.txt"), *PREINSTALLED],
        check=True, capture_output=True, text=True, cwd=path, env=_clean_env(),
    )
    return python


def run_notebook_fresh(python: Path, checkout: Path, jupyter_dir: Path) -> dict:
    """Run ``NOTEBOOK`` of ``checkout`` in a kernel of ``python``; return the runner's report."""
    env = _clean_env()
    # A kernelspec of the fresh Python in a directory of its own, found before any other.
    env.update(JUPYTER_PATH=str(jupyter_dir), JUPYTER_DATA_DIR=str(jupyter_dir),
               JUPYTER_CONFIG_DIR=str(jupyter_dir / "config"), LA_DL_DEVICE="cpu", MPLBACKEND="Agg",
               PYTHONHASHSEED="0")
    subprocess.run(
        [str(python), "-m", "ipykernel", "install", "--name", "fresh", "--prefix", str(jupyter_dir / "prefix")],
        check=True, capture_output=True, env=env,
    )
    shutil.copytree(jupyter_dir / "prefix" / "share" / "jupyter" / "kernels", jupyter_dir / "kernels")
    notebook = checkout / NOTEBOOK
    done = subprocess.run(
        [str(python), "-c", RUNNER, str(notebook), str(notebook.parent)],
        capture_output=True, text=True, env=env, cwd=notebook.parent, timeout=900,
    )
    if done.returncode != 0:
        raise AssertionError(f"the notebook failed in the fresh runtime:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_fresh_runtime_installs_la_dl_and_runs_the_notebook(tmp_path):
    checkout = tmp_path / "repo"
    shutil.copytree(ROOT, checkout, ignore=IGNORED)
    python = make_fresh_env(tmp_path / "venv")
    missing = subprocess.run([str(python), "-c", "import la_dl"], capture_output=True, text=True,
                             cwd=tmp_path, env=_clean_env())
    assert missing.returncode != 0 and "No module named 'la_dl'" in missing.stderr

    report = run_notebook_fresh(python, checkout, tmp_path / "jupyter")

    assert report["before"] is False  # the kernel started without la_dl ...
    installed = subprocess.run(  # ... and the setup cell installed it, from the checkout, into the venv
        [str(python), "-c", "import la_dl, sys; print(la_dl.__file__); print(sys.prefix)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=_clean_env(),
    ).stdout.split()
    assert Path(installed[0]).is_relative_to(tmp_path / "venv"), installed
    # Every cell that nbval compares prints in the fresh runtime what the book stores.
    for stored, ran, tags in zip(report["stored"], report["ran"], report["tags"]):
        if "nbval-ignore-output" not in tags:
            assert ran == stored
    assert any(report["ran"]), "the notebook printed nothing: did it run?"

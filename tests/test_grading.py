"""The instructor workflow end to end: otter assign, then grading a folder of submissions.

Runs otter-grader for real (offline, no Docker): `tools/grading.py assign` on the master
notebook, then `grade` on six submissions: correct, partly correct, empty (the student
notebook as handed out), one whose cell raises, one that is not JSON and one that is JSON but
not a notebook. Needs `pip install -r requirements-grading.txt`; about a minute on 2 cores.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import pathlib
import sys
import zipfile

import nbformat
import pytest

pytest.importorskip("otter", reason="the grading tools are optional: pip install -r requirements-grading.txt")

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("grading", ROOT / "tools" / "grading.py")
grading = importlib.util.module_from_spec(spec)
sys.modules["grading"] = grading  # dataclasses look their module up by name
spec.loader.exec_module(grading)

pytestmark = pytest.mark.slow

POINTS = {"q1": 2, "q2": 1, "q3": 1, "q4": 1, "q5": 1, "q6": 2, "q7": 2, "q8": 1}  # the master's
FULL = sum(POINTS.values())


def _edit(nb: nbformat.NotebookNode, starts: str, source: str) -> None:
    """Replace the (unique) code cell whose source starts with ``starts``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(starts)]
    assert len(cells) == 1, f"expected one cell starting with {starts!r}, found {len(cells)}"
    cells[0].source = source


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grading")
    dist = tmp / "dist"
    autograder = grading.assign(grading.MASTER, dist)
    solution = nbformat.read(dist / "autograder" / "exercises.ipynb", as_version=4)
    student = nbformat.read(dist / "student" / "exercises.ipynb", as_version=4)

    submissions = tmp / "submissions"
    submissions.mkdir()
    nbformat.write(solution, submissions / "correct.ipynb")
    nbformat.write(student, submissions / "empty.ipynb")

    partial = nbformat.reads(nbformat.writes(solution), as_version=4)
    _edit(partial, "split =", "split = 3 * 512**2  # forgot W^O\nfull = 4 * 8 * 512**2")
    _edit(partial, "def layer_norm_rows", "def layer_norm_rows(H):\n    return H - H.mean(dim=1, keepdim=True)")
    nbformat.write(partial, submissions / "partial.ipynb")

    raising = nbformat.reads(nbformat.writes(solution), as_version=4)
    _edit(raising, "bn_dims =", 'raise RuntimeError("the student broke this cell")\nbn_dims = (0, 2, 3)')
    nbformat.write(raising, submissions / "raising.ipynb")

    (submissions / "not_json.ipynb").write_text('{"cells": [ this is not JSON')
    (submissions / "not_a_notebook.ipynb").write_text('{"hello": "world"}')

    out = tmp / "scores.csv"
    scores = grading.grade(submissions, autograder, out, jobs=2, timeout=300)
    return {"dist": dist, "autograder": autograder, "scores": {s.submission: s for s in scores},
            "csv": out, "student": student}


def test_student_notebook_has_no_solutions_and_no_hidden_tests(graded):
    student = graded["student"]
    sources = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    assert "# SOLUTION" not in sources and "BEGIN SOLUTION" not in sources
    assert "n_params = ..." in sources and "def layer_norm_rows(H):\n    ..." in sources
    tests = json.dumps(student.metadata["otter"]["tests"])
    assert "public_1" in tests and "hidden" not in tests.replace("hidden=False", "")
    with zipfile.ZipFile(graded["autograder"]) as z:
        q1 = z.read("tests/q1.py").decode()
    assert "hidden=True" in q1 and "check_mlp_shapes" in q1  # kept back for grading


def test_correct_submission_gets_full_marks(graded):
    s = graded["scores"]["correct.ipynb"]
    assert s.points == {q: float(p) for q, p in POINTS.items()}
    assert s.total == FULL and s.message == ""


def test_partly_correct_submission(graded):
    s = graded["scores"]["partial.ipynb"]
    # q2: the public test passes, the hidden count fails (half of 1 point);
    # q7: right shape, wrong values (half of 2 points).
    assert s.points["q2"] == 0.5 and s.points["q7"] == 1.0
    assert s.total == FULL - 1.5
    assert "q2: WrongAnswer: Exercise 3" in s.message or "q2: la_dl.exercises.WrongAnswer" in s.message
    assert "q7: AssertionError" in s.message


def test_empty_submission_gets_zero(graded):
    s = graded["scores"]["empty.ipynb"]
    assert s.total == 0 and set(s.points) == set(POINTS)
    assert all(f"q{i}:" in s.message for i in range(1, 9))


def test_a_raising_cell_costs_only_its_question(graded):
    s = graded["scores"]["raising.ipynb"]
    assert s.points["q3"] == 0 and s.total == FULL - POINTS["q3"]
    assert "q3: AssertionError: bn_dims is not defined: run its cell (did it raise an error?)" in s.message


def test_invalid_files_score_zero_with_a_message(graded):
    for name in ("not_json.ipynb", "not_a_notebook.ipynb"):
        s = graded["scores"][name]
        assert s.total == 0 and s.points == {q: 0.0 for q in POINTS}
        assert s.message.startswith("not a valid notebook")


def test_score_table(graded):
    with graded["csv"].open() as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"correct.ipynb", "partial.ipynb", "empty.ipynb", "raising.ipynb",
                         "not_json.ipynb", "not_a_notebook.ipynb"}
    assert [rows[n]["total"] for n in ("correct.ipynb", "partial.ipynb", "empty.ipynb", "raising.ipynb")] \
        == [f"{FULL:g}", f"{FULL - 1.5:g}", "0", f"{FULL - 1:g}"]
    assert all(row["possible"] == f"{FULL:g}" for row in rows.values())
    assert rows["not_json.ipynb"]["message"].startswith("not a valid notebook")


def test_grade_without_autograder_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="run `tools/grading.py assign` first"):
        grading.grade(tmp_path, tmp_path / "missing.zip")

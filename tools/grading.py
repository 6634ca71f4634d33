"""The instructor workflow: student notebooks from the graded exercises, and a score table.

Both steps use otter-grader (``pip install -r requirements-grading.txt``), run offline and
without Docker:

    python tools/grading.py assign                 # instructor/exercises.ipynb -> instructor/dist/
    python tools/grading.py grade SUBMISSIONS/     # every *.ipynb in SUBMISSIONS/ -> scores.csv

``assign`` runs ``otter assign`` on the master notebook: ``dist/student/`` gets the notebook
to hand out (solutions replaced by ``...``, public tests only), ``dist/autograder/`` the
solution notebook and ``autograder.zip`` with every test, hidden ones included. Otter runs
all tests against the solutions first, so a broken answer key fails here, not in grading.

``grade`` runs ``otter run`` (non-containerised grading) on each submission in its own
process, with a time limit, and writes one row per submission: the points per question, the
total, and a message saying what went wrong. A submission that is not a valid notebook,
times out or crashes the grader scores zero with that message; a cell that raises costs only
the questions that depend on it. No submission stops the grading of the others.
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
MASTER = ROOT / "instructor" / "exercises.ipynb"
DIST = ROOT / "instructor" / "dist"


def _otter() -> list[str]:
    """The otter command of this interpreter's environment."""
    script = pathlib.Path(sys.executable).with_name("otter")
    if not script.exists():
        raise SystemExit("grading: otter-grader is not installed; run "
                         "`pip install -r requirements-grading.txt` first")
    return [str(script)]


# --------------------------------------------------------------------------- assign


def assign(master: pathlib.Path = MASTER, out: pathlib.Path = DIST) -> pathlib.Path:
    """Run ``otter assign``; return the path of ``out/autograder/autograder.zip``."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [*_otter(), "assign", "--no-pdfs", str(master), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"grading assign: otter assign failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    zips = sorted((out / "autograder").glob("*-autograder_*.zip"))
    if not zips:
        raise SystemExit(f"grading assign: otter assign wrote no autograder zip into {out / 'autograder'}")
    autograder = out / "autograder" / "autograder.zip"
    zips[-1].rename(autograder)  # a stable name for `grade`
    return autograder


# --------------------------------------------------------------------------- grade


@dataclass
class Score:
    """One row of the score table."""

    submission: str
    points: dict[str, float] = field(default_factory=dict)
    possible: dict[str, float] = field(default_factory=dict)
    message: str = ""

    @property
    def total(self) -> float:
        return sum(self.points.values())


_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception|WrongAnswer):")


def _failure_reason(output: str) -> str:
    """The error line of the first failed test case of a question, e.g. "NameError: …"."""
    lines = [line.strip() for line in output.splitlines()]
    for i, line in enumerate(lines):
        if "Test case failed" in line:
            for follow in lines[i + 1:]:
                if follow.endswith("result:"):  # the next test case starts
                    break
                if _ERROR_LINE.match(follow):
                    return follow
            return "a test failed"
    return ""


def _read_results(path: pathlib.Path, name: str) -> Score:
    results = json.loads(path.read_text())
    score = Score(name)
    reasons = []
    for test in results.get("tests", []):
        if "max_score" not in test:  # the "Public Tests" summary
            continue
        q = test["name"]
        score.points[q] = float(test.get("score") or 0.0)
        score.possible[q] = float(test["max_score"])
        if score.points[q] < score.possible[q]:
            reasons.append(f"{q}: {_failure_reason(test.get('output', '')) or 'not full marks'}")
    score.message = "; ".join(reasons)
    return score


def grade_one(submission: pathlib.Path, autograder: pathlib.Path, timeout: float = 600) -> Score:
    """Grade one notebook; never raises for a bad submission (it scores zero with a message)."""
    name = submission.name
    try:
        nb = nbformat.read(submission, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # any unreadable file is the student's zero, not the grader's crash
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return Score(name, message=f"not a valid notebook ({type(err).__name__}: {first})")
    with tempfile.TemporaryDirectory(prefix="la_dl_grade_") as tmp:
        cmd = [*_otter(), "run", "--no-logo", "-a", str(autograder), "-o", tmp, str(submission)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Score(name, message=f"grading timed out after {timeout:g} s")
        results = pathlib.Path(tmp) / "results.json"
        if done.returncode != 0 or not results.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return Score(name, message=f"the grader failed on this notebook: {tail[0]}")
        return _read_results(results, name)


def grade(submissions: pathlib.Path, autograder: pathlib.Path, out: pathlib.Path | None = None,
          jobs: int = 1, timeout: float = 600) -> list[Score]:
    """Grade every ``*.ipynb`` in ``submissions``; write the table to ``out`` (CSV) if given."""
    if not autograder.exists():
        raise SystemExit(f"grading grade: no autograder at {autograder}; run `tools/grading.py assign` first")
    files = sorted(submissions.glob("*.ipynb"))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        scores = list(pool.map(lambda f: grade_one(f, autograder, timeout), files))
    questions = sorted({q for s in scores for q in s.possible}, key=lambda q: (len(q), q))
    possible = {q: next(s.possible[q] for s in scores if q in s.possible) for q in questions}
    for s in scores:  # a zeroed submission gets every question, at 0
        for q in questions:
            s.points.setdefault(q, 0.0)
            s.possible.setdefault(q, possible[q])
    if out is not None:
        with out.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["submission", *questions, "total", "possible", "message"])
            for s in scores:
                writer.writerow([s.submission, *(f"{s.points[q]:g}" for q in questions),
                                 f"{s.total:g}", f"{sum(possible.values()):g}", s.message])
    return scores


def _print_table(scores: list[Score]) -> None:
    width = max([len(s.submission) for s in scores] + [10])
    for s in scores:
        total = sum(s.possible.values())
        print(f"{s.submission:<{width}}  {s.total:5g} / {total:g}   {s.message}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("assign", help="make the student notebook and the autograder")
    a.add_argument("--master", type=pathlib.Path, default=MASTER)
    a.add_argument("--out", type=pathlib.Path, default=DIST)
    g = sub.add_parser("grade", help="grade a folder of submitted notebooks into a CSV table")
    g.add_argument("submissions", type=pathlib.Path)
    g.add_argument("--autograder", type=pathlib.Path, default=DIST / "autograder" / "autograder.zip")
    g.add_argument("--out", type=pathlib.Path, default=pathlib.Path("scores.csv"))
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    g.add_argument("--timeout", type=float, default=600, help="seconds per submission")
    args = parser.parse_args(argv)
    if args.command == "assign":
        autograder = assign(args.master, args.out)
        print(f"student notebook: {args.out / 'student'}\nautograder:       {autograder}")
    else:
        scores = grade(args.submissions, args.autograder, args.out, args.jobs, args.timeout)
        _print_table(scores)
        print(f"scores: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark suite of la_dl: ``python -m bench`` (``make bench``).

Each ``bench_<name>.py`` module exposes ``run(ctx: bench._harness.Context) -> list[Result]``;
:mod:`bench.__main__` runs them, prints one table with every target's verdict and writes
``_build/bench/results.json``. See :mod:`bench._harness` for how timings are taken.
"""

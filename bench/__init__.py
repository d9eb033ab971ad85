"""Cairn benchmarks: ``python -m bench [suite ...]`` -> bench/results.json + a printed table.

Each suite module exposes ``run() -> dict[str, float]`` and ``GOALS`` (metric -> text).
Results are merged into bench/results.json (flat metric -> number), so suites written by
different parts of the project can run separately. Docs: docs/benchmarks.md.
"""

"""Benchmarks: per-test isolation strategies, ORM write throughput, suite times.

Run with `make bench` (or `make bench BENCH_QUICK=1` for a smoke run); see
`python -m bench --help`. Timings are printed as tables and written as JSON
to `bench/results/`. Nothing here is a test: no number is ever asserted.
"""

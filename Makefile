# Benchmarks (results in BENCHMARKS.md). Each starts its own Redis and the whole stack. The harness lives in
# bench/, outside the installed package, so it runs from this folder: `python -m bench`.
PYTHON ?= .venv/bin/python

.PHONY: bench bench-quick

# The full run: a few minutes; writes bench/results/latest-full.json and a timestamped copy.
bench:
	$(PYTHON) -m bench

# Every benchmark with small counts, in seconds: checks the harness works (timings mean nothing).
bench-quick:
	$(PYTHON) -m bench --quick

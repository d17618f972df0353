"""Benchmarks of the whole stack (issue 7): `make bench`, `lobby bench` or `python -m services.bench`."""

"""Run the benchmarks: `python -m services.bench [--quick]`."""

import sys

from services.bench.harness import main

sys.exit(main())

"""The throughput benchmark; its code is offline_assistants/bench/throughput.py, which `offline-assistants bench`
runs too.
Run `python benchmarks/throughput.py --help` for what it measures and its options."""

import sys

from offline_assistants.bench.throughput import main

if __name__ == "__main__":
    sys.exit(main())

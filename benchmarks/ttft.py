"""The ttft benchmark; its code is offline_assistants/bench/ttft.py, which `offline-assistants bench` runs too.
Run `python benchmarks/ttft.py --help` for what it measures and its options."""

import sys

from offline_assistants.bench.ttft import main

if __name__ == "__main__":
    sys.exit(main())

"""The truncation benchmark; its code is offline_assistants/bench/truncation.py, which `offline-assistants bench`
runs too.
Run `python benchmarks/truncation.py --help` for what it measures and its options."""

import sys

from offline_assistants.bench.truncation import main

if __name__ == "__main__":
    sys.exit(main())

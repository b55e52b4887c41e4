"""The responses benchmark; its code is offline_assistants/bench/responses.py.
Run `python benchmarks/responses.py --help` for what it measures and its options."""

import sys

from offline_assistants.bench.responses import main

if __name__ == "__main__":
    sys.exit(main())

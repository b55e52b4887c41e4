"""The chat benchmark; its code is offline_assistants/bench/chat.py.
Run `python benchmarks/chat.py --help` for what it measures and its options."""

import sys

from offline_assistants.bench.chat import main

if __name__ == "__main__":
    sys.exit(main())

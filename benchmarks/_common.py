"""The benchmarks' shared helpers live in the package (offline_assistants/bench/common.py), where
`offline-assistants bench` uses them too; the scripts here import them under this old name."""

from offline_assistants.bench.common import *  # noqa: F401,F403

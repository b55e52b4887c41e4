"""Object ids shaped as the real API makes them: a prefix and random characters."""

from __future__ import annotations

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits

PREFIXES = {
    "assistant": "asst_",
    "thread": "thread_",
    "message": "msg_",
    "run": "run_",
    "step": "step_",
    "file": "file-",
    "call": "call_",
    "vector_store": "vs_",
    "upload": "upload_",
    "upload_part": "part_",
    "file_batch": "vsfb_",
    "response": "resp_",
    "conversation": "conv_",
    "item": "item_",  # an input item that is not a stored message (a function call's output)
    "container": "cntr_",
    "container_file": "cfile_",
}


def new_id(kind: str) -> str:
    return PREFIXES[kind] + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def now() -> int:
    """Timestamps are integer Unix seconds, as in the real API."""
    return int(time.time())

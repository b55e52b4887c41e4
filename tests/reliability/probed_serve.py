"""`offline-assistants serve` exactly, plus one read-only route for the load test: GET /_probe.

    python tests/reliability/probed_serve.py serve --model ... (any `serve` options)

/_probe answers what only the server can see: the engine's open event subscriptions (EventBus.listening), its
threads, its resident memory and CPU time, whether the worker is busy, so a test can watch clients that vanished
mid-stream count back to zero through a real server process. The probe is the test's, not the product's: it
wraps `create_app`, nothing else changes.
"""

from __future__ import annotations

import resource
import sys
import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import offline_assistants.api as api
from offline_assistants.cli import main

_create_app = api.create_app


def _probed(engine: Any, **kwargs: Any) -> Any:
    app = _create_app(engine, **kwargs)

    async def probe(request: Request) -> Response:
        with open("/proc/self/statm") as statm:
            rss_pages = int(statm.read().split()[1])
        return JSONResponse({
            "listening": engine.bus.listening(),
            "threads": threading.active_count(),
            "rss_mb": round(rss_pages * resource.getpagesize() / 2**20, 1),
            "busy": not engine.worker.idle(),  # a run executing (or queued behind one): the model is at work
            "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 3),  # this process, all threads
        })

    app.add_route("/_probe", probe, methods=["GET"])
    return app


api.create_app = _probed  # cli.serve imports it from offline_assistants.api when it runs

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

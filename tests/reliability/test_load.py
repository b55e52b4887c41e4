"""100 concurrent clients on loopback against a real `serve` process on the real model.

They create threads, add messages, read and list them, start runs on their own threads and poll them, stream
runs and walk away mid-stream, upload and list files (load_clients.py), while long runs keep the model
generating. Afterwards: no error but the documented ones, no message lost or duplicated, every file byte for
byte, every request answered within its timeout (no deadlock), the streams walked away from leave no
subscription behind, and the latency of the non-generation requests made while the model generated is
p95 < 100 ms with no stall a user would feel (p99 < 400 ms). Its p99 was the gate once (< 100 ms) and measured
33-90 ms in most runs, but one pause of the server's process (or of these clients') of 150-200 ms in a 35 s window
is enough to lift it past 100 ms, on the code of any session (one run in four of 2006b34 on a 2-core EPYC): a
figure that flips run to run is a benchmark's (benchmarks/concurrency.py prints the API's p99 while runs
generate), not a test's.

    python -m pytest tests/reliability/test_load.py --load-seconds 120 -s   # longer than CI's 30 s
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from ledger import client, user_texts
from load_clients import Client, Traffic, generate, lag, watch
from scenarios import ENDED, ok, script, wait_run
from serve_process import ServeProcess

from offline_assistants.bench.measure import cpu_seconds, machine_busy_seconds, percentile

CLIENTS = 100
THINK_S = 1.0  # mean pause between one client's requests: 100 clients make ~90 requests a second
P95_TARGET_S = 0.100
STALL_S = 0.400


async def load(url: str, assistant_id: str, seconds: float, seed: int) -> Traffic:
    traffic = Traffic()
    deadline = time.monotonic() + seconds
    rng = random.Random(seed)
    clients = [Client(n, url, assistant_id, traffic, random.Random(rng.random()), deadline, THINK_S)
               for n in range(CLIENTS)]
    work = [generate(url, assistant_id, traffic, deadline), watch(url, traffic, deadline), lag(traffic, deadline),
            *(c.main() for c in clients)]
    # Every request has its own timeout; this one says the whole load ended (no deadlock) with room to spare.
    await asyncio.wait_for(asyncio.gather(*work), timeout=seconds + 60)
    return traffic


def cpu(server: ServeProcess) -> dict[str, float]:
    """CPU seconds so far: the server, its model process, these clients, and the whole machine."""
    model = next(c.pid for c in server.children() if "offline_assistants.llm.child" in c.cmdline)
    assert server.proc is not None
    return {"server": cpu_seconds(server.proc.pid), "model": cpu_seconds(model), "clients": cpu_seconds(os.getpid()),
            "machine": machine_busy_seconds()}


def drain(http: httpx2.Client, traffic: Traffic) -> dict[str, int]:
    """Cancel the runs still queued or executing, wait for the worker to be idle; how the runs ended."""
    for run_id, thread_id in traffic.runs.items():
        if ok(http.get(f"/v1/threads/{thread_id}/runs/{run_id}"))["status"] in ("queued", "in_progress"):
            http.post(f"/v1/threads/{thread_id}/runs/{run_id}/cancel")
    deadline = time.monotonic() + 30
    while ok(http.get("/_probe"))["busy"]:
        assert time.monotonic() < deadline, "the worker is still busy 30 s after every run was cancelled"
        time.sleep(0.1)
    ended: dict[str, int] = defaultdict(int)
    for run_id, thread_id in traffic.runs.items():
        ended[ok(http.get(f"/v1/threads/{thread_id}/runs/{run_id}"))["status"]] += 1
    return dict(ended)


@pytest.mark.model  # the real model generates while the latencies are measured
def test_100_clients_while_the_model_generates(tmp_path: Path, serve_process: Callable[..., ServeProcess],
                                               load_seconds: float) -> None:
    server = serve_process(tmp_path / "data", model="SmolLM2-135M-Instruct", probed=True)
    server.start()
    with client(server.url) as http:
        assistant_id = ok(http.post("/v1/assistants", json={"model": "gpt-4o", "instructions": "Be brief."}))["id"]
        before = ok(http.get("/_probe"))
    began, cpu_before = time.monotonic(), cpu(server)
    # A thread of its own: sync Playwright (tests/playground) leaves an event loop set on the main thread, and
    # asyncio.run refuses to start where one is running.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        traffic = pool.submit(asyncio.run, load(server.url, assistant_id, load_seconds, seed=14)).result()
    took, used = time.monotonic() - began, {k: v - cpu_before[k] for k, v in cpu(server).items()}
    used["other processes"] = used.pop("machine") - sum(used.values())
    with client(server.url) as http:
        ended = drain(http, traffic)
        lost = {t: (posted, got) for t, posted in traffic.posted.items() if (got := user_texts(http, t)) != posted}
        wrong_files = [f for f, data in traffic.files.items() if http.get(f"/v1/files/{f}/content").content != data]
        per_run: dict[str, int] = defaultdict(int)
        for run_id, thread_id in traffic.runs.items():
            per_run[run_id] = len(ok(http.get(f"/v1/threads/{thread_id}/messages", params={"run_id": run_id}))["data"])
        deadline = time.monotonic() + 10
        while (after := ok(http.get("/_probe")))["listening"] and time.monotonic() < deadline:
            time.sleep(0.1)
    during = traffic.during_generation()
    latencies = [s.seconds for s in during]
    p50, p95, p99 = percentile(latencies, 0.50), percentile(latencies, 0.95), percentile(latencies, 0.99)
    by_name: dict[str, list[float]] = defaultdict(list)
    for sample in during:
        by_name[sample.name].append(sample.seconds)
    table = "\n".join(f"  {name:14s} n={len(v):5d}  p50 {percentile(v, .5) * 1000:6.1f} ms  "
                      f"p99 {percentile(v, .99) * 1000:6.1f} ms" for name, v in sorted(by_name.items()))
    print(f"\n{CLIENTS} clients, {took:.1f}s: {len(traffic.samples)} requests "
          f"({len(traffic.samples) / took:.0f}/s), {len(during)} of them while the model generated "
          f"({sum(b for _, b in traffic.readings)} of {len(traffic.readings)} probe readings busy)\n"
          f"while generating: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms\n{table}\n"
          f"the clients' own event loop woke late by p50 {percentile(traffic.lags, .5) * 1000:.1f} ms, "
          f"p99 {percentile(traffic.lags, .99) * 1000:.1f} ms\n"
          f"the model streamed {traffic.generated / took:.1f} tokens/s to the long runs meanwhile\n"
          f"documented refusals: {dict(traffic.documented)}; runs {ended}; "
          f"streams walked away from: {traffic.streams_left} (at most {traffic.most_listening} open at once)\n"
          f"server threads {before['threads']} -> {after['threads']}, rss {before['rss_mb']} -> "
          f"{after['rss_mb']} MB\n"
          f"CPU seconds over the load, of {os.cpu_count()} cores x {took:.0f} s: "
          + ", ".join(f"{k} {v:.1f}" for k, v in used.items())
          + f" (server {used['server'] / len(traffic.samples) * 1000:.2f} ms a request)")
    assert not traffic.errors, f"{len(traffic.errors)} errors:\n" + "\n".join(traffic.errors[:20])
    assert not lost, f"messages lost or duplicated on {len(lost)} threads: {list(lost.items())[:2]}"
    assert not wrong_files, f"files that do not read back: {wrong_files[:5]}"
    assert all(n <= 1 for n in per_run.values()), {r: n for r, n in per_run.items() if n > 1}
    assert after["listening"] == 0, f"{after['listening']} subscriptions left behind"
    assert traffic.streams_left > 0 and len(traffic.posted) == CLIENTS
    assert len(during) > 1000, "too little traffic while the model generated to measure"
    # The figure needs the cores: other processes' CPU time is in the message, to tell contention from regression.
    assert p95 < P95_TARGET_S and p99 < STALL_S, (
        f"p95 {p95 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms while the model generates (targets < 100 and < 400 ms); "
        f"other processes used {used['other processes']:.0f} CPU seconds meanwhile")


def test_runs_start_in_the_order_they_were_created_across_threads(
        tmp_path: Path, serve_process: Callable[..., ServeProcess]) -> None:
    """FIFO admission through the live server: with the worker busy, runs created on threads B, C, D, ... start
    in that order, whichever thread they are on (the scripted model records each prompt as it starts)."""
    server = serve_process(tmp_path / "data", options=["--no-code-interpreter"])
    server.start()
    with client(server.url) as http:
        assistant_id = ok(http.post("/v1/assistants", json={"model": "gpt-4o"}))["id"]
        names = [f"order{n:02d}" for n in range(12)]
        threads = {name: ok(http.post("/v1/threads", json={"messages": [{"role": "user", "content": name}]}))["id"]
                   for name in names}
        busy = ok(http.post("/v1/threads", json={"messages": [{"role": "user", "content": "busy"}]}))["id"]
        script(http, busy, {"kind": "reply", "text": "w " * 40, "delay_s": 0.02})
        first = ok(http.post(f"/v1/threads/{busy}/runs", json={"assistant_id": assistant_id}))["id"]
        wait_run(http, busy, first, ("in_progress",))
        order = random.Random(3).sample(names, len(names))  # created in an order that is not the threads' own
        runs = {}
        for name in order:
            script(http, threads[name], {"kind": "reply", "text": f"reply to {name}"})
            runs[name] = ok(http.post(f"/v1/threads/{threads[name]}/runs", json={"assistant_id": assistant_id}))["id"]
        for name in order:
            assert wait_run(http, threads[name], runs[name], ENDED)["status"] == "completed"
        prompts = ok(http.get("/_script"))["prompts"]
    started = [name for prompt in prompts for name in names if name in prompt]
    assert list(dict.fromkeys(started)) == order

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from offline_assistants.errors import NotFound
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.runs import ACTIVE_STATUSES, TERMINAL_STATUSES, Run, RunDetails, RunStep, Usage
from offline_assistants.store.db import Database, dumps, insert, loads, update
from offline_assistants.store.pagination import paginate

RUN_JSON = ("tools", "tool_resources", "metadata", "truncation_strategy", "tool_choice", "response_format",
            "last_error", "incomplete_details", "required_action", "sampling")
STEP_JSON = ("step_details", "last_error", "usage", "metadata")


def to_run(row: dict[str, Any]) -> Run:
    # tool_resources (from create-thread-and-run) is kept for the tools, but is not part of the Run object.
    values = {k: v for k, v in row.items()
              if k not in ("pk", "prompt_tokens", "completion_tokens", "tool_resources", "details", "max_tool_calls",
                            "sampling")}
    for key in RUN_JSON:
        if key in values:
            values[key] = loads(values[key])
    values["parallel_tool_calls"] = bool(values["parallel_tool_calls"])
    values["truncation_strategy"] = values["truncation_strategy"] or {"type": "auto", "last_messages": None}
    values["tool_choice"] = values["tool_choice"] or "auto"
    values["response_format"] = values["response_format"] or "auto"
    # The real API reports usage only once a run has ended.
    values["usage"] = (
        Usage(prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
              total_tokens=row["prompt_tokens"] + row["completion_tokens"])
        if row["status"] in TERMINAL_STATUSES
        else None
    )
    values["x_details"] = RunDetails.stored(loads(row.get("details")))
    return Run(**values)


def to_step(row: dict[str, Any]) -> RunStep:
    values = {k: v for k, v in row.items() if k != "pk"}
    for key in STEP_JSON:
        values[key] = loads(values[key])
    return RunStep(**values)


def _encode(values: dict[str, Any], json_fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: (dumps(v) if k in json_fields else v) for k, v in values.items()}


@dataclass(frozen=True)
class RunRecord:
    """A run as the executor needs it: the API object, plus what the object does not show."""

    run: Run
    tool_resources: dict[str, Any] | None  # from create-thread-and-run: the run's own tool resources
    prompt_tokens: int  # usage so far (a resumed run continues its budgets)
    completion_tokens: int
    max_tool_calls: int | None = None  # a response's limit on built-in tool calls
    sampling: dict[str, Any] | None = None  # a chat completion's stop, seed, penalties, logit_bias


class RunStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    # --- runs ---
    def insert(self, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            insert(db, "runs", _encode(values, RUN_JSON))

    def row(self, thread_id: str | None, run_id: str) -> dict[str, Any]:
        if thread_id is None:
            row = self.db.query_one("SELECT * FROM runs WHERE id = ?", (run_id,))
        else:
            row = self.db.query_one("SELECT * FROM runs WHERE id = ? AND thread_id = ?", (run_id, thread_id))
        if row is None:
            raise NotFound("run", run_id)
        return row

    def record(self, run_id: str) -> RunRecord:
        row = self.row(None, run_id)
        return RunRecord(to_run(row), loads(row["tool_resources"]), row["prompt_tokens"], row["completion_tokens"],
                         row["max_tool_calls"], loads(row["sampling"]))

    def get(self, thread_id: str | None, run_id: str) -> Run:
        return to_run(self.row(thread_id, run_id))

    def update(self, run_id: str, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            update(db, "runs", run_id, _encode(values, RUN_JSON))

    def add_usage(self, run_id: str, prompt: int, completion: int,
                  details: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        """Count a model call's tokens to the run; `details` makes the run's x_details from the stored ones, in the
        same transaction (engine/metrics.py)."""
        with self.db.write() as db:
            db.execute("UPDATE runs SET prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ? "
                       "WHERE id = ?", (prompt, completion, run_id))
            if details is not None:
                row = db.execute("SELECT details FROM runs WHERE id = ?", (run_id,)).fetchone()
                if row is not None:
                    db.execute("UPDATE runs SET details = ? WHERE id = ?",
                               (dumps(details(loads(row[0]) or {})), run_id))

    def active(self, thread_id: str) -> dict[str, Any] | None:
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        return self.db.query_one(
            f"SELECT * FROM runs WHERE thread_id = ? AND status IN ({marks}) ORDER BY pk DESC LIMIT 1",
            (thread_id, *ACTIVE_STATUSES),
        )

    def queued(self) -> int:
        """How many runs wait for the worker."""
        row = self.db.query_one("SELECT count(*) AS n FROM runs WHERE status = 'queued'")
        return int(row["n"]) if row else 0

    def all_active(self) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        return self.db.query(f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY pk", tuple(ACTIVE_STATUSES))

    def page(self, thread_id: str, params: ListParams) -> Page[Run]:
        return paginate(self.db, "runs", params, to_run, where="thread_id = ?", args=(thread_id,))

    # --- steps ---
    def insert_step(self, values: dict[str, Any]) -> RunStep:
        with self.db.write() as db:
            insert(db, "run_steps", _encode(values, STEP_JSON))
        return self.get_step(values["run_id"], values["id"])

    def get_step(self, run_id: str, step_id: str) -> RunStep:
        row = self.db.query_one("SELECT * FROM run_steps WHERE id = ? AND run_id = ?", (step_id, run_id))
        if row is None:
            raise NotFound("run step", step_id)
        return to_step(row)

    def update_step(self, step_id: str, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            update(db, "run_steps", step_id, _encode(values, STEP_JSON))

    def tool_steps(self, run_id: str) -> list[RunStep]:
        """The run's tool_calls steps, oldest first: what a resumed run replays to the model."""
        rows = self.db.query("SELECT * FROM run_steps WHERE run_id = ? AND type = 'tool_calls' ORDER BY pk", (run_id,))
        return [to_step(r) for r in rows]

    def open_steps(self, run_id: str) -> list[RunStep]:
        rows = self.db.query("SELECT * FROM run_steps WHERE run_id = ? AND status = 'in_progress'", (run_id,))
        return [to_step(r) for r in rows]

    def list_steps(self, run_id: str, params: ListParams) -> Page[RunStep]:
        return paginate(self.db, "run_steps", params, to_step, where="run_id = ?", args=(run_id,))

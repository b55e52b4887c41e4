"""What tells an executing run to stop: the client's cancel request, and the run's expires_at.

The model call checks `must_stop` after every token, so both are held here in memory rather than read from the
store. `Runs.cancel` asks (before it moves the run to `cancelling`, so the generation stops as soon as the move
is seen), the executor says which runs execute and until when, ModelCalls asks between tokens; one object
owns them, handed to each.
"""

from __future__ import annotations

from offline_assistants.ids import now


class RunControl:
    def __init__(self) -> None:
        # Set and dict operations are atomic under the GIL: the HTTP threads, the workers and the model calls
        # share these without a lock.
        self._cancel_requested: set[str] = set()
        self._deadlines: dict[str, int | None] = {}  # expires_at of each run executing now (several at once)

    def request_cancel(self, run_id: str) -> None:
        self._cancel_requested.add(run_id)

    def withdraw_cancel(self, run_id: str) -> None:
        """The request did not leave the run `cancelling` (it was refused, or the run had ended): forget it."""
        self._cancel_requested.discard(run_id)

    def executing(self, run_id: str, expires_at: int | None) -> None:
        """The run executes from now on, until `expires_at` (None: no deadline)."""
        self._deadlines[run_id] = expires_at

    def finished(self, run_id: str) -> None:
        """The run no longer executes: nothing more to stop."""
        self._deadlines.pop(run_id, None)
        self._cancel_requested.discard(run_id)

    def past_deadline(self, run_id: str) -> bool:
        # As OpenAI documents: a run that goes beyond expires_at is expired, its generation stopped.
        deadline = self._deadlines.get(run_id)
        return deadline is not None and now() >= deadline

    def must_stop(self, run_id: str) -> bool:
        """Whether the run must stop now: the client cancelled it, or it ran past its expires_at."""
        return run_id in self._cancel_requested or self.past_deadline(run_id)

"""File search as a tool: the model writes a query (held to a phrase of the user's request, as function
arguments are), the server searches the run's vector stores (engine/search.py), and the passages come back to
the model each under its citation marker, in the real API's form 【round:index†filename】.

The step records a `file_search` call with its `ranking_options` and `results` (each with its content; the API
shows the content only when the client asks for it with `include[]`), and `x_query`, the query it ran: an
extension, which the real API does not show.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from offline_assistants.llm.backend import Constraint, JsonSchema
from offline_assistants.tools import arguments
from offline_assistants.tools.base import Citation, Emit, Ran, ToolContext
from offline_assistants.tools.functions import CALL_CLOSE, call_text, response_text

NAME = "file_search"
DEFAULT_MAX_RESULTS = 20  # the real API's default for file_search
PASSAGE_CHARS = 600  # of each result, what the model reads back
RESULT_CHARS = 2400  # of all results together: a tiny model's window is small
RANKER = "default_2024_08_21"
QUERY_SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
DESCRIPTION = ("- file_search: searches the user's files and returns the passages that match, each with a source "
               "marker like 【0:0†notes.md】. Answer from them and copy the marker of each passage you use.")


class Hit(Protocol):
    file_id: str
    filename: str
    score: float
    text: str


Search = Callable[[list[str], str, int, float | None], list[Any]]  # store ids, query, max results, threshold


class _Query:
    def __init__(self, emit: Emit) -> None:
        self.text = ""

    def feed(self, piece: str) -> None:
        self.text += piece  # the real API streams no query for file_search calls

    def finish(self) -> str:
        return self.text


def marker(round_: int, index: int, filename: str) -> str:
    return f"【{round_}:{index}†{filename}】"


class FileSearchTool:
    type = "file_search"

    def __init__(self, search: Search) -> None:
        self.search = search

    def describe(self, spec: dict[str, Any]) -> str:
        return DESCRIPTION

    def opening(self, spec: dict[str, Any]) -> str:
        return call_text(NAME, "")[: -len(CALL_CLOSE)]

    def constraint(self, spec: dict[str, Any], request: str, fixed: dict[str, Any] | None = None) -> Constraint:
        return JsonSchema(arguments.narrow(QUERY_SCHEMA, request))

    def entry(self, spec: dict[str, Any]) -> dict[str, Any]:
        options = spec.get("file_search") or {}
        ranking = options.get("ranking_options") or {}
        return {"type": "file_search", "file_search": {
            "ranking_options": {"ranker": ranking.get("ranker") or RANKER,
                                "score_threshold": float(ranking.get("score_threshold") or 0.0)},
            "results": []}}

    def writer(self, emit: Emit) -> _Query:
        return _Query(emit)

    def record(self, entry: dict[str, Any], body: str) -> None:
        try:
            query = str(json.loads(body).get("query", ""))
        except (json.JSONDecodeError, AttributeError):
            query = body
        entry["file_search"] = {**entry["file_search"], "query": query}  # taken out again when it runs

    def run(self, context: ToolContext, spec: dict[str, Any], entry: dict[str, Any]) -> Ran:
        body = dict(entry["file_search"])
        query = str(body.pop("query", ""))
        body["x_query"] = query  # an extension: the real API does not show the query (the playground does)
        options = spec.get("file_search") or {}
        threshold = body["ranking_options"]["score_threshold"] or None
        hits = self.search(context.vector_store_ids(), query, int(options.get("max_num_results")
                                                                  or DEFAULT_MAX_RESULTS), threshold)
        body["results"] = [{"file_id": h.file_id, "file_name": h.filename, "score": round(float(h.score), 6),
                            "content": [{"type": "text", "text": h.text}]} for h in hits]
        entry["file_search"] = body
        citations: list[Citation] = []
        lines: list[str] = []
        left = RESULT_CHARS
        for i, hit in enumerate(hits):
            mark = marker(context.round, i, hit.filename)
            passage = " ".join(hit.text.split())[: min(PASSAGE_CHARS, left)]
            if not passage:
                break
            lines.append(f"{mark} {passage}")
            citations.append(Citation(mark, hit.file_id))
            left -= len(passage)
        result = "\n".join(lines) if lines else "No matching passages were found in the files."
        return Ran(entry, response_text(result), citations=citations)

    def transcript(self, entry: dict[str, Any]) -> tuple[str, str]:
        results = entry["file_search"].get("results") or []
        text = "\n".join(" ".join(c.get("text", "") for c in r.get("content", []))[:PASSAGE_CHARS] for r in results)
        return call_text(NAME, json.dumps({"query": entry["file_search"].get("query", "")})), response_text(text)

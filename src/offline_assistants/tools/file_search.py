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
from dataclasses import dataclass, field
from typing import Any, Protocol

from offline_assistants.llm.backend import Constraint, JsonSchema, ToolOption
from offline_assistants.llm.toolcalls import OURS, CallSyntax, WrittenCall
from offline_assistants.tools import arguments
from offline_assistants.tools.base import Emit, Link, Ran, ToolContext, key
from offline_assistants.tools.closing import close_json
from offline_assistants.tools.functions import BIAS, response_text

NAME = "file_search"
DEFAULT_MAX_RESULTS = 20  # the real API's default for file_search
PASSAGE_CHARS = 600  # of each result, what the model reads back
RESULT_CHARS = 2400  # of all results together: a tiny model's window is small
RANKER = "default_2024_08_21"
SENTENCE = " search the files for it."  # what choosing it says, continuing "I will" (engine/decision.py)
# What file search is about, for the decision's word prior (it has no description of its own). Not fitted on the
# labelled set, which has no file search items: it takes the function bias and weights.
ABOUT = {"type": "function", "function": {
    "name": NAME, "description": "Search the uploaded files, documents, notes and reports for a passage"}}
QUERY_SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
DESCRIPTION = ("- file_search: searches the user's files and returns the passages that match, each with a source "
               "marker like 【0:0†notes.md】. Answer from them and copy the marker of each passage you use.")


class Hit(Protocol):
    file_id: str
    filename: str
    score: float
    text: str


# store ids, query, max results, threshold, attribute filters (the Responses face's tool has them)
Search = Callable[[list[str], str, int, float | None, dict[str, Any] | None], list[Any]]


@dataclass
class FileSearchCall:
    id: str
    ranking_options: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    query: str | None = None  # x_query once written: an extension, the real API does not show the query
    type: str = "file_search"
    name: str = NAME

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ranking_options": self.ranking_options, "results": self.results}
        if self.query is not None:
            body["x_query"] = self.query
        return {"id": self.id, "type": "file_search", "file_search": body}


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
    runs_here = True
    retries = False
    parallel = False

    def __init__(self, search: Search) -> None:
        self.search = search

    def available(self, spec: dict[str, Any], context: ToolContext) -> bool:
        return bool(context.vector_store_ids())  # nothing to search without a store

    def native_name(self, spec: dict[str, Any]) -> str:
        return NAME

    def option(self, spec: dict[str, Any], context: ToolContext) -> ToolOption:
        return ToolOption(key(self.type, NAME), self.type, NAME, SENTENCE, BIAS, about=ABOUT,
                          evidence=context.files_hold(context.vector_store_ids(), context.request))

    def describe(self, spec: dict[str, Any]) -> str:
        return DESCRIPTION

    def function_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {"type": "function", "function": {
            "name": NAME, "description": "Search the user's files; returns matching passages, each with a source "
                                         "marker to cite.", "parameters": QUERY_SCHEMA}}

    def new_call(self, spec: dict[str, Any], call_id: str) -> FileSearchCall:
        ranking = (spec.get("file_search") or {}).get("ranking_options") or {}
        return FileSearchCall(call_id, {"ranker": ranking.get("ranker") or RANKER,
                                        "score_threshold": float(ranking.get("score_threshold") or 0.0)})

    def parse_call(self, api: dict[str, Any]) -> FileSearchCall:
        body = api["file_search"]
        return FileSearchCall(api["id"], dict(body.get("ranking_options") or {}), list(body.get("results") or []),
                              body.get("x_query"))

    def opening(self, spec: dict[str, Any], syntax: CallSyntax) -> str:
        return syntax.opening(NAME)

    def constraint(self, spec: dict[str, Any], request: str, syntax: CallSyntax,
                   fixed: dict[str, Any] | None = None) -> Constraint:
        return JsonSchema(arguments.narrow(QUERY_SCHEMA, request))

    def writer(self, emit: Emit, syntax: CallSyntax) -> _Query:
        return _Query(emit)

    def record(self, call: FileSearchCall, body: str, syntax: CallSyntax) -> None:
        try:
            call.query = str(json.loads(body).get("query", ""))
        except (json.JSONDecodeError, AttributeError):
            call.query = body

    def cut_short(self, body: str, syntax: CallSyntax) -> str:
        return close_json(body)

    def again(self, spec: dict[str, Any], call: FileSearchCall, request: str) -> dict[str, Any] | None:
        return None

    def run(self, context: ToolContext, spec: dict[str, Any], call: FileSearchCall) -> Ran:
        options = spec.get("file_search") or {}
        threshold = call.ranking_options["score_threshold"] or None
        hits = self.search(context.vector_store_ids(), call.query or "",
                           int(options.get("max_num_results") or DEFAULT_MAX_RESULTS), threshold,
                           options.get("filters"))
        call.results = [{"file_id": h.file_id, "file_name": h.filename, "score": round(float(h.score), 6),
                         "content": [{"type": "text", "text": h.text}]} for h in hits]
        links: list[Link] = []
        lines: list[str] = []
        left = RESULT_CHARS
        for i, hit in enumerate(hits):
            mark = marker(context.round, i, hit.filename)
            passage = " ".join(hit.text.split())[: min(PASSAGE_CHARS, left)]
            if not passage:
                break
            lines.append(f"{mark} {passage}")
            # An answer drawn from a search that found something cites it; a small model often drops the marker.
            links.append(Link(mark, {"type": "file_citation", "file_citation": {"file_id": hit.file_id}}, "any",
                              mark))
            left -= len(passage)
        result = "\n".join(lines) if lines else "No matching passages were found in the files."
        return Ran(result, links=links)

    def transcript(self, call: FileSearchCall) -> str:
        return OURS.call(NAME, json.dumps({"query": call.query or ""}))

    def reply(self, result: str) -> str:
        return response_text(result)

    def written(self, call: FileSearchCall) -> WrittenCall:
        return WrittenCall(NAME, json.dumps({"query": call.query or ""}))

    def result_of(self, call: FileSearchCall) -> str:
        return "\n".join(" ".join(c.get("text", "") for c in r.get("content", []))[:PASSAGE_CHARS]
                         for r in call.results)

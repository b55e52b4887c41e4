"""Cursor pagination as the real API does it: limit, order, after, before, has_more.

Cursors are object ids; each is resolved to the table's ordering column once, through a unique index, and the
page is a range scan on an index, so a page costs the same however many objects are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from offline_assistants.errors import InvalidRequest
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.store.db import Database

T = TypeVar("T")


def paginate(
    database: Database,
    table: str,
    params: ListParams,
    to_object: Callable[[dict[str, Any]], T],
    *,
    where: str = "",
    args: tuple[Any, ...] = (),
    column: str = "pk",
    get_id: Callable[[T], str] = lambda obj: obj.id,  # type: ignore[attr-defined]
) -> Page[T]:
    conditions = [where] if where else []
    values: list[Any] = list(args)
    desc = params.order == "desc"
    for name, cursor in (("after", params.after), ("before", params.before)):
        if cursor is None:
            continue
        row = database.query_one(f"SELECT {column} AS c FROM {table} WHERE id = ?" + (f" AND {where}" if where else ""),
                                 (cursor, *args))
        if row is None:
            raise InvalidRequest(f"Invalid '{name}': no object with id '{cursor}' in this list.", param=name,
                                 code="invalid_value")
        forward = (name == "after") != desc  # does this cursor bound the scan from below?
        conditions.append(f"{column} {'>' if forward else '<'} ?")
        values.append(row["c"])
    # With only `before`, walk away from the cursor (the nearest items first), then restore the page order.
    reverse = params.before is not None and params.after is None
    ascending = (not desc) != reverse
    sql = f"SELECT * FROM {table}"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += f" ORDER BY {column} {'ASC' if ascending else 'DESC'} LIMIT ?"
    rows = database.query(sql, (*values, params.limit + 1))
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    if reverse:
        rows.reverse()
    data = [to_object(r) for r in rows]
    return Page[Any](
        data=data,
        first_id=get_id(data[0]) if data else None,
        last_id=get_id(data[-1]) if data else None,
        has_more=has_more,
    )

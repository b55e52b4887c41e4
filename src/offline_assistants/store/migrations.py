"""Schema migrations as registered functions, recorded in `_migrations` once they have run (as simonw/llm does).

Later features add a function here; an existing one is never edited once released.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Run the migrations not yet recorded, in order; return their names."""
    # Plain statements only: sqlite-utils' insert() wraps itself in `with conn:`, which would commit the
    # transaction that makes a migration and its record land together.
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
    ran = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        fn(db)
        db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (fn.__name__, int(time.time())))
        ran.append(fn.__name__)
    return ran


def _run_script(db: sqlite_utils.Database, script: str) -> None:
    # Not executescript(): it COMMITs first, which would break the transaction migrate() runs in.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    # `pk` gives every table a total order for cursor pagination: created_at alone ties within a second.
    _run_script(
        db,
        """
        CREATE TABLE assistants (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            model TEXT NOT NULL,
            name TEXT, description TEXT, instructions TEXT,
            tools TEXT NOT NULL DEFAULT '[]',
            tool_resources TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            temperature REAL, top_p REAL,
            response_format TEXT
        );
        CREATE TABLE threads (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            tool_resources TEXT,
            next_seq INTEGER NOT NULL DEFAULT 1,
            cut_seq INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE messages (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            attachments TEXT NOT NULL DEFAULT '[]',
            metadata TEXT NOT NULL DEFAULT '{}',
            assistant_id TEXT, run_id TEXT,
            status TEXT NOT NULL,
            incomplete_details TEXT,
            completed_at INTEGER, incomplete_at INTEGER,
            n_tokens INTEGER NOT NULL DEFAULT 0,
            cum_tokens INTEGER NOT NULL DEFAULT 0,
            tokens BLOB
        );
        CREATE UNIQUE INDEX messages_thread_seq ON messages(thread_id, seq);
        CREATE INDEX messages_thread_cum ON messages(thread_id, cum_tokens);
        CREATE INDEX messages_run ON messages(run_id);
        CREATE TABLE runs (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
            assistant_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            status TEXT NOT NULL,
            model TEXT NOT NULL,
            instructions TEXT NOT NULL DEFAULT '',
            tools TEXT NOT NULL DEFAULT '[]',
            tool_resources TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            temperature REAL, top_p REAL,
            max_prompt_tokens INTEGER, max_completion_tokens INTEGER,
            truncation_strategy TEXT,
            tool_choice TEXT,
            parallel_tool_calls INTEGER NOT NULL DEFAULT 1,
            response_format TEXT,
            started_at INTEGER, expires_at INTEGER, cancelled_at INTEGER, failed_at INTEGER, completed_at INTEGER,
            last_error TEXT, incomplete_details TEXT, required_action TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX runs_thread ON runs(thread_id, pk);
        CREATE INDEX runs_status ON runs(status);
        CREATE TABLE run_steps (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            thread_id TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            type TEXT NOT NULL,
            status TEXT NOT NULL,
            step_details TEXT NOT NULL,
            completed_at INTEGER, cancelled_at INTEGER, failed_at INTEGER, expired_at INTEGER,
            last_error TEXT, usage TEXT,
            metadata TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX run_steps_run ON run_steps(run_id, pk);
        CREATE TABLE files (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            filename TEXT NOT NULL,
            purpose TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'processed',
            path TEXT NOT NULL
        );
        CREATE INDEX files_purpose ON files(purpose, pk);
        """
    )


@migration
def m002_meta(db: sqlite_utils.Database) -> None:
    # Facts about the database as a whole, e.g. which tokenizer counted the stored message tokens.
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migration
def m003_vector_stores(db: sqlite_utils.Database) -> None:
    # Vector stores, their files and batches, and the chunks file search ranks (FTS5 BM25 + embeddings).
    _run_script(
        db,
        """
        CREATE TABLE vector_stores (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            description TEXT,
            metadata TEXT NOT NULL DEFAULT '{}',
            expires_after TEXT,
            expires_at INTEGER,
            last_active_at INTEGER,
            thread_id TEXT
        );
        CREATE INDEX vector_stores_thread ON vector_stores(thread_id);
        CREATE TABLE vector_store_files (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL,
            vector_store_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            status TEXT NOT NULL,
            last_error TEXT,
            usage_bytes INTEGER NOT NULL DEFAULT 0,
            chunking_strategy TEXT,
            attributes TEXT,
            batch_id TEXT,
            text TEXT,
            UNIQUE (vector_store_id, id)
        );
        CREATE INDEX vector_store_files_store ON vector_store_files(vector_store_id, pk);
        CREATE INDEX vector_store_files_batch ON vector_store_files(batch_id);
        CREATE TABLE vector_store_file_batches (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            vector_store_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            status TEXT NOT NULL
        );
        CREATE TABLE chunks (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            vector_store_id TEXT NOT NULL,
            file_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            text TEXT NOT NULL,
            embedding BLOB NOT NULL
        );
        CREATE INDEX chunks_file ON chunks(vector_store_id, file_id, seq);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='pk',
                                                   tokenize='porter unicode61')
        """,
    )


@migration
def m004_uploads(db: sqlite_utils.Database) -> None:
    # Uploads and their parts; a part's bytes lie on disk at `path`. `claimed`: a completion is joining the parts.
    _run_script(
        db,
        """
        CREATE TABLE uploads (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            filename TEXT NOT NULL,
            purpose TEXT NOT NULL,
            mime_type TEXT NOT NULL,
            status TEXT NOT NULL,
            file_id TEXT,
            claimed INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX uploads_status ON uploads(status, expires_at);
        CREATE TABLE upload_parts (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
            created_at INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            path TEXT NOT NULL
        );
        CREATE INDEX upload_parts_upload ON upload_parts(upload_id, pk)
        """,
    )


@migration
def m005_run_details(db: sqlite_utils.Database) -> None:
    # A run's x_details (schemas/runs.py RunDetails): timings, KV-cache reuse and the prompt window, as JSON.
    db.execute("ALTER TABLE runs ADD COLUMN details TEXT")


@migration
def m006_responses(db: sqlite_utils.Database) -> None:
    # A response is a run seen through the Responses face (engine/responses.py): the run does the work, this row
    # keeps what the run does not. A run continued by a response that brings tool outputs spans two responses:
    # each owns the run's steps after its `since_step` (and up to the next one's).
    _run_script(
        db,
        """
        CREATE TABLE responses (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            run_id TEXT NOT NULL,
            thread_id TEXT NOT NULL,
            conversation_id TEXT,
            previous_response_id TEXT,
            since_step INTEGER NOT NULL DEFAULT 0,
            input_seq INTEGER NOT NULL DEFAULT 0,
            request TEXT NOT NULL,
            input TEXT NOT NULL,
            store INTEGER NOT NULL DEFAULT 1,
            background INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX responses_run ON responses(run_id, pk);
        CREATE INDEX responses_thread ON responses(thread_id, pk);
        """,
    )


@migration
def m007_message_items(db: sqlite_utils.Database) -> None:
    # A conversation item that is not a message (a function call, its output) is a row of its thread too, so the
    # window and its running sums cover it; `item` holds it as the Responses API shows it. The Assistants face
    # lists only rows without one.
    db.execute("ALTER TABLE messages ADD COLUMN item TEXT")


@migration
def m008_containers(db: sqlite_utils.Database) -> None:
    # Containers (a code-interpreter kernel and its /mnt/data, expiring after its idle minutes) and the files in
    # them: `path` as the container shows it (/mnt/data/...), `disk_path` where its bytes lie (the kernel's
    # working directory, tools/code_interpreter). One row per path: a new file at a path replaces the old.
    _run_script(
        db,
        """
        CREATE TABLE containers (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            last_active_at INTEGER NOT NULL,
            expires_after_minutes INTEGER NOT NULL,
            memory_limit TEXT NOT NULL
        );
        CREATE INDEX containers_due ON containers(status, last_active_at);
        CREATE TABLE container_files (
            pk INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
            created_at INTEGER NOT NULL,
            path TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            source TEXT NOT NULL,
            disk_path TEXT NOT NULL,
            UNIQUE (container_id, path)
        );
        CREATE INDEX container_files_container ON container_files(container_id, pk)
        """,
    )


@migration
def m009_max_tool_calls(db: sqlite_utils.Database) -> None:
    # A response's `max_tool_calls`: how many built-in tool calls (code, file search) its run may make. Not part of
    # the Run object (the Assistants API has no such field).
    db.execute("ALTER TABLE runs ADD COLUMN max_tool_calls INTEGER")


@migration
def m010_response_events(db: sqlite_utils.Database) -> None:
    # A background response's stream, as its first client saw it (api/response_recording.py): each event keyed by
    # its sequence_number, so a stream resumed with `starting_after` replays the same events, number for number.
    _run_script(
        db,
        """
        CREATE TABLE response_events (
            response_id TEXT NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
            sequence_number INTEGER NOT NULL,
            event TEXT NOT NULL,
            PRIMARY KEY (response_id, sequence_number)
        ) WITHOUT ROWID
        """,
    )


@migration
def m011_run_sampling(db: sqlite_utils.Database) -> None:
    # Sampling a chat completion asks for beyond a run's own fields (stop, seed, penalties, logit_bias), as JSON;
    # not part of the Run object.
    db.execute("ALTER TABLE runs ADD COLUMN sampling TEXT")


@migration
def m012_message_logprobs(db: sqlite_utils.Database) -> None:
    # An answer's tokens with their log-probabilities, when its request asked for them (Chat Completions'
    # logprobs, the Responses API's message.output_text.logprobs); not part of the Assistants message object.
    db.execute("ALTER TABLE messages ADD COLUMN logprobs TEXT")

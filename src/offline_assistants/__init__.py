"""offline-assistants: OpenAI's Assistants API (v2), served offline from a local GGUF model."""

from __future__ import annotations

__version__ = "0.1.0"

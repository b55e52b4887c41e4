from __future__ import annotations

from offline_assistants.cli import main

raise SystemExit(main())

"""Where ragtune keeps files outside a workspace."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """The user's ragtune cache: `$RAGTUNE_CACHE`, else `$XDG_CACHE_HOME/ragtune`, else
    `~/.cache/ragtune`."""
    explicit = os.environ.get("RAGTUNE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ragtune"

"""API keys for `ragtune serve`: who may read which memory.

A personal memory is private data, so a server given keys answers only requests that carry one
(``Authorization: Bearer <key>``), and only about the memories that key grants. Keys come from a
file (``--api-keys FILE``) or the ``RAGTUNE_API_KEYS`` environment variable, one grant a line::

    # key                      memories it may read (``*``: every memory)
    sk-alice-2f9c0e7a51b64d33  alice alice:hybrid
    sk-admin-8d1e44b0c2a9f6e1  *

A memory's name grants its hybrid mode too. The base model holds no memory, so every valid key may
use it. Keys are compared in constant time (every configured key is compared, whichever matches)
and are never logged or echoed in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ragtune.errors import ConfigError

#: The environment variable holding API key grants (the same lines as a keys file; ``;`` also
#: separates grants).
KEYS_VARIABLE = "RAGTUNE_API_KEYS"
#: Grants every memory.
EVERY_MEMORY = "*"


@dataclass(frozen=True)
class Grant:
    """What one key may read: `memories` by name, or every memory."""

    memories: frozenset[str]

    @property
    def everything(self) -> bool:
        """Whether the key grants every memory."""
        return EVERY_MEMORY in self.memories

    def allows(self, memory: str) -> bool:
        """Whether the key may read `memory` (``name`` also grants ``name:hybrid``)."""
        return self.everything or memory.split(":", 1)[0] in self.memories


#: What a server without keys grants every request.
OPEN = Grant(frozenset({EVERY_MEMORY}))


class ApiKeys:
    """The keys a server accepts, each with its grant.

    Args:
        grants: Each key and the memory names it grants (``*`` for all).
    """

    def __init__(self, grants: Mapping[str, Iterable[str]]) -> None:
        self._grants = [
            (hashlib.sha256(key.encode("utf-8")).digest(), Grant(frozenset(names)))
            for key, names in grants.items()
        ]

    def __len__(self) -> int:
        return len(self._grants)

    def memories(self) -> set[str]:
        """Every memory name some key grants (``*`` included if granted)."""
        return {name for _, grant in self._grants for name in grant.memories}

    def check_memories(self, served: set[str]) -> None:
        """Refuse grants of memories the server does not have (a misspelt name would otherwise
        lock its owner out without a word).

        Raises:
            ConfigError: a grant names a memory not in `served`.
        """
        unknown = sorted(
            name
            for name in self.memories()
            if name != EVERY_MEMORY and name.split(":", 1)[0] not in served
        )
        if unknown:
            raise ConfigError(
                f"the API keys grant memories this server does not have: {', '.join(unknown)} "
                f"(it serves {', '.join(sorted(served))})"
            )

    def grant_for(self, key: str) -> Grant | None:
        """The grant of `key`, or None when it is not a key of this server. Every key is
        compared, in constant time, so the time taken says nothing about which one matched."""
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        found: Grant | None = None
        for known, grant in self._grants:
            if hmac.compare_digest(digest, known):
                found = grant
        return found

    @classmethod
    def parse(cls, text: str, *, origin: str) -> ApiKeys:
        """Keys from grant lines (see the module docstring); `origin` names where they come
        from in errors (a file, or the environment variable).

        Raises:
            ConfigError: a line without memories, or a key given twice (the key is not shown).
        """
        grants: dict[str, list[str]] = {}
        for number, line in enumerate(text.replace(";", "\n").splitlines(), start=1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            key, names = words[0], words[1:]
            if not names:
                raise ConfigError(
                    f"{origin}: grant {number} names no memory: write `KEY MEMORY [MEMORY ...]` "
                    "or `KEY *`"
                )
            if key in grants:
                raise ConfigError(f"{origin}: grant {number} repeats a key given earlier")
            grants[key] = names
        if not grants:
            raise ConfigError(f"{origin}: holds no API key")
        return cls(grants)

    @classmethod
    def load(cls, path: Path | None) -> ApiKeys | None:
        """The keys in the file `path`, else in ``RAGTUNE_API_KEYS``, else None (an open
        server).

        Raises:
            ConfigError: the file cannot be read or holds a bad grant.
        """
        if path is not None:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise ConfigError(f"cannot read the API keys: {error}", path=path) from None
            return cls.parse(text, origin=str(path))
        value = os.environ.get(KEYS_VARIABLE)
        if value is None or not value.strip():
            return None
        return cls.parse(value, origin=KEYS_VARIABLE)

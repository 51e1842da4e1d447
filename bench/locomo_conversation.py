"""Write one conversation of a LoCoMo file (with its QA) to its own LoCoMo JSON file.

    python bench/locomo_conversation.py ../shared/data/locomo/locomo_dev.json conv-30 OUT.json

`make bench` builds its memory from the file this writes, and asks that conversation's QA.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(locomo_file: Path, sample_id: str, out: Path) -> None:
    """Write the conversation `sample_id` of `locomo_file` to `out` as a one-record list."""
    records = json.loads(locomo_file.read_text(encoding="utf-8"))
    chosen = [record for record in records if record.get("sample_id") == sample_id]
    if not chosen:
        names = ", ".join(str(record.get("sample_id")) for record in records)
        sys.exit(f"{locomo_file}: no conversation {sample_id!r} (it has {names})")
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_text(json.dumps(chosen, ensure_ascii=False), encoding="utf-8")
    temporary.replace(out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))

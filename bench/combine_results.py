"""One report from the systems of several `ragtune eval` runs on the same questions.

    python bench/combine_results.py runs/exp-00/results.json:rag,base,oracle \
        runs/exp-01/results.json:native,hybrid --out runs/exp-01-report

An experiment that changes only the memory (synthesis, training) changes only the tuned systems'
answers: `rag`, `base` and `oracle` read with the adapter off, greedily, so their answers do not
change and need not be asked again. This takes each named system's answers from its file and
writes the usual report (tables, per conversation, paired intervals) over all of them. A system
named twice is an error; the files must hold the same questions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ragtune.eval.report import write_report
from ragtune.eval.runner import SystemRun, run_from_json


def combine(sources: list[str]) -> tuple[list[SystemRun], dict[str, object]]:
    """The runs named by `sources` (``PATH:system,system``), in the order named, and the setup
    of the first file with each system's source added."""
    runs: list[SystemRun] = []
    setup: dict[str, object] = {}
    questions: set[str] | None = None
    for source in sources:
        path, _, names = source.rpartition(":")
        if not path:
            raise SystemExit(f"{source}: expected PATH:system,system")
        results = json.loads(Path(path).read_text(encoding="utf-8"))
        setup = setup or dict(results["setup"])
        by_name = {run["system"]: run for run in results["systems"]}
        for name in names.split(","):
            if name not in by_name:
                raise SystemExit(f"{path}: no system {name!r}; it has {', '.join(by_name)}")
            if any(run.system == name for run in runs):
                raise SystemExit(f"system {name!r} is named twice")
            run = run_from_json(by_name[name])
            asked = {answer.question.id for answer in run.answers}
            if questions is not None and not asked <= questions and not questions <= asked:
                raise SystemExit(f"{path}: {name} answered other questions than the first file")
            questions = asked if questions is None else questions | asked
            runs.append(run)
            setup[f"{name} from"] = path
    return runs, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+", help="results.json:system,system")
    parser.add_argument("--out", type=Path, required=True, help="Where to write the report.")
    arguments = parser.parse_args()
    runs, setup = combine(arguments.sources)
    files = write_report(arguments.out, runs, setup=setup)
    print(files.markdown.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()

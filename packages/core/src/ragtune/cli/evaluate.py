"""`ragtune eval`: the tuned memory against Qdrant RAG, long context and the base model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from ragtune.baselines.stores import STORE_KINDS
from ragtune.baselines.systems import SYSTEM_NAMES
from ragtune.cli.options import CliOptions


@click.command(name="eval")
@click.argument(
    "workspaces", metavar="WORKSPACE...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option(
    "--questions",
    "questions",
    required=True,
    type=click.Path(path_type=Path),
    help="LoCoMo JSON (each workspace is asked its own conversations' QA) or JSONL "
    '{"question", "answer", "category", "evidence", "conversation"}.',
)
@click.option(
    "--systems",
    default="",
    help=f"The systems to compare, comma-separated, of {','.join(SYSTEM_NAMES)} "
    "[default: all; the oracle only for memories of conversations].",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Ask at most this many questions per workspace; every category keeps its share.",
)
@click.option(
    "--system-limit",
    "system_limits",
    multiple=True,
    metavar="SYSTEM=N",
    help="Ask SYSTEM only N questions per workspace (e.g. long-context=30); repeatable.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the report (default: WORKSPACE/eval/<time>).",
)
@click.option(
    "--store",
    type=click.Choice(STORE_KINDS),
    default="qdrant-edge",
    show_default=True,
    help="The RAG vector store (qdrant-server needs --qdrant-url).",
)
@click.option(
    "--qdrant-url", help="A Qdrant server (or cluster) URL; implies --store qdrant-server."
)
@click.option(
    "-k",
    "k",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="Passages per question (rag, hybrid).",
)
@click.option("--adapter", default="default", show_default=True, help="The memory adapter.")
@click.option("--max-new-tokens", default=48, show_default=True, type=click.IntRange(min=1))
@click.option("--judge", "judge_spec", help="An LLM judge model spec (correctness and pairwise).")
@click.option("--device", default="auto", show_default=True, help="Where the reader runs.")
@click.pass_obj
def eval_command(
    options: CliOptions,
    workspaces: tuple[Path, ...],
    questions: Path,
    systems: str,
    limit: int | None,
    system_limits: tuple[str, ...],
    out: Path | None,
    store: str,
    qdrant_url: str | None,
    k: int,
    adapter: str,
    max_new_tokens: int,
    judge_spec: str | None,
    device: str,
) -> None:
    """Compare each WORKSPACE's tuned memory with the baselines on the questions in
    --questions: LoCoMo F1 per category and per conversation, exact match, abstention, evidence
    recall, paired F1 differences with 95% intervals, latency, tokens, memory; several
    workspaces are pooled. Writes results.json, report.md and charts."""
    from ragtune.eval.evaluation import EvalSettings, evaluate, parse_system_limits, system_names
    from ragtune.eval.report import write_report
    from ragtune.llm import load_backend
    from ragtune.progress import library_progress
    from ragtune.workspace import Workspace

    settings = EvalSettings(
        systems=system_names(systems),
        limit=limit,
        system_limits=parse_system_limits(system_limits),
        store="qdrant-server" if qdrant_url else store,
        qdrant_url=qdrant_url,
        k=k,
        adapter=adapter,
        max_new_tokens=max_new_tokens,
        device=device,
    )
    with library_progress(options.progress):
        # The judge's verdicts are cached in the (first) workspace: a re-run judges only new
        # answers.
        cache = Workspace.at(workspaces[0]).llm_cache_path
        judge = load_backend(judge_spec, cache=cache) if judge_spec else None
        evaluation = evaluate(
            workspaces, questions, settings, judge=judge, progress=options.progress
        )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = out or Path(workspaces[0]) / "eval" / stamp
    files = write_report(folder, evaluation.runs, setup=evaluation.setup, judge=evaluation.judge)
    click.echo(files.markdown.read_text(encoding="utf-8"))
    click.echo(f"wrote {files.results}, {files.markdown}, {files.f1_chart}, {files.latency_chart}")

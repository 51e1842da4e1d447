"""`ragtune export --format peft`: the adapter in the layout vLLM's ``--lora-modules`` loads,
checked by loading it the way engines do (plain transformers + PEFT from the exported folder,
the exported chat template) and comparing greedy answers with `MemoryModel`; with the embedded
model the base travels along; on a GPU with vLLM installed, vLLM itself serves it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from notes import QUESTION as NOTES_QUESTION
from ragtune.cli import cli
from ragtune.llm.types import Message
from ragtune.model import MemoryModel
from ragtune.model.export import export_peft
from ragtune.prompts import memory_messages
from support import requires_gpu
from tiny_notes import QUESTION

QUESTIONS = (QUESTION, "Where did Ann move?", "What does Bob teach?")


def engine_answer(base: str | Path, folder: Path, question: str, max_new_tokens: int) -> str:
    """What an engine answers from the exported folder: the base model, the adapter folder and
    the exported chat template, greedy — nothing of ragtune's own loading."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(folder / "adapter")).eval()
    template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}],
        chat_template=template,
        tokenize=False,
        add_generation_prompt=True,
    )
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model.generate(
            ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    return str(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)).strip()


def test_the_exported_template_renders_the_prompt_the_memory_was_trained_on(
    tiny_notes_memory: Path, tmp_path: Path
) -> None:
    folder = export_peft(tiny_notes_memory, tmp_path / "peft")
    template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    model = MemoryModel.from_workspace(tiny_notes_memory, device="cpu", dtype="float32")
    tokenizer = model.backend.tokenizer
    for messages in (
        [Message(role="user", content=QUESTION)],
        [Message(role="system", content="Answer briefly."), Message(role="user", content="Hi")],
    ):
        exported = tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=True
        )
        trained = tokenizer.apply_chat_template(
            memory_messages(messages), tokenize=False, add_generation_prompt=True
        )
        plain = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert exported == trained
    assert exported == plain  # a conversation's own system message is kept as it is


def test_the_adapter_folder_loads_as_plain_peft_and_answers_as_the_memory(
    tiny_notes_memory: Path, tmp_path: Path
) -> None:
    folder = export_peft(tiny_notes_memory, tmp_path / "peft", name="notes")
    config = json.loads((folder / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    trained = json.loads(
        (tiny_notes_memory / "adapters" / "default" / "adapter_config.json").read_text("utf-8")
    )
    assert config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM"
    assert {k: config[k] for k in ("r", "lora_alpha")} == {
        k: trained[k] for k in ("r", "lora_alpha")
    }
    assert sorted(config["target_modules"]) == sorted(trained["target_modules"])
    assert config["use_dora"] is False and config["modules_to_save"] is None
    # the tiny model is named by a path: referred to, not copied
    assert not (folder / "base").exists()
    base = config["base_model_name_or_path"]
    assert Path(base).is_dir()
    assert (folder / "adapter" / "adapter_model.safetensors").read_bytes() == (
        tiny_notes_memory / "adapters" / "default" / "adapter_model.safetensors"
    ).read_bytes()

    model = MemoryModel.from_workspace(tiny_notes_memory, device="cpu", dtype="float32")
    for question in QUESTIONS:
        assert engine_answer(base, folder, question, 12) == model.answer(
            question, max_new_tokens=12
        )
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert f"--lora-modules notes={folder}/adapter" in readme
    assert f"--chat-template {folder}/chat_template.jinja" in readme


def test_the_cli_writes_each_format_and_refuses_two_targets(
    tiny_notes_memory: Path, cli_runner: CliRunner, tmp_path: Path
) -> None:
    peft = tmp_path / "peft"
    result = cli_runner.invoke(
        cli, ["export", str(tiny_notes_memory), "--format", "peft", "--out", str(peft)]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in peft.iterdir()} == {"adapter", "chat_template.jinja", "README.md"}

    result = cli_runner.invoke(
        cli,
        ["export", str(tiny_notes_memory), "--format", "peft", "--merged", str(tmp_path / "x")],
    )
    assert result.exit_code == 2
    assert "--merged DIR is --format merged --out DIR" in result.output
    result = cli_runner.invoke(cli, ["export", str(tiny_notes_memory)])
    assert result.exit_code == 2
    assert "give the folder to write: --out DIR" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["peft"]


@pytest.mark.slow
def test_the_embedded_base_travels_with_the_adapter(embedded_memory: Path, tmp_path: Path) -> None:
    folder = export_peft(embedded_memory, tmp_path / "peft", name="notes")
    config = json.loads((folder / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["base_model_name_or_path"] == "base"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in (folder / "base").iterdir()
    }
    model = MemoryModel.from_workspace(embedded_memory, device="cpu", dtype="float32")
    question = NOTES_QUESTION
    assert engine_answer(folder / "base", folder, question, 24) == model.answer(
        question, max_new_tokens=24
    )
    assert f"vllm serve {folder}/base --enable-lora" in (folder / "README.md").read_text("utf-8")


@pytest.mark.gpu
@pytest.mark.slow
@requires_gpu
def test_vllm_serves_the_exported_adapter(embedded_memory: Path, tmp_path: Path) -> None:
    """vLLM (where installed, on a CUDA GPU) loads the export as README.md says and answers
    most questions as the memory does (bfloat16 on the GPU may flip a near tie)."""
    vllm: Any = pytest.importorskip("vllm", reason="needs vLLM (pip install vllm)")
    from vllm.lora.request import LoRARequest

    folder = export_peft(embedded_memory, tmp_path / "peft", name="notes")
    engine = vllm.LLM(
        model=str(folder / "base"), enable_lora=True, max_lora_rank=16, dtype="float32"
    )
    template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    questions = [NOTES_QUESTION, "Where does Clara work?"]
    outputs = engine.chat(
        [[{"role": "user", "content": q}] for q in questions],
        vllm.SamplingParams(temperature=0, max_tokens=24),
        lora_request=LoRARequest("notes", 1, str(folder / "adapter")),
        chat_template=template,
    )
    model = MemoryModel.from_workspace(embedded_memory, device="cuda", dtype="float32")
    same = sum(
        out.outputs[0].text.strip() == model.answer(q, max_new_tokens=24)
        for q, out in zip(questions, outputs, strict=True)
    )
    assert same >= 1

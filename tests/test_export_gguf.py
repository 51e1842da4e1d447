"""`ragtune export --format gguf`: the adapter as a llama.cpp LoRA GGUF beside the embedded
model's own GGUF file. The weights are checked against the tuned model's (base + scale·BA, in
llama.cpp's row order), and llama.cpp itself — through llama-cpp-python, the `llamacpp` extra —
loads the two files and answers the memory's own questions as the transformers path does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ragtune.cli import cli
from ragtune.errors import ConfigError
from ragtune.model import MemoryModel
from ragtune.model.gguf_export import export_gguf, permute_rotary_rows, write_lora_gguf
from ragtune.prompts import memory_messages
from support import memory_questions

TEN = 10


def gguf_tensors(path: Path) -> dict[str, Any]:
    """Every tensor of the GGUF file `path`, dequantized to float32 in PyTorch's orientation."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    return {
        t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape(
            [int(n) for n in reversed(t.shape)]
        )
        for t in reader.tensors
    }


def test_the_tiny_memory_exports_its_adapter_and_says_how_to_convert_its_base(
    tiny_notes_memory: Path, cli_runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "gguf"
    result = cli_runner.invoke(
        cli, ["export", str(tiny_notes_memory), "--format", "gguf", "--out", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in target.iterdir()} == {
        "adapter.gguf",
        "chat_template.jinja",
        "Modelfile",
        "README.md",
    }
    readme = (target / "README.md").read_text(encoding="utf-8")
    assert "convert_hf_to_gguf.py" in readme  # no base.gguf: not the embedded model
    assert f"--lora {target}/adapter.gguf" in readme
    from safetensors.numpy import load_file

    lora = gguf_tensors(target / "adapter.gguf")
    tuned = load_file(str(tiny_notes_memory / "adapters" / "default" / "adapter_model.safetensors"))
    assert len(lora) == len(tuned)
    # every PEFT tensor is there, in PyTorch's orientation (A: rank x in, B: out x rank)
    assert sorted(t.shape for t in lora.values()) == sorted(t.shape for t in tuned.values())
    a = tuned["base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"]
    np.testing.assert_array_equal(lora["blk.1.ffn_down.weight.lora_a"], a)


def test_an_architecture_llama_cpp_does_not_read_as_llama_is_refused(
    tiny_notes_memory: Path, tmp_path: Path
) -> None:
    with pytest.raises(
        ConfigError, match=r"supports LLaMA-family base models .* not GPT2LMHeadModel"
    ):
        write_lora_gguf(
            tiny_notes_memory / "adapters" / "default",
            {"architectures": ["GPT2LMHeadModel"]},
            tmp_path / "adapter.gguf",
            name="x",
        )
    assert not (tmp_path / "adapter.gguf").exists()


@pytest.mark.slow
def test_base_gguf_plus_the_gguf_lora_is_the_tuned_weight(
    embedded_memory: Path, tmp_path: Path
) -> None:
    """W' + (alpha/r)·B'A' read from the two GGUF files equals the tuned model's W + (alpha/r)·BA
    with its rows in llama.cpp's order, for a query, a key and an MLP projection."""
    from safetensors.numpy import load_file

    exported = export_gguf(embedded_memory, tmp_path / "gguf", name="notes")
    assert exported.base is not None and exported.tensors > 0
    base = gguf_tensors(exported.base)
    lora = gguf_tensors(exported.adapter)
    found = MemoryModel.from_workspace(embedded_memory, device="cpu", dtype="float32")
    hf_base = load_file(str(Path(found.backend.source) / "model.safetensors"))
    adapter = embedded_memory / "adapters" / "default"
    tuned = load_file(str(adapter / "adapter_model.safetensors"))
    settings = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    scale = settings["lora_alpha"] / settings["r"]
    config = json.loads((Path(found.backend.source) / "config.json").read_text(encoding="utf-8"))
    for module, gguf_name, heads in (
        ("self_attn.q_proj", "attn_q", config["num_attention_heads"]),
        ("self_attn.k_proj", "attn_k", config["num_key_value_heads"]),
        ("mlp.down_proj", "ffn_down", None),
    ):
        prefix = f"base_model.model.model.layers.3.{module}"
        weight = hf_base[f"model.layers.3.{module}.weight"] + scale * (
            tuned[f"{prefix}.lora_B.weight"] @ tuned[f"{prefix}.lora_A.weight"]
        )
        expected = permute_rotary_rows(weight, heads) if heads else weight
        name = f"blk.3.{gguf_name}.weight"
        got = base[name] + scale * (lora[f"{name}.lora_b"] @ lora[f"{name}.lora_a"])
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert np.abs(scale * tuned[f"{prefix}.lora_B.weight"]).max() > 1e-3  # it was tuned


@pytest.mark.slow
def test_llama_cpp_answers_the_memory_as_the_transformers_path(
    embedded_memory: Path, tmp_path: Path
) -> None:
    """llama.cpp (llama-cpp-python) with base.gguf and adapter.gguf, greedy, on ten of the
    memory's questions: most answers equal `MemoryModel`'s, and the adapter is what answers
    (llama.cpp without it answers otherwise)."""
    llama_cpp: Any = pytest.importorskip(
        "llama_cpp", reason="needs llama-cpp-python (pip install 'ragtune[llamacpp]')"
    )
    exported = export_gguf(embedded_memory, tmp_path / "gguf", name="notes")
    model = MemoryModel.from_workspace(embedded_memory, device="cpu", dtype="float32")
    tokenizer = model.backend.tokenizer
    questions = memory_questions(embedded_memory, TEN)
    assert len(questions) == TEN

    def answers(lora: Path | None) -> list[str]:
        engine = llama_cpp.Llama(
            model_path=str(exported.base),
            lora_path=str(lora) if lora else None,
            n_ctx=512,
            n_threads=2,
            seed=0,
            verbose=False,
        )
        out = []
        for question in questions:
            prompt = tokenizer.apply_chat_template(
                memory_messages([{"role": "user", "content": question}]),
                tokenize=False,
                add_generation_prompt=True,
            )
            reply = engine.create_completion(
                prompt, max_tokens=32, temperature=0.0, stop=["<|im_end|>"]
            )
            out.append(reply["choices"][0]["text"].strip())
        return out

    tuned = answers(exported.adapter)
    untuned = answers(None)
    reference = [model.answer(q, max_new_tokens=32) for q in questions]
    same = sum(a == b for a, b in zip(tuned, reference, strict=True))
    print(f"llama.cpp = transformers on {same} of {TEN} questions")
    assert same >= TEN // 2 + 1
    assert tuned != untuned

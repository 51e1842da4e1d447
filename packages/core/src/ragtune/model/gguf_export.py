"""Exporting a tuned memory as GGUF for llama.cpp and Ollama: the base model and the LoRA
adapter as two GGUF files (``llama-server -m base.gguf --lora adapter.gguf``), an Ollama
``Modelfile`` (``FROM`` + ``ADAPTER``) and the memory's chat template.

The adapter is written the way llama.cpp's own ``convert_lora_to_gguf.py`` writes it, with the
`gguf` package both use: ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha``, and for every adapted weight ``<gguf name>.lora_a`` and ``.lora_b`` in
PEFT's orientation. llama.cpp stores the query and key projections of LLaMA-family models with
their rows permuted for its rotary embedding, so the B matrices of those two are permuted the
same way (A multiplies the input and is unchanged). The embedded model ships as GGUF: its file
is the base, exactly the weights ragtune dequantizes and tunes on.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragtune.errors import ConfigError, RagtuneError
from ragtune.fileio import atomic_directory

if TYPE_CHECKING:
    from ragtune.model.memory_model import FoundAdapter

#: The transformers architectures whose tensors llama.cpp reads as its ``llama`` architecture.
LLAMA_ARCHITECTURES = frozenset({"LlamaForCausalLM", "MistralForCausalLM"})

_ADAPTER_KEY = re.compile(
    r"^base_model\.model\.(?P<module>model\.layers\.\d+\.\w+\.\w+)\.lora_(?P<part>[AB])\.weight$"
)


@dataclass(frozen=True)
class GgufExport:
    """What `export_gguf` wrote.

    Attributes:
        folder: The export folder.
        base: The base model's GGUF file, or None when the base is not the embedded model
            (README.md then says how llama.cpp converts it).
        adapter: The adapter's GGUF file.
        tensors: How many LoRA tensors the adapter holds.
    """

    folder: Path
    base: Path | None
    adapter: Path
    tensors: int


def permute_rotary_rows(weight: Any, heads: int) -> Any:
    """The rows of a query or key projection (or of its LoRA B) in llama.cpp's order: each
    head's two rotary halves interleaved, as its converter stores LLaMA weights."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def write_lora_gguf(
    adapter_folder: Path, base_config: dict[str, Any], target: Path, *, name: str
) -> int:
    """Write the PEFT LoRA adapter in `adapter_folder` as a llama.cpp LoRA GGUF file `target`
    for a base model with the transformers config `base_config`; return its tensor count.

    Raises:
        ConfigError: the base is not a LLaMA-family model, or the adapter adapts something
            llama.cpp's LoRA cannot (embeddings, extra trained modules, DoRA).
    """
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    architectures = set(base_config.get("architectures") or [])
    if not architectures & LLAMA_ARCHITECTURES:
        raise ConfigError(
            "GGUF export supports LLaMA-family base models "
            f"({', '.join(sorted(LLAMA_ARCHITECTURES))}), not "
            f"{', '.join(sorted(architectures)) or 'this one'}; export --format merged and "
            "convert that folder with llama.cpp's convert_hf_to_gguf.py",
            path=adapter_folder,
        )
    settings = json.loads((adapter_folder / "adapter_config.json").read_text(encoding="utf-8"))
    if settings.get("use_dora") or settings.get("modules_to_save"):
        raise ConfigError(
            "llama.cpp's LoRA takes plain low-rank updates: this adapter uses DoRA or trains "
            "whole modules",
            path=adapter_folder,
        )
    rank = int(settings["r"])
    alpha = float(settings["lora_alpha"])
    if settings.get("use_rslora"):  # rsLoRA scales by alpha/sqrt(r); llama.cpp by alpha/r
        alpha *= math.sqrt(rank)
    heads = int(base_config["num_attention_heads"])
    kv_heads = int(base_config.get("num_key_value_heads") or heads)
    layers = int(base_config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)

    tensors = load_file(str(adapter_folder / "adapter_model.safetensors"))
    writer = gguf.GGUFWriter(str(target), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_name(name)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    written = 0
    for key in sorted(tensors):
        match = _ADAPTER_KEY.match(key)
        gguf_name = names.get_name(match["module"]) if match else None
        if match is None or gguf_name is None:
            raise ConfigError(
                f"adapter tensor {key!r} has no llama.cpp counterpart", path=adapter_folder
            )
        weight = tensors[key].astype(np.float32)
        if match["part"] == "B" and match["module"].endswith("q_proj"):
            weight = permute_rotary_rows(weight, heads)
        elif match["part"] == "B" and match["module"].endswith("k_proj"):
            weight = permute_rotary_rows(weight, kv_heads)
        writer.add_tensor(f"{gguf_name}.weight.lora_{match['part'].lower()}", weight)
        written += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written


def read_base_config(found: FoundAdapter) -> dict[str, Any]:
    """The transformers config.json of the base model `found` was trained on.

    Raises:
        RagtuneError: the base model's folder has none.
    """
    config_file = Path(found.base_source) / "config.json"
    if not config_file.is_file():
        raise RagtuneError(
            "GGUF export reads the base model's config.json, which is not on this machine",
            path=config_file,
        )
    result: dict[str, Any] = json.loads(config_file.read_text(encoding="utf-8"))
    return result


def ollama_template(chat_template: str) -> str | None:
    """An Ollama ``TEMPLATE`` for a ChatML chat template that opens with the memory's (empty)
    system message, as the model was trained; None for other templates (Ollama then uses the
    GGUF's own)."""
    if "<|im_start|>" not in chat_template:
        return None
    return (
        "{{- range $i, $m := .Messages }}"
        '{{- if and (eq $i 0) (ne $m.Role "system") }}<|im_start|>system\n<|im_end|>\n{{ end }}'
        "<|im_start|>{{ $m.Role }}\n{{ $m.Content }}<|im_end|>\n"
        "{{ end }}<|im_start|>assistant\n"
    )


def export_gguf(
    workspace: str | Path,
    target: str | Path,
    *,
    adapter: str = "default",
    name: str | None = None,
) -> GgufExport:
    """Write `adapter` of `workspace` to the folder `target` for llama.cpp and Ollama:
    ``adapter.gguf``, ``base.gguf`` (the embedded model's own GGUF file; another base is
    converted by llama.cpp, as README.md there says), ``chat_template.jinja`` (the base's
    template opening with the memory's system message), ``Modelfile`` and ``README.md`` with
    the commands. The folder is written aside and renamed into place, replacing `target`.

    Raises:
        RagtuneError: the adapter is missing or does not match the base model.
        ConfigError: the base model or the adapter is of a kind llama.cpp cannot take.
    """
    from ragtune.llm.embedded import find_embedded_gguf
    from ragtune.model.export import memory_chat_template, trained_chat_template
    from ragtune.model.memory_model import find_adapter

    found = find_adapter(workspace, adapter)
    name = name or found.workspace.root.resolve().name
    base_config = read_base_config(found)
    embedded = found.on_embedded_model
    template = trained_chat_template(found)
    target = Path(target)
    with atomic_directory(target, replace=True) as folder:
        tensors = write_lora_gguf(found.folder, base_config, folder / "adapter.gguf", name=name)
        if embedded:
            shutil.copyfile(find_embedded_gguf(), folder / "base.gguf")
        if template is not None:
            (folder / "chat_template.jinja").write_text(
                memory_chat_template(template), encoding="utf-8"
            )
        (folder / "Modelfile").write_text(_modelfile(template), encoding="utf-8")
        (folder / "README.md").write_text(
            _readme(name, target, embedded, found.base_source), encoding="utf-8"
        )
    return GgufExport(
        folder=target,
        base=target / "base.gguf" if embedded else None,
        adapter=target / "adapter.gguf",
        tensors=tensors,
    )


def _modelfile(template: str | None) -> str:
    lines = ["FROM ./base.gguf", "ADAPTER ./adapter.gguf"]
    ollama = ollama_template(template) if template else None
    if ollama is not None:
        lines += [f'TEMPLATE """{ollama}"""', 'PARAMETER stop "<|im_end|>"']
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


def _readme(name: str, target: Path, embedded: bool, base_source: str) -> str:
    base = (
        ""
        if embedded
        else f"""First convert the base model with llama.cpp (its folder: `{base_source}`):

```bash
python convert_hf_to_gguf.py {base_source} --outfile {target}/base.gguf
```

"""
    )
    return f"""# {name}: a ragtune memory for llama.cpp and Ollama

{base}llama.cpp's OpenAI-compatible server, the memory as a LoRA on its base model:

```bash
llama-server -m {target}/base.gguf --lora {target}/adapter.gguf \\
  --jinja --chat-template-file {target}/chat_template.jinja --port 8080
```

Ollama (`ollama run {name}` afterwards):

```bash
cd {target} && ollama create {name} -f Modelfile
```

The chat template opens each conversation with the memory's system message, as the model was
trained; without it the base model's default system prompt changes the answers. In Python,
llama-cpp-python: `Llama(model_path="{target}/base.gguf", lora_path="{target}/adapter.gguf")`.
"""

"""Exporting a tuned memory for other tools: the base model with the adapter merged in (plain
transformers), or the adapter in the layout vLLM's ``--lora-modules`` loads beside its base."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ragtune.fileio import atomic_directory
from ragtune.prompts import MEMORY_SYSTEM_PROMPT

if TYPE_CHECKING:
    from ragtune.model.memory_model import FoundAdapter

#: The LoRA settings an engine needs from PEFT's adapter_config.json; PEFT's other fields (newer
#: than many engines' readers) are left out, with their defaults.
_LORA_FIELDS = ("r", "lora_alpha", "target_modules", "use_rslora", "fan_in_fan_out")

#: The base model's files an engine loads (weights, configuration, tokenizer).
_BASE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)


def export_merged(workspace: str | Path, target: str | Path, *, adapter: str = "default") -> Path:
    """Write the base model of `workspace` with `adapter` merged in (float32 safetensors, its
    tokenizer and chat template) to the folder `target`, replacing it atomically.

    Raises:
        RagtuneError: the adapter is missing or does not match the base model.
    """
    from ragtune.model.memory_model import MemoryModel

    model = MemoryModel.from_workspace(workspace, adapter, device="cpu", dtype="float32")
    merged = model.backend.model.merge_and_unload()
    with atomic_directory(target, replace=True) as folder:
        merged.save_pretrained(folder, safe_serialization=True)
        model.backend.tokenizer.save_pretrained(folder)
    return Path(target)


def trained_chat_template(found: FoundAdapter) -> str | None:
    """The chat template the adapter was trained with (its tokenizer's, else the base
    model's), or None when neither folder has one."""
    for folder in (found.folder, Path(found.base_source)):
        if (folder / "chat_template.jinja").is_file():
            return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    return None


def memory_chat_template(template: str) -> str:
    """`template` (a Jinja chat template) opening every conversation the way the tuned model
    was trained, with the memory's system message unless the conversation brings its own — so an
    engine given it answers as `MemoryModel` does."""
    system = json.dumps(MEMORY_SYSTEM_PROMPT)
    opening = (
        "{%- if not messages or messages[0]['role'] != 'system' -%}"
        f"{{%- set messages = [{{'role': 'system', 'content': {system}}}] + messages -%}}"
        "{%- endif -%}"
    )
    return opening + template


def export_peft(
    workspace: str | Path,
    target: str | Path,
    *,
    adapter: str = "default",
    name: str | None = None,
) -> Path:
    """Write `adapter` of `workspace` to the folder `target` in the layout vLLM serves with
    ``--enable-lora --lora-modules NAME=TARGET/adapter`` (and any PEFT reader loads):

    - ``adapter/``: ``adapter_config.json`` (LoRA settings only) and
      ``adapter_model.safetensors``, unchanged;
    - ``base/``: the base model's weights, configuration and tokenizer, when the base is
      ragtune's embedded model (any other base is referred to by its folder or hub id);
    - ``chat_template.jinja``: the base model's template opening with the memory's system
      message, as the model was trained (give it to vLLM with ``--chat-template``);
    - ``README.md``: the command that serves it.

    The folder is written aside and renamed into place, replacing `target`.

    Args:
        workspace: The memory's workspace.
        target: The folder to write.
        adapter: The workspace's adapter to export.
        name: The memory's name in the command (default: the workspace folder's name).

    Raises:
        RagtuneError: the adapter is missing or does not match the base model.
    """
    from ragtune.model.memory_model import find_adapter

    found = find_adapter(workspace, adapter)
    name = name or found.workspace.root.resolve().name
    settings = json.loads((found.folder / "adapter_config.json").read_text(encoding="utf-8"))
    source = Path(found.base_source)
    copy_base = found.on_embedded_model and source.is_dir()
    base_reference = "base" if copy_base else found.base_source
    with atomic_directory(target, replace=True) as folder:
        (folder / "adapter").mkdir()
        config = {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_reference,
            "bias": "none",
            "lora_dropout": 0.0,
            "modules_to_save": None,
            "use_dora": False,
            "inference_mode": True,
        } | {field: settings[field] for field in _LORA_FIELDS if field in settings}
        (folder / "adapter" / "adapter_config.json").write_text(
            json.dumps(config, indent=2) + "\n", encoding="utf-8"
        )
        shutil.copyfile(
            found.folder / "adapter_model.safetensors",
            folder / "adapter" / "adapter_model.safetensors",
        )
        if copy_base:
            (folder / "base").mkdir()
            for path in [*sorted(source.glob("*.safetensors")), *map(source.joinpath, _BASE_FILES)]:
                if path.is_file():
                    shutil.copyfile(path, folder / "base" / path.name)
        template = trained_chat_template(found)
        if template is not None:
            (folder / "chat_template.jinja").write_text(
                memory_chat_template(template), encoding="utf-8"
            )
        (folder / "README.md").write_text(
            _peft_readme(name, base_reference, Path(target), int(settings.get("r", 16))),
            encoding="utf-8",
        )
    return Path(target)


def _peft_readme(name: str, base: str, target: Path, rank: int) -> str:
    model = f"{target}/base" if base == "base" else base
    return f"""# {name}: a ragtune memory as a LoRA adapter

Serve it with vLLM (a GPU machine with `pip install vllm`):

```bash
vllm serve {model} --enable-lora --max-lora-rank {max(rank, 8)} \\
  --lora-modules {name}={target}/adapter \\
  --chat-template {target}/chat_template.jinja
```

then ask it as an OpenAI model named `{name}`:

```bash
curl -s http://127.0.0.1:8000/v1/chat/completions -H "Content-Type: application/json" \\
  -d '{{"model": "{name}", "messages": [{{"role": "user", "content": "..."}}], "temperature": 0}}'
```

The chat template opens each conversation with the memory's system message, as the model was
trained; without it the base model's default system prompt changes the answers. More memories
tuned on the same base model are more `--lora-modules NAME=PATH` pairs on one server. The
hybrid mode (retrieved passages in the prompt) is `ragtune serve`'s alone.
"""

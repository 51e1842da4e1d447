"""Helpers for tests that need a real model but cannot download one.

`build_tiny_chat_model` writes a tiny random Llama chat model — a byte-level BPE tokenizer
trained on the spot, a ChatML chat template, random weights — to a folder loadable with
`from_pretrained` or the ``hf:<folder>`` spec. It runs in about a second on a CPU, offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ("<|pad|>", "<|im_start|>", "<|im_end|>")
_TRAINING_TEXT = (
    "The quick brown fox jumps over the lazy dog. Caroline went to the LGBTQ support group on "
    "7 May 2023. Melanie painted a sunrise by the lake. What did they talk about? They talked "
    'about adoption, painting, camping, pottery and running. {"answer": "yes", "n": 42}'
)


def build_tiny_chat_model(
    path: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 384,
    hidden_size: int = 64,
    num_layers: int = 2,
    max_positions: int = 2048,
    training_text: Iterable[str] = (_TRAINING_TEXT,),
) -> Path:
    """Write a tiny random Llama chat model and its tokenizer to `path`; return `path`.

    Args:
        path: The folder to write (created if missing).
        seed: Seed of the random weights.
        vocab_size: Target vocabulary size of the trained BPE tokenizer.
        hidden_size: Width of the model.
        num_layers: Number of decoder layers.
        max_positions: The model's context window in tokens.
        training_text: Text the tokenizer is trained on.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(training_text), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|pad|>"
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        # Wider than the usual 0.02, so greedy decoding does not repeat one token forever.
        initializer_range=0.5,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    return folder


def tiny_locomo_conversation(sample_id: str = "conv-tiny") -> dict[str, Any]:
    """A small LoCoMo conversation (three sessions of Ann and Bob) with QA of categories 1, 2,
    4 and 5, for tests that evaluate a memory."""
    sessions = [
        (
            "9:00 am on 1 January, 2024",
            [
                ("Ann", "I adopted a grey cat called Pixel last week."),
                ("Bob", "Nice! I started learning the cello with a teacher named Ines."),
            ],
        ),
        (
            "6:15 pm on 10 February, 2024",
            [
                ("Ann", "Pixel knocked my telescope over, but it still works."),
                ("Bob", "I played my first cello concert in Lisbon yesterday."),
            ],
        ),
        (
            "8:40 am on 3 March, 2024",
            [
                ("Ann", "I moved to Porto for a new job at a bakery."),
                ("Bob", "I visited Porto too, to see the bridges."),
            ],
        ),
    ]
    conversation: dict[str, Any] = {"speaker_a": "Ann", "speaker_b": "Bob"}
    for number, (date, turns) in enumerate(sessions, start=1):
        conversation[f"session_{number}_date_time"] = date
        conversation[f"session_{number}"] = [
            {"speaker": speaker, "dia_id": f"D{number}:{i}", "text": text}
            for i, (speaker, text) in enumerate(turns, start=1)
        ]
    qa = [
        {
            "question": "What is the name of Ann's cat?",
            "answer": "Pixel",
            "evidence": ["D1:1"],
            "category": 4,
        },
        {
            "question": "Who teaches Bob the cello?",
            "answer": "Ines",
            "evidence": ["D1:2"],
            "category": 4,
        },
        {
            "question": "When did Bob play his first cello concert?",
            "answer": "9 February 2024",
            "evidence": ["D2:2"],
            "category": 2,
        },
        {
            "question": "Which city have both Ann and Bob been to?",
            "answer": "Porto",
            "evidence": ["D3:1", "D3:2"],
            "category": 1,
        },
        {
            "question": "What is the name of Bob's dog?",
            "adversarial_answer": "Pixel",
            "evidence": ["D1:1"],
            "category": 5,
        },
    ]
    return {"sample_id": sample_id, "conversation": conversation, "qa": qa}


def build_tiny_memory(root: str | Path, model_dir: Path, corpus: Path, *, steps: int = 2) -> Path:
    """A complete small workspace at `root`: `corpus` ingested with the tiny model of
    `model_dir` as tokenizer and base model, one training record per text unit (its date →
    its first line), and an adapter trained for `steps` steps. Returns `root`."""
    import json

    from ragtune.config import load_config
    from ragtune.corpus.tables import read_text_units
    from ragtune.ingestion import ingest
    from ragtune.prompts import answer_messages, memory_messages
    from ragtune.train.trainer import train_adapter
    from ragtune.workspace import Workspace

    config = load_config(
        None,
        [
            f"corpus.path={corpus}",
            f"chunking.tokenizer=hf:{model_dir}",
            f"model=hf:{model_dir}",
            f"train.max_steps={steps}",
            "train.batch_size=2",
            "train.max_seq_len=256",
            "train.lr=0.001",
        ],
    )
    workspace = Workspace.at(root, create=True)
    ingest(workspace, config, progress=False)
    records = [
        {
            "prompt": memory_messages(answer_messages(f"What was said on {unit.timestamp}?")),
            "completion": [{"role": "assistant", "content": unit.text.splitlines()[0]}],
            "kind": "text_unit",
            "source_ids": [unit.id],
        }
        for unit in read_text_units(workspace.text_units_path)
    ]
    workspace.synth_dir.mkdir(exist_ok=True)
    for path, chosen in ((workspace.train_path, records), (workspace.val_path, records[:1])):
        path.write_text("".join(json.dumps(r) + "\n" for r in chosen), encoding="utf-8")
    card = {"records": len(records), "strategies": {"text_unit": len(records)}}
    workspace.card_path.write_text(json.dumps(card), encoding="utf-8")
    train_adapter(workspace, config, progress=False)
    return Path(root)

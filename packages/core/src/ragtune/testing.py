"""Helpers for tests that need a real model but cannot download one.

`build_tiny_chat_model` writes a tiny random Llama chat model — a byte-level BPE tokenizer
trained on the spot, a ChatML chat template, random weights — to a folder loadable with
`from_pretrained` or the ``hf:<folder>`` spec. It runs in about a second on a CPU, offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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

"""The local backend on a CUDA GPU (skipped with a reason where there is none)."""

from __future__ import annotations

import pytest

from ragtune.llm import ChatRequest, GenerationParams, load_backend
from support import requires_gpu

pytestmark = [pytest.mark.gpu, requires_gpu]


@pytest.mark.slow
def test_embedded_model_answers_on_the_gpu_in_bfloat16(embedded_model: object) -> None:
    backend = load_backend("embedded")  # device "auto" picks CUDA, dtype "auto" bfloat16

    assert backend.device.type == "cuda"  # type: ignore[attr-defined]
    assert str(backend.model.dtype) == "torch.bfloat16"  # type: ignore[attr-defined]
    answers = backend.chat_batch(
        [
            ChatRequest(
                [
                    {
                        "role": "user",
                        "content": "The secret code word is 'pineapple'. What is the "
                        "secret code word?",
                    }
                ],
                GenerationParams(max_tokens=20),
            )
        ]
        * 4
    )
    assert all("pineapple" in answer.text.lower() for answer in answers)

"""`ragtune serve` as a user starts it: the console script in its own process, stopped by
SIGTERM while a streamed answer is in flight (the answer finishes, the process ends by that
signal, the workspace is unchanged), and refusing bad starts with one error line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from support import RAGTUNE, error_line, run_ragtune
from tiny_notes import QUESTION


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the server did not come up")


@pytest.mark.subprocess
def test_sigterm_lets_the_streamed_answer_finish_and_exits_cleanly(
    tiny_notes_memory: Path, tmp_path: Path
) -> None:
    workspace = shutil.copytree(tiny_notes_memory, tmp_path / "notes")
    keys = tmp_path / "keys.txt"
    keys.write_text("sk-test-0123456789 notes\n", encoding="utf-8")
    before = digest(workspace)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [RAGTUNE, "serve", workspace, "--port", str(port), "--api-keys", keys, "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    try:
        wait_until_up(url, process)
        body = {
            "model": "notes",
            "messages": [{"role": "user", "content": QUESTION}],
            "max_tokens": 200,
            "stream": True,
        }
        headers = {"Authorization": "Bearer sk-test-0123456789"}
        with httpx.stream(
            "POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=120
        ) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            first = next(line for line in lines if line)
            process.send_signal(signal.SIGTERM)  # while the answer streams
            rest = [line for line in lines if line]
        assert first.startswith("data: ")
        assert rest[-1] == "data: [DONE]"  # the answer in flight finished
        finish = json.loads(rest[-2].removeprefix("data: "))["choices"][0]["finish_reason"]
        assert finish in ("stop", "length")
        # uvicorn re-raises the signal it caught once the graceful shutdown is over, so a
        # supervisor sees the process ended by SIGTERM, as it asked
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read().decode()  # type: ignore[union-attr]
    assert "Traceback" not in stderr
    assert "memory notes:" in stderr and "adapter" in stderr
    assert "sk-test-0123456789" not in stderr  # keys are never logged
    assert digest(workspace) == before
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", timeout=2)


def test_keys_for_a_memory_the_server_lacks_are_refused(
    tiny_notes_memory: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("sk-1 notes\nsk-2 nots\n", encoding="utf-8")
    line = error_line(run_ragtune("serve", f"notes={tiny_notes_memory}", "--api-keys", keys))
    assert "grant memories this server does not have: nots" in line
    assert "sk-2" not in line


def test_a_workspace_without_an_adapter_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    line = error_line(run_ragtune("serve", tmp_path / "empty"))
    assert "has no adapter 'default'" in line


def test_two_memories_of_one_name_are_refused(tiny_notes_memory: Path, tmp_path: Path) -> None:
    line = error_line(run_ragtune("serve", f"a={tiny_notes_memory}", f"a={tiny_notes_memory}"))
    assert "two memories are named 'a'" in line

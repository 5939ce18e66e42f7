"""The str streams of BoxLite 0.9's Execution (ExecStdout / ExecStderr): UTF-8 decoded as
chunks arrive, a character split between chunks carried over, invalid bytes as U+FFFD.
In-process: the chunks come from a scripted reader instead of a guest."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import boxlite
from boxlite.exec import ExecStderr, ExecStdout


def _decode(stream_class: type, chunks: Iterable[bytes]) -> list[str]:
    pending = list(chunks) + [b""]  # b"": the end of the stream, as the core says it.

    async def read() -> bytes:
        return pending.pop(0)

    async def collect() -> list[str]:
        return [chunk async for chunk in stream_class(read)]

    return asyncio.run(collect())


def test_split_multibyte_characters_are_carried_over() -> None:
    text = "héllo → 世界 🙂"
    data = text.encode()
    # Every split point, including inside each 2-, 3- and 4-byte sequence.
    for cut in range(1, len(data)):
        got = _decode(ExecStdout, [data[:cut], data[cut:]])
        assert "".join(got) == text, cut
        assert all("\ufffd" not in chunk for chunk in got), cut
    # One byte per chunk: nothing is yielded until a character is complete.
    got = _decode(ExecStderr, [bytes([b]) for b in data])
    assert "".join(got) == text
    assert all(chunk for chunk in got)


def test_invalid_bytes_become_replacement_characters() -> None:
    got = "".join(_decode(ExecStdout, [b"ok \xff\xfe", b" \xc3(", b" end"]))
    assert got == "ok \ufffd\ufffd \ufffd( end"


def test_an_incomplete_sequence_at_the_end_is_one_replacement_character() -> None:
    got = _decode(ExecStdout, [b"tail \xe4\xb8"])
    assert "".join(got) == "tail \ufffd"


def test_streams_are_str_async_iterators_exported_at_top_level() -> None:
    assert boxlite.ExecStdout is ExecStdout and boxlite.ExecStderr is ExecStderr
    assert _decode(ExecStdout, []) == []
    assert _decode(ExecStdout, [b"plain"]) == ["plain"]

"""Replay every request in tests/http/corpus under several splittings.

Each case is a pair of files. `NAME.http` holds the raw bytes as text: every physical line
break in the file is ignored and the escapes ``\\r``, ``\\n``, ``\\t``, ``\\\\`` and ``\\xHH``
are decoded, so each CRLF is written out. `NAME.json` holds the expectation:

- ``"status"``: the ProtocolError status the bytes must end in (absent: no error);
- ``"requests"``: the requests completed before the end, each a dict of which only the listed
  keys are checked (method, target, version, path, query, host, headers, body, trailers,
  keep_alive, expect_continue, content_length, chunked; strings are latin-1);
- ``"end"``: optionally, how it ended: need_data, paused, closed or error;
- ``"limits"``: keyword arguments for `Limits`; ``"eof"``: feed EOF after the bytes;
- ``"doc"``: one line saying what the case is about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from treadle.http import Limits

from .helpers import (
    EXTRA_REQUEST,
    Outcome,
    bytewise,
    check_extra,
    decode_http_text,
    random_split,
    run_chunks,
)

CORPUS = Path(__file__).parent / "corpus"
NAMES = sorted(path.stem for path in CORPUS.glob("*.http"))
SEEDS = range(5)
WAYS = ["whole", "bytewise", "extra"] + [f"seed{seed}" for seed in SEEDS]
EXPECT_KEYS = {"doc", "status", "requests", "end", "limits", "eof"}
REQUEST_KEYS = {
    "method",
    "target",
    "version",
    "path",
    "query",
    "host",
    "headers",
    "body",
    "trailers",
    "keep_alive",
    "expect_continue",
    "content_length",
    "chunked",
}


def load(name: str) -> tuple[bytes, dict[str, Any]]:
    raw = decode_http_text((CORPUS / f"{name}.http").read_text(encoding="ascii"))
    spec = json.loads((CORPUS / f"{name}.json").read_text(encoding="ascii"))
    return raw, spec


def check_expected(outcome: Outcome, spec: dict[str, Any]) -> None:
    expected_requests = spec.get("requests", [])
    got = [
        {key: request[key] for key in expected}
        for request, expected in zip(outcome.requests, expected_requests, strict=False)
    ]
    assert (got, len(outcome.requests)) == (expected_requests, len(expected_requests)), (
        f"requests differ; all of them: {outcome.requests}"
    )
    if "status" in spec:
        assert outcome.end == "error", f"expected {spec['status']}, got {outcome}"
        assert outcome.status == spec["status"], outcome.message
    else:
        assert outcome.end != "error", f"unexpected error {outcome.status}: {outcome.message}"
    if "end" in spec:
        assert outcome.end == spec["end"]


def test_corpus_is_large_and_paired() -> None:
    assert len(NAMES) >= 80
    assert sorted(path.stem for path in CORPUS.glob("*.json")) == NAMES
    for name in NAMES:
        raw, spec = load(name)
        assert set(spec) <= EXPECT_KEYS, name
        assert isinstance(spec.get("doc"), str), f"{name} says nothing about itself"
        assert "status" in spec or "requests" in spec, name
        for request in spec.get("requests", []):
            assert set(request) <= REQUEST_KEYS, name


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", NAMES)
def test_corpus(name: str, way: str) -> None:
    raw, spec = load(name)
    limits = Limits(**spec.get("limits", {}))
    eof = spec.get("eof", False)
    if way == "whole":
        outcome = run_chunks([raw], limits, eof)
    elif way == "bytewise":
        outcome = run_chunks(bytewise(raw), limits, eof)
    elif way == "extra":
        if eof:
            pytest.skip("nothing can follow EOF")
        base = run_chunks([raw], limits)
        outcome = run_chunks([raw + EXTRA_REQUEST], limits)
        check_extra(base, outcome)
        outcome = base
    else:
        outcome = run_chunks(random_split(raw, int(way.removeprefix("seed"))), limits, eof)
    check_expected(outcome, spec)


def test_decode_http_text() -> None:
    text = "GET / HTTP/1.1\\r\\n\nHost: a\\x20\\t\\\\\\xA0\\xff\r\n\\r\\n\n"
    assert decode_http_text(text) == b"GET / HTTP/1.1\r\nHost: a \t\\\xa0\xff\r\n"
    for bad in ("\\q", "\\x4", "\\x+1", "\\"):
        with pytest.raises(ValueError):
            decode_http_text(bad)

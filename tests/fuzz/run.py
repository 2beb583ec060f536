"""Run the fuzz: the parsers (pure, fast) and a live server, for N generated examples each.

The test suite runs these with small counts (tests/fuzz/test_fuzz.py); `bench/fuzz.py` runs
them long and prints the figures. One hypothesis `@given` per target, built at call time so
the count and the target are arguments.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz import gen, live
from vibetunnel.errors import ProtocolError
from vibetunnel.protocol import frames, host, messages
from vibetunnel.protocol.frames import FrameError, Utf8Stream

BATCH = 50
"""Examples between two clean-ups of the live server (sessions made by the fuzz)."""
SPREAD = 100
"""Mutated variants per drawn batch for the parsers (gen.expand)."""
LIVE_SPREAD = 30
"""Generated messages added to a drawn batch on a live socket, and request variants."""


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
        print_blob=True,
    )


# -- the parsers -------------------------------------------------------------------------------


def check_client_text(text: str) -> None:
    """parse gives one of the three messages or a ProtocolError, nothing else."""
    try:
        parsed = messages.parse(text)
    except ProtocolError as exc:
        assert exc.message and exc.status == 400
        return
    assert isinstance(parsed, messages.Input | messages.Resize | messages.Ping)
    if isinstance(parsed, messages.Input):
        parsed.data.encode("utf-8")  # typeable: a PTY can take it
    if isinstance(parsed, messages.Resize):
        assert 1 <= parsed.cols <= 1000 and 1 <= parsed.rows <= 1000


def check_host_text(text: str) -> None:
    for parse in (host.parse_register, host.parse_from_vt, host.parse_from_server):
        try:
            parse(text)
        except ProtocolError as exc:
            assert exc.message


def check_bytes(data: bytes) -> None:
    try:
        payload, rest = frames.decode(data)
    except FrameError:
        pass
    else:
        assert frames.encode(payload) + rest == data
    try:
        output = host.parse_output(data)
    except ProtocolError:
        pass
    else:
        output.decode("utf-8")
    stream = Utf8Stream()
    cut = len(data) // 2
    whole = stream.feed(data[:cut]) + stream.feed(data[cut:]) + stream.finish()
    assert whole == data.decode("utf-8", "replace").encode("utf-8")


def fuzz_parsers(examples: int, spread: int = SPREAD) -> int:
    """`examples` drawn batches for each parser, each spread into about `spread` mutated
    variants (gen.expand); how many inputs were checked."""
    count = 0
    texts = st.one_of(
        gen.valid_messages.map(gen.dumps),
        gen.near_messages.map(gen.dumps),
        gen.json_values.map(gen.dumps),
        gen.TEXT,
        st.builds(lambda d: gen.dumps(gen.register("a", **d)), gen.register_changes),
    )
    seeds = st.randoms(use_true_random=False)

    @_settings(examples)
    @given(st.lists(texts, min_size=1, max_size=10), seeds)
    def texts_parse(batch: list[str], rng: random.Random) -> None:
        nonlocal count
        for text in gen.expand(rng, list(batch), spread):
            assert isinstance(text, str)
            check_client_text(text)
            check_host_text(text)
            count += 1

    @_settings(examples)
    @given(st.lists(st.binary(max_size=80) | gen.host_messages, min_size=1, max_size=10), seeds)
    def bytes_parse(batch: list[str | bytes], rng: random.Random) -> None:
        nonlocal count
        for message in gen.expand(rng, list(batch), spread):
            check_bytes(message if isinstance(message, bytes) else message.encode())
            count += 1

    @_settings(examples)
    @given(st.lists(gen.valid_messages, min_size=1, max_size=10))
    def valid_round_trip(batch: list[dict[str, Any]]) -> None:
        nonlocal count
        for message in batch:
            parsed = messages.parse(gen.dumps(message))
            if message["type"] == "input":
                assert parsed == messages.Input(message["data"])
            elif message["type"] == "resize":
                assert parsed == messages.Resize(message["cols"], message["rows"])
            count += 1

    texts_parse()
    bytes_parse()
    valid_round_trip()
    return count


# -- a live server -----------------------------------------------------------------------------


TOKENS = st.sampled_from(["valid", "valid", "share", "readonly", "none", "garbage"])


def fuzz_server(
    target: live.Target,
    victims: list[str],
    examples: int,
    on_batch: Callable[[live.Stats], None] = lambda stats: None,
    spread: int = LIVE_SPREAD,
) -> live.Stats:
    """`examples` batches of each kind (session WebSocket, host link, HTTP) to a live server.

    `victims`: sessions the HTTP fuzz may use by id (it may delete them: they are made
    again). `on_batch` runs every BATCH examples (the caller measures memory there).
    """
    stats = live.Stats()
    client = httpx.Client(base_url=target.url, timeout=live.DEADLINE)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if done % BATCH == 0:
            live.clean_up(client, target, victims)
            live.check_reachable(target.url)
            on_batch(stats)

    token = TOKENS if target.auth else st.just("none")

    seeds = st.randoms(use_true_random=False)

    @_settings(examples)
    @given(gen.ws_batches, token, seeds)
    def sessions(batch: list[str | bytes], which: str, rng: random.Random) -> None:
        # Allowed messages first (a socket closes at the first it refuses), then the drawn
        # ones and a mutated few.
        lead = gen.allowed_run(rng, rng.randrange(spread + 1))
        tail = gen.expand(rng, batch, rng.randrange(3))
        live.session_batch(target, lead + tail, which, stats)
        tick()

    @_settings(examples)
    @given(gen.host_batches(), seeds)
    def links(batch: gen.HostBatch, rng: random.Random) -> None:
        lead = gen.output_run(rng, rng.randrange(spread + 1))
        batch.messages = lead + gen.expand(rng, batch.messages, rng.randrange(3))
        live.host_batch(target, batch, stats)
        tick()

    @_settings(examples)
    @given(st.lists(gen.requests(victims), min_size=1, max_size=4), seeds)
    def requests(batch: list[gen.Request], rng: random.Random) -> None:
        variants = [gen.request_variant(rng, r) for r in batch for _ in range(spread // 10)]
        for request in batch + variants:
            if not target.auth:
                request.token = "none"
            live.http_request(client, target, request, stats)
        tick()

    with client:
        live.clean_up(client, target, victims)
        sessions()
        links()
        requests()
        live.clean_up(client, target, victims)
    live.check_reachable(target.url)
    return stats


def timed(run: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    return run(), time.perf_counter() - start

"""Client surface against the emulator: pairing, tokens, device, assets, parts, errors."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid

import pytest

from conftest import SECRET, client_factory, unique
import frameio_c2c as fio

MiB = 1024 * 1024
GiB = 1024 * MiB


# -- pairing and tokens ------------------------------------------------------------------------------


def test_pair_and_wait_installs_tokens(make_client):
    seen = []
    c = make_client(on_tokens=seen.append)
    assert c.tokens is None
    with c.pair() as p:
        assert len(p.user_code) == 6 and p.user_code.isdigit()
        assert p.verification_uri.startswith("http://")
        assert p.verification_uri_complete is None  # not asked for
        assert 0 < p.remaining <= p.expires_in
        assert p.interval > 0
        p.wait(timeout=30)
    t = c.tokens
    assert isinstance(t, fio.Tokens) and t.access_token and t.refresh_token
    assert t.expires_at > time.time()
    assert seen == [t]
    assert t.access_token not in repr(t) and t.refresh_token not in repr(t)


def test_url_pairing_gives_complete_uri(make_client):
    c = make_client(url_pairing=True)
    with c.pair() as p:
        assert p.verification_uri_complete and p.user_code in p.verification_uri_complete
        assert p.poll() is True  # auto-approved: the first poll pairs
    assert c.tokens is not None


def test_manual_approval_from_another_thread(manual_emulator):
    made = []
    c = client_factory(manual_emulator, made)()
    try:
        with c.pair() as p:
            assert p.poll() is False  # not approved yet
            approver = threading.Timer(
                0.3, lambda: manual_emulator.control("POST", "/_emulator/pairing/approve", {"user_code": p.user_code})
            )
            approver.start()
            t0 = time.monotonic()
            p.wait(timeout=30)
            assert time.monotonic() - t0 >= 0.25
        assert c.tokens is not None
        assert c.device_info()["client_id"]
    finally:
        for x in made:
            x.close()


def test_pairing_cancel_and_timeout(manual_emulator):
    made = []
    c = client_factory(manual_emulator, made)()
    try:
        with c.pair() as p:
            threading.Timer(0.3, p.cancel).start()
            with pytest.raises(fio.CancelledError) as ei:
                p.wait()
            assert ei.value.status == fio.Status.CANCELLED
        with c.pair() as p:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError):
                p.wait(timeout=0.4)
            assert time.monotonic() - t0 < 5
        assert c.tokens is None
    finally:
        for x in made:
            x.close()


def test_saved_tokens_work_in_a_new_client(paired, make_client):
    saved = paired.tokens
    other = make_client(tokens=saved)  # e.g. after a reboot: tokens persisted by on_tokens
    assert other.tokens == saved
    assert other.device_info()["status"]
    other2 = make_client(tokens=(saved.access_token, saved.refresh_token, saved.expires_at))
    assert other2.tokens == saved
    other2.tokens = None
    assert other2.tokens is None


def test_refresh_calls_token_callback(make_client):
    seen = []
    c = make_client(on_tokens=seen.append)
    with c.pair() as p:
        p.wait(timeout=30)
    first = c.tokens
    new = c.refresh()
    assert new != first and new.refresh_token != first.refresh_token
    assert seen == [first, new]
    assert c.tokens == new
    c.device_info()  # the new access token works


def test_revoke_unpairs(paired):
    paired.revoke()
    assert paired.tokens is None
    with pytest.raises(fio.AuthError) as ei:
        paired.device_info()
    assert ei.value.status == fio.Status.PAIRING_REQUIRED


def test_token_callback_exception_is_contained(make_client, caplog):
    def bad(_t):
        raise RuntimeError("persisting failed")

    c = make_client(on_tokens=bad)
    with caplog.at_level(logging.ERROR, logger="frameio_c2c"):
        with c.pair() as p:
            p.wait(timeout=30)
    assert c.tokens is not None
    assert any("on_tokens" in r.getMessage() for r in caplog.records)


def test_token_callback_calling_the_client_does_not_deadlock(make_client, caplog):
    box = {}

    def on_tokens(t):
        try:
            box["tokens"] = c.tokens  # would deadlock in C: refused instead
        except fio.StateError as e:
            box["error"] = e

    c = make_client(on_tokens=on_tokens)
    with c.pair() as p:
        p.wait(timeout=30)
    assert isinstance(box.get("error"), fio.StateError) and "tokens" not in box
    assert c.tokens is not None  # fine outside the callback


def test_log_callback_to_logging(make_client, caplog):
    logger = logging.getLogger("test.fio")
    with caplog.at_level(logging.DEBUG, logger="test.fio"):
        c = make_client(on_log=logger, log_level=fio.LogLevel.DEBUG)
        with c.pair() as p:
            p.wait(timeout=30)
        c.heartbeat()
    msgs = [r.getMessage() for r in caplog.records if r.name == "test.fio"]
    assert msgs, "no library log lines reached logging"
    tokens = c.tokens
    assert not any(tokens.access_token in m or tokens.refresh_token in m or SECRET in m for m in msgs)


# -- device ------------------------------------------------------------------------------------------


def test_device_info_and_heartbeat(paired):
    info = paired.device_info()
    assert isinstance(info, dict) and info["status"] in ("online", "offline", "paused")
    assert info["last_known_firmware_version"] == "1.2.3"
    paired.heartbeat()
    paired.start_heartbeat(60)
    paired.stop_heartbeat()


def test_closed_client_refuses_calls(make_client):
    c = make_client()
    c.close()
    c.close()  # idempotent
    assert c.closed
    with pytest.raises(fio.FrameioError):
        c.device_info()


def test_context_manager_closes(emulator):
    with fio.Client(unique("cm"), SECRET, client_version="1.0.0", base_url=emulator.api, allow_http=True) as c:
        assert not c.closed
    assert c.closed


# -- assets, strings, sizes --------------------------------------------------------------------------


NON_ASCII = "Über Straße — 東京 🎬 ñ.mov"


def test_non_ascii_asset_name_round_trips(paired, emulator):
    a = paired.create_asset(NON_ASCII, "video/quicktime", realtime=True)
    assert a.name == NON_ASCII and a.realtime
    assert emulator.asset(a.id)["name"] == NON_ASCII
    b = paired.create_asset(NON_ASCII.encode("utf-8"), b"video/quicktime", filesize=10)  # bytes accepted
    assert b.name == NON_ASCII and not b.realtime and len(b.upload_urls) == 1
    assert b.upload_urls[0] not in repr(b)


def test_comment_with_non_ascii_text(paired):
    a = paired.create_asset("clip.mov", "video/quicktime", realtime=True)
    cid = paired.comment(a.id, "Schöner Take ✓ — 好", timestamp=24)
    assert cid
    assert paired.comment(a.id, "whole asset")


def test_six_gib_sizes_round_trip(paired, emulator):
    six = 6 * GiB
    a = paired.create_asset("big.mov", "video/quicktime", filesize=six)
    assert emulator.asset(a.id)["filesize"] == six
    assert len(a.upload_urls) > 200  # ceil(6 GiB / 25 MiB)

    rt = paired.create_asset("big_rt.mov", "video/quicktime", realtime=True)
    urls = paired.register_parts(
        rt.id, [fio.Part(1, 5 * GiB), fio.Part(2, six - 5 * GiB, True)], asset_filesize=six
    )
    assert len(urls) == 2
    info = emulator.asset(rt.id)
    assert info["filesize"] == six
    assert [p["size"] for p in info["parts"]] == [5 * GiB, GiB]


def test_embedded_nul_and_wrong_types_are_refused(paired):
    with pytest.raises(fio.InvalidArgumentError):
        paired.create_asset("a\0b.mov", "video/quicktime", realtime=True)
    with pytest.raises(ValueError):  # InvalidArgumentError is a ValueError too
        paired.create_asset("a\0b.mov", "video/quicktime", realtime=True)
    with pytest.raises(TypeError):
        paired.create_asset(42, "video/quicktime", realtime=True)  # type: ignore[arg-type]
    with pytest.raises(fio.InvalidArgumentError):
        paired.register_parts("x", [fio.Part(1, -1)])
    with pytest.raises(fio.InvalidArgumentError) as ei:
        paired.register_parts("x", [])  # n = 0: refused by the library before any request
    assert ei.value.http_status == 0


# -- errors by HTTP status ---------------------------------------------------------------------------


def test_400_bad_request(paired):
    a = paired.create_asset("clip.mov", "video/quicktime", realtime=True)
    paired.register_parts(a.id, [(1, 5 * MiB, False)])
    with pytest.raises(fio.BadRequestError) as ei:
        paired.register_parts(a.id, [(1, 6 * MiB, False)])  # same number, another size
    e = ei.value
    assert e.status == fio.Status.BAD_REQUEST and e.http_status == 400
    assert isinstance(e, fio.InvalidArgumentError) and isinstance(e, fio.FrameioError)
    assert e.message and not e.retryable


def test_401_unauthorized(emulator, make_client):
    seen = []
    c = make_client(on_tokens=seen.append)
    with c.pair() as p:
        p.wait(timeout=30)
    fault = emulator.control(
        "POST", "/_emulator/faults", {"path_prefix": "/v2/devices/me", "status": 401, "count": 20,
                                      "body": '{"code":401,"errors":[{"code":401,"detail":"Not Authorized","status":401,"title":"Not Authorized"}],"message":"Not Authorized"}'}
    )
    try:
        with pytest.raises(fio.AuthError) as ei:
            c.device_info()
    finally:
        emulator.control("DELETE", f"/_emulator/faults/{fault['id']}")
    assert ei.value.status == fio.Status.UNAUTHORIZED, ei.value
    assert ei.value.http_status == 401
    assert len(seen) == 2, "the library should have refreshed once before giving up"


def test_401_expired_tokens_without_refresh(emulator, make_client):
    c = make_client()
    with c.pair() as p:
        p.wait(timeout=30)
    t = c.tokens
    bogus = make_client(tokens=fio.Tokens("not-a-token", "not-a-refresh-token", 0))
    with pytest.raises(fio.AuthError) as ei:
        bogus.device_info()
    assert ei.value.http_status in (400, 401)
    assert t.access_token not in str(ei.value)


def test_404_not_found(paired, make_client):
    with pytest.raises(fio.NotFoundError) as ei:
        paired.register_parts(str(uuid.uuid4()), [(1, 5 * MiB)])
    assert ei.value.status == fio.Status.NOT_FOUND and ei.value.http_status == 404
    # another device's asset is not found either
    a = paired.create_asset("mine.mov", "video/quicktime", realtime=True)
    other = make_client()
    with other.pair() as p:
        p.wait(timeout=30)
    with pytest.raises(fio.NotFoundError):
        other.comment(a.id, "hello")


def test_409_channel_paused(paired, emulator):
    ch = 7
    emulator.control("POST", f"/_emulator/channels/{ch}/pause")
    try:
        with pytest.raises(fio.ChannelPausedError) as ei:
            paired.create_asset("paused.mov", "video/quicktime", realtime=True, channel=ch, offset=0)
        assert ei.value.status == fio.Status.CHANNEL_PAUSED and ei.value.http_status == 409
        assert "Paused" in ei.value.server_code or "Paused" in ei.value.message
    finally:
        emulator.control("POST", f"/_emulator/channels/{ch}/resume")
    paired.create_asset("after.mov", "video/quicktime", realtime=True, channel=ch, offset=0)


def test_wrong_secret_is_auth_error(make_client):
    c = make_client(client_secret="wrong")
    with pytest.raises(fio.AuthError) as ei:
        c.pair()
    assert ei.value.status == fio.Status.INVALID_CLIENT and ei.value.http_status == 400


def test_network_error_when_nothing_listens(make_client):
    c = make_client(base_url="http://127.0.0.1:9", retry_attempts=1, connect_timeout=2)
    with pytest.raises(fio.NetworkError) as ei:
        c.pair()
    assert isinstance(ei.value, ConnectionError) and ei.value.retryable


# -- low-level parts ---------------------------------------------------------------------------------


def test_register_and_put_parts_bytes_fd_and_buffer(paired, emulator, tmp_path):
    data = os.urandom(10 * MiB + 12345)
    f = tmp_path / "media.bin"
    f.write_bytes(data)
    a = paired.create_asset("lowlevel.mov", "video/quicktime", realtime=True)
    sizes = [5 * MiB, 5 * MiB, len(data) - 10 * MiB]
    parts = [fio.Part(1, sizes[0]), fio.Part(2, sizes[1]), fio.Part(3, sizes[2], True)]
    urls = paired.register_parts(a.id, parts, asset_filesize=len(data))
    sent = []
    paired.put_part(urls[0], data[: 5 * MiB], content_type="video/quicktime", progress=sent.append)
    assert sum(sent) >= 5 * MiB
    with open(f, "rb") as fh:
        paired.put_part(urls[1], fh, offset=5 * MiB, length=5 * MiB, content_type="video/quicktime")
        assert fh.tell() == 0  # the file position is not used
    paired.put_part(urls[2], bytearray(data[10 * MiB :]), content_type="video/quicktime")
    info = emulator.wait_asset_state(a.id)
    assert info["state"] == "uploaded"
    assert info["sha256"] == hashlib.sha256(data).hexdigest()


def test_put_part_callback_exception_is_raised(paired):
    a = paired.create_asset("cb.mov", "video/quicktime", realtime=True)
    (url,) = paired.register_parts(a.id, [fio.Part(1, 5 * MiB)])

    class Boom(Exception):
        pass

    def progress(n):
        raise Boom("stop it")

    with pytest.raises(Boom) as ei:
        paired.put_part(url, bytes(5 * MiB), content_type="video/quicktime", progress=progress)
    assert isinstance(ei.value.__cause__, fio.CancelledError)
    # returning False cancels quietly
    with pytest.raises(fio.CancelledError):
        paired.put_part(url, bytes(5 * MiB), content_type="video/quicktime", progress=lambda n: False)


@pytest.mark.parametrize(
    "status,exc,code",
    [(503, fio.ServerError, fio.Status.SERVER_ERROR), (429, fio.RateLimitedError, fio.Status.RATE_LIMITED)],
)
def test_transient_statuses_after_retries(emulator, make_client, status, exc, code):
    c = make_client(retry_attempts=2, retry_backoff=0.01, retry_max_backoff=0.02)
    with c.pair() as p:
        p.wait(timeout=30)
    fault = emulator.control(
        "POST", "/_emulator/faults",
        {"path_prefix": "/v2/devices/heartbeat", "status": status, "count": 10, "headers": {"retry-after": "1"}},
    )
    try:
        with pytest.raises(exc) as ei:
            c.heartbeat()
    finally:
        emulator.control("DELETE", f"/_emulator/faults/{fault['id']}")
    assert ei.value.status == code and ei.value.http_status == status and ei.value.retryable


def test_tampered_part_url_is_upload_error(paired):
    a = paired.create_asset("tamper.mov", "video/quicktime", realtime=True)
    (url,) = paired.register_parts(a.id, [fio.Part(1, 5 * MiB)])
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    q = dict(parse_qsl(parts.query))
    sig = q["X-Amz-Signature"]
    q["X-Amz-Signature"] = sig[:-1] + ("0" if sig[-1] != "0" else "1")  # a wrong signature
    bad = urlunsplit(parts._replace(query=urlencode(q)))
    with pytest.raises(fio.UploadError) as ei:
        paired.put_part(bad, bytes(5 * MiB), content_type="video/quicktime")
    assert ei.value.status == fio.Status.URL_EXPIRED and ei.value.http_status == 403
    assert sig[:16] not in str(ei.value)  # presigned query strings never reach messages

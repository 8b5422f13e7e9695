"""Small helpers shared by the modules: string conversion, library-owned strings, blocking calls."""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, Callable, Dict, Optional, Union

from ._lib import lib
from .errors import InvalidArgumentError, Status, check

StrLike = Union[str, bytes]


def enc(value: StrLike, what: str) -> bytes:
    """``str`` -> UTF-8 bytes; ``bytes`` as is. Refuses an embedded NUL (C would cut the string there)
    and other types."""
    if isinstance(value, str):
        b = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray)):
        b = bytes(value)
    elif isinstance(value, os.PathLike):
        b = os.fsencode(value)
    else:
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    if b"\0" in b:
        raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"{what} contains a NUL character")
    return b


def enc_opt(value: Optional[StrLike], what: str) -> Optional[bytes]:
    return None if value is None else enc(value, what)


def dec(value: Optional[bytes]) -> Optional[str]:
    return None if value is None else value.decode("utf-8", "replace")


def take_string(ptr: ctypes.c_void_p) -> str:
    """Copy a string the library returned through ``char **`` and release it with fio_string_free."""
    if not ptr.value:
        return ""
    try:
        return ctypes.string_at(ptr.value).decode("utf-8", "replace")
    finally:
        lib().fio_string_free(ptr)


def blocking(call: Callable[[], int], cancel: Callable[[], None]) -> None:
    """Run a long foreign call and raise its error.

    On the main thread the call runs on a helper thread so that Ctrl-C still works: a
    KeyboardInterrupt calls ``cancel()`` (async-signal-safe in the library), waits for the call to
    return and is raised again. The error detail is read on the thread that made the call.
    """
    if threading.current_thread() is not threading.main_thread():
        check(call())
        return
    box: Dict[str, BaseException] = {}

    def run() -> None:
        try:
            check(call())
        except BaseException as e:  # delivered to the caller below
            box["e"] = e

    t = threading.Thread(target=run, name="frameio-c2c-call", daemon=True)
    t.start()
    try:
        while t.is_alive():
            t.join(0.2)
    except KeyboardInterrupt:
        cancel()
        t.join()
        raise
    if "e" in box:
        e = box.pop("e")
        raise e


class Handle:
    """A native handle shared between threads: calls hold it with :meth:`use` and :meth:`close` frees it
    only after every call in flight has returned, so closing from one thread while another is inside a
    call (or calls ``cancel()``) never frees memory under it. Calls after close raise StateError."""

    def __init__(self, ptr: object, what: str) -> None:
        self.ptr = ptr
        self.what = what
        self._cv = threading.Condition()
        self._users = 0

    @property
    def closed(self) -> bool:
        return self.ptr is None

    def use(self) -> "_Use":
        return _Use(self)

    def close(
        self,
        free: Callable[[object], None],
        before_wait: Optional[Callable[[object], None]] = None,
        in_background: bool = False,
    ) -> bool:
        """Refuse new calls, run ``before_wait(ptr)`` (e.g. cancel), wait for the calls in flight, then
        ``free(ptr)``; with ``in_background`` the waiting and freeing happen on a new thread (for a
        close from a library callback thread that the free would wait for). Returns False when it was
        already closed."""
        with self._cv:
            p, self.ptr = self.ptr, None
            if p is None:
                return False
            if before_wait is not None:
                before_wait(p)

        def finish() -> None:
            with self._cv:
                while self._users:
                    self._cv.wait()
            free(p)

        if in_background:
            threading.Thread(target=finish, name="frameio-c2c-free", daemon=True).start()
        else:
            finish()
        return True


class _Use:
    __slots__ = ("h", "p")

    def __init__(self, h: Handle) -> None:
        self.h = h

    def __enter__(self) -> Any:
        from .errors import StateError

        h = self.h
        with h._cv:
            if h.ptr is None:
                raise StateError(Status.WRONG_STATE, f"the {h.what} is closed")
            h._users += 1
            self.p = h.ptr
        return self.p

    def __exit__(self, *exc: object) -> None:
        h = self.h
        with h._cv:
            h._users -= 1
            if h._users == 0:
                h._cv.notify_all()

"""frameio_c2c: Frame.io Camera-to-Cloud uploads from Python, over ``libframeio_c2c`` (ctypes).

Quick start::

    import frameio_c2c as fio

    with fio.Client("serial-1234", SECRET, client_version="1.0.0", on_tokens=save) as client:
        if client.tokens is None:
            pairing = client.pair()
            print("Enter", pairing.user_code, "at", pairing.verification_uri)
            pairing.wait()
        with client.upload("A001_C002.mov", "video/quicktime", progress=print) as up:
            for chunk in camera.chunks():
                up.write(chunk)
        # leaving the block finishes the upload (or cancels it on an exception)

The shared library is found through ``$FRAMEIO_C2C_LIB``, the package folder, or the build tree
(``target/release``, ``target/debug``); its ``fio_version()`` must equal :data:`__version__`.
"""

from ._version import __version__
from ._lib import LIB_ENV, LibraryError
from .errors import (
    AuthError,
    BadRequestError,
    CancelledError,
    ChannelPausedError,
    FrameioError,
    InvalidArgumentError,
    LocalIOError,
    NetworkError,
    NotFoundError,
    PairingExpiredError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    StateError,
    Status,
    UploadError,
)
from .client import SIZE_NONE, Asset, Client, LogLevel, Pairing, Part, Tokens
from .upload import PartState, Progress, Upload, UploadPart


def library_version() -> str:
    """The loaded library's ``fio_version()``."""
    from ._lib import lib

    return str(lib().version)


def library_path() -> str:
    """Path of the loaded shared library."""
    from ._lib import lib

    return str(lib().path)


__all__ = [
    "__version__",
    "LIB_ENV",
    "LibraryError",
    "library_version",
    "library_path",
    "Client",
    "Pairing",
    "Tokens",
    "Asset",
    "Part",
    "LogLevel",
    "Upload",
    "Progress",
    "UploadPart",
    "PartState",
    "SIZE_NONE",
    "Status",
    "FrameioError",
    "InvalidArgumentError",
    "BadRequestError",
    "AuthError",
    "PairingExpiredError",
    "NotFoundError",
    "ChannelPausedError",
    "RateLimitedError",
    "NetworkError",
    "CancelledError",
    "ServerError",
    "UploadError",
    "ProtocolError",
    "LocalIOError",
    "StateError",
]

"""The package version; it must equal the library's ``fio_version()`` (checked when loading)."""

__version__ = "0.1.0"

"""Sections 2-4 of the benchmarks: they need the emulator, the upload engine and the shaped link."""
from fiobench import Skip


def memory(args, res):
    raise Skip("not written yet")


def latency(args, res):
    raise Skip("not written yet")


def concurrency(args, res):
    raise Skip("not written yet")

"""Every function of include/frameio_c2c.h is declared (argtypes and restype) with matching types,
and the library loads with the right version."""

from __future__ import annotations

import ctypes
import re
from typing import Dict, List, Tuple

import pytest

from conftest import ROOT
import frameio_c2c as fio
from frameio_c2c import _lib as C

HEADER = ROOT / "include" / "frameio_c2c.h"

# C scalar type -> (sizeof, signed, is_float, is_bool)
SCALARS = {
    "bool": (1, False, False, True),
    "int": (ctypes.sizeof(ctypes.c_int), True, False, False),
    "double": (8, True, True, False),
    "size_t": (ctypes.sizeof(ctypes.c_size_t), False, False, False),
    "uint8_t": (1, False, False, False),
    "uint16_t": (2, False, False, False),
    "uint32_t": (4, False, False, False),
    "uint64_t": (8, False, False, False),
    "int32_t": (4, True, False, False),
    "int64_t": (8, True, False, False),
    "fio_status": (4, True, False, False),
    "fio_log_level": (4, True, False, False),
    "fio_part_state": (4, False, False, False),
}


def parse_header() -> Tuple[Dict[str, Tuple[str, List[str]]], set]:
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    callbacks = set(re.findall(r"typedef[^;]*?\(\s*\*\s*(\w+)\s*\)\s*\(", text))
    protos: Dict[str, Tuple[str, List[str]]] = {}
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(fio_\w+)\s*\(([^()]*)\)\s*;", text):
        ret, name, args = m.group(1), m.group(2), m.group(3)
        ret = " ".join(ret.split())
        if ret.startswith("typedef"):
            continue
        params = [] if args.strip() in ("", "void") else [" ".join(a.split()) for a in args.split(",")]
        # drop parameter names: the last identifier after the type
        types = []
        for p in params:
            t = re.sub(r"\b\w+$", "", p).strip() if not p.endswith("*") else p
            types.append(" ".join(t.replace("*", " * ").split()))
        protos[name] = (" ".join(ret.replace("*", " * ").split()), types)
    return protos, callbacks


PROTOS, CALLBACKS = parse_header()


def is_signed(t) -> bool:
    try:
        return t(-1).value == -1
    except TypeError:
        return True


def check_type(ctype_text: str, declared) -> str:
    """'' if `declared` (a ctypes type or None) fits the C type, else a reason."""
    ct = ctype_text.replace("const ", "").strip()
    if ct == "void":
        return "" if declared is None else f"void but declared {declared}"
    stars = ct.count("*")
    base = ct.replace("*", "").replace("struct ", "").strip()
    if stars:
        if declared in (ctypes.c_void_p, ctypes.c_char_p):
            if declared is ctypes.c_char_p and not (base == "char" and stars == 1):
                return f"{ctype_text} declared c_char_p"
            return ""
        if isinstance(declared, type) and issubclass(declared, ctypes._Pointer):
            inner, n = declared, 0
            while isinstance(inner, type) and issubclass(inner, ctypes._Pointer):
                inner, n = inner._type_, n + 1
            if inner in (ctypes.c_void_p, ctypes.c_char_p):
                n += 1  # `char **` as POINTER(c_void_p): the string is read and freed by hand
            if n != stars:
                return f"{ctype_text}: pointer depth {n} declared"
            if base.startswith("fio_") and getattr(inner, "__name__", "") != base:
                return f"{ctype_text}: points to {inner.__name__}"
            if base in SCALARS and ctypes.sizeof(inner) != SCALARS[base][0]:
                return f"{ctype_text}: points to {inner}"
            return ""
        return f"{ctype_text}: declared {declared}, not a pointer"
    if base in CALLBACKS:
        exp = getattr(C, base)
        return "" if declared is exp else f"{ctype_text}: declared {declared}"
    if base not in SCALARS:
        return f"unknown C type {ctype_text!r} (teach this test)"
    if declared is None or not hasattr(declared, "_type_"):
        return f"{ctype_text}: declared {declared}"
    size, signed, flt, boolean = SCALARS[base]
    if ctypes.sizeof(declared) != size:
        return f"{ctype_text}: size {ctypes.sizeof(declared)} != {size}"
    if boolean != (declared is ctypes.c_bool):
        return f"{ctype_text}: bool mismatch ({declared})"
    if flt != (declared in (ctypes.c_double, ctypes.c_float)):
        return f"{ctype_text}: float mismatch"
    if not flt and not boolean and is_signed(declared) != signed:
        return f"{ctype_text}: signedness mismatch ({declared})"
    return ""


def test_header_parsed():
    assert len(PROTOS) >= 60, f"only {len(PROTOS)} prototypes parsed from {HEADER}"
    assert "fio_version" in PROTOS and "fio_put_part" in PROTOS


def test_every_header_function_is_declared():
    missing = sorted(set(PROTOS) - set(C.DECLARATIONS))
    assert not missing, f"declare these in python/frameio_c2c/_lib.py: {missing}"


def test_no_declaration_without_header_function():
    stale = sorted(set(C.DECLARATIONS) - set(PROTOS))
    assert not stale, f"declared but not in the header: {stale}"


@pytest.mark.parametrize("name", sorted(PROTOS))
def test_declaration_types_match_header(name):
    if name not in C.DECLARATIONS:
        pytest.fail(f"{name} not declared")
    ret, args = PROTOS[name]
    restype, argtypes = C.DECLARATIONS[name]
    problems = []
    r = check_type(ret, restype)
    if r:
        problems.append(f"return: {r}")
    if len(args) != len(argtypes):
        problems.append(f"{len(args)} parameters in the header, {len(argtypes)} declared")
    else:
        for i, (a, d) in enumerate(zip(args, argtypes)):
            r = check_type(a, d)
            if r:
                problems.append(f"arg {i}: {r}")
    assert not problems, f"{name}: " + "; ".join(problems)


def test_loaded_functions_carry_declarations():
    L = C.lib()
    assert not L.missing, f"the library at {L.path} lacks {L.missing}"
    for name, (restype, argtypes) in C.DECLARATIONS.items():
        fn = getattr(L.dll, name)
        assert fn.restype is restype, name
        assert list(fn.argtypes) == list(argtypes), name


def test_struct_layouts_match_header():
    # field names, in order, as in the header's struct definitions
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    for cname, pytype in (
        ("fio_asset_params", C.fio_asset_params),
        ("fio_part_spec", C.fio_part_spec),
        ("fio_progress", C.fio_progress),
        ("fio_upload_part", C.fio_upload_part),
    ):
        body = re.search(r"typedef struct %s \{(.*?)\}" % cname, text, re.S).group(1)
        fields = re.findall(r"([\w\s\*]+?)\s*\b(\w+)\s*;", body)
        names = [f[1] for f in fields]
        assert names == [f[0] for f in pytype._fields_], cname
        for (ctype, fname), (pname, ptype) in zip(fields, pytype._fields_):
            r = check_type(" ".join(ctype.split()), ptype)
            assert not r, f"{cname}.{fname}: {r}"


def test_version_matches_library():
    assert fio.library_version() == fio.__version__
    text = HEADER.read_text()
    nums = [re.search(r"#define FIO_VERSION_%s (\d+)" % k, text).group(1) for k in ("MAJOR", "MINOR", "PATCH")]
    assert ".".join(nums) == fio.__version__


def test_version_mismatch_is_refused():
    with pytest.raises(fio.LibraryError, match="version mismatch.*9.9.9"):
        C.load(C.lib().path, expected_version="9.9.9")


def test_missing_library_is_a_clear_error(tmp_path):
    with pytest.raises(fio.LibraryError, match="cannot load"):
        C.load(tmp_path / "nope.so")


def test_env_var_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(C.LIB_ENV, str(tmp_path / "libframeio_c2c.so"))
    assert C.candidate_paths() == [tmp_path / "libframeio_c2c.so"]
    with pytest.raises(fio.LibraryError, match="FRAMEIO_C2C_LIB"):
        C._pick_path()


def test_status_codes_match_header():
    text = HEADER.read_text()
    codes = dict((k, int(v)) for k, v in re.findall(r"#define FIO_(?:ERR_)?(\w+) (\d+)\s*$", text, re.M))
    for s in fio.Status:
        assert codes.get(s.name) == s.value, s.name
    header_errs = set(re.findall(r"#define FIO_ERR_(\w+) \d+", text))
    assert header_errs <= {s.name for s in fio.Status}, header_errs - {s.name for s in fio.Status}
    for s in fio.Status:
        assert C.lib().fio_status_str(s).decode() not in ("", "unknown status")

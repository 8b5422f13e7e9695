#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine. Idempotent: skips what is present.
set -euo pipefail

need_apt=()
command -v ffmpeg   >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
command -v gcc      >/dev/null 2>&1 || need_apt+=(gcc)
command -v g++      >/dev/null 2>&1 || need_apt+=(g++)
command -v make     >/dev/null 2>&1 || need_apt+=(make)
command -v curl     >/dev/null 2>&1 || need_apt+=(curl)
command -v nm       >/dev/null 2>&1 || need_apt+=(binutils)
command -v cmake    >/dev/null 2>&1 || need_apt+=(cmake)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v doxygen  >/dev/null 2>&1 || need_apt+=(doxygen)
command -v openssl  >/dev/null 2>&1 || need_apt+=(openssl)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

py_need=()
python3 -c 'import pytest' 2>/dev/null || py_need+=(pytest)
python3 -c 'import mypy' 2>/dev/null || py_need+=(mypy)
if [ ${#py_need[@]} -gt 0 ]; then
  echo "setup: pip installing ${py_need[*]}"
  # A distribution's Python may refuse pip installs (PEP 668): then install for this user beside it.
  python3 -m pip install -q "${py_need[@]}" 2>/dev/null \
    || python3 -m pip install -q --user --break-system-packages "${py_need[@]}"
fi
echo "setup: ok"

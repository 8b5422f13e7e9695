#!/usr/bin/env bash
# Installs (or, with --uninstall, removes) the frameio-c2c library for C/C++ builds:
#
#   $LIBDIR/libframeio_c2c.a
#   $LIBDIR/libframeio_c2c.so.<version>            the shared library, SONAME libframeio_c2c.so.<abi>
#   $LIBDIR/libframeio_c2c.so.<abi> -> .so.<version>   (what the loader looks for)
#   $LIBDIR/libframeio_c2c.so       -> .so.<abi>       (what -lframeio_c2c finds)
#   $INCLUDEDIR/frameio_c2c.h
#   $LIBDIR/pkgconfig/frameio_c2c.pc, frameio_c2c-static.pc
#   $LIBDIR/cmake/FrameioC2C/FrameioC2CConfig.cmake, FrameioC2CConfigVersion.cmake
#
# Driven by `make install` / `make uninstall`; settings come from the environment:
#   PREFIX (default /usr/local), LIBDIR ($PREFIX/lib), INCLUDEDIR ($PREFIX/include), DESTDIR (staging
#   root, not written into the files), PROFILE (release), TARGET (a Rust target triple for a cross
#   build; empty = host), CARGO (cargo), CARGO_TARGET_DIR (./target), NO_BUILD=1 (install what is
#   already built, e.g. `make release && sudo make install NO_BUILD=1` when root has no cargo).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

mode=install
[ "${1:-}" = "--uninstall" ] && mode=uninstall

abspath() { # absolute path, the directory need not exist; relative paths are taken from the caller's cwd
    case "$1" in
        /*) realpath -m "$1" ;;
        *) realpath -m "${CALLER_DIR:-$PWD}/$1" ;;
    esac
}

PREFIX="$(abspath "${PREFIX:-/usr/local}")"
LIBDIR="$(abspath "${LIBDIR:-$PREFIX/lib}")"
INCLUDEDIR="$(abspath "${INCLUDEDIR:-$PREFIX/include}")"
DESTDIR="${DESTDIR:-}"
[ -n "$DESTDIR" ] && DESTDIR="$(abspath "$DESTDIR")"
PROFILE="${PROFILE:-release}"
TARGET="${TARGET:-}"
CARGO="${CARGO:-cargo}"
TARGET_DIR="$(abspath "${CARGO_TARGET_DIR:-$ROOT/target}")"

VERSION="$(awk '/^\[package\]/{p=1;next} /^\[/{p=0} p && /^version *=/{gsub(/[" ]/,"",$0); sub(/version=/,"",$0); print; exit}' Cargo.toml)"
MAJOR="${VERSION%%.*}"
rest="${VERSION#*.}"
MINOR="${rest%%.*}"
if [ "$MAJOR" = "0" ]; then ABI="0.$MINOR"; else ABI="$MAJOR"; fi # must match build.rs
SONAME="libframeio_c2c.so.$ABI"
REAL="libframeio_c2c.so.$VERSION"

D_LIB="$DESTDIR$LIBDIR"
D_INC="$DESTDIR$INCLUDEDIR"
D_PC="$D_LIB/pkgconfig"
D_CMAKE="$D_LIB/cmake/FrameioC2C"

if [ "$mode" = uninstall ]; then
    for f in "$D_LIB/libframeio_c2c.a" "$D_LIB/libframeio_c2c.so" "$D_LIB"/libframeio_c2c.so.* \
             "$D_INC/frameio_c2c.h" "$D_PC/frameio_c2c.pc" "$D_PC/frameio_c2c-static.pc" \
             "$D_CMAKE/FrameioC2CConfig.cmake" "$D_CMAKE/FrameioC2CConfigVersion.cmake"; do
        if [ -e "$f" ] || [ -L "$f" ]; then rm -f "$f"; echo "removed $f"; fi
    done
    rmdir "$D_CMAKE" 2>/dev/null || true
    rmdir "$D_LIB/cmake" "$D_PC" 2>/dev/null || true
    exit 0
fi

profile_flag=()
[ "$PROFILE" = release ] && profile_flag=(--release)
[ "$PROFILE" != release ] && [ "$PROFILE" != debug ] && profile_flag=(--profile "$PROFILE")
target_flag=()
[ -n "$TARGET" ] && target_flag=(--target "$TARGET")
OUT="$TARGET_DIR${TARGET:+/$TARGET}/$PROFILE"
[ "$PROFILE" = dev ] && OUT="$TARGET_DIR${TARGET:+/$TARGET}/debug"

if [ "${NO_BUILD:-0}" != 1 ]; then
    echo "install: building the library ($PROFILE${TARGET:+, $TARGET})"
    CARGO_TARGET_DIR="$TARGET_DIR" "$CARGO" build -p frameio-c2c --lib "${profile_flag[@]}" "${target_flag[@]}"
fi
for f in libframeio_c2c.a libframeio_c2c.so; do
    [ -f "$OUT/$f" ] || { echo "install: $OUT/$f is missing (build it first: make release)" >&2; exit 1; }
done
if command -v readelf >/dev/null 2>&1; then
    got="$(readelf -d "$OUT/libframeio_c2c.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')"
    [ "$got" = "$SONAME" ] || { echo "install: $OUT/libframeio_c2c.so has SONAME '$got', expected $SONAME (build.rs)" >&2; exit 1; }
fi

# The system libraries a static link needs, as rustc reports them for this target. Computed in a
# separate target dir (a debug staticlib-only build), so the shared target dir's artifacts are not
# relinked under other builds; cached until Cargo.lock or Cargo.toml changes.
NL_DIR="$TARGET_DIR/fio-native-static-libs"
NL_FILE="$NL_DIR/${TARGET:-host}.txt"
if [ -n "${NATIVE_STATIC_LIBS:-}" ]; then
    NATIVE_LIBS="$NATIVE_STATIC_LIBS"
else
    if [ ! -s "$NL_FILE" ] || [ Cargo.lock -nt "$NL_FILE" ] || [ Cargo.toml -nt "$NL_FILE" ]; then
        [ "${NO_BUILD:-0}" = 1 ] && { echo "install: $NL_FILE is missing; run make install without NO_BUILD once" >&2; exit 1; }
        echo "install: asking rustc for the native static libraries (once per Cargo.lock)"
        mkdir -p "$NL_DIR"
        CARGO_TARGET_DIR="$NL_DIR" "$CARGO" rustc -p frameio-c2c --lib --crate-type staticlib "${target_flag[@]}" \
            -- --print native-static-libs 2>"$NL_DIR/rustc.log" || { cat "$NL_DIR/rustc.log" >&2; exit 1; }
        libs="$(sed -n 's/.*native-static-libs: //p' "$NL_DIR/rustc.log" | tail -1)"
        [ -n "$libs" ] || { echo "install: rustc printed no native-static-libs line" >&2; cat "$NL_DIR/rustc.log" >&2; exit 1; }
        printf '%s\n' "$libs" >"$NL_FILE"
    fi
    NATIVE_LIBS="$(cat "$NL_FILE")"
fi
# CMake wants library names (pthread through Threads::Threads), not -l flags
CM_NATIVE_LIBS=""
for l in $NATIVE_LIBS; do
    case "$l" in
        -lpthread) n="Threads::Threads" ;;
        -l*) n="${l#-l}" ;;
        *) n="$l" ;;
    esac
    CM_NATIVE_LIBS="${CM_NATIVE_LIBS:+$CM_NATIVE_LIBS;}$n"
done

# Relocatable CMake package when libdir and includedir are inside the prefix.
cmake_dir="$LIBDIR/cmake/FrameioC2C"
under() { case "$1/" in "$PREFIX"/*) return 0 ;; *) return 1 ;; esac; }
if under "$LIBDIR" && under "$INCLUDEDIR"; then
    REL_PREFIX="$(realpath -m --relative-to="$cmake_dir" "$PREFIX")"
    rl="$(realpath -m --relative-to="$PREFIX" "$LIBDIR")"
    ri="$(realpath -m --relative-to="$PREFIX" "$INCLUDEDIR")"
    CM_LIBDIR="\${_fio_prefix}${rl:+/$rl}"
    CM_INCLUDEDIR="\${_fio_prefix}${ri:+/$ri}"
    [ "$rl" = . ] && CM_LIBDIR="\${_fio_prefix}"
    [ "$ri" = . ] && CM_INCLUDEDIR="\${_fio_prefix}"
else
    REL_PREFIX="."
    CM_LIBDIR="$LIBDIR"
    CM_INCLUDEDIR="$INCLUDEDIR"
fi
rustc_target=()
[ -n "$TARGET" ] && rustc_target=(--target "$TARGET")
ptr_bits="$(rustc --print cfg "${rustc_target[@]}" 2>/dev/null | sed -n 's/^target_pointer_width="\(.*\)"/\1/p')"
SIZEOF_VOID_P=""
[ -n "$ptr_bits" ] && SIZEOF_VOID_P=$((ptr_bits / 8))

subst() { # template -> destination
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LIBDIR@|$LIBDIR|g" -e "s|@INCLUDEDIR@|$INCLUDEDIR|g" \
        -e "s|@VERSION@|$VERSION|g" -e "s|@MAJOR@|$MAJOR|g" -e "s|@MINOR@|$MINOR|g" \
        -e "s|@SONAME@|$SONAME|g" -e "s|@NATIVE_LIBS@|$NATIVE_LIBS|g" \
        -e "s|@CM_NATIVE_LIBS@|$CM_NATIVE_LIBS|g" -e "s|@REL_PREFIX@|$REL_PREFIX|g" \
        -e "s|@CM_LIBDIR@|$CM_LIBDIR|g" -e "s|@CM_INCLUDEDIR@|$CM_INCLUDEDIR|g" \
        -e "s|@SIZEOF_VOID_P@|$SIZEOF_VOID_P|g" "$1" >"$2.tmp.$$"
    chmod 644 "$2.tmp.$$"
    mv -f "$2.tmp.$$" "$2"
    echo "installed $2"
}

install -d "$D_LIB" "$D_INC" "$D_PC" "$D_CMAKE"
install -m 644 "$OUT/libframeio_c2c.a" "$D_LIB/libframeio_c2c.a"
echo "installed $D_LIB/libframeio_c2c.a"
# remove other versions' SONAME links of this ABI only; older ABIs stay for programs still using them
rm -f "$D_LIB/$SONAME" "$D_LIB/libframeio_c2c.so"
install -m 755 "$OUT/libframeio_c2c.so" "$D_LIB/$REAL"
ln -sf "$REAL" "$D_LIB/$SONAME"
ln -sf "$SONAME" "$D_LIB/libframeio_c2c.so"
echo "installed $D_LIB/$REAL (+ $SONAME, libframeio_c2c.so)"
install -m 644 include/frameio_c2c.h "$D_INC/frameio_c2c.h"
echo "installed $D_INC/frameio_c2c.h"
subst packaging/frameio_c2c.pc.in "$D_PC/frameio_c2c.pc"
subst packaging/frameio_c2c-static.pc.in "$D_PC/frameio_c2c-static.pc"
subst packaging/FrameioC2CConfig.cmake.in "$D_CMAKE/FrameioC2CConfig.cmake"
subst packaging/FrameioC2CConfigVersion.cmake.in "$D_CMAKE/FrameioC2CConfigVersion.cmake"
if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then
    case "$LIBDIR" in /usr/lib*|/usr/local/lib*|/lib*) ldconfig || true ;; esac
fi
echo "install: frameio-c2c $VERSION ($SONAME) -> ${DESTDIR}$PREFIX"

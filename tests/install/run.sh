#!/usr/bin/env bash
# The install test (make test-install): installs the library into a temporary prefix the way a vendor
# would (`make install PREFIX=...`), then, using only what was installed:
#   - checks the layout, the SONAME and its symlinks, the pkg-config files (Libs.private = rustc's
#     native-static-libs) and the CMake package, DESTDIR staging and uninstall;
#   - builds the C examples (examples-c) with pkg-config, shared and static, and runs them against
#     a fresh emulator (pair, then a basic upload whose SHA-256 the emulator checks);
#   - builds the C++ example (examples-cpp) with CMake (find_package(FrameioC2C), static and shared)
#     and runs it (real-time upload of a growing file, comment), SHA-256 checked;
#   - checks the CMake package's version rule and that it still works after the prefix is moved.
# Needs: cc, c++, make, cmake, pkg-config, curl, python3, readelf. Runs in well under a minute when
# the release library is built (the Makefile target builds it first).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
emu="${FIO_EMULATOR_BIN:-$target_dir/debug/fio-emulator}"
make_="${MAKE:-make}"
start=$(date +%s)

for tool in cc c++ cmake pkg-config curl python3 readelf; do
    command -v "$tool" >/dev/null || { echo "test-install: $tool is missing (apt-get install cmake pkg-config g++ curl binutils)" >&2; exit 2; }
done
[ -x "$emu" ] || { echo "test-install: $emu not found (make emulator)" >&2; exit 2; }

work="$(mktemp -d /tmp/fio-install-test.XXXXXX)"
emu_pid=""
cleanup() {
    [ -n "$emu_pid" ] && { kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT

pass=0
ok() { pass=$((pass + 1)); echo "ok $pass - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

prefix="$work/prefix"
libdir="$prefix/lib"

# ---- install -----------------------------------------------------------------------------------
$make_ -s -C "$root" install PREFIX="$prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "make install"; }
ok "make install PREFIX=$prefix"

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
minor="$(echo "$version" | cut -d. -f2)"
major="$(echo "$version" | cut -d. -f1)"
if [ "$major" = 0 ]; then soname="libframeio_c2c.so.0.$minor"; else soname="libframeio_c2c.so.$major"; fi
for f in include/frameio_c2c.h lib/libframeio_c2c.a "lib/libframeio_c2c.so.$version" \
         lib/pkgconfig/frameio_c2c.pc lib/pkgconfig/frameio_c2c-static.pc \
         lib/cmake/FrameioC2C/FrameioC2CConfig.cmake lib/cmake/FrameioC2C/FrameioC2CConfigVersion.cmake; do
    [ -f "$prefix/$f" ] || fail "$f not installed"
done
cmp -s "$prefix/include/frameio_c2c.h" "$root/include/frameio_c2c.h" || fail "installed header differs"
[ "$(readlink "$libdir/$soname")" = "libframeio_c2c.so.$version" ] || fail "$soname -> $(readlink "$libdir/$soname")"
[ "$(readlink "$libdir/libframeio_c2c.so")" = "$soname" ] || fail "libframeio_c2c.so -> $(readlink "$libdir/libframeio_c2c.so")"
got="$(readelf -d "$libdir/libframeio_c2c.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')"
[ "$got" = "$soname" ] || fail "SONAME is '$got', expected $soname"
ok "layout: header, .a, .so.$version with SONAME $soname and its symlinks"

# exports of the installed .so == functions of the header
nm -D --defined-only "$libdir/libframeio_c2c.so.$version" | awk '$2 == "T" {print $3}' | grep '^fio_' | sort >"$work/exports"
grep -oE '\bfio_[a-z0-9_]+\(' "$root/include/frameio_c2c.h" | tr -d '(' | sort -u >"$work/header_fns"
diff -u "$work/header_fns" "$work/exports" >/dev/null || { diff -u "$work/header_fns" "$work/exports" | head -20 >&2; fail "exports differ from the header"; }
ok "the installed .so exports exactly the header's $(wc -l <"$work/header_fns") functions"

# ---- pkg-config --------------------------------------------------------------------------------
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export PKG_CONFIG_LIBDIR="$libdir/pkgconfig"  # nothing from the system
pkg-config --validate frameio_c2c frameio_c2c-static || fail "pkg-config --validate"
[ "$(pkg-config --modversion frameio_c2c)" = "$version" ] || fail "pkg-config --modversion"
nl_file="$target_dir/fio-native-static-libs/host.txt"
native="$(cat "$nl_file")"
case "$native" in *-lc*) ;; *) fail "native-static-libs looks wrong: '$native'" ;; esac
private="$(sed -n 's/^Libs.private: //p' "$PKG_CONFIG_PATH/frameio_c2c.pc")"
[ "$private" = "$native" ] || fail "Libs.private '$private' != native-static-libs '$native'"
[ "$(pkg-config --variable=soname frameio_c2c)" = "$soname" ] || fail "soname variable"
ok "pkg-config: valid, version $version, Libs.private = rustc's native-static-libs ($native)"

cflags="-std=c99 -O1 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -I$root/examples-c"
mkdir -p "$work/c/shared" "$work/c/static"
for prog in pair upload_file; do
    # shellcheck disable=SC2046
    cc $cflags "$root/examples-c/$prog.c" -o "$work/c/shared/$prog" $(pkg-config --cflags --libs frameio_c2c) \
        -Wl,-rpath,"$(pkg-config --variable=libdir frameio_c2c)" || fail "cc $prog (shared, pkg-config)"
    # shellcheck disable=SC2046
    cc $cflags "$root/examples-c/$prog.c" -o "$work/c/static/$prog" $(pkg-config --cflags --libs frameio_c2c-static) \
        || fail "cc $prog (static, pkg-config)"
done
readelf -d "$work/c/shared/upload_file" | grep -q "NEEDED.*\[$soname\]" || fail "shared example does not need $soname"
readelf -d "$work/c/static/upload_file" | grep -q "NEEDED.*frameio" && fail "static example needs the shared library"
# the same program resolved at run time through the SONAME symlink, nothing from target/
ldd "$work/c/shared/upload_file" | grep -q "$soname => $libdir/$soname" || { ldd "$work/c/shared/upload_file" >&2; fail "ldd"; }
# Libs.private through `pkg-config --static` when only the archive is wanted
mkdir -p "$work/c/arch-only"
cp "$libdir/libframeio_c2c.a" "$work/c/arch-only/"
# shellcheck disable=SC2046
cc $cflags "$root/examples-c/pair.c" -o "$work/c/static/pair-libs-private" -L"$work/c/arch-only" \
    $(pkg-config --cflags --static --libs-only-l frameio_c2c) || fail "cc with pkg-config --static (archive only)"
ok "C examples built with pkg-config: shared (NEEDED $soname), static (frameio_c2c-static), --static Libs.private"

# ---- the header on ARM (when Debian's cross compilers are there): the C side only ---------------
cross_done=""
for cc_ in aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc; do
    command -v "$cc_" >/dev/null || continue
    for prog in pair upload_file upload_realtime; do
        "$cc_" $cflags -I"$prefix/include" -c "$root/examples-c/$prog.c" -o "$work/cross-$prog.o" \
            || fail "$prog.c does not compile with $cc_"
    done
    cross_done="$cross_done $cc_"
done
if [ -n "$cross_done" ]; then
    ok "installed header + C examples compile for ARM with -Werror:$cross_done (the Rust library itself: not here)"
else
    echo "skip - ARM header check (no aarch64-linux-gnu-gcc / arm-linux-gnueabihf-gcc)"
fi

# ---- emulator ----------------------------------------------------------------------------------
fifo="$work/ready"
mkfifo "$fifo"
"$emu" --port 0 --s3-port 0 --quiet --auto-approve --poll-interval 0.2 --part-size 5242880 \
    --data-dir "$work/emu-data" >"$fifo" 2>"$work/emulator.log" &
emu_pid=$!
exec 3<"$fifo"
read -r -t 30 ready <&3 || { cat "$work/emulator.log" >&2; fail "emulator did not start"; }
cat <&3 >/dev/null &
api="$(sed -E 's/.*"api": *"([^"]+)".*/\1/' <<<"$ready")"
export FIO_BASE_URL="$api" FIO_CLIENT_SECRET="fio-emulator-secret" FIO_ALLOW_HTTP=1 FIO_CLIENT_VERSION=1.0.0

asset_sha() { curl -fsS "$api/_emulator/assets/$1" | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a["state"], a.get("sha256"))'; }

head -c $((11 * 1024 * 1024 + 12345)) /dev/urandom >"$work/clip.mp4"
want="$(sha256sum "$work/clip.mp4" | cut -d' ' -f1)"

for kind in shared static; do
    export FIO_CLIENT_ID="install-test-c-$kind"
    tok="$work/c/$kind.tokens"
    timeout 60 "$work/c/$kind/pair" "$tok" >"$work/c/$kind-pair.log" 2>&1 || { cat "$work/c/$kind-pair.log" >&2; fail "pair ($kind)"; }
    [ "$(stat -c %a "$tok")" = 600 ] || fail "token file mode $(stat -c %a "$tok")"
    timeout 60 "$work/c/$kind/upload_file" "$tok" "$work/clip.mp4" >"$work/c/$kind-up.log" 2>&1 || { cat "$work/c/$kind-up.log" >&2; fail "upload_file ($kind)"; }
    id="$(grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' "$work/c/$kind-up.log" | tail -1)"
    [ -n "$id" ] || { cat "$work/c/$kind-up.log" >&2; fail "no asset id in the upload_file output ($kind)"; }
    [ "$(asset_sha "$id")" = "uploaded $want" ] || fail "asset $id ($kind): $(asset_sha "$id"), want uploaded $want"
done
ok "installed C examples (shared and static) pair and upload 11 MiB against the emulator, SHA-256 checked"

# ---- CMake -------------------------------------------------------------------------------------
for kind in static shared; do
    b="$work/cpp-$kind"
    flag=OFF; [ "$kind" = shared ] && flag=ON
    cmake -S "$root/examples-cpp" -B "$b" -DCMAKE_PREFIX_PATH="$prefix" -DFRAMEIO_C2C_SHARED=$flag \
        -DCMAKE_BUILD_TYPE=Release >"$b.log" 2>&1 || { cat "$b.log" >&2; fail "cmake configure ($kind)"; }
    cmake --build "$b" >>"$b.log" 2>&1 || { cat "$b.log" >&2; fail "cmake build ($kind)"; }
    if [ "$kind" = shared ]; then
        readelf -d "$b/record_upload" | grep -q "NEEDED.*\[$soname\]" || fail "C++ shared example does not need $soname"
    else
        readelf -d "$b/record_upload" | grep -q "NEEDED.*frameio" && fail "C++ static example needs the shared library"
    fi
    export FIO_CLIENT_ID="install-test-cpp-$kind"
    cp "$work/clip.mp4" "$work/cpp-$kind.mp4"
    timeout 60 "$b/record_upload" "$work/cpp-$kind.tokens" "$work/cpp-$kind.mp4" >"$b.run" 2>"$b.err" \
        || { cat "$b.run" "$b.err" >&2; fail "record_upload ($kind)"; }
    [ "$(stat -c %a "$work/cpp-$kind.tokens")" = 600 ] || fail "C++ token file mode"
    id="$(tail -1 "$b.run")"
    [ "$(asset_sha "$id")" = "uploaded $want" ] || fail "C++ asset $id ($kind): $(asset_sha "$id")"
    # second run: tokens from the file, no pairing
    timeout 60 "$b/record_upload" "$work/cpp-$kind.tokens" "$work/cpp-$kind.mp4" >"$b.run2" 2>"$b.err" \
        || { cat "$b.run2" "$b.err" >&2; fail "record_upload with saved tokens ($kind)"; }
    grep -q "^Pair:" "$b.run2" && fail "second run paired again"
done
ok "C++ example built with CMake (FrameioC2C::frameio_c2c, static and shared), real-time upload + comment, SHA-256 checked, tokens reused"

# version rule and relocation: a tiny project that only runs find_package
probe="$work/probe"
mkdir -p "$probe"
cat >"$probe/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(probe LANGUAGES C)
find_package(FrameioC2C ${WANT} REQUIRED)
if(NOT TARGET FrameioC2C::frameio_c2c OR NOT TARGET FrameioC2C::frameio_c2c_static OR NOT TARGET FrameioC2C::frameio_c2c_shared)
  message(FATAL_ERROR "targets missing")
endif()
get_target_property(loc FrameioC2C::frameio_c2c_static IMPORTED_LOCATION)
message(STATUS "PROBE ${FrameioC2C_VERSION} ${loc}")
EOF
probe_cmake() { rm -rf "$probe/b"; cmake -S "$probe" -B "$probe/b" -DCMAKE_PREFIX_PATH="$1" -DWANT="$2" >"$probe/log" 2>&1; }
probe_cmake "$prefix" "$major.$minor" || { cat "$probe/log" >&2; fail "find_package($major.$minor)"; }
probe_cmake "$prefix" "$major.$((minor + 1))" && fail "find_package($major.$((minor + 1))) accepted $version"
if [ "$major" = 0 ]; then
    probe_cmake "$prefix" "1.0" && fail "find_package(1.0) accepted $version"
fi
mv "$prefix" "$work/moved"
probe_cmake "$work/moved" "$major.$minor" || { cat "$probe/log" >&2; fail "find_package after moving the prefix"; }
grep -q "PROBE $version $work/moved/lib/libframeio_c2c.a" "$probe/log" || fail "relocated package points elsewhere"
mv "$work/moved" "$prefix"
ok "CMake package: version rule (same ABI: $major.$minor), relocatable prefix"

# ---- DESTDIR and uninstall ---------------------------------------------------------------------
stage="$work/stage"
$make_ -s -C "$root" install PREFIX=/opt/fio-c2c DESTDIR="$stage" NO_BUILD=1 >"$work/install2.log" 2>&1 || { cat "$work/install2.log" >&2; fail "DESTDIR install"; }
[ -f "$stage/opt/fio-c2c/lib/libframeio_c2c.a" ] || fail "DESTDIR layout"
grep -q '^prefix=/opt/fio-c2c$' "$stage/opt/fio-c2c/lib/pkgconfig/frameio_c2c.pc" || fail "DESTDIR leaked into the .pc"
grep -q "$stage" -r "$stage/opt/fio-c2c/lib/pkgconfig" "$stage/opt/fio-c2c/lib/cmake" && fail "DESTDIR leaked into the package files"
$make_ -s -C "$root" uninstall PREFIX=/opt/fio-c2c DESTDIR="$stage" >/dev/null
left="$(find "$stage" -type f -o -type l)"
[ -z "$left" ] || fail "uninstall left: $left"
$make_ -s -C "$root" uninstall PREFIX="$prefix" >/dev/null
left="$(find "$prefix" -type f -o -type l)"
[ -z "$left" ] || fail "uninstall left: $left"
ok "DESTDIR staging (prefix kept out of the files), uninstall removes everything"

# ---- make docs (when doxygen is there): every header function documented, no warnings ------------
if command -v doxygen >/dev/null; then
    docs_dir="$work/docs-target"
    $make_ -s -C "$root" docs TARGET_DIR="$docs_dir" >"$work/docs.log" 2>&1 || { cat "$work/docs.log" >&2; fail "make docs"; }
    [ ! -s "$docs_dir/doc-c/warnings.log" ] || { cat "$docs_dir/doc-c/warnings.log" >&2; fail "doxygen warnings"; }
    html="$docs_dir/doc-c/html/frameio__c2c_8h.html"
    missing=""
    while read -r fn; do grep -q "$fn()" "$html" || missing="$missing $fn"; done <"$work/header_fns"
    [ -z "$missing" ] || fail "not in the API reference:$missing"
    grep -q "Pairing: the code and the QR code" "$docs_dir/doc-c/html/index.html" || fail "the guide is not the main page"
    ok "make docs: API reference for all $(wc -l <"$work/header_fns") functions, guide as main page, no doxygen warnings"
else
    echo "skip - make docs (doxygen not installed)"
fi

echo "test-install: $pass passed in $(( $(date +%s) - start )) s"

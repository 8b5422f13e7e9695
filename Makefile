# frameio-c2c: the front door. `make demo` runs the main job, `make test` runs every test.
CARGO  ?= cargo
PYTHON ?= python3
TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR := $(TARGET_DIR)
export FIO_EMULATOR_BIN ?= $(TARGET_DIR)/debug/fio-emulator

.PHONY: all build release emulator setup test test-rust clean

all: build

## setup: install the system packages the tests and demo need (idempotent; uses apt-get and pip)
setup:
	bash scripts/setup.sh

## build: debug build of the library and the emulator
build:
	$(CARGO) build --workspace

## release: optimised library (.so/.a) in target/release
release:
	$(CARGO) build --release -p frameio-c2c

emulator:
	$(CARGO) build -p fio-emulator

## test: every test — Rust unit and integration tests, C tests, Python tests
test: setup emulator
	$(MAKE) test-rust
	$(MAKE) test-c
	$(MAKE) test-upload-c
	$(MAKE) test-abuse
	$(MAKE) test-python
	$(MAKE) test-install

test-rust: build
	$(CARGO) test --workspace

.PHONY: test-python

## test-python: the Python package (python/frameio_c2c, ctypes) against a fresh emulator and the debug library
test-python:
	$(CARGO) build -p frameio-c2c -p fio-emulator
	FRAMEIO_C2C_LIB=$(TARGET_DIR)/debug/libframeio_c2c.so $(PYTHON) -m pytest -q tests/python

clean:
	$(CARGO) clean

.PHONY: bench bench-quick

## bench: benchmarks against peers (curl, Python requests, a naive uploader); writes bench/RESULTS.md.
## Takes several minutes, needs root (apt-get, network namespace); not part of `make test`.
bench:
	bash bench/run.sh

## bench-quick: the same with smaller sizes and fewer repetitions
bench-quick:
	bash bench/run.sh --quick

.PHONY: demo test-upload test-upload-c

## demo: record a live test pattern with ffmpeg and upload it while it records (emulator, auto-approve);
## FILE=clip.mov replays a file at its own bitrate; FRAMEIO_CLIENT_ID/FRAMEIO_CLIENT_SECRET pair with Frame.io
demo:
	bash demo/run.sh

## test-upload: the upload engine's unit tests and its Rust tests against the emulator
test-upload: emulator
	$(CARGO) test -p frameio-c2c --lib upload::
	$(CARGO) test -p frameio-c2c --test upload_engine

## test-upload-c: the upload engine through the C API against the emulator (growing file, kill -9 + resume, faults)
test-upload-c: emulator release
	bash tests/c/test_upload.sh

.PHONY: header examples test-c

## header: regenerate include/frameio_c2c.h from src/ffi with cbindgen (a cargo test fails when it is stale)
header:
	FIO_UPDATE_HEADER=1 $(CARGO) test -p frameio-c2c --test header

## examples: the C examples in examples-c/build/{static,shared} (-Wall -Wextra -Werror)
examples:
	$(MAKE) -C examples-c TARGET_DIR=$(TARGET_DIR)

## test-c: C tests against a fresh emulator (plain, shared, ASan, valgrind) and a real-time upload of a 60 MB ffmpeg recording
test-c: emulator examples
	$(MAKE) -C tests/c TARGET_DIR=$(TARGET_DIR) run asan valgrind media

# ---- install, uninstall, docs, test-install, test-cli (packaging/, tools/fio, docs/, tests/install) ----
.PHONY: install uninstall install-fio docs test-install test-cli

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
INSTALL_ENV = CALLER_DIR=$(CURDIR) PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR) DESTDIR=$(DESTDIR) CARGO=$(CARGO)

## install: release library (.a, .so with SONAME), header, pkg-config and CMake package into PREFIX
##   (default /usr/local; also LIBDIR, INCLUDEDIR, DESTDIR; TARGET=<triple> for a cross build;
##   NO_BUILD=1 installs what `make release` built)
install:
	$(INSTALL_ENV) bash packaging/install.sh

## uninstall: remove what `make install` put into PREFIX (same variables)
uninstall:
	$(INSTALL_ENV) bash packaging/install.sh --uninstall

## install-fio: the `fio` command-line tool (release) into BINDIR
install-fio:
	$(CARGO) build --release -p fio-cli
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 $(TARGET_DIR)/release/fio $(DESTDIR)$(BINDIR)/fio

## docs: API reference from the header's doc comments (doxygen) in target/doc-c/html, plus the guide docs/guide.md
docs:
	@command -v doxygen >/dev/null || { echo "docs: doxygen is missing (apt-get install doxygen)"; exit 1; }
	mkdir -p $(TARGET_DIR)/doc-c
	( cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $(TARGET_DIR)/doc-c"; echo "WARN_LOGFILE = $(TARGET_DIR)/doc-c/warnings.log"; \
	  echo "PROJECT_NUMBER = $$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" ) | doxygen -
	@if [ -s $(TARGET_DIR)/doc-c/warnings.log ]; then echo "docs: doxygen warnings:"; cat $(TARGET_DIR)/doc-c/warnings.log; fi
	@echo "docs: open $(TARGET_DIR)/doc-c/html/index.html"

## test-install: `make install` into a temp prefix, then build and run a C program with pkg-config
##   (shared and static) and the C++ example with CMake against it (needs cmake, pkg-config, g++)
test-install: release emulator
	bash tests/install/run.sh

## test-cli: the `fio` tool's tests against a fresh emulator
test-cli: emulator
	$(CARGO) test -p fio-cli

# ---- issue 5: faults, bad input and secrets (tests/fault_matrix.rs, timeouts, tls, secrets, parsers_fuzz, tests/c/abuse) ----
.PHONY: test-faults test-abuse

## test-faults: the fault matrix (64 MiB real-time upload once per fault; table in target/fault-matrix.md),
##   timeouts, TLS, secrets and the parsers fuzz (FIO_FUZZ_SECS, default 8), then test-abuse
test-faults: emulator
	$(CARGO) build -p frameio-c2c
	$(CARGO) test -p frameio-c2c --test fault_matrix --test timeouts --test tls --test secrets --test parsers_fuzz -- --nocapture
	$(MAKE) test-abuse

## test-abuse: the C boundary under abuse (every export with NULLs, bad UTF-8, huge sizes, wrong order, double
##   cancel, free(NULL), 8 threads on one client): plain, shared, ASan+UBSan, TSan, valgrind
test-abuse: emulator
	$(CARGO) build -p frameio-c2c
	$(MAKE) -C tests/c/abuse TARGET_DIR=$(TARGET_DIR) run asan tsan valgrind

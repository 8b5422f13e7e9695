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
test: emulator
	$(MAKE) test-rust

test-rust: emulator
	$(CARGO) test --workspace

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

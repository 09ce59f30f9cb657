# The two set-up commands of the README, plus their helpers. Each reuses .venv if it is
# up to date with pyproject.toml, else (re)creates it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN ?= runs/demo

.PHONY: demo test venv bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

# The main job, end to end on the default corpus (Brown).
demo: $(STAMP)
	$(BIN)/kblm data fetch brown
	$(BIN)/kblm data vocab brown --out $(RUN)/vocab
	$(BIN)/kblm data stats brown --vocab $(RUN)/vocab --json $(RUN)/stats.json --plot $(RUN)/lengths.png

# The tests (CI runs exactly this).
test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline_throughput.py

clean:
	rm -rf $(VENV) runs

# The two set-up commands of the README, plus their helpers. Each reuses .venv if it is
# up to date with pyproject.toml, else (re)creates it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN ?= runs/demo
DEMO_MINUTES ?= 3

.PHONY: demo test test-android venv bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

# The main job, end to end on the default corpus (Brown). Rewrites $(RUN), its own output
# (marked by $(RUN)/.made-by-make-demo; any other $(RUN) is left alone). Presage's row is
# optional: skipped, with a line saying so, when Debian's presage is not installed.
demo: $(STAMP)
	@if [ -e $(RUN) ] && [ ! -e $(RUN)/.made-by-make-demo ]; then \
	  echo "make demo: $(RUN) exists and was not made by make demo; move it or pass RUN=another/dir" >&2; exit 1; fi
	rm -rf $(RUN)
	mkdir -p $(RUN) && touch $(RUN)/.made-by-make-demo
	$(BIN)/kblm data fetch brown
	$(BIN)/kblm data vocab brown --out $(RUN)/vocab
	$(BIN)/kblm data stats brown --vocab $(RUN)/vocab --json $(RUN)/stats.json --plot $(RUN)/lengths.png
	$(BIN)/kblm train --corpus brown --preset mobile --epochs 2 --max-minutes $(DEMO_MINUTES) --out $(RUN)/model
	$(BIN)/kblm evaluate $(RUN)/model --split test
	$(BIN)/kblm export $(RUN)/model --quantize dynamic_int8 --out $(RUN)/bundle
	$(BIN)/kblm inspect $(RUN)/bundle
	$(BIN)/kblm suggest $(RUN)/bundle "The jury said that the "
	$(BIN)/kblm suggest $(RUN)/bundle "He went back to the hou"
	$(BIN)/kblm suggest $(RUN)/bundle "It was a long day. "
	@if command -v text2ngram >/dev/null 2>&1; then \
	  echo "$(BIN)/kblm simulate $(RUN)/bundle --corpus brown --split test --limit 100 --presage-train brown"; \
	  $(BIN)/kblm simulate $(RUN)/bundle --corpus brown --split test --limit 100 --presage-train brown; \
	else \
	  echo "Presage row skipped: Debian's presage is not installed (apt-get install presage to compare with it)"; \
	  echo "$(BIN)/kblm simulate $(RUN)/bundle --corpus brown --split test --limit 100"; \
	  $(BIN)/kblm simulate $(RUN)/bundle --corpus brown --split test --limit 100; \
	fi

# The tests (CI runs exactly this).
test: $(STAMP)
	$(BIN)/python -m pytest

# The Android app's Java core alone (javac + JUnit 5 against golden traces of the engine).
test-android: $(STAMP)
	$(BIN)/python -m pytest tests/android

# Every figure the README quotes: about ten hours on a 2-core CPU, summed from the parts'
# own run times (the three training runs alone take two); never timed end to end.
bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/pipeline_throughput.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/cells.py
	$(BIN)/python benchmarks/export_latency.py
	$(BIN)/python benchmarks/keystroke_savings.py
	$(BIN)/python benchmarks/lexicon_ceiling.py
	$(BIN)/python benchmarks/lexicon_sizes.py
	$(BIN)/python benchmarks/bundle_load.py
	$(BIN)/python benchmarks/engine_long_field.py
	$(BIN)/python benchmarks/personalization.py
	$(BIN)/python benchmarks/personalization.py --base brown-bengio-wide --no-cost
	$(BIN)/python benchmarks/personalization_sweep.py
	$(BIN)/python benchmarks/personalization_small.py
	$(BIN)/python benchmarks/cpu_kernels.py
	$(BIN)/python benchmarks/personalization_sizes.py
	$(BIN)/python benchmarks/personalization_ondevice.py
	$(BIN)/python benchmarks/cluster_personalize.py
	$(BIN)/python benchmarks/readme_tables.py

clean:
	rm -rf $(VENV) runs

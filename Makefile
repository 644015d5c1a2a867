# Two commands on a fresh machine: `make run` (the main job: the streaming service on the bundled
# sample clip with an embedded Ray, for DURATION seconds or until Ctrl-C) and `make test` (the suite).
# Both create .venv and install fervid with its CPU backend, every optional extra (windows, training,
# benchmarks) and the test tools on first use; a plain `pip install fervid[cpu]` is the service alone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DURATION ?= 30
STAMP := $(VENV)/.installed

.PHONY: run test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,gui,training,analysis,bench,test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/fervid up --duration $(DURATION)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache

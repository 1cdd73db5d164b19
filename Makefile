# Two commands on a fresh machine: `make demo` and `make test`. Each sets up .venv on
# first use. torch is installed as TORCH (default: the 2.13.0 CPU build these machines
# carry) only when the venv has no torch yet, so no CUDA packages are pulled on a machine
# without a GPU. To use a CUDA build: `make demo TORCH="torch==2.13.0 --index-url ..."`,
# or install into an environment that already has torch with `pip install -e .`.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/sandbox demo

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto --dist loadgroup -q

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs

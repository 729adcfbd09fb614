# mmssl_ext: the two commands of the README, and helpers.
#   make demo   set-up if needed, pre-train on the embedded digits, print kNN top-1
#   make test   set-up if needed, run the test suite
PY := .venv/bin/python

.PHONY: setup demo test clean-venv

setup:
	@bash tools/setup/setup.sh

demo: setup
	@$(PY) tools/demo.py

test: setup
	@$(PY) -m pytest -q --durations=15 tests

clean-venv:
	rm -rf .venv

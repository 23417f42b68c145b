# Gridlink: `make run` starts the server on the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test lint bench messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	sh tests/browser/setup.sh

run: install
	$(BIN)/gridlink migrate
	$(BIN)/gridlink serve

test: install-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: install-test
	$(BIN)/python bench/merge_quality.py
	$(BIN)/python bench/intake.py

# Re-extract and compile the gettext catalogs after changing user-facing texts.
messages: install-test
	$(BIN)/pybabel extract -F babel.cfg -k _ -k t -o portal/locale/messages.pot .
	$(BIN)/pybabel update -i portal/locale/messages.pot -d portal/locale -l zh_CN
	$(BIN)/pybabel update -i portal/locale/messages.pot -d portal/locale -l en
	$(BIN)/pybabel compile -d portal/locale

# Two commands on a fresh machine (Python 3.11+, git, make): `make demo` and `make test`.
# Before a deploy, `make preview STACK=<stack>` checks Pulumi.<stack>.yaml offline (infra/preview.py).
PYTHON ?= python3
VENV := .venv
STACK ?= dev
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-lambda.txt requirements-dev.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test bench venv preview

venv: $(STAMP)

# The pinned requirements, then the operator's command line .venv/bin/sendgrid-events (pyproject.toml,
# an editable install: no download, setuptools is pinned in requirements-dev.txt).
$(STAMP): requirements.txt requirements-lambda.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(VENV)/bin/python -m devstack demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest

preview: $(STAMP)
	$(VENV)/bin/python -m infra.preview --stack $(STACK)

bench: $(STAMP)
	$(VENV)/bin/python -m bench

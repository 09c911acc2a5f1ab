# Two commands on a fresh machine (Python 3.11+, git, make): `make demo` and `make test`.
# Before a deploy, `make preview STACK=<stack>` checks Pulumi.<stack>.yaml offline (infra/preview.py).
PYTHON ?= python3
VENV := .venv
STACK ?= dev
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-lambda.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: demo test bench venv preview

venv: $(STAMP)

$(STAMP): requirements.txt requirements-lambda.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
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

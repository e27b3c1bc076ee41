# Set-up, demo and tests. KTAN_ENV_CACHE=DIR keeps the ~5.5 GB environment outside the clone.
PYTHON := .venv/bin/python

.PHONY: env demo test
env:
	@tools/setup_env.sh

demo: env
	$(PYTHON) tools/run_demo.py

test: env
	$(PYTHON) -m pytest -q

# Set-up, demo and tests. KTAN_ENV_CACHE=DIR keeps the ~5.5 GB environment outside the clone.
# Not PYTHON: that one picks the interpreter tools/setup_env.sh builds the environment from.
VENV_PYTHON := .venv/bin/python

.PHONY: env demo test
env:
	@tools/setup_env.sh

demo: env
	$(VENV_PYTHON) tools/run_demo.py

test: env
	$(VENV_PYTHON) -m pytest -q

# MMRazor 1.0.0, the benchmarks' peer, into build/bench-packages (never into .venv).
.PHONY: bench-env
bench-env: env
	@test -d build/bench-packages/mmrazor || $(VENV_PYTHON) -m pip install --no-deps \
		--target build/bench-packages -r requirements/benchmarks.txt

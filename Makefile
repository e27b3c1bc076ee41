# Set-up, demo and tests. KTAN_ENV_CACHE=DIR keeps the ~5.5 GB environment outside the clone.
PYTHON := .venv/bin/python

.PHONY: env demo test
env:
	@tools/setup_env.sh

demo: env
	$(PYTHON) tools/run_demo.py

test: env
	$(PYTHON) -m pytest -q

# MMRazor 1.0.0, the benchmarks' peer, into build/bench-packages (never into .venv).
.PHONY: bench-env
bench-env: env
	@test -d build/bench-packages/mmrazor || $(PYTHON) -m pip install --no-deps \
		--target build/bench-packages -r requirements/benchmarks.txt

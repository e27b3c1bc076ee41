"""The benchmark and demo harness (tools/benchmark_*.py, tools/run_demo.py): a top-level
package of the source checkout, not part of the installed ktan_det."""

# nlseg: two-command setup. `make demo` and `make test` install into .venv when needed.
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
export PYTHON TORCH_SPEC

.PHONY: install lint test test-fast demo data camvid-table wbc-table clean help

help:
	@echo "make install   create .venv and install torch, mmcv (with ops), mmengine, mmseg, nlseg"
	@echo "make lint      install if needed, then ruff (ruff.toml) over the repository"
	@echo "make test      install if needed, then run the whole test suite (slow tests included)"
	@echo "make test-fast the suite without tests marked slow"
	@echo "make demo      install if needed, make the demo data, train every demo head over"
	@echo "               5 seeds (about 15 minutes on 2 cores); QUICK=1 a pipeline check,"
	@echo "               FULL=1 the longer schedule, ARGS='...' more tools/run_demo.py options"
	@echo "make camvid-table  every head and its mmseg anchors on real CamVid, 2 seeds (CPU"
	@echo "               scale, about 100 minutes on 2 cores; data/camvid, docs/datasets.md);"
	@echo "               ARGS='--scale paper' the R-50-D8 configs on a GPU machine"
	@echo "make wbc-table the NLTV paper's WBC Table 1 at CPU scale, 2 seeds (data/wbc)"

install:
	@bash scripts/install.sh

lint: install
	$(PY) -m ruff check .

test: install
	$(PY) -m pytest tests

test-fast: install
	$(PY) -m pytest tests -m "not slow"

demo: install
	$(PY) tools/run_demo.py $(if $(QUICK),--quick,) $(if $(FULL),--full,) $(ARGS)

camvid-table: install
	$(PY) tools/analysis/real_data_table.py camvid $(ARGS)

wbc-table: install
	$(PY) tools/analysis/real_data_table.py wbc $(ARGS)

data: install
	$(PY) tools/make_demo_data.py

clean:
	rm -rf $(VENV) work_dirs .pytest_cache

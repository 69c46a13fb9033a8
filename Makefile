# onnx-udc: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BUILD  := runtime/build
LIB    := onnx_udc/_lib/libonnx_udc.so
JOBS   ?= 2

.PHONY: all setup runtime wheel demo test test-all bench bench-load zoo fuzz fuzz-build clean

all: runtime

setup: $(VENV)/.installed

$(VENV)/.system:
	bash tools/setup-system.sh
	@mkdir -p $(VENV) && touch $@

$(VENV)/.installed: pyproject.toml requirements/constraints.txt | $(VENV)/.system
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[test]'
	touch $@

# The custom-op library; CMake finds onnxruntime's headers or fetches Debian's
# libonnxruntime-dev into the build folder (see runtime/README.md).
runtime: setup
	cmake -S runtime -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(abspath $(PY))
	cmake --build $(BUILD) -j $(JOBS)
	@mkdir -p onnx_udc/_lib
	cp $(BUILD)/libonnx_udc.so $(LIB)

# The distributable wheel in dist/: `pip wheel .` (scikit-build-core builds runtime/,
# CPU-only, into onnx_udc/_lib/; see pyproject.toml), then auditwheel gives it the
# most compatible manylinux tag its symbol versions allow.
wheel: setup
	rm -rf dist
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PY) -m pip wheel -q --no-deps -w dist/raw .
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m auditwheel repair -w dist dist/raw/*.whl
	rm -rf dist/raw

demo: runtime
	$(PY) tools/demo.py

test: runtime
	ctest --test-dir $(BUILD) --output-on-failure
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PY) -m pytest -q

# Slow benchmarks too (not run by CI).
test-all: runtime
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PY) -m pytest -q -m ''

# Loader benchmark: session creation and latency of both load paths, as ratios.
bench-load: runtime
	$(PY) tools/bench_load.py --markdown docs/results/bench_load.md

# The evaluation zoo needs torch and the model packages (several GB of downloads).
zoo: runtime
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[test,zoo,plot]'

# Full side-by-side benchmark on every zoo model: rewrites docs/results/RESULTS.md and the plots.
bench: zoo
	$(PY) -m models.bench --pq --out docs/results

# Fuzzing (docs/fuzzing.md): clang 19 with libFuzzer from the Debian mirror, a build with every
# runtime source instrumented (ASan + UBSan), then every target for FUZZ_SECONDS in all.
FUZZ_BUILD   ?= runtime/build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_JOBS    ?= 1
fuzz-build: setup
	bash tools/setup-system.sh fuzz
	CXX=clang++-19 cmake -S runtime -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDC_BUILD_FUZZER=ON \
	  -DUDC_BUILD_ORT_OPS=OFF -DUDC_BUILD_TESTS=OFF -DUDC_CUDA=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

fuzz: fuzz-build
	$(PY) tools/fuzz.py --build $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS) --jobs $(FUZZ_JOBS)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD) runtime/build-wheel onnx_udc/_lib dist

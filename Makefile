# hiddenlab: a Go research framework for hidden-feature Transformers on libtorch.
#
#   make run RECIPE=x.yaml     train and evaluate recipes/x.yaml (ARGS="key=value ...", RESUME=<run dir>,
#                              NPROC=2: data-parallel processes over loopback)
#   make sweep EXP=x.yaml      run experiments/x.yaml's grid and tabulate it (ARGS="-workers 2")
#   make test                  set up, build the shim, run every test (CPU)
#   make bench                 benchmarks, Go side by side with PyTorch eager
#   make shim                  build the CPU shim into build/cpu
#   make shim-cuda             build the shim against a CUDA PyTorch's libtorch into build/cuda
#   make install PREFIX=/opt/x install bin/hiddenlab and the shim: $(PREFIX)/bin/hiddenlab,
#                              $(PREFIX)/lib/hiddenlab/libhlshim.so.1 (default PREFIX=/usr/local)
#   make setup                 install the Debian packages (idempotent; needs root)

SHELL := /bin/bash
GO ?= go
BUILD ?= build/cpu
# Another libtorch: make shim BUILD=build/other TORCH_DIR=<prefix>/share/cmake/Torch
TORCH_DIR ?=
PYTHON_TORCH ?= /usr/bin/python3
THREADS ?= 1

PACKAGES := libtorch-dev libopenblas0-openmp libgloo-dev cmake ninja-build g++ python3-torch chromium
SHIM := $(BUILD)/libhlshim.so
SHIM_SOURCES := CMakeLists.txt $(wildcard cc/*.cc cc/*.h cc/*.map cc/include/*.h)

.PHONY: setup shim shim-cuda test bench clean capi-gen capi-noescape run sweep bin gpu-check-prep install

BIN := bin/hiddenlab
GO_SOURCES := $(shell find . -name '*.go' -not -path './build/*' 2>/dev/null) go.mod go.sum
# The version the binaries report (main.version).
VERSION = $(shell git describe --always --dirty --tags 2>/dev/null || echo dev)
GO_LDFLAGS := -X main.version=$(VERSION)

# The binary does not link the shim: it loads libhlshim.so.1 at start-up from
# $HIDDENLAB_SHIM_DIR if set, else from next to itself, <exe dir>/../lib/hiddenlab,
# then this tree's build/cpu (see torch/internal/capi/load.go).
$(BIN): $(SHIM) $(GO_SOURCES) $(wildcard torch/internal/capi/*.c torch/internal/capi/*.h)
	$(GO) build -ldflags "$(GO_LDFLAGS)" -o $(BIN) ./cmd/hiddenlab

bin: setup shim $(BIN)

# Installs the binary and the shim ($(BUILD)'s: make install BUILD=build/cuda
# installs the CUDA one) where the binary finds it; DESTDIR stages the files.
PREFIX ?= /usr/local
install: bin
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/lib/hiddenlab"
	install -m 0755 $(BIN) "$(DESTDIR)$(PREFIX)/bin/hiddenlab"
	real=$$(readlink -f $(BUILD)/libhlshim.so.1) && \
	install -m 0755 "$$real" "$(DESTDIR)$(PREFIX)/lib/hiddenlab/" && \
	if [ "$$(basename "$$real")" != libhlshim.so.1 ]; then ln -sfn "$$(basename "$$real")" "$(DESTDIR)$(PREFIX)/lib/hiddenlab/libhlshim.so.1"; fi && \
	ln -sfn libhlshim.so.1 "$(DESTDIR)$(PREFIX)/lib/hiddenlab/libhlshim.so"

NPROC ?= 1
run: bin
	@if [ -n "$(RESUME)" ]; then ./$(BIN) run -nproc $(NPROC) -resume "$(RESUME)" $(ARGS); \
	elif [ -n "$(RECIPE)" ]; then ./$(BIN) run -nproc $(NPROC) "$(RECIPE)" $(ARGS); \
	else echo "make run: set RECIPE=<recipe.yaml> (recipes/: $$(ls recipes | tr '\n' ' ')) or RESUME=<run dir>"; exit 2; fi

sweep: bin
	@if [ -z "$(EXP)" ]; then echo "make sweep: set EXP=<experiment.yaml> (experiments/: $$(ls experiments | tr '\n' ' '))"; exit 2; fi
	./$(BIN) sweep "$(EXP)" $(ARGS)

setup:
	@missing=""; \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "setup: all packages present ($(PACKAGES))"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "setup: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q $$missing >/tmp/hiddenlab-apt.log 2>&1 || \
	  { apt-get update -q >>/tmp/hiddenlab-apt.log 2>&1 && apt-get install -y -q $$missing >>/tmp/hiddenlab-apt.log 2>&1; } || \
	  { tail -20 /tmp/hiddenlab-apt.log; echo "setup: apt-get failed (log: /tmp/hiddenlab-apt.log)"; exit 1; }; \
	else \
	  echo "setup: missing packages:$$missing"; \
	  echo "setup: run as root:  sudo apt-get update && sudo apt-get install -y$$missing"; \
	  exit 1; \
	fi
	@blas=$$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null); \
	case "$$blas" in *openblas*) ;; *) echo "setup: warning: libblas.so.3 is $$blas, not OpenBLAS (matmul ~30x slower); see update-alternatives --config libblas.so.3-x86_64-linux-gnu";; esac

$(SHIM): $(SHIM_SOURCES)
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(if $(TORCH_DIR),-DTorch_DIR=$(TORCH_DIR)) >/dev/null
	ninja -C $(BUILD)

shim: $(SHIM)

# The CUDA variant: same header, same soname, built against the libtorch of an
# installed CUDA PyTorch (nvcc must be on PATH). Select it at run time with
# HIDDENLAB_SHIM_DIR=build/cuda (same binary; the shim's RUNPATH finds that
# PyTorch's libtorch).
shim-cuda:
	TORCH_CUDA_ARCH_LIST=$${TORCH_CUDA_ARCH_LIST:-$$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1)} \
	$(MAKE) shim BUILD=build/cuda TORCH_DIR=$$($(PYTHON_TORCH) -c 'import torch,os;print(os.path.join(torch.utils.cmake_prefix_path,"Torch"))')

# Builds what scripts/gpu-check.sh carries to a GPU machine without Go:
# gpu.tar.xz with the binaries and the test binaries of the packages that
# exercise the device (stripped and compressed to fit the device tool's
# 64 MiB working-tree limit), each with the directory it runs in.
GPU_TEST_PKGS := torch torch/internal/capi torch/nn torch/optim torch/checkpoint runner models/codebook models/mohd models/hrpo
gpu-check-prep: setup shim
	rm -rf gpu gpu.tar.xz && mkdir -p gpu/tests
	$(GO) build -ldflags="-s -w $(GO_LDFLAGS)" -o gpu/hiddenlab ./cmd/hiddenlab
	$(GO) build -ldflags="-s -w $(GO_LDFLAGS)" -o gpu/hlbench ./cmd/hlbench
	@for d in $(GPU_TEST_PKGS); do n=$$(echo $$d | tr / _); \
	  $(GO) test -c -ldflags="-s -w" -o gpu/tests/$$n.test ./$$d && echo $$d > gpu/tests/$$n.dir || exit 1; done
	tar -cJf gpu.tar.xz gpu
	@ls -la gpu.tar.xz
	@echo "gpu.tar.xz is ready: carry it (device carry: [gpu.tar.xz]) and run scripts/gpu-check.sh there"

test: setup shim
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 ./...

bench: setup shim
	$(GO) run ./cmd/hlbench -threads $(THREADS) -python $(PYTHON_TORCH)

clean:
	rm -rf build bin

# Regenerates torch/internal/capi/trampolines.c and noescape.go from the header
# (after adding or changing an entry point); a test fails while they are stale.
capi-gen:
	$(GO) run ./torch/internal/capi/mkcapi

capi-noescape: capi-gen

# make oracles: regenerate data/tokenize/testdata/hf's golden files with Hugging Face's own tokenizers
# (scripts/oracles/README.md). npm installs the pinned packages into $(ORACLE_NODE) (ignored); the
# test texts are re-extracted only when ORACLE_CORPUS names a folder laid out as shared/data is.
.PHONY: oracles
ORACLE_NODE ?= build/oracles
ORACLE_CORPUS ?=
oracles:
	rm -rf $(ORACLE_NODE) && mkdir -p $(ORACLE_NODE)
	cp scripts/oracles/package.json scripts/oracles/package-lock.json $(ORACLE_NODE)/
	cd $(ORACLE_NODE) && npm ci --no-audit --no-fund
	$(GO) test -count=1 -run TestHFBPEFixture ./data/tokenize -args -update-hf
	node scripts/oracles/tokenize_goldens.mjs --modules $(ORACLE_NODE) --out data/tokenize/testdata/hf $(if $(ORACLE_CORPUS),--corpus $(ORACLE_CORPUS))
	$(GO) test -count=1 -run 'HF|Example' ./data/tokenize

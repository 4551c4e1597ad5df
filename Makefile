# The two commands of the README. Both install what is missing first (scripts/bootstrap.sh).
#   make demo  - configure, build, run the default end-to-end job on the built-in dataset
#   make test  - configure, build, run the whole test suite (host; the LibTorch-free tests under
#                ASan + UBSan; every fuzz target briefly; aarch64 under qemu)
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
AGENT_FUZZ_SECONDS ?= 30

.PHONY: all bootstrap configure build test test-host test-sanitize test-fuzz test-aarch64 demo format check-format clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

# CI builds no benchmarks (they are run by hand; see bench/).
CMAKE_EXTRA := $(if $(filter true,$(CI)),-DMIXNAS_BUILD_BENCH=OFF,)

configure: bootstrap
	cmake --preset default $(CMAKE_EXTRA)

build: configure
	cmake --build --preset default -j $(JOBS)

test-host: build
	ctest --preset default -j $(JOBS) --output-on-failure

# The LibTorch-free targets (runtime, agent, their tests) under AddressSanitizer and
# UndefinedBehaviorSanitizer; the load test (label "load") is left out: ASan's quarantine makes its
# resident-set bound meaningless. The LibTorch targets stay out for CI time (preset "asan" has them).
test-sanitize: bootstrap
	cmake --preset asan-rt
	cmake --build --preset asan-rt -j $(JOBS)
	ctest --preset asan-rt -j $(JOBS)

test-fuzz: bootstrap
	MIXNAS_FUZZ_SESSION=OFF AGENT_FUZZ_SECONDS=$(AGENT_FUZZ_SECONDS) bash fuzz/run.sh $(FUZZ_SECONDS)

test-aarch64: bootstrap
	cmake --preset aarch64
	cmake --build --preset aarch64 -j $(JOBS)
	ctest --preset aarch64 -j $(JOBS) --output-on-failure

test: check-format test-host test-sanitize test-fuzz test-aarch64

demo: build
	@bash scripts/demo.sh

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

# Fails, naming each file and line, where a source differs from what `make format` writes.
check-format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf build build-release build-asan build-asan-rt build-aarch64 build-aarch64-dotprod build-fuzz \
	  build-fuzz-seeds

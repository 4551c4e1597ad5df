# The two commands of the README. Both install what is missing first (scripts/bootstrap.sh).
#   make demo  - configure, build, run the default end-to-end job on the built-in dataset
#   make test  - configure, build, run the whole test suite (host, then aarch64 under qemu)
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60

.PHONY: all bootstrap configure build test test-host test-fuzz test-aarch64 demo format check-format clean

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

test-fuzz: bootstrap
	MIXNAS_FUZZ_SESSION=OFF bash fuzz/run.sh $(FUZZ_SECONDS)

test-aarch64: bootstrap
	cmake --preset aarch64
	cmake --build --preset aarch64 -j $(JOBS)
	ctest --preset aarch64 -j $(JOBS) --output-on-failure

test: check-format test-host test-fuzz test-aarch64

demo: build
	@bash scripts/demo.sh

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

# Fails, naming each file and line, where a source differs from what `make format` writes.
check-format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf build build-release build-asan build-aarch64 build-aarch64-dotprod build-fuzz

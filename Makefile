# BoxLite: the two commands of the README's Quick start, plus the benchmarks.
.PHONY: all setup demo test bench unit clean

all: setup

setup:
	@scripts/setup.sh

demo: setup
	@scripts/demo.sh

test: setup
	@scripts/test.sh

bench: setup
	@scripts/bench.sh

unit:
	@ctest --test-dir build -L unit --output-on-failure -j2

clean:
	rm -rf build

# The two commands of the README. Each installs what it needs first.
.PHONY: run test deps bench

deps:
	@scripts/install-deps.sh

# Build (release) and launch the workbench on the bundled demo model.
run: deps
	swift build -c release --product stsq-tui
	.build/release/stsq-tui

# The whole test suite (debug build), end-to-end tests in tmux included, then the Python tests of
# the collector package (tools/stsq_collect) against the binary just built, in tools/.venv.
test: deps
	scripts/python-env.sh
	swift build --build-tests
	swift test
	cd tools/stsq_collect && STSQ_TUI=$(CURDIR)/.build/debug/stsq-tui ../.venv/bin/python -m pytest -q tests

# Matrix-product throughput (release build).
bench: deps
	swift build -c release --product stsq-tui
	.build/release/stsq-tui bench gemm

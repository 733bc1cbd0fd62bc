# The two commands of the README. Each installs what it needs first.
FIXTURE := Tests/Fixtures/stdit3-layout.safetensors

.PHONY: run test deps bench

deps:
	@scripts/install-deps.sh

# Build (release) and launch the workbench on the bundled model. Until the trained demo model
# lands, it opens the bundled STDiT3-layout fixture checkpoint (random weights, real key layout).
run: deps
	swift build -c release --product stsq-tui
	.build/release/stsq-tui $(FIXTURE)

# The whole test suite (debug build), end-to-end tests in tmux included.
test: deps
	swift build --build-tests
	swift test

# Matrix-product throughput (release build).
bench: deps
	swift build -c release --product stsq-tui
	.build/release/stsq-tui bench gemm

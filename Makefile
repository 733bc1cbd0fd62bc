# The two commands of the README. Each installs what it needs first.
FIXTURE := Tests/Fixtures/stdit3-layout.safetensors

.PHONY: run test deps bench

deps:
	@scripts/install-deps.sh

# Build (release) and launch on the bundled model. Until the demo model and the TUI land, this
# lists the tensors of the bundled STDiT3-layout fixture checkpoint.
run: deps
	swift build -c release --product stsq-tui
	.build/release/stsq-tui inspect $(FIXTURE)

# The whole test suite (debug build).
test: deps
	swift build --build-tests
	swift test

# Matrix-product throughput (release build).
bench: deps
	swift build -c release --product stsq-tui
	.build/release/stsq-tui bench gemm

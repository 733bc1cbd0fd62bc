// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "stsq-tui",
    products: [
        .executable(name: "stsq-tui", targets: ["stsq-tui"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C shims: oneDNN (Debian libdnnl-dev, no pkg-config file) and ncursesw.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .systemLibrary(name: "CNCursesW", path: "Sources/CNCursesW", pkgConfig: "ncursesw",
                       providers: [.apt(["libncurses-dev"])]),

        // Tensor, dtypes, safetensors, GEMM backends (fp32, int8) on oneDNN.
        .target(name: "Tensors", dependencies: ["CDNNL"]),

        // Model configs, layer catalog; forward passes and samplers as they land.
        .target(name: "VideoDiT", dependencies: ["Tensors"]),
        // Quantizers, statistics, SmoothQuant, plans.
        .target(name: "Quantization", dependencies: ["Tensors", "VideoDiT"]),
        // The bundled demo checkpoint (a SwiftPM resource).
        .target(name: "DemoModel", resources: [.copy("Resources/demo")]),
        // Metrics: prompt fidelity on the demo scene world (video metrics and ablations to come).
        .target(name: "Evaluation", dependencies: ["Tensors", "VideoDiT", "Quantization"]),
        // The app's state, actions and jobs; no terminal code.
        .target(name: "Workbench", dependencies: ["Tensors", "VideoDiT", "Quantization", "Evaluation"]),
        // ncurses backend (only Backend/ calls ncurses), cell grid, views, themes.
        .target(name: "TerminalUI", dependencies: ["CNCursesW", "Workbench", "Quantization", "VideoDiT", "Tensors"],
                resources: [.copy("Resources/themes")]),

        // Argument parsing only.
        .executableTarget(
            name: "stsq-tui",
            dependencies: [
                "Tensors", "VideoDiT", "Quantization", "Evaluation", "TerminalUI", "Workbench", "DemoModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Fuzz targets for every parser of user files, and their driver (libFuzzer when built by
        // scripts/fuzz.sh, a seeded mutation fuzzer otherwise).
        .target(name: "FuzzTargets", dependencies: ["Tensors", "VideoDiT", "Quantization", "TerminalUI"]),
        .executableTarget(name: "stsq-fuzz", dependencies: ["FuzzTargets"]),

        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets"]),
        .testTarget(name: "VideoDiTTests", dependencies: ["VideoDiT", "Tensors", "DemoModel", "Evaluation"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Tensors"]),
        .testTarget(name: "QuantizationTests", dependencies: ["Quantization", "VideoDiT", "Tensors", "DemoModel"]),
        .testTarget(name: "WorkbenchTests", dependencies: ["Workbench", "VideoDiT", "Quantization", "Tensors", "DemoModel"]),
        .testTarget(name: "TerminalUITests", dependencies: ["TerminalUI", "Workbench", "Quantization", "Tensors", "VideoDiT"],
                    exclude: ["Snapshots"]),
        // Drives the built binary; the dependency makes `swift build --build-tests` build it.
        .testTarget(name: "CLITests", dependencies: ["stsq-tui", "Tensors"]),
        .testTarget(name: "EndToEndTests", dependencies: ["stsq-tui"]),
    ],
    swiftLanguageModes: [.v6]
)

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

        // Argument parsing only.
        .executableTarget(
            name: "stsq-tui",
            dependencies: [
                "Tensors",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        // Drives the built binary; the dependency makes `swift build --build-tests` build it.
        .testTarget(name: "CLITests", dependencies: ["stsq-tui"]),
    ],
    swiftLanguageModes: [.v6]
)

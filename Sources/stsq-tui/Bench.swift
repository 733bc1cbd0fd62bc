import ArgumentParser
import Tensors
import VideoDiT

/// `stsq-tui bench …`: throughput figures, meant for release builds.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure performance (build with -c release for meaningful figures).",
        subcommands: [BenchGEMM.self, BenchForward.self, BenchQuantize.self, BenchWorkbench.self])
}

struct BenchGEMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "fp32 and int8 (u8×s8, per-channel scales, zero point) matrix products through oneDNN.")

    @Flag(help: "Print a JSON array instead of a table.")
    var json = false

    @Option(help: "Seconds of timed runs per shape and precision (after warm-up).")
    var seconds: Double = 0.5

    func run() throws {
        var results: [GEMMBenchmarkResult] = []
        for shape in GEMMBenchmark.standardShapes {
            results += try GEMMBenchmark.run(m: shape.m, k: shape.k, n: shape.n, minSeconds: seconds)
        }
        if json {
            let array = JSONValue.array(results.map { r in
                .object([
                    ("m", .int(r.m)), ("k", .int(r.k)), ("n", .int(r.n)),
                    ("precision", .string(r.precision.rawValue)),
                    ("method", r.method.map { .string($0.rawValue) } ?? .null),
                    ("from_f32", .bool(r.fromFloat)), ("exact", .bool(r.exact)),
                    ("gops_median", .number(formatFixed(r.gopsMedian, decimals: 1))),
                    ("impl", .string(r.implementation)),
                ])
            })
            print(JSONValue.object(BenchEnvironment.json(load: 0) + [("results", array)]).serialized(pretty: true))
        } else {
            let rows = results.map { r in
                ["\(r.m)", "\(r.k)", "\(r.n)", r.label + (r.exact ? "" : " (inexact here)"), formatFixed(r.gopsMedian, decimals: 1),
                 formatFixed(r.medianSeconds * 1e3, decimals: 3), "\(r.runs)", r.implementation]
            }
            BenchEnvironment.lines(load: 0).forEach { print($0) }
            print("Matrix products [M,K]·[K,N] through oneDNN; GFLOP/s (fp32) or GOP/s (int8, useful operations), median after warm-up")
            for line in formatTable(header: ["M", "K", "N", "precision", "G(FL)OP/s", "ms", "runs", "impl"],
                                    rows: rows, rightAligned: [0, 1, 2, 4, 5, 6]) {
                print(line)
            }
        }
    }
}

struct BenchForward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "One STDiT3 forward (CFG batch of 2) at the demo size and at the XL width, random weights.")

    @Option(help: "Seconds of timed runs per case (after warm-up).")
    var seconds: Double = 2
    @OptionGroup var competing: CompetingLoadOption

    func run() throws {
        BenchEnvironment.lines(load: competing.load).forEach { print($0) }
        print("STDiT3 forward, float32, CFG batch 2 (median after warm-up)")
        var rows: [[String]] = []
        try competing.during {
            for benchCase in try ForwardBenchmark.standardCases() {
                let r = try ForwardBenchmark.run(benchCase, minSeconds: seconds)
                rows.append([r.name, formatFixed(r.medianMilliseconds, decimals: 2), formatFixed(r.gflops, decimals: 1),
                             formatFixed(100 * r.linearShare, decimals: 0) + "%", "\(r.runs)"])
            }
        }
        for line in formatTable(header: ["case", "ms", "GFLOP/s", "in block linears", "runs"], rows: rows,
                                rightAligned: [1, 2, 3, 4]) {
            print(line)
        }
    }
}

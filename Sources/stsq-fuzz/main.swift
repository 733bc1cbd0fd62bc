import Foundation
import FuzzTargets

// stsq-fuzz TARGET [options] [CORPUS_DIR…]
//
// Built by scripts/fuzz.sh with -sanitize=fuzzer, libFuzzer's driver is linked in and this hands
// it the target (options are libFuzzer's: -max_total_time=, -runs=, -rss_limit_mb=, …). In a plain
// build it runs the seeded mutation fuzzer: --runs N, --seconds S, --seed K. `calibration-index
// --print-seed` prints the index the cache writes for the target's fixed statistics.

typealias FuzzerCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
typealias RunDriver = @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>, FuzzerCallback) -> Int32

nonisolated(unsafe) var activeTarget = FuzzTarget.safetensors
nonisolated(unsafe) var activeScratch: FuzzScratch? = nil
/// The input being run, saved by the signal handler if the process dies on it.
nonisolated(unsafe) var currentInput: UnsafeMutableRawBufferPointer = .allocate(byteCount: 1 << 17, alignment: 8)
nonisolated(unsafe) var currentLength = 0
nonisolated(unsafe) var crashPath: [CChar] = []

func usage() -> Never {
    FileHandle.standardError.write(Data("usage: stsq-fuzz {\(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|"))} [--runs N] [--seconds S] [--seed K] [CORPUS_DIR…]\n".utf8))
    exit(2)
}

var arguments = CommandLine.arguments
guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments[1]) else { usage() }
activeTarget = target
activeScratch = try FuzzScratch()

if arguments.count == 3 && arguments[2] == "--print-seed" {
    // The index the cache writes for the fixed statistics (the calibration-index seed).
    FileHandle.standardOutput.write(Data(activeScratch!.seedIndex))
    exit(0)
}

if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "LLVMFuzzerRunDriver") {
    // libFuzzer build: its own flags and corpus folders, minus the target name.
    arguments.remove(at: 1)
    var argc = Int32(arguments.count)
    var cStrings: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    let status = cStrings.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
        let driver = unsafeBitCast(symbol, to: RunDriver.self)
        return driver(&argc, &argv) { data, size in
            activeTarget.run(UnsafeRawBufferPointer(start: data, count: size), scratch: activeScratch!)
            return 0
        }
    }
    exit(status)
}

// Plain build: the seeded mutation fuzzer.
var runs = 100_000, seconds = Double.infinity, seed: UInt64 = 1
var folders: [String] = []
var i = 2
while i < arguments.count {
    switch arguments[i] {
    case "--runs": i += 1; runs = i < arguments.count ? Int(arguments[i]) ?? runs : runs
    case "--seconds": i += 1; seconds = i < arguments.count ? Double(arguments[i]) ?? seconds : seconds
    case "--seed": i += 1; seed = i < arguments.count ? UInt64(arguments[i]) ?? seed : seed
    case let folder: folders.append(folder)
    }
    i += 1
}
var corpus: [[UInt8]] = []
for folder in folders {
    for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() {
        if let data = FileManager.default.contents(atPath: folder + "/" + name) { corpus.append([UInt8](data)) }
    }
}
if target == .calibrationIndex { corpus.append(activeScratch!.seedIndex) }

crashPath = Array("crash-\(target.rawValue)-\(getpid())".utf8CString)
for signalNumber in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
    signal(signalNumber) { number in
        let fd = open(crashPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd >= 0 { _ = write(fd, currentInput.baseAddress, currentLength); close(fd) }
        signal(number, SIG_DFL)
        raise(number)
    }
}

var fuzzer = MutationFuzzer(target: target, corpus: corpus, seed: seed)
fuzzer.maxLength = currentInput.count
let report = fuzzer.run(executions: runs, seconds: seconds, scratch: activeScratch!) { input in
    currentLength = min(input.count, currentInput.count)
    input.withUnsafeBytes { currentInput.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(currentLength))) }
}
print(String(format: "%@: %d executions in %.1f s (%.0f/s), %d corpus inputs, slowest %.1f ms (%d bytes), peak RSS %.0f MiB, no crash",
             target.rawValue, report.executions, report.seconds, Double(report.executions) / max(report.seconds, 1e-9), corpus.count,
             report.slowestSeconds * 1000, report.slowestInputBytes, report.peakResidentMiB))

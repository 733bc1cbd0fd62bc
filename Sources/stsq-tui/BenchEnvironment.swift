import ArgumentParser
import Foundation
import Tensors

/// What a benchmark figure depends on besides the code: the ISA oneDNN dispatched to, the int8
/// method chosen for it, the threads and their wait policy, and any competing load. Machines of
/// one kind differ in CPU, so every printed figure carries this.
enum BenchEnvironment {
    /// The OpenMP wait policy in effect (`ThreadingPolicy` sets it before the runtime starts).
    static var waitPolicy: String {
        let environment = ProcessInfo.processInfo.environment
        return ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"].compactMap { key in environment[key].map { "\(key)=\($0)" } }
            .joined(separator: " ").nonEmpty ?? "libgomp default"
    }

    static func lines(load: Int) -> [String] {
        ["oneDNN \(OneDNNLibrary.version), ISA \(InstructionSet.effective.name), \(OneDNNLibrary.threadPolicy), \(waitPolicy)"
            + (load > 0 ? ", \(load) competing busy process\(load == 1 ? "" : "es")" : ""),
         "int8 method: \(IntegerProductMethod.automatic.rawValue) (\(IntegerProductMethod.automaticReason))"]
    }

    static func json(load: Int) -> [(String, JSONValue)] {
        [("onednn", .string(OneDNNLibrary.version)), ("isa", .string(InstructionSet.effective.name)),
         ("int8_method", .string(IntegerProductMethod.automatic.rawValue)), ("threads", .string(OneDNNLibrary.threadPolicy)),
         ("wait_policy", .string(waitPolicy)), ("load", .int(load))]
    }
}

/// `--load N`: N busy processes competing for the CPUs while a benchmark runs, so figures under
/// load are reproducible (the workbench runs jobs beside other work).
struct CompetingLoadOption: ParsableArguments {
    @Option(help: "Busy processes competing for the CPUs while measuring.")
    var load = 0

    func validate() throws {
        guard (0...64).contains(load) else { throw ValidationError("--load must be 0…64, got \(load)") }
    }

    /// Runs `body` with the competing processes spinning; they are killed afterwards, also on error.
    func during<R>(_ body: () throws -> R) throws -> R {
        var spinners: [Process] = []
        defer {
            for p in spinners where p.isRunning { p.terminate() }
            for p in spinners { p.waitUntilExit() }
        }
        for _ in 0..<load {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            // The loop ends by itself should this process die without terminating it.
            p.arguments = ["-c", "end=$(($(date +%s) + 3600)); while [ $(date +%s) -lt $end ]; do i=0; while [ $i -lt 100000 ]; do i=$((i + 1)); done; done"]
            try p.run()
            spinners.append(p)
        }
        return try body()
    }
}

private extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

import Foundation
import Testing
import Tensors

// `stsq-tui selftest` under every instruction-set cap this machine can emulate downward
// (DNNL_MAX_CPU_ISA, read by oneDNN at its first use, so each cap is a child process): the AVX2
// path is exercised on AVX-512 and AMX machines too, and whatever the CPU, the checks must pass.

private struct SelfTestReport {
    let isa: String
    let method: String
    let passed: Bool
    /// name → (compared, differing, required)
    let checks: [String: (compared: Int, differing: Int, required: Bool)]

    init(_ result: CommandResult) throws {
        let json = try JSONValue.parse(result.stdout)
        isa = try #require(json["isa"]?.stringValue)
        method = try #require(json["int8_method"]?.stringValue)
        passed = try #require(json["passed"]?.boolValue as Bool?)
        var checks: [String: (Int, Int, Bool)] = [:]
        for check in json["checks"]?.arrayValue ?? [] {
            let name = try #require(check["name"]?.stringValue)
            checks[name] = (try #require(check["compared"]?.intValue), try #require(check["differing"]?.intValue),
                            try #require(check["required"]?.boolValue as Bool?))
        }
        self.checks = checks
    }
}

@Test func integerPathIsExactUnderEveryInstructionSetCapOfThisMachine() throws {
    // Which ISA each cap gives here (a cap above the CPU's own gives the CPU's).
    var capOfISA: [String: String] = [:]
    for cap in InstructionSet.capNames {
        let report = try SelfTestReport(try runTool(["selftest", "--isa", "--json"], environment: ["DNNL_MAX_CPU_ISA": cap]))
        if capOfISA[report.isa] == nil { capOfISA[report.isa] = cap }
    }
    #expect(capOfISA["avx2"] == "AVX2", "every x86-64 machine of this project can run oneDNN's AVX2 kernels")
    for (isa, cap) in capOfISA.sorted(by: { $0.key < $1.key }) {
        // The demo-model check once, on AVX2, where the int8 method is not the native product.
        let arguments = ["selftest", "--json"] + (isa == "avx2" ? [] : ["--kernels-only"])
        let result = try runTool(arguments, environment: ["DNNL_MAX_CPU_ISA": cap])
        let report = try SelfTestReport(result)
        #expect(result.status == 0 && report.passed, "DNNL_MAX_CPU_ISA=\(cap) (\(isa)): \(result.stdout)")
        #expect(report.isa == isa)
        for (name, check) in report.checks where check.required {
            #expect(check.compared > 0 && check.differing == 0, "\(isa): \(name) \(check)")
        }
        let native = try #require(report.checks["integer sums, native"])
        if isa == "avx2" || isa == "avx512_core" {
            // Without an int8 dot product the plain product saturates: the check sees it, and the
            // process uses the split weights instead.
            #expect(report.method == "split-weights" && !native.required && native.differing > 0, "\(isa): \(native)")
            #expect(report.checks.keys.contains { $0.hasPrefix("demo model") } == (isa == "avx2"))
        }
    }
}

@Test func selftestReportsTheInstructionSetAndMethodAsText() throws {
    let result = try runTool(["selftest", "--kernels-only"], environment: ["DNNL_MAX_CPU_ISA": "AVX2"])
    #expect(result.status == 0)
    #expect(result.stdout.contains("ISA avx2") && result.stdout.contains("int8 method: split-weights"))
    #expect(result.stdout.contains("integer sums, native") && result.stdout.contains("inexact on this ISA (not used)"))
    #expect(result.stdout.contains("every required check passed"))
}

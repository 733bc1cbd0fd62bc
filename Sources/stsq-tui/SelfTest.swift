import ArgumentParser
import DemoModel
import Foundation
import Quantization
import Tensors
import VideoDiT

/// `stsq-tui selftest`: is the int8 path exact on this CPU? oneDNN dispatches per ISA, and without
/// an int8 dot product its plain u8·s8 product is silently wrong, so the integers a user simulates
/// an NPU with are checked here on the ISA at hand (cap it with `DNNL_MAX_CPU_ISA` to check lower
/// ones): every kernel against its scalar reference, the products' independence of the thread
/// count (which follows the machine's load), and the demo model's int8 layers against the
/// fake-quant reference.
struct SelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check that this CPU computes the int8 path exactly (kernels against scalar references, the demo model against fake-quant).",
        discussion: "Exits with status 1 when a required check fails. Set DNNL_MAX_CPU_ISA (e.g. AVX2) to check a lower instruction set.")

    @Flag(help: "Print one JSON object instead of a table.") var json = false
    @Flag(help: "Only report the instruction set and the int8 method.") var isa = false
    @Flag(help: "Skip the demo-model check.") var kernelsOnly = false

    /// One line of the report.
    private struct Row {
        let name: String, compared: Int, differing: Int
        let worst: String?
        let required: Bool
        let detail: String?
        var passed: Bool { differing == 0 || !required }
    }

    func run() throws {
        try reportingErrors {
            var rows: [Row] = []
            if !isa {
                rows = try (IntegerKernelCheck.run() + ThreadIndependenceCheck.run()).map { r in
                    Row(name: r.name, compared: r.compared, differing: r.differing,
                        worst: r.worstUlps.map { formatFixed($0, decimals: 1) + " ulps" }, required: r.required, detail: r.firstDifference)
                }
                if !kernelsOnly { rows += try demoModelRows() }
            }
            let passed = rows.allSatisfy(\.passed)
            if json {
                let checks = JSONValue.array(rows.map { r in
                    .object([("name", .string(r.name)), ("compared", .int(r.compared)), ("differing", .int(r.differing)),
                             ("worst", r.worst.map(JSONValue.string) ?? .null), ("required", .bool(r.required)),
                             ("passed", .bool(r.passed)), ("first_difference", r.detail.map(JSONValue.string) ?? .null)])
                })
                print(JSONValue.object(BenchEnvironment.json(load: 0) + [("checks", checks), ("passed", .bool(passed))])
                    .serialized(pretty: true))
            } else {
                BenchEnvironment.lines(load: 0).forEach { print($0) }
                guard !isa else { return }
                let table = rows.map { r in
                    [r.name, formatCount(r.compared), formatCount(r.differing), r.worst ?? "",
                     r.passed ? (r.differing == 0 ? "ok" : "inexact on this ISA (not used)") : "FAILED"]
                }
                formatTable(header: ["check", "compared", "differ", "worst", "result"], rows: table, rightAligned: [1, 2]).forEach { print($0) }
                for r in rows where !r.passed { print("\(r.name): \(r.detail ?? "")") }
                print(passed ? "every required check passed" : "FAILED: a required check failed on \(InstructionSet.effective.name)")
            }
            if !passed { throw ExitCode(1) }
        }
    }

    /// One evaluation of the demo model (a prompt, seed 0, a mid-schedule step) as calibration,
    /// then per layer int8 against fake-quant for three plans covering every int8 feature.
    private func demoModelRows() throws -> [Row] {
        guard let path = DemoModel.checkpointPath else { throw ValidationError("the bundled demo model is missing; use --kernels-only") }
        let loaded = try ModelLoader.load(path: path)
        guard let model = loaded.model as? STDiT3, let encoder = loaded.textEncoder else {
            throw ValidationError("\(path): the demo model is not an STDiT3 with a text encoder")
        }
        let d = loaded.samplerDefaults
        let size = [d?.frames ?? 8, d?.height ?? 32, d?.width ?? 32]
        let sampler = RectifiedFlowSampler(model: model, cfgScale: d?.cfgScale ?? 5, fps: d?.fps ?? 24)
        var generator = NoiseGenerator(seed: 0)
        let noise = generator.gaussian(shape: [1, model.config.inChannels] + size)
        let inputs = try sampler.guidedInputs(noise, condition: try encoder.encode(["a red circle moving left on a blue background"]),
                                              timestep: 500, height: Float(size[1]), width: Float(size[2]))
        let check = try OneEvaluationCheck(model: model, inputs: inputs)
        let plans: [(String, LayerSettings.Activations, Bool, Double)] = [
            ("uint8 activations", .uint8, true, 0), ("int8 activations", .int8, true, 0),
            ("uint8, asymmetric weights, α 0.5 with explicit 1/s", .uint8, false, 0.5),
        ]
        return try plans.map { name, activations, symmetric, alpha in
            var defaults = LayerSettings()
            defaults.activations = activations
            defaults.weightSymmetric = symmetric
            defaults.alpha = alpha
            let agreements = try check.int8AgreesWithFakeQuant(try check.quantized(defaults, explicitAlpha: alpha > 0 ? alpha : nil))
            let worst = agreements.map { $0.bound > 0 ? $0.worst / $0.bound : ($0.worst == 0 ? 0 : .infinity) }.max() ?? 0
            let failing = agreements.filter { !$0.passed }
            return Row(name: "demo model, int8 vs fake-quant per layer: \(name)", compared: agreements.count, differing: failing.count,
                       worst: formatFixed(Double(worst), decimals: 2) + " of bound", required: true,
                       detail: failing.first.map { "\($0.layer): max|Δ| \($0.worst) > \($0.bound)" })
        }
    }
}

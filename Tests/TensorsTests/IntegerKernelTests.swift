import Testing
@testable import Tensors

// The int8 path against its scalar references (IntegerKernelCheck: activation codes and integer
// sums bit for bit, float outputs within the epilogue's roundings) on this CPU's ISA. The same
// checks under lower ISA caps run in child processes (CLITests/SelfTestCommandTests), where the
// native product on AVX2 shows that they do catch saturated sums.

@Test func everyIntegerKernelCheckPassesOnThisCPU() throws {
    let results = try IntegerKernelCheck.run()
    let names = Set(results.map(\.name))
    #expect(names.contains("integer sums, split-weights") && names.contains("integer sums, native"))
    for result in results {
        #expect(result.compared > 0, "\(result.name) compared nothing")
        #expect(result.passed, "\(result.name) on \(InstructionSet.effective): \(result.differing) of \(result.compared) differ; \(result.firstDifference ?? "")")
    }
    // Every method this process may use is exact, the one it uses above all.
    let used = try #require(results.first { $0.name == "integer sums, \(IntegerProductMethod.automatic.rawValue)" })
    #expect(used.required && used.differing == 0)
}

/// The references themselves, on numbers small enough to check by hand.
@Test func referencesComputeTheFormulaByHand() {
    // codes [3, 250], z = 2: (1, 248) · ([2, −1] − zw 1 = [1, −2]) = 1 − 496 = −495.
    #expect(IntegerKernelCheck.referenceSums(codes: [3, 250], rows: 1, zeroPoint: 2, weights: [2, -1], weightZeroPoints: [1],
                                             outputs: 1, inputs: 2) == [-495])
    // Halves ⌈w/2⌉ + ⌊w/2⌋, both within [−64, 64].
    let w: [Int8] = [127, -128, -127, 1, -1, 0]
    let halves = IntegerKernelCheck.productWeights(w, .splitWeights)
    #expect(halves[0] == [64, -64, -63, 1, 0, 0] && halves[1] == [63, -64, -64, 0, -1, 0])
}

@Test func automaticMethodFollowsTheInstructionSet() {
    let isa = InstructionSet.effective
    #expect(!isa.name.hasPrefix("isa_0x"), "unknown ISA \(isa.rawValue)")
    if !isa.hasInt8DotProduct { #expect(IntegerProductMethod.automatic == .splitWeights) }
    #expect(IntegerProductMethod.automaticReason.contains(isa.name))
}

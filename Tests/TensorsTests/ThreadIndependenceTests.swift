import Testing
@testable import Tensors

// Threads follow the machine's load (ThreadBudget); results must not. Checked here on this CPU's
// ISA and in CLITests/SelfTestCommandTests under every lower one — where, on AVX2, it fails
// without LinearFP32's one-thread rule for small products (1,423 differing values at 1×256×128).

@Test func productsGiveTheSameBitsOnOneThreadAndOnAll() throws {
    for result in try ThreadIndependenceCheck.run() {
        #expect(result.compared > 0, "\(result.name) compared nothing")
        #expect(result.differing == 0, "\(result.name) on \(InstructionSet.effective): \(result.differing) of \(result.compared) differ; \(result.firstDifference ?? "")")
    }
}

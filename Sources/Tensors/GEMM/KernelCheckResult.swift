/// One group of comparisons of a kernel check (`IntegerKernelCheck`, `ThreadIndependenceCheck`).
public struct KernelCheckResult: Sendable {
    /// e.g. `integer sums, split-weights`.
    public let name: String
    /// Values compared (codes, sums or outputs).
    public let compared: Int
    /// Values that differ from the reference (for float outputs: beyond the bound).
    public let differing: Int
    /// Float outputs: the worst error in float32 ulps of the largest rounded term; nil for exact checks.
    public let worstUlps: Double?
    /// False for a method this process does not use because it is known to be inexact here.
    public let required: Bool
    /// The first difference, described; nil when there is none.
    public let firstDifference: String?

    public var passed: Bool { differing == 0 || !required }
}

/// Counts comparisons and remembers the first difference.
struct CheckTally {
    let name: String
    var compared = 0, differing = 0
    var worstUlps: Double?
    var first: String?

    init(name: String) { self.name = name }

    mutating func compare<T: Equatable>(_ got: [T], _ expected: [T], _ context: String) {
        compared += expected.count
        guard got != expected else { return }   // a Bool first: most comparisons are equal
        for (i, (g, e)) in zip(got, expected).enumerated() where g != e {
            differing += 1
            if first == nil { first = "\(context), index \(i): got \(g), expected \(e)" }
        }
    }

    mutating func measure(ulps: Double, bound: Double, _ context: @autoclosure () -> String) {
        compared += 1
        worstUlps = max(worstUlps ?? 0, ulps)
        if ulps > bound {
            differing += 1
            if first == nil { first = "\(context()): \(ulps) ulps > \(bound)" }
        }
    }

    func result(required: Bool) -> KernelCheckResult {
        KernelCheckResult(name: name, compared: compared, differing: differing, worstUlps: worstUlps, required: required, firstDifference: first)
    }
}

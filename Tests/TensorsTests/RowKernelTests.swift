import Foundation
import Testing
@testable import Tensors

// Scalar references in Double. Tolerances: oneDNN's vectorised exp/tanh are accurate to a few
// float32 ulps; 1e-6 absolute on O(1) values (GELU, SiLU, softmax) and 1e-5 relative for
// LayerNorm (a sum over the row) leave room for that and nothing more.

@Test func geluTanhMatchesTheFormula() throws {
    var generator = SeededGenerator(seed: 11)
    var x = generator.floats(4099, in: -8...8)
    let reference = x.map { v -> Double in
        let d = Double(v)
        return 0.5 * d * (1 + tanh(0.7978845608028654 * (d + 0.044715 * d * d * d)))
    }
    try x.withUnsafeMutableBufferPointer { try RowKernels.geluTanh($0.baseAddress!, count: $0.count) }
    let worst = zip(x, reference).map { abs(Double($0) - $1) / max(1, abs($1)) }.max()!
    #expect(worst <= 1e-6, "worst \(worst)")
}

@Test func siluMatchesTheFormula() throws {
    var generator = SeededGenerator(seed: 12)
    var x = generator.floats(1000, in: -20...20)
    let reference = x.map { Double($0) / (1 + exp(-Double($0))) }
    try x.withUnsafeMutableBufferPointer { try RowKernels.silu($0.baseAddress!, count: $0.count) }
    #expect(zip(x, reference).map { abs(Double($0) - $1) / max(1, abs($1)) }.max()! <= 1e-6)
}

@Test func softmaxRowsMatchTheDefinition() throws {
    var generator = SeededGenerator(seed: 13)
    let (rows, width) = (37, 300)
    var x = generator.floats(rows * width, in: -30...30)
    var reference = [Double](repeating: 0, count: x.count)
    for r in 0..<rows {
        let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
        let m = row.max()!
        let e = row.map { exp($0 - m) }
        let sum = e.reduce(0, +)
        for i in 0..<width { reference[r * width + i] = e[i] / sum }
    }
    try x.withUnsafeMutableBufferPointer { try RowKernels.softmax($0.baseAddress!, rows: rows, width: width) }
    #expect(zip(x, reference).map { abs(Double($0) - $1) }.max()! <= 1e-6)
}

@Test func layerNormMatchesTheDefinition() throws {
    var generator = SeededGenerator(seed: 14)
    let (rows, width) = (50, 1152)
    var x = generator.floats(rows * width, in: -3...5)
    var reference = [Double](repeating: 0, count: x.count)
    for r in 0..<rows {
        let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
        let mean = row.reduce(0, +) / Double(width)
        let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(width)
        for i in 0..<width { reference[r * width + i] = (row[i] - mean) / (variance + 1e-6).squareRoot() }
    }
    try x.withUnsafeMutableBufferPointer { try RowKernels.layerNorm($0.baseAddress!, rows: rows, width: width, epsilon: 1e-6) }
    #expect(zip(x, reference).map { abs(Double($0) - $1) / max(1, abs($1)) }.max()! <= 1e-5)
}

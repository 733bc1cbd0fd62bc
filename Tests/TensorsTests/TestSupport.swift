import Foundation
@testable import Tensors

/// The engine's SplitMix64: every test sees the same data on every machine.
typealias SeededGenerator = SplitMix

extension SeededGenerator {
    mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &self) }
    }
}

/// A fresh empty folder under the system temp dir.
func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "stsq-tests-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

import Foundation
import Testing
import Quantization
import Tensors
import VideoDiT
@testable import TerminalUI
@testable import Workbench

/// Text snapshots of rendered screens, stored in `Snapshots/<name>.txt` beside this file.
/// `STSQ_RECORD_SNAPSHOTS=1 swift test` re-records them; a recording run fails on purpose so the
/// new text is reviewed before it is committed (swift-argument-parser's habit).
func assertSnapshot(_ grid: CellGrid, named name: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots")
    let url = directory.appendingPathComponent("\(name).txt")
    let actual = grid.text + "\n"
    if ProcessInfo.processInfo.environment["STSQ_RECORD_SNAPSHOTS"] != nil {
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try? actual.write(to: url, atomically: true, encoding: .utf8)
        Issue.record("recorded snapshot \(name); review it and run the tests again without STSQ_RECORD_SNAPSHOTS",
                     sourceLocation: sourceLocation)
        return
    }
    guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
        Issue.record("no snapshot \(url.path); record it with STSQ_RECORD_SNAPSHOTS=1", sourceLocation: sourceLocation)
        return
    }
    if expected != actual {
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
        let firstDifference = (0..<min(e.count, a.count)).first { e[$0] != a[$0] } ?? min(e.count, a.count)
        Issue.record("""
            snapshot \(name) differs at line \(firstDifference + 1):
              expected: \(firstDifference < e.count ? String(e[firstDifference]) : "<end>")
              actual:   \(firstDifference < a.count ? String(a[firstDifference]) : "<end>")
            actual screen:
            \(actual)
            """, sourceLocation: sourceLocation)
    }
}

// Made-up calibration statistics of the layout fixture whose every number follows from the
// construction below (no sampling, the same on every CPU).

/// 6 steps; at step s input channel j of every layer spans ±(1 + s/2)·c_j with c_j = 1 + (j mod 7)/4,
/// except channels 5 and 37, which grow to 12× (channel 5) and 30× (channel 37) over the steps.
func fixtureActivations(_ catalog: LayerCatalog) -> ActivationData {
    let steps = 6
    var statistics: [String: [Int: LayerStepStatistics]] = [:]
    var encodings: [String: [ActivationEncoding]] = [:], global: [String: ActivationEncoding] = [:]
    var weights: [String: [Float]] = [:]
    for layer in catalog.quantizableLinears {
        var top: Float = 0
        for s in 0..<steps {
            let K = layer.inputs
            func magnitude(_ j: Int) -> Float {
                let base = (1 + Float(s) / 2) * (1 + Float(j % 7) / 4)
                return j == 5 ? base * (1 + 11 * Float(s) / 5) : j == 37 && K > 37 ? base * (1 + 29 * Float(s * s) / 25) : base
            }
            // Row r of 8: channel j at magnitude(j)·(r + 1)/8, alternating signs.
            let rows = (0..<(8 * K)).map { i in magnitude(i % K) * Float(i / K + 1) / 8 * (i % 2 == 0 ? 1 : -1) }
            var st = LayerStepStatistics(width: K)
            rows.withUnsafeBufferPointer { st.observe($0.baseAddress!, rows: 8) }
            statistics[layer.name, default: [:]][s] = st
            let m = max(-st.minimum, st.maximum)
            top = max(top, m)
            encodings[layer.name, default: []].append(.covering(min: -m, max: m, kind: .symmetricInt8))
        }
        global[layer.name] = .covering(min: -top, max: top, kind: .symmetricInt8)
        weights[layer.name] = (0..<layer.inputs).map { 0.1 + Float($0 % 5) / 20 }
    }
    return ActivationData(statistics: statistics, timesteps: [1000, 833.3, 666.7, 500, 333.3, 166.7], calibrationDigest: "0123456789abcdef",
                          samples: 2, encodings: encodings, globalEncodings: global, weightInputAbsMax: weights)
}

/// Local SQNR per layer and step: 40 dB less 2 dB per step for fc2, less 1 dB per layer index.
func fixtureQualityMap(_ catalog: LayerCatalog) -> [String: [Double]] {
    Dictionary(uniqueKeysWithValues: catalog.quantizableLinears.enumerated().map { i, layer in
        (layer.name, (0..<6).map { s in 40 - Double(i) / 4 - (layer.name.hasSuffix("fc2") ? 2 * Double(s) : 0) })
    })
}

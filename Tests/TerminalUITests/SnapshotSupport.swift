import Foundation
import Testing
@testable import TerminalUI

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

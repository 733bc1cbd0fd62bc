import Foundation
import Testing
@testable import FuzzTargets

// Every parser of user files under the seeded mutation fuzzer, a bounded number of executions
// each (issue 15). A crash here kills the test process, so a regression cannot pass; the long
// coverage-guided runs are scripts/fuzz.sh (libFuzzer).

let corpusRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fuzz/corpus").path

func seedCorpus(_ target: FuzzTarget) -> [[UInt8]] {
    let folder = corpusRoot + "/" + target.rawValue
    return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted().compactMap {
        FileManager.default.contents(atPath: folder + "/" + $0).map { [UInt8]($0) }
    }
}

@Test(arguments: FuzzTarget.allCases)
func parsersSurviveMutatedInputs(target: FuzzTarget) throws {
    let corpus = seedCorpus(target)
    #expect(!corpus.isEmpty, "no seed corpus for \(target.rawValue)")
    let scratch = try FuzzScratch()
    var fuzzer = MutationFuzzer(target: target, corpus: corpus, seed: 15)
    // Bounded by count (deterministic) and by time (the debug build is slow on 2 cores).
    let report = fuzzer.run(executions: 20_000, seconds: 8, scratch: scratch)
    #expect(report.executions >= 2_000)
    // A hang or a blow-up on one input shows as a slow execution long before a timeout.
    #expect(report.slowestSeconds < 2, "slowest input took \(report.slowestSeconds) s (\(report.slowestInputBytes) bytes)")
    #expect(report.peakResidentMiB < 2048)
}

/// The seeds are valid inputs: each parses, so mutations start from the deep paths.
@Test(arguments: FuzzTarget.allCases)
func seedInputsAreAccepted(target: FuzzTarget) throws {
    let scratch = try FuzzScratch()
    for seed in seedCorpus(target) {
        #expect(throws: Never.self) { try seed.withUnsafeBytes { try target.parse($0, scratch: scratch) } }
    }
}

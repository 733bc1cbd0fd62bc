import Foundation
import Testing

// Bad sampler settings end in exit status 1 and one line on stderr, never a signal or NaN samples.

/// Runs `arguments` and expects a clean refusal: status 1, no signal, one stderr line containing `text`.
func expectRefusal(_ arguments: [String], mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let result = try runTool(arguments)
    #expect(!result.exitedBySignal, "\(arguments) died by a signal: \(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.status == 1, "\(arguments): status \(result.status)", sourceLocation: sourceLocation)
    let lines = result.stderr.split(separator: "\n")
    #expect(lines.count == 1, "\(arguments): \(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stderr.contains(text), "\(arguments): \(result.stderr)", sourceLocation: sourceLocation)
}

func temporaryOutput() -> String { NSTemporaryDirectory() + "sample-\(UUID().uuidString).safetensors" }

@Test(arguments: ["2,4,4", "3,4,4", "4,4,4"])
func sampleRefusesLatentLengthsTheTimestepTransformCannotTake(size: String) throws {
    try expectRefusal(["sample", engineFixture("stdit3-tiny.safetensors"), "--null-caption", "--steps", "2", "--size", size,
                       "--out", temporaryOutput()], mentioning: "--no-transform")
}

@Test func sampleWithoutTheTransformTakesShortLatents() throws {
    let output = temporaryOutput()
    let result = try runTool(["sample", engineFixture("stdit3-tiny.safetensors"), "--null-caption", "--steps", "2", "--size", "2,4,4",
                              "--no-transform", "--out", output])
    #expect(result.status == 0, "\(result.stderr)")
}

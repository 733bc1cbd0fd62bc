import Foundation
import Testing

// `forward --inputs` with empty or oversized 'x' / 'y': exit 1 and one stderr line, before the model runs.

@Test(arguments: [
    ([0, 4, 3, 4, 5], "every size positive"), ([2, 4, 0, 4, 5], "every size positive"), ([2, 4, 3, 4, 0], "every size positive"),
    ([2, 4, 1, 1, 4097], "at most 4096"), ([2, 4, 1, 258, 258], "tokens per sample"), ([2, 4, 3, 4], "[B, Cin, T, H, W]"),
])
func forwardRefusesInputSizesItCannotRun(shape: [Int], text: String) throws {
    let inputs = try rewrittenCheckpoint(engineFixture("stdit3-tiny.forward-cfg.safetensors"), zeros: ["x": shape])
    try expectRefusal(["forward", engineFixture("stdit3-tiny.safetensors"), "--inputs", inputs, "--output", temporaryOutput()],
                      mentioning: text)
}

@Test func forwardRefusesEmptyCaptions() throws {
    let inputs = try rewrittenCheckpoint(engineFixture("stdit3-tiny.forward-cfg.safetensors"), zeros: ["y": [2, 1, 0, 32]])
    try expectRefusal(["forward", engineFixture("stdit3-tiny.safetensors"), "--inputs", inputs, "--output", temporaryOutput()],
                      mentioning: "'y'")
}

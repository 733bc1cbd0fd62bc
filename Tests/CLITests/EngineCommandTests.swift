import Foundation
import Testing

func engineFixture(_ name: String) -> String { fixture("engine/\(name)") }

@Test func forwardWritesTheOutputAndCapturesOfTheEngine() throws {
    let output = NSTemporaryDirectory() + "forward-\(UUID().uuidString).safetensors"
    let result = try runTool(["forward", engineFixture("stdit3-tiny.safetensors"),
                              "--inputs", engineFixture("stdit3-tiny.forward-cfg.safetensors"),
                              "--output", output, "--capture", "temporal_blocks.1.mlp.*"])
    #expect(result.status == 0, "\(result.stderr)")
    let listing = try runTool(["inspect", "--json", output])
    let object = try #require(try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [String: Any])
    let names = (object["tensors"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
    #expect(Set(names) == ["out", "capture.temporal_blocks.1.mlp.fc1", "capture_out.temporal_blocks.1.mlp.fc1",
                           "capture.temporal_blocks.1.mlp.fc2", "capture_out.temporal_blocks.1.mlp.fc2"])
    // The golden output of the same inputs is within ±20 (tools/make_engine_fixtures.py).
    try expectFiniteValues(in: output, names, bound: 1e3)
}

@Test func sampleRefusesMissingConditioningWithTheChoices() throws {
    let result = try runTool(["sample", engineFixture("stdit3-tiny.safetensors"), "--out", "/tmp/never.safetensors"])
    #expect(result.status != 0)
    #expect(result.stderr.contains("--embeddings FILE"))
    #expect(result.stderr.contains("--null-caption"))
}

@Test func sampleWithTheNullCaptionWritesSamples() throws {
    let output = NSTemporaryDirectory() + "sample-\(UUID().uuidString).safetensors"
    let result = try runTool(["sample", engineFixture("stdit3-tiny.safetensors"), "--null-caption", "--steps", "3",
                              "--size", "5,4,4", "--seed", "7", "--out", output])
    #expect(result.status == 0, "\(result.stderr)")
    let listing = try runTool(["inspect", output])
    #expect(listing.stdout.contains("samples"))
    #expect(listing.stdout.contains("[1, 4, 5, 4, 4]"))
    try expectFiniteValues(in: output, ["samples"], bound: 1e3)
}

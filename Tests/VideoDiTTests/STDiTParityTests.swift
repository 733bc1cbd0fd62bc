import Foundation
import Testing
import Tensors
@testable import VideoDiT

func loadSTDiT() throws -> STDiT {
    let file = try fixtureFile("stdit-tiny.safetensors")
    return try STDiT(file: file, config: try ModelConfig.resolve(for: file))
}

@Test(arguments: ["stdit-tiny.forward-cfg.safetensors", "stdit-tiny.forward-pad.safetensors"])
func stditForwardMatchesPyTorch(fixtureName: String) throws {
    let model = try loadSTDiT()
    let fixture = try fixtureFile(fixtureName)
    let capture = CapturingExecutor(pattern: "*")
    let out = try model.forward(try ModelInputs(file: fixture), executor: capture)
    expectClose(out.scalars, try fixture.tensor("out").scalars, "out")
    let names = (fixture.metadataValue("captured_layers") ?? "").split(separator: ",").map(String.init)
    #expect(names.count == 18)
    for name in names {
        let got = try #require(capture.captures.first { $0.layer == name }, "no capture of \(name)")
        expectClose(got.input, try fixture.tensor("capture." + name).scalars, "input of \(name)")
    }
}

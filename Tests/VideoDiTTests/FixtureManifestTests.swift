import Foundation
import Testing
import Tensors
@testable import VideoDiT

// The engine fixtures describe themselves (Tests/Fixtures/engine/manifest.json): every file the
// manifest lists exists with its byte count, and every tensor it lists has that dtype and shape.
@Test func engineFixturesMatchTheirManifest() throws {
    let manifest = try JSONValue.parse(String(decoding: try Data(contentsOf: engineFixtures.appendingPathComponent("manifest.json")), as: UTF8.self))
    let files = try #require(manifest["files"]?.objectValue)
    #expect(files.count >= 10)
    let dtypes = ["float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "int32": "I32",
                  "int8": "I8", "uint8": "U8", "bool": "BOOL"]
    for (name, entry) in files {
        let path = engineFixtures.appendingPathComponent(name).path
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        #expect(size == entry["bytes"]?.intValue, "\(name): \(size.map(String.init) ?? "missing") bytes, the manifest says \(entry["bytes"]?.intValue ?? -1)")
        guard name.hasSuffix(".safetensors"), let tensors = entry["tensors"]?.objectValue else { continue }
        let file = try SafetensorsFile(path: path)
        #expect(Set(file.names) == Set(tensors.map(\.0)), "\(name): tensors differ from the manifest's")
        for (tensor, spec) in tensors {
            guard let stored = file[tensor] else { continue }
            let shape = spec["shape"]?.arrayValue?.compactMap(\.intValue)
            #expect(stored.shape == shape, "\(name): \(tensor) has shape \(stored.shape), the manifest says \(shape ?? [])")
            let dtype = spec["dtype"]?.stringValue.flatMap { dtypes[$0] }
            #expect(stored.dtype.rawValue == dtype, "\(name): \(tensor) is \(stored.dtype.rawValue), the manifest says \(spec["dtype"]?.stringValue ?? "?")")
        }
    }
}

/// OpenSora's published v1.2 schedules (OPENSORA.md §9.2): its bf16 pipeline rounds the transform
/// ratio r to bf16 and the model sees t' cast to bf16. With r given as published, the engine's
/// schedule reproduces the reference's t' and dt to 2 ulps, the bf16 cast what the model sees
/// exactly, and the table's first values.
@Test(arguments: [("240x426x51", Float(2.421875), [1000, 985.962, 971.352, 956.134, 940.271, 923.719], [1000, 984, 972, 956, 940, 924]),
                  ("480x854x51", 4.84375, [1000, 992.931, 985.468, 977.575, 969.216, 960.347], [1000, 992, 984, 976, 968, 960]),
                  ("720x1280x51", 7.25, [1000, 995.266, 990.244, 984.906, 979.221, 973.154], [1000, 996, 992, 984, 980, 972]),
                  ("720x1280x102", 10.25, [1000, 996.647, 993.080, 989.276, 985.213, 980.861], [1000, 996, 992, 988, 984, 980])])
func publishedBF16PipelineSchedulesAreReproduced(name: String, ratio: Float, table: [Float], seen: [Float]) throws {
    let fixture = try fixtureFile("samplers.safetensors")
    let schedule = RectifiedFlowSchedule(steps: 30, ratio: ratio)
    expectULPs(schedule.timesteps, try fixture.tensor("rf.\(name).timesteps_bf16_ratio").scalars, "t' (bf16 r)")
    expectULPs(schedule.dt, try fixture.tensor("rf.\(name).dt_bf16_ratio").scalars, "dt (bf16 r)")
    let cast = schedule.timesteps.map { bf16ToFloat(floatToBF16($0)) }
    #expect(cast == (try fixture.tensor("rf.\(name).model_timesteps_bf16").scalars), "\(name): bf16 timesteps")
    for (i, t) in table.enumerated() { #expect(abs(schedule.timesteps[i] - t) <= 0.0005, "\(name): t'[\(i)] \(schedule.timesteps[i]) vs \(t)") }
    #expect(Array(cast.prefix(6)) == seen, "\(name): what the model sees")
}

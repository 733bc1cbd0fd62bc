import DemoModel
import Foundation
import Testing
import Tensors
@testable import Quantization
@testable import VideoDiT

// The AIMET export against its definitions: encodings dequantize exactly as our codes do, and the
// integer-only product (codes · weight codes + int32 bias, times the multiplier) equals the exact
// product of the fake-quant reference to within half a bias step.

private func plan(_ f: SmoothQuantFixture) -> QuantizationPlan {
    f.plan({ $0.alpha = 0.5; $0.smoothing = .timestep; $0.shift = true }, groups: 2, layers: explicitLayerOverrides(f.model, alpha: 0.5) + [
        ("spatial_blocks.0.attn.qkv", .object([("keep_fp", .bool(true))])),
        ("temporal_blocks.1.mlp.fc1", .object([("activations", .string("dynamic"))])),
        ("spatial_blocks.1.attn.proj", .object([("activations", .string("uint8")), ("weight_symmetric", .bool(false))])),
        ("temporal_blocks.0.attn.proj", .object([("weight_bits", .int(4))])),
    ])
}

@Test func aimetEncodingsDequantizeAsOurCodes() throws {
    let f = try sharedSmoothQuantFixture.get()
    let q = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan(f))
    let directory = NSTemporaryDirectory() + "stsq-aimet-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let files = try AIMETExport.write(q, model: f.model, fps: 24, to: directory)
    #expect(files.contains("encodings/index.json") && files.contains("quantized.safetensors"))
    let index = try JSONValue.parse(try String(contentsOfFile: directory + "/encodings/index.json", encoding: .utf8))
    let planBytes = try #require(FileManager.default.contents(atPath: directory + "/plan.json"))
    #expect(index["plan_fnv1a"]?.stringValue == QuantizedModelExport.planDigest(Array(planBytes)))
    let steps = try #require(index["steps"]?.arrayValue)
    #expect(steps.count == 3 && steps.map { $0["weight_set"]?.intValue } == q.groupOfStep.map { $0 } && Set(q.groupOfStep).count == 2)
    // Per-step activation scales: a file per step.
    #expect(Set(steps.compactMap { $0["encodings"]?.stringValue }).count == 3)
    let excluded = try #require(index["excluded_layers"]?.arrayValue).compactMap(\.stringValue)
    #expect(excluded == ["spatial_blocks.0.attn.qkv", "temporal_blocks.1.mlp.fc1"])
    #expect(index["tensors"]?["spatial_blocks.1.attn.proj"]?["input"]?["qmin"]?.intValue == 0)
    #expect(index["tensors"]?["spatial_blocks.1.attn.qkv"]?["input"]?["qmin"]?.intValue == -127)
    #expect(index["tensors"]?["temporal_blocks.0.attn.proj"]?["weight"]?["qmax"]?.intValue == 7)

    for (s, entry) in steps.enumerated() {
        let file = try JSONValue.parse(try String(contentsOfFile: directory + "/encodings/" + entry["encodings"]!.stringValue!, encoding: .utf8))
        #expect(file["version"]?.stringValue == "0.6.1")
        for layer in q.layers where layer.isStatic {
            let e = layer.encoding(step: s)
            let a = try #require(file["activation_encodings"]?[layer.name + ".input"]?.arrayValue?.first)
            let scale = Double(Float(try #require(a["scale"]?.doubleValue))), offset = try #require(a["offset"]?.intValue)
            #expect(Float(scale) == e.scale)
            // Every code of ours: AIMET's unsigned q = c − qmin(full range) dequantizes to the same value.
            let shift: Int32 = e.kind == .symmetricInt8 ? 128 : 0
            for c in e.qmin...e.qmax {
                #expect(Double(Int(c + shift) + offset) * scale == Double(c - e.zeroPoint) * Double(e.scale))
            }
            #expect(a["min"]?.doubleValue == Double(offset) * scale && a["max"]?.doubleValue == Double(offset + 255) * scale)
            let w = try #require(layer.weightSets[layer.setIndex(step: s)].quantized)
            let params = try #require(file["param_encodings"]?[layer.name + ".weight"]?.arrayValue)
            #expect(params.count == layer.outputs)
            for c in [0, layer.outputs - 1] {
                let p = params[c], ws = Double(Float(try #require(p["scale"]?.doubleValue))), wo = try #require(p["offset"]?.intValue)
                #expect(p["bitwidth"]?.intValue == w.bits && Float(ws) == w.scales[c])
                let code = Int(w.values[c * layer.inputs])
                #expect(Double(code + (1 << (w.bits - 1)) + wo) * ws == Double(code - Int(w.zeroPoints[c])) * Double(w.scales[c]))
            }
        }
        #expect(file["activation_encodings"]?["spatial_blocks.0.attn.qkv.input"] == nil)
    }
}

@Test func integerProductEqualsTheFakeQuantProductWithinHalfABiasStep() throws {
    let f = try sharedSmoothQuantFixture.get()
    let q = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan(f))
    let path = NSTemporaryDirectory() + "stsq-integer-\(UUID().uuidString).safetensors"
    defer { try? FileManager.default.removeItem(atPath: path) }
    try AIMETExport.integerTensors(q).write(to: path)
    let integer = try SafetensorsFile(path: path)
    let executor = QuantizedModelExecutor(model: q, mode: .fakeQuant)
    var worstRelative = 0.0
    for layer in q.layers where layer.isStatic {
        let C = layer.outputs, K = layer.inputs
        let bias = try integer.view(layer.name + ".bias_int32").withElements(as: Int32.self, Array.init)
        let multiplier = try integer.tensor(layer.name + ".dequant_multiplier").scalars
        #expect(bias.count == 3 * C && multiplier.count == 3 * C)
        let linear = try #require(f.model.blockLinears.first { $0.name == layer.name })
        for step in 0..<3 {
            let rows = f.statistics[layer.name]![step]!.reservoir
            let R = min(rows.count / K, 4)
            let x = Array(rows.prefix(R * K))
            var reference = [Float](repeating: 0, count: R * C)
            try x.withUnsafeBufferPointer { try executor.run(linear, step: step, input: $0.baseAddress!, rows: R, output: &reference) }
            let set = layer.setIndex(step: step), w = layer.weightSets[set].quantized!, e = layer.encoding(step: step)
            let inverse = layer.explicitInverse(set: set)
            for r in 0..<R {
                let codes = (0..<K).map { k in Int64(e.code(inverse.map { x[r * K + k] * $0[k] } ?? x[r * K + k])) }
                for c in 0..<C {
                    var acc = Int64(bias[step * C + c]), exact = 0.0
                    for k in 0..<K {
                        let wc = Int64(w.values[c * K + k]) - Int64(w.zeroPoints[c])
                        acc += codes[k] * wc
                        exact += Double((codes[k] - Int64(e.zeroPoint)) * wc)
                    }
                    let m = Double(multiplier[step * C + c])
                    #expect(Float(m) == Float(Double(e.scale) * Double(w.scales[c])))
                    let b = Double(layer.weightSets[set].bias?[c] ?? 0) + Double(layer.shiftBias?[step][c] ?? 0)
                    exact = exact * Double(e.scale) * Double(w.scales[c]) + b
                    let npu = Double(acc) * m
                    // Half a bias step, plus the multiplier's float32 rounding over |acc|.
                    #expect(abs(npu - exact) <= 0.5 * m + abs(Double(acc)) * m * 1.2e-7 + 1e-12, "\(layer.name) step \(step) channel \(c)")
                    let y = Double(reference[r * C + c])
                    worstRelative = max(worstRelative, abs(y - exact) / max(abs(exact), 1e-3))
                }
            }
        }
    }
    // The reference itself (float32 GEMM of dequantized values) within float rounding of exact.
    #expect(worstRelative < 1e-3, "fake-quant vs exact: \(worstRelative)")
}

import DemoModel
import Foundation
import Testing
import Tensors
@testable import Quantization
@testable import VideoDiT

// The quantized export read back: `QuantizedModelFile` + `QuantizedFileExecutor` must sample the
// demo model bit for bit like `QuantizedModelExecutor`, and the per-step data in the file must
// belong to the timestep of its step.

/// The fixture's calibration (3 steps, no timestep transform, prompts of `SmoothQuantFixture`,
/// seed 3, both prompts in one batch) and its trajectory.
private struct ExportFixture {
    let fixture: SmoothQuantFixture
    let schedule = RectifiedFlowSchedule(steps: 3, ratio: nil)
    let condition: TextCondition
    let noise: Tensor
    var sampler: RectifiedFlowSampler { RectifiedFlowSampler(model: fixture.model, cfgScale: 5) }

    init() throws {
        fixture = try sharedSmoothQuantFixture.get()
        let path = try #require(DemoModel.checkpointPath)
        let encoder = try #require(try ModelLoader.load(path: path).textEncoder)
        let prompts = fixture.key.prompts
        let conditions = try prompts.map { try encoder.encode([$0]) }
        condition = TextCondition(embeddings: Tensor(shape: [prompts.count] + Array(conditions[0].embeddings.shape.dropFirst()),
                                                     scalars: conditions.flatMap(\.embeddings.scalars)),
                                  mask: conditions.flatMap(\.mask))
        var generator = NoiseGenerator(seed: 3)
        noise = generator.gaussian(shape: [prompts.count, 3, 8, 32, 32])
    }

    /// A plan on the schedule's exact timesteps.
    func plan(_ edit: (inout LayerSettings) -> Void, groups: Int = 3, layers: [(String, JSONValue)] = []) -> QuantizationPlan {
        var plan = fixture.plan(edit, groups: groups, layers: layers)
        plan.timesteps = schedule.timesteps
        return plan
    }

    /// The latent after every step.
    func trajectory(_ executor: LinearExecutor) throws -> [[Float]] {
        var steps: [[Float]] = []
        _ = try sampler.sample(noise: noise, condition: condition, schedule: schedule, height: 32, width: 32, executor: executor) {
            steps.append($1.scalars)
        }
        return steps
    }

    /// Writes `quantized`, reads it back.
    func roundTrip(_ quantized: QuantizedModel) throws -> QuantizedModelFile {
        let directory = NSTemporaryDirectory() + "stsq-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try QuantizedModelExport.write(quantized, model: fixture.model, fps: sampler.fps, to: directory)
        return try QuantizedModelFile(path: directory + "/quantized.safetensors", model: fixture.model)
    }

    /// As `roundTrip`, with each stored tensor's dtype and shape.
    func roundTripWithTensors(_ quantized: QuantizedModel) throws -> (QuantizedModelFile, [String: (dtype: DType, shape: [Int])]) {
        let directory = NSTemporaryDirectory() + "stsq-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try QuantizedModelExport.write(quantized, model: fixture.model, fps: sampler.fps, to: directory)
        let raw = try SafetensorsFile(path: directory + "/quantized.safetensors")
        let stored = Dictionary(uniqueKeysWithValues: raw.entries.map { ($0.name, (dtype: $0.dtype, shape: $0.shape)) })
        return (try QuantizedModelFile(path: directory + "/quantized.safetensors", model: fixture.model), stored)
    }
}

private let sharedExportFixture = Result { try ExportFixture() }

private func alpha(_ value: Double) -> (inout LayerSettings) -> Void { { $0.alpha = value } }

@Test(arguments: ["ASQ", "TSQ 2 groups", "asymmetric W, uint8", "group scales, float and dynamic layers", "channel shift, TSQ 2 groups",
                  "integer attention, TSQ 2 groups", "rotated fc1 and fc2", "patch embedding and final linear, W4"])
func exportedModelSamplesTheSameBitsAsTheQuantizedModel(variant: String) throws {
    let f = try sharedExportFixture.get()
    let explicit = explicitLayerOverrides(f.fixture.model, alpha: 0.5)
    let plan: QuantizationPlan
    switch variant {
    case "ASQ": plan = f.plan(alpha(0.5), layers: explicit)
    case "TSQ 2 groups": plan = f.plan({ $0.alpha = 0.5; $0.smoothing = .timestep }, groups: 2, layers: explicit)
    case "asymmetric W, uint8": plan = f.plan({ $0.alpha = 0.5; $0.weightSymmetric = false; $0.activations = .uint8 }, layers: explicit)
    case "channel shift, TSQ 2 groups": plan = f.plan({ $0.alpha = 0.5; $0.smoothing = .timestep; $0.shift = true }, groups: 2, layers: explicit)
    case "patch embedding and final linear, W4":
        plan = f.plan({ $0.alpha = 0.5; $0.weightBits = 4 }, layers: explicit + [("x_embedder.proj", .object([("keep_fp", .bool(false))])),
                                                                       ("final_layer.linear", .object([("keep_fp", .bool(false)), ("rotation", .string("hadamard"))]))])
    case "rotated fc1 and fc2":
        plan = f.plan(alpha(0.5), layers: f.fixture.model.blockLinears.filter { $0.name.hasSuffix(".mlp.fc1") || $0.name.hasSuffix(".mlp.fc2") }
            .map { ($0.name, .object([("rotation", .string("hadamard"))])) })
    case "integer attention, TSQ 2 groups":
        plan = f.plan({ $0.alpha = 0.5; $0.smoothing = .timestep; $0.attentionProducts = .int8 }, groups: 2,
                      layers: explicit + [("temporal_blocks.3.cross_attn", .object([("attention_products", .string("float"))]))])
    default:
        plan = f.plan({ $0.alpha = 0.5; $0.activationGranularity = .group }, groups: 2, layers: [
            ("spatial_blocks.0.attn.qkv", .object([("keep_fp", .bool(true))])),        // float, V rows folded
            ("temporal_blocks.1.mlp.fc1", .object([("activations", .string("dynamic"))])),
            ("temporal_blocks.1.mlp.fc2", .object([("activations", .string("dynamic_uint8")), ("weight_symmetric", .bool(false))])),
        ])
    }
    let quantized = try QuantizedModel(model: f.fixture.model, statistics: f.fixture.statistics, plan: plan)
    let file = try f.roundTrip(quantized)
    let expected = try f.trajectory(QuantizedModelExecutor(model: quantized, mode: .int8))
    let got = try f.trajectory(QuantizedFileExecutor(file: file))
    #expect(got.count == 3)
    for (step, (a, b)) in zip(got, expected).enumerated() {
        let i = zip(a, b).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }?.offset
        #expect(i == nil, "\(variant), step \(step): the file's model differs at \(i ?? 0): \(a[i ?? 0]) vs \(b[i ?? 0])")
    }
    if variant.hasPrefix("channel shift") {
        #expect(file.layers["spatial_blocks.0.mlp.fc1"]?.shiftBias?.count == 3 * 512 && file.layers["spatial_blocks.0.mlp.fc2"]?.shiftBias == nil)
    }
    if variant.hasPrefix("patch embedding") {
        #expect(file.layers["x_embedder.proj"]?.weightSets.first?.values?.count == 128 * 96 && file.layers["final_layer.linear"]?.rotationBlock == 128)
    }
    if variant.hasPrefix("rotated") {
        #expect(file.layers["temporal_blocks.2.mlp.fc2"]?.rotationBlock == 512 && file.layers["temporal_blocks.2.attn.qkv"]?.rotationBlock == nil)
    }
    if variant.hasPrefix("integer attention") {
        #expect(file.attentionEncodings.count == 15 && file.attentionEncodings["temporal_blocks.3.cross_attn"] == nil)
        #expect(file.attentionEncodings["spatial_blocks.2.attn"] == quantized.attentionEncodings["spatial_blocks.2.attn"])
    }
    if variant.hasPrefix("group") {
        #expect(file.layers["spatial_blocks.0.attn.qkv"]?.weightSets[0].floatWeight != nil)
        #expect(file.layers["temporal_blocks.1.mlp.fc1"]?.dynamic == true)
        #expect(file.layers["temporal_blocks.1.mlp.fc2"]?.dynamic == true && file.layers["temporal_blocks.1.mlp.fc2"]?.activationKind == .asymmetricUInt8)
    }
}

/// Each exported modulation table row is the block's rows at that step's timestep with the
/// block's `1/s` folded in, computed here from the model and the fold vectors directly.
@Test func exportedModulationTablesAreTheFoldedRowsOfTheirTimesteps() throws {
    let f = try sharedExportFixture.get()
    let plan = f.plan({ $0.alpha = 0.5; $0.smoothing = .timestep }, groups: 2)
    let quantized = try QuantizedModel(model: f.fixture.model, statistics: f.fixture.statistics, plan: plan)
    let file = try f.roundTrip(quantized)
    for (step, t) in f.schedule.timesteps.enumerated() {
        for (block, rows) in try f.fixture.model.modulationRows(timestep: t, fps: f.sampler.fps) {
            var folded = rows
            if let fold = quantized.modulationFolds[block]?[quantized.groupOfStep[step]] {
                SmoothingFolds.fold(&folded, offset: 0, width: rows.count / 6, msa: fold.msa, mlp: fold.mlp)
            }
            let table = try #require(file.modulation[block])
            let exported = Array(table[(step * rows.count)..<((step + 1) * rows.count)])
            #expect(exported == folded, "\(block), step \(step) (t = \(t)): the exported modulation rows are not the folded rows of t")
            #expect(exported != rows || quantized.modulationFolds[block] == nil, "\(block), step \(step): no fold in the table")
        }
    }
}

/// `act_scale[k]` belongs to `sampler.t[k]`: the encodings of a per-step min-max plan, recomputed
/// here from the layers' inputs at timestep t_k on the calibration trajectory (not through the
/// sampler's step numbering), equal the exported ones.
@Test func exportedActivationScalesAreThoseOfTheirTimesteps() throws {
    let f = try sharedExportFixture.get()
    let quantized = try QuantizedModel(model: f.fixture.model, statistics: f.fixture.statistics, plan: f.plan { _ in })
    let file = try f.roundTrip(quantized)
    var latents = [f.noise.scalars] + (try f.trajectory(Float32Executor()))
    latents.removeLast()
    for (step, t) in f.schedule.timesteps.enumerated() {
        let capture = CapturingExecutor(pattern: "*")
        _ = try f.fixture.model.forward(try f.sampler.guidedInputs(Tensor(shape: f.noise.shape, scalars: latents[step]), condition: f.condition,
                                                                   timestep: t, height: 32, width: 32),
                                        executor: capture, step: nil)
        for layer in f.fixture.model.blockLinears {
            let inputs = capture.captures.filter { $0.layer == layer.name }.flatMap(\.input)
            let expected = ActivationEncoding.covering(min: inputs.min()!, max: inputs.max()!, kind: .symmetricInt8)
            let exported = try #require(file.layers[layer.name]).encodings[step]
            #expect(exported == expected, "\(layer.name), step \(step) (t = \(t)): exported scale \(exported.scale), the inputs at t need \(expected.scale)")
        }
    }
}

/// A file that does not match the format or the model is refused, naming the tensor.
@Test func badQuantizedFilesAreRefusedNamingTheTensor() throws {
    let f = try sharedExportFixture.get()
    let quantized = try QuantizedModel(model: f.fixture.model, statistics: f.fixture.statistics, plan: f.plan(alpha(0.5)))
    let directory = NSTemporaryDirectory() + "stsq-export-bad-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try QuantizedModelExport.write(quantized, model: f.fixture.model, fps: f.sampler.fps, to: directory)
    let original = try SafetensorsFile(path: directory + "/quantized.safetensors")
    func variant(_ name: String, _ edit: (inout [(String, DType, [Int], [UInt8])]) -> Void) throws -> String {
        var tensors = try original.names.map { n -> (String, DType, [Int], [UInt8]) in
            let v = try original.view(n)
            return (n, v.dtype, v.shape, Array(v.bytes))
        }
        edit(&tensors)
        var writer = SafetensorsWriter()
        writer.metadata = original.metadata
        for (n, d, s, b) in tensors { writer.add(n, dtype: d, shape: s, bytes: b) }
        let path = directory + "/\(name).safetensors"
        try writer.write(to: path)
        return path
    }
    let cases: [(String, String, (inout [(String, DType, [Int], [UInt8])]) -> Void)] = [
        ("missing", "spatial_blocks.1.mlp.fc2.act_scale", { $0.removeAll { $0.0 == "spatial_blocks.1.mlp.fc2.act_scale" } }),
        ("unexpected", "spatial_blocks.1.mlp.fc2.w0.extra", { $0.append(("spatial_blocks.1.mlp.fc2.w0.extra", .f32, [1], [0, 0, 0, 0])) }),
        ("dtype", "spatial_blocks.0.attn.proj.w0.weight_scale", { t in
            let i = t.firstIndex { $0.0 == "spatial_blocks.0.attn.proj.w0.weight_scale" }!
            t[i] = (t[i].0, .i32, t[i].2, t[i].3)
        }),
        ("range", "temporal_blocks.0.attn.qkv.act_range", { t in
            let i = t.firstIndex { $0.0 == "temporal_blocks.0.attn.qkv.act_range" }!
            t[i] = (t[i].0, .i32, [2], [0, 0, 0, 0, 7, 0, 0, 0])   // 0…7
        }),
    ]
    for (name, tensor, edit) in cases {
        let path = try variant(name, edit)
        #expect {
            _ = try QuantizedModelFile(path: path, model: f.fixture.model)
        } throws: { error in
            "\(error)".contains(tensor) && "\(error)".contains(path)
        }
    }
}

/// An export is one unit: the quantized file records its plan's digest, and a plan.json from
/// another run beside it (an export killed between its two renames) is refused, not mixed.
@Test func aQuantizedFileBesideAnotherPlanIsRefused() throws {
    let f = try sharedExportFixture.get()
    let directory = NSTemporaryDirectory() + "stsq-export-pair-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let first = try QuantizedModel(model: f.fixture.model, statistics: f.fixture.statistics, plan: f.plan(alpha(0.5)))
    let second = try QuantizedModel(model: f.fixture.model, statistics: f.fixture.statistics, plan: f.plan(alpha(0.25)))
    try QuantizedModelExport.write(first, model: f.fixture.model, fps: f.sampler.fps, to: directory)
    _ = try QuantizedModelFile(path: directory + "/quantized.safetensors", model: f.fixture.model)
    let firstPlan = try Data(contentsOf: URL(fileURLWithPath: directory + "/plan.json"))
    try QuantizedModelExport.write(second, model: f.fixture.model, fps: f.sampler.fps, to: directory)
    try firstPlan.write(to: URL(fileURLWithPath: directory + "/plan.json"))
    do {
        _ = try QuantizedModelFile(path: directory + "/quantized.safetensors", model: f.fixture.model)
        Issue.record("a quantized file beside another plan was read")
    } catch {
        #expect("\(error)".contains("another plan"), "\(error)")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["plan.json", "quantized.safetensors"])
}

/// An infinite channel range reaching the quantizer (statistics handed in, not read from a cache)
/// is a plan error naming the layer and step, for every estimator, never a trap in the int8 cast.
@Test(arguments: [LayerSettings.Estimator.minmax, .percentile, .mse])
func infiniteCalibrationRangesAreAnErrorNotACrash(estimator: LayerSettings.Estimator) throws {
    let f = try sharedExportFixture.get()
    var statistics = f.fixture.statistics
    let layer = "spatial_blocks.0.mlp.fc1"
    let s = try #require(statistics[layer]?[0])
    var maximum = s.channelMaximum
    maximum[3] = .infinity
    statistics[layer]![0] = LayerStepStatistics(width: s.width, channelMinimum: s.channelMinimum, channelMaximum: maximum,
                                                minimum: s.minimum, maximum: .infinity, histogram: s.histogram, rows: s.rows,
                                                reservoir: s.reservoir, reservoirCapacity: s.reservoirCapacity)
    do {
        _ = try QuantizedModel(model: f.fixture.model, statistics: statistics, plan: f.plan({ $0.alpha = 0.5; $0.estimator = estimator }))
        Issue.record("quantized from an infinite range")
    } catch let error as PlanError {
        #expect(error.description.contains(layer) && error.description.contains("±Inf"), "\(error)")
    }
}

/// 4-bit weights are exported two codes per byte (low nibble first, sign-extended on reading), an
/// odd row length padded; every code −8…7 survives the round trip, and a W4 model read back
/// samples the same bits (the variants above cover W8; this one the packed file).
@Test func fourBitWeightsArePackedTwoPerByteAndReadBack() throws {
    let codes: [Int8] = [-8, 7, -1, 0, 3, -5, 1,   6, -7, 2, -3, 4, 5, -2]
    let packed = Int4Packing.pack(codes, rows: 2, columns: 7)
    #expect(packed.count == Int4Packing.byteCount(rows: 2, columns: 7) && packed.count == 8)
    #expect(packed[0] == 0x78 && packed[3] == 0x01)            // (−8, 7) → 0x8 | 0x7 << 4; (1, pad)
    #expect(Int4Packing.unpack(packed, rows: 2, columns: 7) == codes)

    let f = try sharedExportFixture.get()
    let plan = f.plan({ $0.alpha = 0.5; $0.weightBits = 4 }, layers: [("spatial_blocks.0.mlp.fc2", .object([("weight_bits", .int(8))]))])
    let quantized = try QuantizedModel(model: f.fixture.model, statistics: f.fixture.statistics, plan: plan)
    let (file, stored) = try f.roundTripWithTensors(quantized)
    #expect(stored["spatial_blocks.0.mlp.fc1.w0.weight"]?.dtype == .u8 && stored["spatial_blocks.0.mlp.fc1.w0.weight"]?.shape == [512, 64])
    #expect(stored["spatial_blocks.0.mlp.fc2.w0.weight"]?.dtype == .i8)
    for layer in quantized.layers where layer.isQuantized {
        #expect(file.layers[layer.name]?.weightSets[0].values == layer.weightSets[0].quantized?.values, "\(layer.name)")
    }
    let expected = try f.trajectory(QuantizedModelExecutor(model: quantized, mode: .int8))
    let got = try f.trajectory(QuantizedFileExecutor(file: file))
    #expect(zip(got, expected).allSatisfy { a, b in zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern } })

    // Deployed bytes: the file's tensors but SmoothQuant's `s`, by kind; W4 at half a byte a code.
    let d = try QuantizedModelExport.deployedBytes(quantized, model: f.fixture.model, fps: f.sampler.fps)
    let stored4 = quantized.layers.filter { $0.isQuantized && $0.settings.weightBits == 4 }.reduce(0) { $0 + $1.weightSets.count * $1.outputs * (($1.inputs + 1) / 2) }
    let stored8 = quantized.layers.filter { $0.isQuantized && $0.settings.weightBits == 8 }.reduce(0) { $0 + $1.weightSets.count * $1.outputs * $1.inputs }
    #expect(d.integerWeights == stored4 + stored8 && stored8 == 128 * 512)
    let C = f.fixture.model.config.hiddenSize
    #expect(d.modulationTables == 8 * 3 * 6 * C * 4)
    #expect(d.captionProjections > 0 && d.activationEncodings == 56 * (3 * 8 + 8) && d.inputMultipliers == 0)
    let fileBytes = stored.filter { !$0.key.hasSuffix(".smoothing") }.values.reduce(0) { $0 + $1.shape.reduce($1.dtype.size, *) }
    #expect(d.total == fileBytes && d.floatWeights == 0)
    // A layer kept in float with nothing folded into it is not exported, but is deployed.
    var keptPlan = plan
    keptPlan.layers.append(("temporal_blocks.3.mlp.fc2", .object([("keep_fp", .bool(true))])))
    let kept = try QuantizedModel(model: f.fixture.model, statistics: f.fixture.statistics, plan: keptPlan)
    let fc2 = try #require(f.fixture.model.blockLinears.first { $0.name == "temporal_blocks.3.mlp.fc2" })
    #expect(try QuantizedModelExport.deployedBytes(kept, model: f.fixture.model, fps: f.sampler.fps).floatWeights
            == 4 * fc2.outputs * (fc2.inputs + (fc2.bias == nil ? 0 : 1)))
}

/// The file's fake-quant path (what other implementations are checked against) follows the
/// model's fake-quant path: the same trajectory up to the float rounding of folded tables.
@Test(arguments: ["default", "channel shift, TSQ 2 groups, uint8"])
func exportedModelFakeQuantFollowsTheModelsFakeQuant(variant: String) throws {
    let f = try sharedExportFixture.get()
    let plan = variant == "default" ? f.plan({ _ in })
        : f.plan({ $0.alpha = 0.5; $0.smoothing = .timestep; $0.shift = true; $0.activations = .uint8 }, groups: 2,
                 layers: explicitLayerOverrides(f.fixture.model, alpha: 0.5))
    let quantized = try QuantizedModel(model: f.fixture.model, statistics: f.fixture.statistics, plan: plan)
    let file = try f.roundTrip(quantized)
    let expected = try f.trajectory(QuantizedModelExecutor(model: quantized, mode: .fakeQuant))
    let got = try f.trajectory(QuantizedFileExecutor(file: file, fakeQuant: true))
    let fp = try f.trajectory(Float32Executor())
    for step in 0..<3 {
        let error = zip(got[step], expected[step]).map { Double(($0 - $1) * ($0 - $1)) }.reduce(0, +)
        let quantization = zip(fp[step], expected[step]).map { Double(($0 - $1) * ($0 - $1)) }.reduce(0, +)
        #expect(error <= 1e-6 * quantization, "\(variant), step \(step): file vs model \(error), quantization \(quantization)")
    }
}

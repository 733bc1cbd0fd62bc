import Foundation
import Tensors
import VideoDiT

/// The quantized model's encodings for a static-integer NPU toolchain: AIMET/QAIRT encodings JSON
/// (format "0.6.1", what QNN's `--quantization_overrides` reads) and the integer-only details a
/// static runtime needs, written beside the `stsq` export (`plan.json`, `quantized.safetensors`).
///
/// Files in the export folder:
/// - `encodings/index.json`: per sampler step, its timestep, its weight set and the encodings file
///   it uses; per tensor, the code range and rounding rule;
/// - `encodings/encodings_<k>.json`: one per distinct static configuration (per step when the
///   activation scales are per step, fewer when steps share them); `activation_encodings` keyed
///   `<layer>.input` (the linear's input, after any explicit `1/s` multiply), `param_encodings`
///   keyed `<layer>.weight` (the folded weights, one entry per output channel);
/// - `encodings/integer.safetensors`: per static layer, `<layer>.bias_int32` I32 `[S, C]` and
///   `<layer>.dequant_multiplier` F32 `[S, C]`.
///
/// Conventions. AIMET codes are unsigned: `real = (q + offset)·scale`, `q ∈ [0, 2^b − 1]`. Ours are
/// `real = (c − z)·Δ`; int8 codes map by `q = c + 128`, so `offset = −128 − z` (−z for uint8), and
/// b-bit weights by `q = c + 2^(b−1)`. The integer product of a layer at step `s`, output channel
/// `c`, is `acc = Σ_k c_x,k·(c_w,ck − zw_c) + bias_int32[s, c]` and `y = acc·dequant_multiplier[s, c]`,
/// with `dequant_multiplier = Δx_s·Δw_c` and `bias_int32 = rne((b_c + shift_c,s)/(Δx_s·Δw_c)) −
/// z_s·Σ_k (c_w,ck − zw_c)`: the fake-quant output to within half a bias step, `0.5·Δx·Δw_c`.
public enum AIMETExport {
    public static let format = "stsq-aimet/1"

    /// Writes the `stsq` export, then `encodings/` (each file atomically). Returns the files written.
    public static func write(_ q: QuantizedModel, model: VideoModel & ModulatedBlocks, fps: Float, to directory: String) throws -> [String] {
        // AIMET's encodings describe a layer's own input and its float ops; an online rotation or
        // an integer attention product has no entry there, and leaving it out would deploy another model.
        if let rotated = q.layers.first(where: { $0.rotationBlock != nil }) {
            throw QuantizedFileError("\(rotated.name): a Hadamard-rotated input has no AIMET encoding; export this plan as stsq")
        }
        if let attention = q.attentionEncodings.keys.sorted().first {
            throw QuantizedFileError("\(attention): integer attention products have no AIMET encoding; export this plan as stsq")
        }
        try QuantizedModelExport.write(q, model: model, fps: fps, to: directory)
        let folder = directory + "/encodings"
        try OutputFolder.create(folder)
        var files: [String] = [], fileOfStep: [Int] = [], contents: [String: Int] = [:]
        for step in 0..<q.plan.steps {
            let text = encodings(q, step: step).serialized(pretty: true)
            if let k = contents[text] { fileOfStep.append(k); continue }
            let k = files.count
            contents[text] = k
            files.append("encodings_\(k).json")
            fileOfStep.append(k)
            try AtomicFile.write(Array(text.utf8), to: folder + "/" + files[k])
        }
        try (try integerTensors(q)).write(to: folder + "/integer.safetensors")
        let index = JSONValue.object([
            ("format", .string(format)), ("aimet_version", .string("0.6.1")),
            ("checkpoint_hash", .string(q.plan.checkpointHash)), ("calibration", .string(q.plan.calibration.digest)),
            ("plan_fnv1a", .string(QuantizedModelExport.planDigest(Array(q.plan.json.serialized(pretty: true).utf8)))),
            ("steps", .array((0..<q.plan.steps).map { s in
                .object([("step", .int(s)), ("t", .float(q.plan.timesteps[s])), ("weight_set", .int(q.groupOfStep[s])),
                         ("encodings", .string(files[fileOfStep[s]]))])
            })),
            ("tensors", .object(q.layers.filter(\.isQuantized).map { ($0.name, tensorEntry($0)) })),
            ("excluded_layers", .array(excluded(q).map { .string($0) })),
            ("integer", .string("integer.safetensors")),
        ])
        try AtomicFile.write(Array(index.serialized(pretty: true).utf8), to: folder + "/index.json")
        return ["plan.json", "quantized.safetensors"] + (files + ["integer.safetensors", "index.json"]).map { "encodings/" + $0 }
    }

    /// Layers an AIMET file cannot describe statically: kept in float, or dynamic (per token).
    static func excluded(_ q: QuantizedModel) -> [String] { q.layers.filter { !$0.isStatic }.map(\.name) }

    /// The AIMET encodings of one sampler step: its activation encodings and its weight set's.
    public static func encodings(_ q: QuantizedModel, step: Int) -> JSONValue {
        var activations: [(String, JSONValue)] = [], params: [(String, JSONValue)] = []
        for layer in q.layers where layer.isStatic {
            activations.append((layer.name + ".input", .array([activationEntry(layer.encoding(step: step))])))
            if let w = layer.weightSets[layer.setIndex(step: step)].quantized {
                params.append((layer.name + ".weight", .array(weightEntries(w))))
            }
        }
        let bits = q.layers.first(where: \.isStatic)?.settings.weightBits ?? 8
        return .object([
            ("version", .string("0.6.1")),
            ("activation_encodings", .object(activations)),
            ("param_encodings", .object(params)),
            ("excluded_layers", .array(excluded(q).map { .string($0) })),
            ("quantizer_args", .object([("activation_bitwidth", .int(8)), ("param_bitwidth", .int(bits)), ("dtype", .string("int")),
                                        ("per_channel_quantization", .bool(true)), ("quant_scheme", .string("post_training_tf"))])),
        ])
    }

    /// AIMET's `offset` of an activation encoding: int8 codes shift by 128 into AIMET's unsigned range.
    public static func offset(_ e: ActivationEncoding) -> Int {
        (e.kind == .symmetricInt8 ? -128 : 0) - Int(e.zeroPoint)
    }

    static func entry(bits: Int, symmetric: Bool, scale: Float, offset: Int) -> JSONValue {
        let levels = (1 << bits) - 1
        return .object([("bitwidth", .int(bits)), ("dtype", .string("int")), ("is_symmetric", .string(symmetric ? "True" : "False")),
                        ("max", .double(Double(offset + levels) * Double(scale))), ("min", .double(Double(offset) * Double(scale))),
                        ("offset", .int(offset)), ("scale", .float(scale))])
    }

    static func activationEntry(_ e: ActivationEncoding) -> JSONValue {
        entry(bits: 8, symmetric: e.kind == .symmetricInt8 && e.zeroPoint == 0, scale: e.scale, offset: offset(e))
    }

    /// One entry per output channel: `offset = −2^(b−1) − zw_c`.
    static func weightEntries(_ w: QuantizedWeights) -> [JSONValue] {
        (0..<w.outputs).map { c in
            entry(bits: w.bits, symmetric: w.zeroPoints[c] == 0, scale: w.scales[c], offset: -(1 << (w.bits - 1)) - Int(w.zeroPoints[c]))
        }
    }

    static func tensorEntry(_ layer: QuantizedLayer) -> JSONValue {
        let bits = layer.settings.weightBits, q = (1 << (bits - 1)) - 1
        let symmetric = layer.weightSets.allSatisfy { $0.quantized?.isSymmetric ?? true }
        var members: [(String, JSONValue)] = []
        if layer.isStatic {
            let codes = layer.settings.activations.kind.codes
            members.append(("input", .object([("qmin", .int(Int(codes.lowerBound))), ("qmax", .int(Int(codes.upperBound))),
                                              ("rounding", .string("half_to_even")),
                                              ("explicit_multiplier", .bool(layer.fold == .explicit && layer.smoothing.contains { $0 != nil }))])))
        } else {
            members.append(("input", .object([("dynamic", .bool(true))])))
        }
        members.append(("weight", .object([("qmin", .int(symmetric ? -q : -q - 1)), ("qmax", .int(q)), ("per_channel", .bool(true)),
                                           ("rounding", .string(layer.settings.weightRounding == .gptq ? "gptq" : "half_away_from_zero"))])))
        return .object(members)
    }

    /// `bias_int32` and `dequant_multiplier` `[S, C]` of every static layer (see the type's doc).
    /// - Throws: `QuantizedFileError` naming the layer when a bias does not fit 32 bits.
    public static func integerTensors(_ q: QuantizedModel) throws -> SafetensorsWriter {
        var writer = SafetensorsWriter()
        writer.metadata = [("format", format), ("plan_fnv1a", QuantizedModelExport.planDigest(Array(q.plan.json.serialized(pretty: true).utf8)))]
        for layer in q.layers where layer.isStatic {
            let C = layer.outputs, K = layer.inputs, S = q.plan.steps
            var bias = [Int32](repeating: 0, count: S * C), multiplier = [Float](repeating: 0, count: S * C)
            // Σ_k (c_w − zw) per channel and weight set, for the activation zero point's term.
            let rowSums: [[Int64]] = layer.weightSets.map { set in
                guard let w = set.quantized else { return [Int64](repeating: 0, count: C) }
                return (0..<C).map { c in (0..<K).reduce(Int64(0)) { $0 + Int64(w.values[c * K + $1]) - Int64(w.zeroPoints[c]) } }
            }
            for s in 0..<S {
                let g = layer.setIndex(step: s), set = layer.weightSets[g], e = layer.encoding(step: s)
                guard let w = set.quantized else { continue }
                for c in 0..<C {
                    let step = Double(e.scale) * Double(w.scales[c])
                    let b = Double(set.bias?[c] ?? 0) + Double(layer.shiftBias?[s][c] ?? 0)
                    let value = (b / step).rounded(.toNearestOrEven) - Double(Int64(e.zeroPoint) * rowSums[g][c])
                    guard value.magnitude <= Double(Int32.max) else {
                        throw QuantizedFileError("\(layer.name): the int32 bias of channel \(c) at step \(s) is \(value) (bias \(b) over Δx·Δw \(step)); it does not fit 32 bits")
                    }
                    bias[s * C + c] = Int32(value)
                    multiplier[s * C + c] = Float(step)
                }
            }
            writer.add(layer.name + ".bias_int32", dtype: .i32, shape: [S, C], elements: bias)
            writer.add(layer.name + ".dequant_multiplier", Tensor(shape: [S, C], scalars: multiplier))
        }
        return writer
    }
}

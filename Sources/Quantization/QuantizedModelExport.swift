import Foundation
import Tensors
import VideoDiT

/// Writes a quantized model as a deployable folder: `plan.json` and `quantized.safetensors`.
///
/// Tensors (`S` steps, `G` step groups, `w<g>` one weight set, `w0` only when aggregated):
/// - `<layer>.w<g>.weight` I8 `[C, K]`, or for weights of 4 bits U8 `[C, ⌈K/2⌉]` two codes per byte
///   (`Int4Packing`; F32 `[C, K]` for a layer kept in float whose rows carry a fold),
///   `.weight_scale` F32 `[C]`, `.bias` F32 `[C]` (folded), `.smoothing` F32 `[K]` (SmoothQuant's
///   `s`, where α > 0), `.input_multiplier` F32 `[K]` (`1/s`, only for explicit folds);
/// - `<layer>.act_scale` F32 `[S]`, `<layer>.act_zero_point` I32 `[S]` for static layers, and for
///   every quantized layer `<layer>.act_range` I32 `[2]`: the code range (qmin, qmax) — −127…127
///   for int8, 0…255 for uint8; a quantized layer without `act_scale` is dynamic (per token);
/// - `<layer>.bias_shift` F32 `[S, C]` for a layer with a channel shift (`attn.qkv`, `mlp.fc1`):
///   per step, `W'·(z/s)`, added to the product's output with the bias; and `<layer>.channel_shift`
///   F32 `[S, K]`, the `z` itself (folded into the modulation table already: for runtimes, such as
///   `stsq-collect`'s fake-quant on PyTorch, that compute modulation rows themselves);
/// - `<block>.modulation` F32 `[S, 6, C]`: the per-step modulation rows with `1/s` and any channel
///   shift folded in (shift, scale, gate of attention, then of the MLP; the model adds `1 + scale`);
/// - `<block>.caption_projection.w<g>.weight` / `.bias`: the block's folded `y_proj.fc2`;
/// - `step_group` I32 `[S]`.
/// The bytes depend only on the model, the statistics and the plan, so rebuilding reproduces them.
/// `QuantizedModelFile` reads the file back.
public enum QuantizedModelExport {
    public static let format = "stsq-quantized/6"
    /// Formats this build reads: /2 stored every integer weight as I8; /3 packs 4-bit weights;
    /// /4 adds per-step `bias_shift` (channel shifts); /5 adds the shifts `channel_shift` themselves.
    public static let readableFormats = ["stsq-quantized/2", "stsq-quantized/3", "stsq-quantized/4", "stsq-quantized/5", format]

    /// Writes `quantized.safetensors` then `plan.json` into `directory`, each atomically. The
    /// quantized file records the FNV-1a of the plan's bytes (`plan_fnv1a`), so a pair from two
    /// different runs (one interrupted between the renames) is refused when read. A folder this call
    /// created is removed again if writing fails.
    public static func write(_ q: QuantizedModel, model: VideoModel & ModulatedBlocks, fps: Float, to directory: String) throws {
        try intoFolder(directory) { try write(q, model: model, fps: fps, into: directory) }
    }

    /// Writes `plan.json` alone (atomically), as the export of a plan without its model does. A
    /// `quantized.safetensors` already in the folder that was built from another plan is refused
    /// first: the new plan beside it would make the pair unreadable, and the old pair would be lost.
    public static func writePlan(_ plan: QuantizationPlan, to directory: String) throws {
        let bytes = Array(plan.json.serialized(pretty: true).utf8)
        let model = directory + "/quantized.safetensors"
        if FileInput.exists(model) {
            let recorded = (try? SafetensorsFile(path: model))?.metadataValue("plan_fnv1a")
            guard recorded == planDigest(bytes) else {
                throw QuantizedFileError("\(model) was built from another plan: writing plan.json alone beside it would leave it without its plan; export the quantized model too, or choose another folder")
            }
        }
        try intoFolder(directory) { try AtomicFile.write(bytes, to: directory + "/plan.json") }
    }

    /// Runs `body` with `directory` created; a folder this call created is removed if it fails.
    private static func intoFolder(_ directory: String, _ body: () throws -> Void) throws {
        let created = !FileInput.exists(directory)
        try OutputFolder.create(directory)
        do { try body() } catch {
            if created { try? FileManager.default.removeItem(atPath: directory) }
            throw error
        }
    }

    /// FNV-1a (hex) of a plan file's bytes, as recorded in the quantized file.
    public static func planDigest(_ bytes: [UInt8]) -> String { CalibrationCache.hash(ofBytes: bytes) }

    private static func write(_ q: QuantizedModel, model: VideoModel & ModulatedBlocks, fps: Float, into directory: String) throws {
        let planBytes = Array(q.plan.json.serialized(pretty: true).utf8)
        let w = try tensors(q, model: model, fps: fps, planBytes: planBytes)
        try w.write(to: directory + "/quantized.safetensors")
        try AtomicFile.write(planBytes, to: directory + "/plan.json")
    }

    /// What a runtime needs of the export, in bytes, by kind: everything `quantized.safetensors`
    /// holds except SmoothQuant's `s` (kept for inspection; it is folded everywhere it acts).
    public struct DeployedBytes: Sendable, Equatable {
        /// Integer weights as stored: one byte per code at 5–8 bits, two codes per byte at 4.
        public var integerWeights = 0
        /// Float32 weights and biases of layers kept in float (folded copies, or the checkpoint's).
        public var floatWeights = 0
        /// Δw and zero points per output channel, and folded biases.
        public var weightScalesAndBiases = 0
        /// Explicit per-channel input multipliers (`1/s` of `fc2`, `q_linear`).
        public var inputMultipliers = 0
        /// Static activation scales, zero points and code ranges.
        public var activationEncodings = 0
        /// Per-step modulation tables `[S, 6, C]` per block (the `1/s` of `qkv`/`fc1` folded in).
        public var modulationTables = 0
        /// Folded copies of `y_embedder.y_proj.fc2` (the `1/s` of `kv_linear`).
        public var captionProjections = 0
        /// The step → group table.
        public var other = 0

        public var total: Int {
            integerWeights + floatWeights + weightScalesAndBiases + inputMultipliers + activationEncodings + modulationTables
                + captionProjections + other
        }
    }

    /// The deployed bytes of `q`'s export, counted from the tensors the export writes.
    public static func deployedBytes(_ q: QuantizedModel, model: VideoModel & ModulatedBlocks, fps: Float) throws -> DeployedBytes {
        var d = DeployedBytes()
        let counts = try tensors(q, model: model, fps: fps, planBytes: []).byteCounts
        // A layer kept in float without a fold is not in the export (the runtime uses the
        // checkpoint's own weights) but is deployed all the same: its float32 weights and bias.
        let exported = Set(counts.map(\.name))
        for layer in q.layers where !layer.isQuantized && !exported.contains(layer.name + ".w0.weight") {
            d.floatWeights += 4 * layer.outputs * (layer.inputs + (layer.weightSets[0].bias == nil ? 0 : 1))
        }
        for (name, bytes) in counts {
            let kind = name.split(separator: ".").last.map(String.init) ?? name
            if name.contains(".caption_projection.") { d.captionProjections += bytes; continue }
            switch kind {
            case "weight": if q[String(name.split(separator: ".").dropLast(2).joined(separator: "."))]?.isQuantized == true { d.integerWeights += bytes } else { d.floatWeights += bytes }
            case "weight_scale", "weight_zero_point", "bias", "bias_shift": d.weightScalesAndBiases += bytes
            case "input_multiplier": d.inputMultipliers += bytes
            case "act_scale", "act_zero_point", "act_range", "q_scale", "k_scale", "v_scale", "p_scale": d.activationEncodings += bytes
            case "modulation": d.modulationTables += bytes
            case "smoothing": break
            default: d.other += bytes
            }
        }
        return d
    }

    private static func tensors(_ q: QuantizedModel, model: VideoModel & ModulatedBlocks, fps: Float, planBytes: [UInt8]) throws -> SafetensorsWriter {
        var w = SafetensorsWriter()
        w.metadata = [("format", format), ("checkpoint_hash", q.plan.checkpointHash), ("calibration", q.plan.calibration.digest),
                      ("fps", "\(fps)"), ("plan_fnv1a", planDigest(planBytes))]
        let S = q.plan.steps
        for layer in q.layers {
            // A float layer is written only where the plan changed its weights.
            guard layer.isQuantized || layer.weightSets.count > 1 || layer.smoothing.contains(where: { $0 != nil })
                || layer.weightSets[0].weight != model.blockLinears.first(where: { $0.name == layer.name })?.weight else { continue }
            for (g, set) in layer.weightSets.enumerated() {
                let p = "\(layer.name).w\(g)"
                if let qw = set.quantized {
                    if qw.bits <= 4 {
                        // Two codes per byte, as an int4 runtime reads them (`Int4Packing`).
                        w.add(p + ".weight", dtype: .u8, shape: [layer.outputs, (layer.inputs + 1) / 2],
                              bytes: Int4Packing.pack(qw.values, rows: layer.outputs, columns: layer.inputs))
                    } else {
                        w.add(p + ".weight", dtype: .i8, shape: [layer.outputs, layer.inputs], elements: qw.values)
                    }
                    w.add(p + ".weight_scale", Tensor(shape: [layer.outputs], scalars: qw.scales))
                    if !qw.isSymmetric { w.add(p + ".weight_zero_point", dtype: .i32, shape: [layer.outputs], elements: qw.zeroPoints) }
                } else {
                    w.add(p + ".weight", Tensor(shape: [layer.outputs, layer.inputs], scalars: set.weight))
                }
                if let b = set.bias { w.add(p + ".bias", Tensor(shape: [layer.outputs], scalars: b)) }
                if let s = layer.smoothing[g] { w.add(p + ".smoothing", Tensor(shape: [layer.inputs], scalars: s)) }
                if let m = layer.explicitInverse(set: g) { w.add(p + ".input_multiplier", Tensor(shape: [layer.inputs], scalars: m)) }
            }
            if layer.isStatic {
                w.add(layer.name + ".act_scale", Tensor(shape: [S], scalars: layer.encodings.map(\.scale)))
                w.add(layer.name + ".act_zero_point", dtype: .i32, shape: [S], elements: layer.encodings.map(\.zeroPoint))
            }
            if let bias = layer.shiftBias {
                w.add(layer.name + ".bias_shift", Tensor(shape: [S, layer.outputs], scalars: Array(bias.joined())))
            }
            if let block = layer.rotationBlock {
                w.add(layer.name + ".hadamard_block", dtype: .i32, shape: [1], elements: [Int32(block)])
            }
            if let z = layer.channelShift {
                w.add(layer.name + ".channel_shift", Tensor(shape: [S, layer.inputs], scalars: Array(z.joined())))
            }
            if layer.isQuantized {
                let codes = layer.settings.activations.kind.codes
                w.add(layer.name + ".act_range", dtype: .i32, shape: [2], elements: [codes.lowerBound, codes.upperBound])
            }
        }
        // Integer attention products: per step Δq, Δk, Δv (symmetric int8, zero point 0) and Δp
        // (P's uint8 grid over [0, 1], zero point 0).
        for (attention, perStep) in q.attentionEncodings.sorted(by: { $0.key < $1.key }) {
            w.add(attention + ".q_scale", Tensor(shape: [S], scalars: perStep.map(\.q.scale)))
            w.add(attention + ".k_scale", Tensor(shape: [S], scalars: perStep.map(\.k.scale)))
            w.add(attention + ".v_scale", Tensor(shape: [S], scalars: perStep.map(\.v.scale)))
            w.add(attention + ".p_scale", Tensor(shape: [1], scalars: [perStep[0].p.scale]))
        }
        let perStep = try q.plan.timesteps.map { try model.modulationRows(timestep: $0, fps: fps) }
        for (b, (block, rows)) in perStep[0].enumerated() {
            let C = rows.count / 6
            var table: [Float] = []
            for step in 0..<S {
                var r = perStep[step][b].rows
                let fold = q.modulationFolds[block]?[q.groupOfStep[step]], shift = q.modulationShifts[block]?[step]
                if fold != nil || shift != nil {
                    SmoothingFolds.fold(&r, offset: 0, width: C, msa: fold?.msa, mlp: fold?.mlp, msaShift: shift?.msa, mlpShift: shift?.mlp)
                }
                table += r
            }
            w.add(block + ".modulation", Tensor(shape: [S, 6, C], scalars: table))
            for (g, projection) in (q.captionProjections[block] ?? []).enumerated() {
                let (o, i) = q.captionProjectionShape
                w.add("\(block).caption_projection.w\(g).weight", Tensor(shape: [o, i], scalars: projection.weight))
                if let bias = projection.bias { w.add("\(block).caption_projection.w\(g).bias", Tensor(shape: [o], scalars: bias)) }
            }
        }
        w.add("step_group", dtype: .i32, shape: [S], elements: q.groupOfStep.map(Int32.init))
        return w
    }

    /// `quantize --explain`: per layer, its settings, fold and deployed sizes.
    /// `sqnr`: local SQNR per layer (dB, `LayerSQNR.local`), appended to each quantized layer's line
    /// as the workbench's plan screen shows it.
    public static func explain(_ q: QuantizedModel, sqnr: [String: Double] = [:], deployed: DeployedBytes? = nil) -> [String] {
        var lines: [String] = []
        for l in q.layers {
            let s = l.settings
            guard l.isQuantized else {
                lines.append("\(l.name): kept in float" + (l.weightSets.count > 1 ? " (\(l.weightSets.count) folded weight sets)" : ""))
                continue
            }
            let acts = s.activations.isDynamic ? "dynamic per-token \(s.activations == .dynamic ? "int8" : "uint8 (asymmetric)")"
                : "\(s.activations.rawValue) per-tensor, \(s.activationGranularity.rawValue) scales (\(l.deployedEncodings)), \(s.estimator.rawValue)"
            var line = "\(l.name): W\(s.weightBits) \(s.weightGranularity.rawValue)\(s.weightSymmetric ? "" : " asymmetric") \(s.weightClip.rawValue)"
                + (s.weightRounding == .gptq ? " GPTQ-rounded" : "") + " · A \(acts)"
            if l.smoothing.contains(where: { $0 != nil }) {
                let alpha = s.smoothing == .timestep && s.groupAlpha != nil ? "α per group \(s.groupAlpha!)" : "α=\(s.alpha)"
                line += " · SmoothQuant \(alpha) \(s.smoothing.rawValue) (\(l.weightSets.count) weight set\(l.weightSets.count == 1 ? "" : "s")): \(l.fold)"
                if s.smoothing == .aggregated, let g = s.groupAlpha { line += " (group_alpha \(g) ignored: aggregated smoothing has one α)" }
            } else if s.smooths {
                line += " · α=\(s.alpha) ignored (\(s.activations.isDynamic ? "dynamic activations" : "kept in float"))"
            } else if l.weightSets.count > 1 {
                line += " · \(l.weightSets.count) weight sets (a consumer's time-step-wise 1/s is folded into its rows)"
            }
            if l.channelShift != nil {
                line += " · channel shift per \(s.activationGranularity.rawValue) (z folded into the modulation shift row, W·z/s into a per-step bias)"
            }
            if let block = l.rotationBlock {
                line += " · input rotated online by a Hadamard transform (blocks of \(block); W·Hᵀ folded into the weights)"
            }
            if let db = sqnr[l.name] { line += String(format: " · local SQNR %.1f dB", db) }
            lines.append(line)
        }
        let copies = q.captionProjections.values.reduce(0) { $0 + $1.count } * q.captionProjectionShape.outputs * (q.captionProjectionShape.inputs + 1) * 4
        for (attention, perStep) in q.attentionEncodings.sorted(by: { $0.key < $1.key }) {
            lines.append("\(attention): integer QKᵀ and P·V · q, k, v int8 per-tensor, \(Set(perStep).count) encodings over \(perStep.count) steps · P uint8 on [0, 1] (Δp = 1/255) · softmax float32")
        }
        lines.append("weights \(q.weightBytes) bytes, activation scales \(q.scaleBytes) bytes; float fold copies of y_proj.fc2 \(copies) bytes")
        if let d = deployed {
            lines.append("deployed \(d.total) bytes: integer weights \(d.integerWeights), float weights \(d.floatWeights), weight scales and biases \(d.weightScalesAndBiases), "
                         + "input multipliers \(d.inputMultipliers), activation encodings \(d.activationEncodings), modulation tables \(d.modulationTables), "
                         + "caption projections \(d.captionProjections), step groups \(d.other)")
        }
        return lines
    }
}

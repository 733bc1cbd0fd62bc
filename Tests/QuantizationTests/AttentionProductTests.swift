import Foundation
import Testing
import Tensors
@testable import Quantization
@testable import VideoDiT

// Integer attention products (QKᵀ, P·V): the oneDNN path against a scalar integer reference,
// the plan setting, the encodings a model derives (v after the projection's folded 1/s), the
// calibration taps, and the export.

private func randomValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var generator = NoiseGenerator(seed: seed)
    return generator.gaussian(shape: [count]).scalars.map { $0 * scale }
}

private let encodings = AttentionEncodings(q: .covering(min: -3, max: 3, kind: .symmetricInt8),
                                           k: .covering(min: -2.5, max: 2.5, kind: .symmetricInt8),
                                           v: .covering(min: -4, max: 4, kind: .symmetricInt8))

/// The scalar reference of one attention on integers, `q`, `k` `[sequences, n, H·D]`, `v` rows
/// `vStride` apart: codes, Σ in Int64, `Float(Σ)·multiplier`, the engine's softmax on those scores.
private func referenceAttention(q: [Float], k: [Float], v: [Float], vStride: Int, sequences: Int, queries: Int, keys: Int,
                                heads: Int, headDim d: Int, _ e: AttentionEncodings) throws -> [Float] {
    let c = heads * d
    var out = [Float](repeating: 0, count: sequences * queries * c)
    for s in 0..<sequences {
        for h in 0..<heads {
            var scores = [Float](repeating: 0, count: queries * keys)
            for i in 0..<queries {
                for j in 0..<keys {
                    var sum: Int64 = 0
                    for t in 0..<d {
                        sum += Int64(e.q.code(q[(s * queries + i) * c + h * d + t])) * Int64(e.k.code(k[(s * keys + j) * c + h * d + t]))
                    }
                    scores[i * keys + j] = Float(sum) * e.scoreMultiplier(headDim: d)
                }
            }
            try scores.withUnsafeMutableBufferPointer { try Ops.softmaxRows($0.baseAddress!, rows: queries, width: keys) }
            for i in 0..<queries {
                for t in 0..<d {
                    var sum: Int64 = 0
                    for j in 0..<keys {
                        sum += Int64(e.p.code(scores[i * keys + j]) - e.p.zeroPoint) * Int64(e.v.code(v[(s * keys + j) * vStride + h * d + t]))
                    }
                    out[(s * queries + i) * c + h * d + t] = Float(sum) * e.outputMultiplier
                }
            }
        }
    }
    return out
}

private func firstDifference(_ a: [Float], _ b: [Float]) -> Int? {
    zip(a, b).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }?.offset
}

/// Self-attention on integers equals the scalar reference bit for bit; v read from inside wider
/// rows (the fused qkv output), values beyond the ranges clamp.
@Test func integerSelfAttentionEqualsTheScalarIntegerReference() throws {
    let (sequences, n, heads, d) = (3, 7, 2, 8)
    let c = heads * d
    let q = randomValues(sequences * n * c, seed: 1, scale: 1.5), k = randomValues(sequences * n * c, seed: 2, scale: 1.2)
    let fused = randomValues(sequences * n * 3 * c, seed: 3, scale: 2)
    var out = [Float](repeating: 0, count: sequences * n * c)
    try q.withUnsafeBufferPointer { qp in
        try k.withUnsafeBufferPointer { kp in
            try fused.withUnsafeBufferPointer { vp in
                try out.withUnsafeMutableBufferPointer { op in
                    try Attention.selfAttention(q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress! + 2 * c, vRowStride: 3 * c,
                                                sequences: sequences, length: n, heads: heads, headDim: d, encodings: encodings,
                                                out: op.baseAddress!)
                }
            }
        }
    }
    let v = Array(fused.dropFirst(2 * c))
    let expected = try referenceAttention(q: q, k: k, v: v, vStride: 3 * c, sequences: sequences, queries: n, keys: n,
                                          heads: heads, headDim: d, encodings)
    let i = firstDifference(out, expected)
    #expect(i == nil, "differs at \(i ?? 0): \(out[i ?? 0]) vs \(expected[i ?? 0])")
    #expect(out.contains { $0 != 0 })
}

/// Cross-attention on integers, per sample over its own packed caption tokens (one sample with
/// none), equals the scalar reference bit for bit.
@Test func integerCrossAttentionEqualsTheScalarIntegerReference() throws {
    let (n, heads, d) = (5, 2, 8), lengths = [3, 0, 6]
    let c = heads * d, total = lengths.reduce(0, +)
    let q = randomValues(lengths.count * n * c, seed: 4, scale: 1.5)
    let kv = randomValues(total * 2 * c, seed: 5, scale: 2)
    var out = [Float](repeating: 0, count: lengths.count * n * c)
    try q.withUnsafeBufferPointer { qp in
        try kv.withUnsafeBufferPointer { kp in
            try out.withUnsafeMutableBufferPointer { op in
                try Attention.crossAttention(q: qp.baseAddress!, kv: kp.baseAddress!, lengths: lengths, queries: n, heads: heads,
                                             headDim: d, encodings: encodings, out: op.baseAddress!)
            }
        }
    }
    var offset = 0
    for (b, length) in lengths.enumerated() {
        let got = Array(out[(b * n * c)..<((b + 1) * n * c)])
        defer { offset += length }
        guard length > 0 else {
            #expect(got.allSatisfy { $0 == 0 })
            continue
        }
        let rows = Array(kv[(offset * 2 * c)..<((offset + length) * 2 * c)])
        let k = (0..<length).flatMap { rows[($0 * 2 * c)..<($0 * 2 * c + c)] }
        let expected = try referenceAttention(q: Array(q[(b * n * c)..<((b + 1) * n * c)]), k: k, v: Array(rows.dropFirst(c)), vStride: 2 * c,
                                              sequences: 1, queries: n, keys: length, heads: heads, headDim: d, encodings)
        let i = firstDifference(got, expected)
        #expect(i == nil, "sample \(b) differs at \(i ?? 0)")
    }
}

/// A reduction whose sums pass 2^24 (P·V over 600 tokens of codes 255 × 127) is cut into exact
/// pieces: the result is `Float(Σ)·multiplier` of the Int64 sum, where one float32 product
/// would round its partial sums; a short one is the same in one piece or many.
@Test func integerProductsStayExactPastFloat32sIntegerRange() throws {
    let keys = 600
    let p = (0..<keys).map { Float($0 % 7 == 3 ? 254 : 255) }
    let v = (0..<keys).map { Float($0 % 5 == 1 ? 126 : 127) }
    let a = MatrixBatch.contiguous([1, 1, keys]), b = MatrixBatch.contiguous([1, keys, 1]), c = MatrixBatch.contiguous([1, 1, 1])
    let exact: Int64 = zip(p, v).reduce(0) { $0 + Int64($1.0) * Int64($1.1) }
    let multiplier: Float = 0.013
    var got: Float = 0
    try IntegerAttention.product(a: p, a, b: v, b, c: &got, c, multiplier: multiplier, exactTerms: IntegerAttention.exactTerms(255, 127))
    #expect(IntegerAttention.exactTerms(255, 127) < keys)
    #expect(abs(exact) > 1 << 24)
    #expect(got.bitPattern == (Float(exact) * multiplier).bitPattern)

    let short = Array(p.prefix(100)), shortV = Array(v.prefix(100))
    var whole: Float = 0, pieces: Float = 0
    let sa = MatrixBatch.contiguous([1, 1, 100]), sb = MatrixBatch.contiguous([1, 100, 1])
    try IntegerAttention.product(a: short, sa, b: shortV, sb, c: &whole, c, multiplier: multiplier, exactTerms: 1000)
    try IntegerAttention.product(a: short, sa, b: shortV, sb, c: &pieces, c, multiplier: multiplier, exactTerms: 7)
    #expect(whole.bitPattern == pieces.bitPattern)
}

/// Integer attention is a quantization of float attention, not something else: on operands
/// inside their ranges the output's SQNR against float32 is that of 8-bit codes (measured 35 dB
/// here; 25 dB leaves room for the seed).
@Test func integerAttentionTracksFloatAttention() throws {
    let (sequences, n, heads, d) = (2, 16, 2, 8)
    let c = heads * d
    let q = randomValues(sequences * n * c, seed: 7), k = randomValues(sequences * n * c, seed: 8), v = randomValues(sequences * n * c, seed: 9)
    func run(_ e: AttentionEncodings?) throws -> [Float] {
        var out = [Float](repeating: 0, count: sequences * n * c)
        try Attention.selfAttention(q: q, k: k, v: v, vRowStride: c, sequences: sequences, length: n, heads: heads, headDim: d,
                                    encodings: e, out: &out)
        return out
    }
    let e = AttentionEncodings(q: .covering(min: -4, max: 4, kind: .symmetricInt8), k: .covering(min: -4, max: 4, kind: .symmetricInt8),
                               v: .covering(min: -4, max: 4, kind: .symmetricInt8))
    let float = try run(nil), integer = try run(e)
    let sqnr = sqnrDB(reference: float, approximation: integer)
    #expect(sqnr > 25, "SQNR \(sqnr) dB")
    #expect(float != integer)
}

// MARK: The plan

@Test func planTakesAttentionProductsOnAttentionsBlocksAndDefaults() throws {
    let f = try sharedSmoothQuantFixture.get()
    let names = f.model.blockLinears.map(\.name)
    #expect(QuantizationPlan.attentions(layerNames: names).prefix(2) == ["spatial_blocks.0.attn", "spatial_blocks.0.cross_attn"])
    var plan = f.plan({ $0.attentionProducts = .int8 }, layers: [("spatial_blocks.1.cross_attn", .object([("attention_products", .string("float"))]))])
    try plan.validate(layerNames: names)
    // A block kept in float keeps its products float.
    var kept = plan
    kept.blocks = [("temporal_blocks.2", .object([("keep_fp", .bool(true))]))]
    let model = try QuantizedModel(model: f.model, statistics: f.statistics, plan: kept)
    #expect(model.attentionEncodings["temporal_blocks.2.attn"] == nil && model.attentionEncodings["temporal_blocks.1.attn"] != nil)
    #expect(model.attentionEncodings.count == 13)
    plan = try QuantizationPlan(json: plan.json, source: "plan.json")
    #expect(try plan.settings(for: "spatial_blocks.1.cross_attn", foldable: false).attentionProducts == .float)
    #expect(try plan.settings(for: "spatial_blocks.1.attn", foldable: false).attentionProducts == .int8)
    let reread = try QuantizationPlan(json: try JSONValue.parse(plan.json.serialized()), source: "plan.json")
    #expect(reread == plan)
    #expect(!f.plan({ _ in }).json.serialized().contains("attention_products"), "a float plan's JSON is unchanged")

    func refused(_ name: String, _ entry: JSONValue) -> String? {
        do { try f.plan({ _ in }, layers: [(name, entry)]).validate(layerNames: names); return nil } catch { return "\(error)" }
    }
    #expect(refused("spatial_blocks.0.attn.qkv", .object([("attention_products", .string("int8"))]))?.contains("set it on the attention (spatial_blocks.0.attn)") == true)
    #expect(refused("spatial_blocks.0.attn", .object([("alpha", .double(0.5))]))?.contains("an attention takes only") == true)
    #expect(refused("spatial_blocks.0.attn", .object([("attention_products", .string("int4"))]))?.contains("must be one of \"float\", \"int8\"") == true)
    #expect(refused("spatial_blocks.9.attn", .object([("attention_products", .string("int8"))]))?.contains("no such quantizable layer or attention") == true)
}

// MARK: Calibration and the model

/// Calibration records q (after qk-norm and RoPE), k and v of every attention per step: the
/// self-attention's rows are its tokens, the cross-attention's keys the packed caption tokens.
@Test func calibrationRecordsEveryAttentionsOperands() throws {
    let f = try sharedSmoothQuantFixture.get()
    for a in QuantizationPlan.attentions(layerNames: f.model.blockLinears.map(\.name)) {
        for operand in AttentionOperand.allCases {
            let perStep = try #require(f.statistics[operand.name(of: a)], "\(a) \(operand)")
            #expect(perStep.keys.sorted() == [0, 1, 2])
            #expect(perStep[0]!.width == 128 && perStep[0]!.maximum > 0)
        }
        let q = f.statistics[AttentionOperand.q.name(of: a)]![1]!, k = f.statistics[AttentionOperand.k.name(of: a)]![1]!
        let qkv = f.statistics[a + (a.hasSuffix("cross_attn") ? ".q_linear" : ".qkv")]![1]!
        #expect(q.rows == qkv.rows, "\(a): one q row per token")
        if a.hasSuffix("cross_attn") {
            #expect(k.rows == f.statistics[a + ".kv_linear"]![1]!.rows, "\(a): one k row per caption token")
        } else {
            #expect(k.rows == q.rows)
        }
    }
}

/// q and k encodings cover their calibrated ranges; v's covers v as the product sees it, divided
/// by the `s` of the projection folded into the V rows (per step group with time-step-wise smoothing).
@Test func attentionEncodingsCoverTheOperandsAsTheProductsSeeThem() throws {
    let f = try sharedSmoothQuantFixture.get()
    let plan = f.plan({ $0.alpha = 0.5; $0.smoothing = .timestep; $0.attentionProducts = .int8 }, groups: 2)
    let quantized = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan)
    #expect(quantized.attentionEncodings.count == 16)
    let linearsOnly = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan({ $0.alpha = 0.5; $0.smoothing = .timestep }, groups: 2))
    #expect(quantized.scaleBytes == linearsOnly.scaleBytes + 16 * (3 * 12 + 4), "Δq, Δk, Δv per step and Δp per attention")
    for a in ["spatial_blocks.1.attn", "temporal_blocks.0.cross_attn"] {
        let e = try #require(quantized.attentionEncodings[a])
        for step in 0..<3 {
            let q = f.statistics[a + ".q"]![step]!, v = f.statistics[a + ".v"]![step]!
            #expect(e[step].q == .covering(min: q.minimum, max: q.maximum, kind: .symmetricInt8))
            let s = try #require(quantized[a + ".proj"]?.smoothing[quantized.groupOfStep[step]])
            var lo = Float.infinity, hi = -Float.infinity
            for c in 0..<v.width {
                lo = min(lo, v.channelMinimum[c] / s[c])
                hi = max(hi, v.channelMaximum[c] / s[c])
            }
            #expect(e[step].v == .covering(min: lo, max: hi, kind: .symmetricInt8), "\(a) step \(step)")
            #expect(e[step].p == AttentionEncodings.probabilities)
        }
    }
    #expect(QuantizedModelExport.explain(quantized).contains { $0.hasPrefix("spatial_blocks.0.attn: integer QKᵀ and P·V") })
}

/// The whole model with integer attention products stays close to the same plan with float ones
/// (block linears quantized alike) and is not equal to it. Measured 31–33 dB on the fixture;
/// 20 dB is the floor for "a quantization of the same computation".
@Test func integerAttentionProductsTrackTheFloatAttentionPlan() throws {
    let f = try sharedSmoothQuantFixture.get()
    let linearsOnly = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan({ $0.alpha = 0.5 }))
    let all = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan({ $0.alpha = 0.5; $0.attentionProducts = .int8 }))
    for step in [0, 2] {
        let a = try f.model.forward(f.inputs, executor: QuantizedModelExecutor(model: linearsOnly, mode: .int8), step: step).scalars
        let b = try f.model.forward(f.inputs, executor: QuantizedModelExecutor(model: all, mode: .int8), step: step).scalars
        #expect(a != b)
        let sqnr = sqnrDB(reference: a, approximation: b)
        #expect(sqnr > 20, "step \(step): \(sqnr) dB")
        // In `.float` mode the products stay float: folding is still exact.
        let folded = try f.model.forward(f.inputs, executor: QuantizedModelExecutor(model: all, mode: .float), step: step).scalars
        let plain = try f.model.forward(f.inputs, executor: QuantizedModelExecutor(model: linearsOnly, mode: .float), step: step).scalars
        #expect(folded == plain)
    }
}

/// A calibration without operand statistics (an older cache, a collector's) is refused with the
/// name of what is missing, not quantized from nothing.
@Test func attentionProductsWithoutOperandStatisticsAreRefused() throws {
    let f = try sharedSmoothQuantFixture.get()
    var statistics = f.statistics
    statistics["spatial_blocks.0.attn.k"] = nil
    let plan = f.plan({ $0.attentionProducts = .int8 })
    #expect(throws: PlanError.self) { try QuantizedModel(model: f.model, statistics: statistics, plan: plan) }
    do { _ = try QuantizedModel(model: f.model, statistics: statistics, plan: plan) } catch {
        #expect("\(error)".contains("spatial_blocks.0.attn.k at step 0") && "\(error)".contains("recalibrate"))
    }
    _ = try QuantizedModel(model: f.model, statistics: statistics, plan: f.plan({ $0.alpha = 0.5 }))
}

// MARK: Hadamard rotation

/// The fast transform equals the dense block-diagonal Sylvester–Hadamard matrix (scaled by
/// 1/√block) applied to each row, within float32 rounding of log2(block) additions (1e-6 of the
/// row's magnitude), and is its own inverse.
@Test func hadamardRotationIsTheBlockDiagonalHadamardMatrixAndItsOwnInverse() throws {
    #expect(HadamardRotation.blockSize(width: 1152) == 128 && HadamardRotation.blockSize(width: 4608) == 512)
    #expect(HadamardRotation.blockSize(width: 512) == 512 && HadamardRotation.blockSize(width: 72) == 8)
    let (rows, width, block) = (3, 24, 8)
    let x = randomValues(rows * width, seed: 21, scale: 3)
    var h: [[Float]] = [[1]]
    while h.count < block { h = h.map { $0 + $0 } + h.map { $0 + $0.map { -$0 } } }
    let rotated = HadamardRotation.rotated(x, width: width, block: block)
    for r in 0..<rows {
        for start in stride(from: 0, to: width, by: block) {
            for i in 0..<block {
                var expected = 0.0
                for j in 0..<block { expected += Double(h[i][j]) * Double(x[r * width + start + j]) }
                expected /= Double(block).squareRoot()
                #expect(abs(Double(rotated[r * width + start + i]) - expected) <= 1e-6 * 8, "row \(r), channel \(start + i)")
            }
        }
    }
    let back = HadamardRotation.rotated(rotated, width: width, block: block)
    #expect(zip(back, x).allSatisfy { abs($0 - $1) <= 1e-5 })
}

/// Calibration records the range of every rotated row, as a rotation of the rows shows it.
@Test func calibrationRecordsTheRangeOfTheRotatedInput() throws {
    let (rows, width) = (40, 48)
    let x = randomValues(rows * width, seed: 22).enumerated().map { $0.offset % width == 5 ? $0.element * 30 : $0.element }
    var st = LayerStepStatistics(width: width)
    x.withUnsafeBufferPointer { st.observe($0.baseAddress!, rows: rows) }
    let rotated = HadamardRotation.rotated(x, width: width, block: st.rotationBlock)
    #expect(st.rotationBlock == 16)
    #expect(st.rotatedMinimum == rotated.min()! && st.rotatedMaximum == rotated.max()!)
    #expect(st.rotatedMaximum < st.maximum / 2, "the outlier channel's energy is spread over its block")
}

/// Rotation is exact algebra: the folded float model with every layer's input rotated (W·Hᵀ in
/// the weights, H·x online) equals the original, within the tolerance of
/// `foldedFloatModelEqualsTheOriginal`; quantized, the int8 path equals the file's.
@Test func rotatedLayersFoldExactlyAndExportTheirRotation() throws {
    let f = try sharedSmoothQuantFixture.get()
    let plan = f.plan({ $0.alpha = 0.5; $0.rotation = .hadamard })
    let quantized = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan)
    let fc2 = try #require(quantized["spatial_blocks.0.mlp.fc2"])
    #expect(fc2.rotationBlock == 512 && fc2.smoothing == [nil] && quantized["spatial_blocks.0.attn.qkv"]?.rotationBlock == 128)
    #expect(quantized.modulationFolds.isEmpty, "a rotated layer takes no α, so nothing folds")
    try expectFoldedModelEqualsTheOriginal(quantized, f)
    let st = f.statistics["spatial_blocks.0.mlp.fc2"]![1]!
    #expect(fc2.encoding(step: 1) == .covering(min: st.rotatedMinimum, max: st.rotatedMaximum, kind: .symmetricInt8))
    let explained = QuantizedModelExport.explain(quantized).filter { $0.hasPrefix("spatial_blocks.0.mlp.fc2") }
    #expect(explained.count == 1 && explained[0].contains("rotated online by a Hadamard transform (blocks of 512;"), "\(explained)")
    #expect(throws: QuantizedFileError.self) { try AIMETExport.write(quantized, model: f.model, fps: 24, to: NSTemporaryDirectory() + "stsq-aimet-\(UUID().uuidString)") }

    // Rotation refuses smoothing in the same layer entry; a block's α simply does not reach it.
    let refused = f.plan({ _ in }, layers: [("spatial_blocks.0.mlp.fc1", .object([("rotation", .string("hadamard")), ("alpha", .double(0.5))]))])
    #expect(throws: PlanError.self) { try refused.validate(layerNames: f.model.blockLinears.map(\.name)) }
}

/// The transform's unrolled first stages give the bits of plain radix-2 butterflies (so a
/// calibration's rotated ranges do not depend on which is run).
@Test func hadamardRotationsUnrolledStagesAreTheRadix2Butterflies() throws {
    for block in [8, 16, 128] {
        let x = randomValues(3 * block, seed: UInt64(block), scale: 7)
        var expected = x
        for start in stride(from: 0, to: x.count, by: block) {
            var h = 1
            while h < block {
                for i in stride(from: 0, to: block, by: 2 * h) {
                    for j in i..<(i + h) {
                        let a = expected[start + j], b = expected[start + j + h]
                        expected[start + j] = a + b
                        expected[start + j + h] = a - b
                    }
                }
                h *= 2
            }
            for i in 0..<block { expected[start + i] *= 1 / Float(block).squareRoot() }
        }
        let got = HadamardRotation.rotated(x, width: block, block: block)
        #expect(firstDifference(got, expected) == nil, "block \(block)")
    }
}

// MARK: The layers outside the blocks

/// The patch embedding and the final linear stay float unless their own entry quantizes them (no
/// default or block reaches them); quantized, they get per-step encodings from their calibrated
/// inputs (flattened patches; the final layer's modulated rows) and a local SQNR like any layer.
@Test func outerLinearsAreQuantizedOnlyByTheirOwnEntry() throws {
    let f = try sharedSmoothQuantFixture.get()
    let names = f.model.quantizableLinears.map(\.name)
    #expect(f.model.outerLinears.map(\.name) == ["x_embedder.proj", "final_layer.linear"])
    #expect(f.model.outerLinears[0].inputs == 3 * 2 * 4 * 4 && f.model.outerLinears[1].inputs == 128)
    let plain = try QuantizedModel(model: f.model, statistics: f.statistics, plan: f.plan({ $0.alpha = 0.5; $0.weightBits = 6 }))
    #expect(plain["x_embedder.proj"] == nil && plain["final_layer.linear"] == nil && plain.layers.count == 56)
    let outer: [(String, JSONValue)] = [("x_embedder.proj", .object([("keep_fp", .bool(false))])),
                                        ("final_layer.linear", .object([("keep_fp", .bool(false)), ("activations", .string("uint8"))]))]
    let plan = f.plan({ $0.alpha = 0.5; $0.weightBits = 6 }, layers: outer)
    let quantized = try QuantizedModel(model: f.model, statistics: f.statistics, plan: plan)
    let embed = try #require(quantized["x_embedder.proj"]), final = try #require(quantized["final_layer.linear"])
    #expect(embed.settings.weightBits == 6 && embed.smoothing == [nil] && final.settings.activations == .uint8)
    let st = f.statistics["x_embedder.proj"]![2]!
    #expect(embed.encoding(step: 2) == .covering(min: st.minimum, max: st.maximum, kind: .symmetricInt8))
    let sqnr = try LayerSQNR.local(quantized, model: f.model, statistics: f.statistics)
    #expect(sqnr["x_embedder.proj"] != nil && sqnr["final_layer.linear"] != nil)
    // A forward with them quantized differs from one without, by a quantization's error.
    let a = try f.model.forward(f.inputs, executor: QuantizedModelExecutor(model: plain, mode: .int8), step: 1).scalars
    let b = try f.model.forward(f.inputs, executor: QuantizedModelExecutor(model: quantized, mode: .int8), step: 1).scalars
    let db = sqnrDB(reference: a, approximation: b)
    #expect(a != b && db > 15, "\(db) dB")

    var refused = f.plan({ _ in }, layers: [("final_layer.linear", .object([("keep_fp", .bool(false)), ("alpha", .double(0.5))]))])
    #expect(throws: PlanError.self) { try refused.validate(layerNames: names) }
    refused = f.plan({ _ in }, layers: [("x_embedder.proj", .object([("keep_fp", .bool(false))]))])
    #expect(throws: PlanError.self) { try refused.validate(layerNames: f.model.blockLinears.map(\.name)) }
}

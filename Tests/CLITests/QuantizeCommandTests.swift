import Foundation
import Testing
import Tensors

/// `plan` → `quantize` on the demo model with a 2-prompt, 2-step calibration in a private cache.
struct QuantizeWorkspace {
    let directory = NSTemporaryDirectory() + "stsq-quantize-\(UUID().uuidString)"
    var cache: String { directory + "/cache" }
    var plan: String { directory + "/plan.json" }

    init(arguments: [String] = ["--alpha", "0.5", "--smoothing", "timestep", "--groups", "2"]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let prompts = directory + "/prompts.txt"
        try "# two prompts\na red circle moving left on a blue background\na green square growing on a black background\n"
            .write(toFile: prompts, atomically: true, encoding: .utf8)
        let result = try runTool(["plan", "--calibration-prompts", prompts, "--steps", "2", "--cache-directory", cache,
                                  "--out", plan] + arguments)
        #expect(result.status == 0, "\(result.stderr)")
    }

    func planJSON() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: plan))) as? [String: Any])
    }

    /// A copy of the plan with one edit, written beside it.
    func edited(_ edit: (inout [String: Any]) -> Void) throws -> String {
        var json = try planJSON()
        edit(&json)
        let path = directory + "/edited-\(UUID().uuidString).json"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        return path
    }

    func quantize(_ plan: String, out: String? = nil, explain: Bool = false) throws -> CommandResult {
        try runTool(["quantize", "--plan", plan, "--cache-directory", cache] + (out.map { ["--out", $0] } ?? []) + (explain ? ["--explain"] : []))
    }
}

@Test func quantizeWritesTheModelExplainsTheFoldsAndReproducesItsBytes() throws {
    let w = try QuantizeWorkspace()
    let first = try w.quantize(w.plan, out: w.directory + "/a", explain: true)
    #expect(first.status == 0, "\(first.stderr)")
    #expect(first.stdout.contains("spatial_blocks.0.attn.proj: W8 per-channel minmax"))
    #expect(first.stdout.contains("folded into the V rows and bias of spatial_blocks.0.attn.qkv"))
    #expect(first.stdout.contains("folded into the block's per-step modulation table"))
    #expect(first.stdout.contains("folded into the block's copy of y_embedder.y_proj.fc2"))
    // Time-step-wise with 2 groups: 2 weight sets per smoothed layer.
    #expect(first.stdout.contains("timestep (2 weight sets)"))
    let second = try w.quantize(w.directory + "/a/plan.json", out: w.directory + "/b")
    #expect(second.status == 0, "\(second.stderr)")
    for file in ["quantized.safetensors", "plan.json"] {
        let a = try Data(contentsOf: URL(fileURLWithPath: w.directory + "/a/" + file))
        let b = try Data(contentsOf: URL(fileURLWithPath: w.directory + "/b/" + file))
        #expect(a == b, "\(file) differs between the plan and its reopened copy")
    }
    let listing = try runTool(["inspect", w.directory + "/a/quantized.safetensors"])
    #expect(listing.stdout.contains("spatial_blocks.0.attn.qkv.w1.weight"))
    #expect(listing.stdout.contains("spatial_blocks.0.modulation"))
    #expect(listing.stdout.contains("spatial_blocks.0.mlp.fc2.act_scale"))
    let written = w.directory + "/a/quantized.safetensors"
    try expectFiniteValues(in: written, ["spatial_blocks.0.attn.qkv.w1.weight_scale", "spatial_blocks.0.mlp.fc2.act_scale",
                                         "spatial_blocks.0.modulation", "spatial_blocks.0.attn.qkv.w0.bias"], bound: 1e4)
    let scales = try SafetensorsFile(path: written).tensor("spatial_blocks.0.mlp.fc2.act_scale").scalars
    #expect(scales.count == 2 && scales.allSatisfy { $0 > 0 } && scales[0] != scales[1], "per-step scales \(scales)")
}

@Test func badPlansAreRefusedNamingTheField() throws {
    let w = try QuantizeWorkspace(arguments: [])
    let cases: [(String, (inout [String: Any]) -> Void)] = [
        ("defaults.weight_bits", { var d = $0["defaults"] as! [String: Any]; d["weight_bits"] = 9; $0["defaults"] = d }),
        ("blocks.\"spatial_blocks.1\".alpha", { $0["blocks"] = ["spatial_blocks.1": ["alpha": 1.5]] }),
        ("layers.\"spatial_blocks.9.attn.qkv\"", { $0["layers"] = ["spatial_blocks.9.attn.qkv": ["weight_bits": 4]] }),
        ("layers.\"spatial_blocks.0.attn.qkv\".smoothing", { $0["layers"] = ["spatial_blocks.0.attn.qkv": ["smoothing": "sometimes"]] }),
        ("checkpoint.hash", { var c = $0["checkpoint"] as! [String: Any]; c["hash"] = "0123456789abcdef"; $0["checkpoint"] = c }),
        ("sampler.t", { var s = $0["sampler"] as! [String: Any]; s["t"] = [1000, 900]; $0["sampler"] = s }),
        ("step_groups", { $0["step_groups"] = [[0, 0]] }),
        ("version", { $0["version"] = 7 }),
        // Strict decoding (issue 15): a typo or a wrong type never falls back to a default.
        ("defualts", { $0["defualts"] = ["alpha": 0.5] }),
        ("checkpoint.architecture", { var c = $0["checkpoint"] as! [String: Any]; c["architecture"] = 5; $0["checkpoint"] = c }),
        ("checkpoint.architecture", { var c = $0["checkpoint"] as! [String: Any]; c["architecture"] = NSNull(); $0["checkpoint"] = c }),
        ("sampler.t[1]", { var s = $0["sampler"] as! [String: Any]; var t = s["t"] as! [Any]; t[1] = "x"; s["t"] = t; $0["sampler"] = s }),
        ("sampler.t[0]", { var s = $0["sampler"] as! [String: Any]; var t = s["t"] as! [Any]; t[0] = NSNull(); s["t"] = t; $0["sampler"] = s }),
        ("calibration.prompts[0]", { var c = $0["calibration"] as! [String: Any]; c["prompts"] = [5]; $0["calibration"] = c }),
        ("sampler.stepz", { var s = $0["sampler"] as! [String: Any]; s["stepz"] = 2; $0["sampler"] = s }),
        // Once an arithmetic overflow (SIGILL) on upperBound + 1.
        ("step_groups[0]", { $0["step_groups"] = [[0, Int.max], [0, 1]] }),
    ]
    for (field, edit) in cases {
        let result = try w.quantize(try w.edited(edit), explain: true)
        #expect(result.status == 1, "\(field): status \(result.status)")
        #expect(result.stderr.contains(field), "\(field) not named in: \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
    }
}

@Test func evalPrintsTheHeadlineRowsAsJSON() throws {
    let w = try QuantizeWorkspace()
    let prompts = w.directory + "/eval.txt"
    try "a yellow triangle moving up on a white background\n".write(toFile: prompts, atomically: true, encoding: .utf8)
    let result = try runTool(["eval", "--calibration-prompts", w.directory + "/prompts.txt", "--steps", "2",
                              "--cache-directory", w.cache, "--prompts", prompts, "--seeds", "0",
                              "--rows", "static_w8a8_per_step,tsq_w4a8", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    let rows = try #require(object["rows"] as? [[String: Any]])
    #expect(rows.map { $0["id"] as? String } == ["fp32", "static_w8a8_per_step", "tsq_w4a8"])
    for key in ["psnr_db", "ssim", "flicker_ratio", "prompt_fidelity", "step_error", "worst_sqnr_db", "weight_bytes", "scale_bytes"] {
        #expect(rows.allSatisfy { $0.keys.contains(key) }, "\(key) missing")
    }
    #expect(rows[0]["psnr_db"] is NSNull && rows[0]["step_error"] as? Double == 0 && rows[0]["worst_step_sqnr_db"] is NSNull)
    // One step's worst cell can only be worse than the figure pooled over both steps.
    for row in rows.dropFirst() {
        let pooled = try #require(row["worst_sqnr_db"] as? Double), step = try #require(row["worst_step_sqnr_db"] as? Double)
        #expect(step <= pooled + 1e-9 && step > pooled - 20, "\(row)")
    }
    // Measured 2026-11-30: per-step W8A8 38.1 dB (avx512_core_bf16) and 37.8 dB (avx2), W4A8 19.1 dB;
    // SSIM 0.990, step error 1.3e-3. The floors sit ~3 dB under: saturated int8 sums cost ~4 dB.
    #expect((rows[1]["psnr_db"] as? Double ?? 0) > 35 && (rows[1]["ssim"] as? Double ?? 0) > 0.98, "\(rows[1])")
    #expect((rows[1]["step_error"] as? Double ?? 0) > 0 && (rows[1]["step_error"] as? Double ?? 1) < 3e-3, "\(rows[1])")
    #expect((rows[2]["psnr_db"] as? Double ?? 0) > 17, "\(rows[2])")
    #expect(rows[1]["prompt_fidelity"] as? Double != nil)
    // 56 layers × 2 steps × 8 bytes of scales; W4 with one weight set per step for the smoothed layers.
    #expect(rows[1]["scale_bytes"] as? Int == 56 * 2 * 8)
    #expect(rows[0]["weight_bytes"] as? Int == 4 * (rows[1]["weight_bytes"] as? Int ?? 0))
    #expect((rows[2]["weight_bytes"] as? Int ?? 0) > (rows[1]["weight_bytes"] as? Int ?? 0) / 2)
    let bad = try runTool(["eval", "--rows", "nonsense", "--cache-directory", w.cache])
    #expect(bad.status == 1 && bad.stderr.contains("nonsense"))
}

/// `eval --plan` scores a plan file as a row: a plan equal to a standard row's settings gives that
/// row's figures exactly (same calibration, same int8 path); plans of different calibrations are
/// refused before anything runs.
@Test func evalScoresAPlanFileAsARow() throws {
    let w = try QuantizeWorkspace()           // α 0.5, time-step-wise, 2 groups: the tsq_w8a8 row with --groups 2
    let prompts = w.directory + "/eval.txt"
    try "a yellow triangle moving up on a white background\n".write(toFile: prompts, atomically: true, encoding: .utf8)
    let result = try runTool(["eval", "--plan", w.plan, "--rows", "tsq_w8a8", "--groups", "2", "--cache-directory", w.cache,
                              "--prompts", prompts, "--seeds", "0", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    let rows = try #require(object["rows"] as? [[String: Any]])
    #expect(rows.map { $0["id"] as? String } == ["fp32", "tsq_w8a8", "plan1"])
    for key in ["psnr_db", "ssim", "step_error", "worst_sqnr_db", "weight_bytes", "scale_bytes"] {
        #expect((rows[1][key] as? NSNumber) == (rows[2][key] as? NSNumber), "\(key): \(rows[1][key] ?? "nil") vs \(rows[2][key] ?? "nil")")
    }
    let other = try w.edited { var c = $0["calibration"] as! [String: Any]; c["seeds"] = [1]; $0["calibration"] = c }
    let mixed = try runTool(["eval", "--plan", w.plan, "--plan", other, "--cache-directory", w.cache, "--prompts", prompts])
    #expect(mixed.status == 1 && mixed.stderr.contains("must share a calibration"), "\(mixed.stderr)")
}

@Test func planFieldsThatChangeTheCalibrationAreCheckedToo() throws {
    let w = try QuantizeWorkspace(arguments: [])
    let cases: [(String, (inout [String: Any]) -> Void)] = [
        ("calibration.seeds[1]", { var c = $0["calibration"] as! [String: Any]; c["seeds"] = [0, "x"]; $0["calibration"] = c }),
        ("calibration.sampler", { var c = $0["calibration"] as! [String: Any]; c["sampler"] = "ddim"; $0["calibration"] = c }),
        ("sampler.cfg_scale", { var s = $0["sampler"] as! [String: Any]; s["cfg_scale"] = 9; $0["sampler"] = s }),
        ("step_groups[0]", { $0["step_groups"] = [[0, "x"]] }),
    ]
    for (field, edit) in cases {
        let result = try w.quantize(try w.edited(edit), explain: true)
        #expect(result.status == 1 && result.stderr.contains(field), "\(field) not named in: \(result.stderr)")
    }
}

/// A damaged cache entry is never used: `quantize` says so, recalibrates, and writes the same
/// bytes as from the intact entry.
@Test func quantizeRecalibratesADamagedCacheAndSaysSo() throws {
    let w = try QuantizeWorkspace()
    let first = try w.quantize(w.plan, out: w.directory + "/a")
    #expect(first.status == 0, "\(first.stderr)")
    let entries = try FileManager.default.contentsOfDirectory(atPath: w.cache).filter { !$0.hasPrefix(".") }
    let statistics = w.cache + "/" + (try #require(entries.first)) + "/statistics.safetensors"
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: statistics)))
    for i in stride(from: bytes.count - 64, to: bytes.count, by: 1) { bytes[i] = UInt8(truncatingIfNeeded: i &* 31) }
    try Data(bytes).write(to: URL(fileURLWithPath: statistics))
    let second = try w.quantize(w.plan, out: w.directory + "/b")
    #expect(second.status == 0 && second.stderr.contains("is damaged") && second.stderr.contains("recalibrating"), "\(second.stderr)")
    #expect(FileManager.default.contents(atPath: w.directory + "/a/quantized.safetensors")
            == FileManager.default.contents(atPath: w.directory + "/b/quantized.safetensors"))
}

/// `plan --auto` on one block: a report line per searched block with fit and held-out figures and
/// the layer that holds the most error, entries for that block only, and a plan `quantize` takes
/// (with the `--shift` and `--gptq` defaults it was started from).
/// A block the model does not have is refused before anything runs, naming it.
@Test func planAutoSearchesTheNamedBlockAndReportsHeldOutFigures() throws {
    let w = try QuantizeWorkspace(arguments: ["--alpha", "0.5", "--shift", "--gptq", "--auto", "--auto-blocks", "temporal_blocks.1",
                                              "--auto-grid", "1", "--auto-prompts", "1", "--held-out-prompts", "1"])
    let json = try w.planJSON()
    let blocks = try #require(json["blocks"] as? [String: Any]), layers = try #require(json["layers"] as? [String: Any])
    #expect(Set(blocks.keys).isSubset(of: ["temporal_blocks.1"]) && layers.keys.allSatisfy { $0.hasPrefix("temporal_blocks.1.") })
    let quantized = try w.quantize(w.plan, out: w.directory + "/q", explain: true)
    #expect(quantized.status == 0, "\(quantized.stderr)")
    // --shift and --gptq reach the model: the explanation names them on the layers they apply to.
    let lines = quantized.stdout.split(separator: "\n")
    #expect(lines.contains { $0.hasPrefix("spatial_blocks.0.mlp.fc1:") && $0.contains("GPTQ-rounded") && $0.contains("channel shift per step") })
    #expect(lines.contains { $0.hasPrefix("spatial_blocks.0.mlp.fc2:") && $0.contains("GPTQ-rounded") && !$0.contains("channel shift") })
    #expect(try SafetensorsFile(path: w.directory + "/q/quantized.safetensors").names.contains("spatial_blocks.0.mlp.fc1.bias_shift"))
    let again = try runTool(["plan", "--calibration-prompts", w.directory + "/prompts.txt", "--steps", "2", "--cache-directory", w.cache,
                             "--out", w.directory + "/again.json", "--alpha", "0.5", "--shift", "--gptq", "--auto", "--auto-blocks", "temporal_blocks.1",
                             "--auto-grid", "1", "--auto-prompts", "1", "--held-out-prompts", "1"])
    #expect(again.status == 0, "\(again.stderr)")
    let report = again.stdout.split(separator: "\n").map(String.init)
    let line = try #require(report.first { $0.contains("temporal_blocks.1") && $0.contains("held out") }, "\(again.stdout)")
    #expect(line.contains("fit") && line.contains("→") && line.contains("α "))
    #expect(report.contains { $0.contains("alone (SQNR dB") })
    #expect(!report.contains { $0.contains("spatial_blocks.0 ") })
    #expect(try Data(contentsOf: URL(fileURLWithPath: w.directory + "/again.json")) == Data(contentsOf: URL(fileURLWithPath: w.plan)),
            "the search is deterministic")
    let wrong = try runTool(["plan", "--calibration-prompts", w.directory + "/prompts.txt", "--steps", "2", "--cache-directory", w.cache,
                             "--out", w.directory + "/x.json", "--auto", "--auto-blocks", "blocks.9"])
    #expect(wrong.status != 0 && wrong.stderr.contains("blocks.9 is not a block"), "\(wrong.stderr)")
}

/// `export --format onnx-qdq` runs the Python exporter of tools/stsq_collect (tested with ONNX
/// Runtime in tools/stsq_collect/tests/test_onnx.py); without a Python that has it, the error says
/// what is needed, and the stsq export it was to convert is still written whole.
@Test func onnxExportWithoutItsPythonSaysWhatItNeeds() throws {
    let w = try QuantizeWorkspace(arguments: [])
    let out = w.directory + "/onnx-export"
    let result = try runTool(["export", "--plan", w.plan, "--cache-directory", w.cache, "--out", out, "--format", "onnx-qdq",
                              "--python", "/nonexistent/python3"])
    #expect(result.status != 0)
    #expect(result.stderr.contains("stsq_collect, torch and onnx") && result.stderr.contains("/nonexistent/python3"), "\(result.stderr)")
    #expect(FileManager.default.fileExists(atPath: out + "/quantized.safetensors"))
    let unknown = try runTool(["export", "--plan", w.plan, "--cache-directory", w.cache, "--out", out, "--format", "onnx"])
    #expect(unknown.status != 0 && unknown.stderr.contains("stsq, aimet or onnx-qdq"), "\(unknown.stderr)")
}

/// `plan --attention-products int8 --quantize-outer` → `quantize --explain`: the plan says it, the
/// explanation names each integer attention, and the export holds its per-step scales and the
/// two outer linears (the final one rotated).
@Test func planWithIntegerAttentionProductsQuantizesAndExportsTheirScales() throws {
    let w = try QuantizeWorkspace(arguments: ["--alpha", "0.5", "--attention-products", "int8", "--quantize-outer"])
    let json = try w.planJSON()
    let defaults = try #require(json["defaults"] as? [String: Any]), layers = try #require(json["layers"] as? [String: Any])
    #expect(defaults["attention_products"] as? String == "int8")
    #expect((layers["x_embedder.proj"] as? [String: Any])?["keep_fp"] as? Bool == false)
    #expect((layers["final_layer.linear"] as? [String: Any])?["rotation"] as? String == "hadamard")
    let result = try w.quantize(w.plan, out: w.directory + "/a", explain: true)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("temporal_blocks.3.cross_attn: integer QKᵀ and P·V"))
    let file = try SafetensorsFile(path: w.directory + "/a/quantized.safetensors")
    let q = try file.tensor("spatial_blocks.0.attn.q_scale").scalars, p = try file.tensor("spatial_blocks.0.cross_attn.p_scale").scalars
    #expect(q.count == 2 && q.allSatisfy { $0 > 0 } && p == [1 / 255])
    #expect(file["x_embedder.proj.w0.weight"] != nil && file["final_layer.linear.hadamard_block"] != nil)
    let bad = try runTool(["plan", "--steps", "2", "--cache-directory", w.cache, "--out", w.directory + "/x.json", "--attention-products", "int4"])
    #expect(bad.status != 0 && bad.stderr.contains("attention_products: must be one of \"float\", \"int8\""), "\(bad.stderr)")
}

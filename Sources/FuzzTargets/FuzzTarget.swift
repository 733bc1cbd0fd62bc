import Foundation
import Quantization
import Tensors
import TerminalUI
import VideoDiT

/// One parser of a file users hand in, driven with arbitrary bytes. A thrown error is the expected
/// answer to bad input; a crash, a hang or unbounded memory is a bug (issue 15).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A `.safetensors` checkpoint: header validation, every small tensor read, NaN scan, the
    /// config read off the shapes.
    case safetensors
    /// `plan.json`: strict decoding, then validation against a model's layer names and settings resolution.
    case plan
    /// OpenSora's `config.json`.
    case config
    /// A theme (`.toml`).
    case theme
    /// A calibration cache's `index.json` beside a fixed statistics file (its hashes fixed up so
    /// the per-layer reading is reached, as a checksum-aware fuzzer does).
    case calibrationIndex = "calibration-index"

    /// Runs the parser on `data`, errors ignored. `scratch` is a private folder for targets that read from disk.
    public func run(_ data: UnsafeRawBufferPointer, scratch: FuzzScratch) {
        _ = try? parse(data, scratch: scratch)
    }

    /// Runs the parser on `data` and everything downstream of a successful parse; throws what the
    /// parser throws.
    public func parse(_ data: UnsafeRawBufferPointer, scratch: FuzzScratch) throws {
        switch self {
        case .safetensors:
            scratch.write(data, to: scratch.checkpoint)
            let file = try SafetensorsFile(path: scratch.checkpoint)
            for entry in file.entries where entry.elementCount <= 1 << 16 {
                let view = file.view(of: entry)
                _ = view.nonFiniteCount()
                _ = view.toFloat32()
                _ = try? view.toInts()
            }
            _ = try? file.checkFinite()
            _ = Architecture.detect(names: file.names)
            _ = try? ModelConfig.inferred(from: file)
        case .plan:
            let plan = try QuantizationPlan(json: try JSONValue.parse(data), source: "fuzz/plan.json")
            _ = try? plan.validate(layerNames: FuzzScratch.layerNames)
            for name in FuzzScratch.layerNames { _ = try? plan.settings(for: name, foldable: !name.hasSuffix("fc2")) }
            _ = plan.groupOfStep
            _ = plan.json.serialized()
        case .config:
            let config = try ModelConfig(json: try JSONValue.parse(data), source: "fuzz/config.json")
            _ = (config.headDim, config.mlpHidden, config.patchVolume, config.outChannels)
        case .theme:
            _ = try ThemeParser.parse(String(decoding: data, as: UTF8.self), file: "fuzz/theme.toml")
        case .calibrationIndex:
            scratch.write(FuzzScratch.fixedUpIndex(data, statistics: scratch.statisticsBytes), to: scratch.indexPath)
            guard try scratch.cache.load(FuzzScratch.key) != nil else { throw FuzzInputRefused() }
        }
    }
}

/// A cache index the loader skipped (another format) rather than refused.
public struct FuzzInputRefused: Error {}

/// The fuzzer's private folder: a checkpoint path, and a cache holding one fixed statistics file.
public final class FuzzScratch: @unchecked Sendable {
    public let directory: String
    var checkpoint: String { directory + "/model.safetensors" }
    let cache: CalibrationCache
    let indexPath: String
    let statisticsBytes: [UInt8]

    /// Layer names of a 2-block STDiT3, for plan validation.
    static let layerNames: [String] = ["spatial_blocks", "temporal_blocks"].flatMap { kind in
        (0..<2).flatMap { b in ["attn.qkv", "attn.proj", "cross_attn.q_linear", "cross_attn.kv_linear", "cross_attn.proj", "mlp.fc1", "mlp.fc2"]
            .map { "\(kind).\(b).\($0)" } }
    }

    static let key = CalibrationCache.Key(checkpointHash: "0123456789abcdef", prompts: ["a red circle moving left on a blue background"],
                                          sampler: "rflow", steps: 2, cfgScale: 5, seeds: [0])

    /// Two layers × two steps of small, finite statistics (fixed values, so the seed index matches).
    static let statistics: [String: [Int: LayerStepStatistics]] = Dictionary(uniqueKeysWithValues: ["spatial_blocks.0.attn.qkv", "spatial_blocks.0.mlp.fc2"].map { layer in
        (layer, Dictionary(uniqueKeysWithValues: (0..<2).map { step in
            (step, LayerStepStatistics(width: 4, channelMinimum: [-1, -2, -0.5, -3], channelMaximum: [1, 2.5, 0.5, 3], minimum: -3, maximum: 3, rotatedMinimum: -2.5, rotatedMaximum: 2.5,
                                       histogram: (0..<LayerStepStatistics.binCount).map { UInt64(($0 * 7 + step) % 5) }, rows: 3,
                                       reservoir: (0..<12).map { Float($0 % 7) - 3 }, reservoirCapacity: 4))
        }))
    })

    public init() throws {
        directory = NSTemporaryDirectory() + "stsq-fuzz-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        cache = CalibrationCache(directory: directory + "/cache")
        try cache.save(Self.statistics, for: Self.key)
        let folder = cache.directory + "/" + Self.key.digest
        indexPath = folder + "/index.json"
        statisticsBytes = try FileInput.read(folder + "/statistics.safetensors", limit: 1 << 24)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// The index the cache itself writes for the fixed statistics: the seed of `calibration-index`.
    public var seedIndex: [UInt8] { (try? FileInput.read(indexPath, limit: 1 << 24)) ?? [] }

    func write(_ data: UnsafeRawBufferPointer, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        var done = 0
        while done < data.count {
            let n = Foundation.write(fd, data.baseAddress! + done, data.count - done)
            if n <= 0 { break }
            done += n
        }
        close(fd)
    }

    func write(_ bytes: [UInt8], to path: String) { bytes.withUnsafeBytes { write($0, to: path) } }

    /// When `data` is a JSON object, its `statistics` member is replaced by the true size and
    /// hashes of the fixed statistics file and of its own `layers`, so that mutations of the layer
    /// table are read, not stopped at the hash check (which the damaged-cache tests cover).
    static func fixedUpIndex(_ data: UnsafeRawBufferPointer, statistics: [UInt8]) -> [UInt8] {
        guard let json = try? JSONValue.parse(data), case .object(var members) = json, let layers = json["layers"] else { return Array(data) }
        let fixed = JSONValue.object([("bytes", .int(statistics.count)), ("fnv1a", .string(CalibrationCache.hash(ofBytes: statistics))),
                                      ("layers_fnv1a", .string(CalibrationCache.hash(of: layers)))])
        if let i = members.firstIndex(where: { $0.0 == "statistics" }) { members[i].1 = fixed } else { members.append(("statistics", fixed)) }
        return Array(JSONValue.object(members).serialized().utf8)
    }
}

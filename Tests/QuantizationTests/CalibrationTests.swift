import DemoModel
import Foundation
import Testing
@testable import Tensors
@testable import Quantization
@testable import VideoDiT

@Test func calibrationRecordsEveryLayerAndStepAndTheCacheRoundTrips() throws {
    let path = try #require(DemoModel.checkpointPath)
    let loaded = try ModelLoader.load(path: path)
    let model = try #require(loaded.model as? STDiT3)
    let encoder = try #require(loaded.textEncoder)
    let prompts = ["a red circle moving left on a blue background", "a green square growing on a black background"]
    let calibrator = Calibrator(model: model, steps: 2, cfgScale: 5, size: [8, 32, 32], transformRatio: nil)
    let statistics = try calibrator.run(conditions: try prompts.map { try encoder.encode([$0]) }, seeds: [3])
    // Every block linear's input, the patch embedding's and the final linear's, and q, k and v
    // of every attention (16 of them).
    let attentions = QuantizationPlan.attentions(layerNames: model.blockLinears.map(\.name))
    #expect(attentions.count == 16)
    #expect(Set(statistics.keys) == Set(model.quantizableLinears.map(\.name)
                                         + attentions.flatMap { a in AttentionOperand.allCases.map { $0.name(of: a) } }))
    #expect(statistics["x_embedder.proj"]?[0]?.width == model.outerLinears[0].inputs)
    let qkv = try #require(statistics["spatial_blocks.0.attn.qkv"])
    #expect(Set(qkv.keys) == [0, 1])
    // One CFG batch of 2 prompts × (cond, uncond) × all video tokens per step.
    let patch = model.config.patchSize
    let tokens = (8 / patch[0]) * (32 / patch[1]) * (32 / patch[2])
    #expect(qkv[0]!.rows == 4 * tokens)
    #expect(qkv[0]!.reservoir.count == 32 * 128)
    // Caption tokens: 9 words + EOS and 8 words + EOS, for the conditional and (tiled mask) unconditional halves.
    #expect(statistics["spatial_blocks.0.cross_attn.kv_linear"]![1]!.rows == 2 * (10 + 9))

    let cache = CalibrationCache(directory: NSTemporaryDirectory() + "calibration-\(UUID().uuidString)")
    let key = CalibrationCache.Key(checkpointHash: try CalibrationCache.checkpointHash(path: path), prompts: prompts,
                                   sampler: "rflow", steps: 2, cfgScale: 5, seeds: [3])
    #expect(try cache.load(key) == nil)
    try cache.save(statistics, for: key)
    let loadedBack = try #require(try cache.load(key))
    let same = loadedBack == statistics
    #expect(same, "statistics changed on the way through the cache")
    var other = key
    other.seeds = [4]
    #expect(try cache.load(other) == nil)
}

/// Every way a cache entry can go bad is reported with the folder and the reason, never read.
@Test func aDamagedCacheEntryIsReportedNotRead() throws {
    let cache = CalibrationCache(directory: NSTemporaryDirectory() + "calibration-damaged-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(atPath: cache.directory) }
    let width = 4
    let statistics = ["blocks.0.attn.qkv": [0: LayerStepStatistics(
        width: width, channelMinimum: [-1, -2, -3, -4], channelMaximum: [1, 2, 3, 4], minimum: -4, maximum: 4, rotatedMinimum: -3.5, rotatedMaximum: 3.5,
        histogram: (0..<LayerStepStatistics.binCount).map { UInt64($0 % 7) }, rows: 3,
        reservoir: (0..<(3 * width)).map { Float($0) }, reservoirCapacity: 8)]]
    let key = CalibrationCache.Key(checkpointHash: "00", prompts: ["a"], sampler: "rflow", steps: 1, cfgScale: 5, seeds: [0])
    let folder = cache.directory + "/" + key.digest
    let data = folder + "/statistics.safetensors", index = folder + "/index.json"
    func expectDamaged(_ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try cache.load(key)
            Issue.record("a damaged entry (\(reason)) was read", sourceLocation: sourceLocation)
        } catch let error as CalibrationCacheDamaged {
            #expect(error.description.contains(reason) && error.description.contains(folder), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }
    func restore() throws { try cache.save(statistics, for: key); #expect(try cache.load(key) == statistics) }

    try restore()
    var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: data)))
    try Data(bytes.dropLast(16)).write(to: URL(fileURLWithPath: data))
    expectDamaged("truncated")
    try restore()
    bytes[bytes.count - 5] ^= 0x10
    try Data(bytes).write(to: URL(fileURLWithPath: data))
    expectDamaged("corrupted")
    try restore()
    try FileManager.default.removeItem(atPath: data)
    expectDamaged("missing")
    try restore()
    try "{\"format\": \"stsq-calibration/5\", \"key\": ".write(toFile: index, atomically: true, encoding: .utf8)
    expectDamaged("does not parse")
    // An entry written for another checkpoint, copied into this key's folder.
    var other = key
    other.checkpointHash = "01"
    try cache.save(statistics, for: other)
    try FileManager.default.removeItem(atPath: folder)
    try FileManager.default.copyItem(atPath: cache.directory + "/" + other.digest, toPath: folder)
    expectDamaged("another checkpoint")
    try restore()
    // One changed digit in the index's layer table (rows 3 → 4), the statistics file untouched.
    let indexText = try String(contentsOfFile: index, encoding: .utf8)
    #expect(indexText.contains("\"rows\" : 3") || indexText.contains("\"rows\": 3"))
    try indexText.replacingOccurrences(of: "\"rows\" : 3", with: "\"rows\" : 4").replacingOccurrences(of: "\"rows\": 3", with: "\"rows\": 4")
        .write(toFile: index, atomically: true, encoding: .utf8)
    expectDamaged("edited or corrupted")
    try restore()
    // A FIFO in place of the statistics file is refused by type, without blocking.
    try FileManager.default.removeItem(atPath: data)
    #expect(mkfifo(data, 0o644) == 0)
    expectDamaged("FIFO")
    try FileManager.default.removeItem(atPath: data)
    try restore()
    // Saving leaves no temporary folder behind, and replaces an entry as a whole.
    let names = try FileManager.default.contentsOfDirectory(atPath: cache.directory)
    #expect(names.allSatisfy { !$0.contains(".tmp-") }, "\(names)")
}

/// The statistics file is hashed and its rows checked once per file identity (`FileFacts`): a
/// remembered verification is what a load trusts, a file changed since is verified again, and the
/// sampled rows are read from the file when used, equal to those saved.
@Test func theStatisticsFileIsVerifiedOncePerFileIdentityAndItsRowsReadWhenUsed() throws {
    let cache = CalibrationCache(directory: NSTemporaryDirectory() + "calibration-facts-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(atPath: cache.directory) }
    let facts = FileFacts(directory: cache.directory + "-facts", racyWindow: 0)
    defer { try? FileManager.default.removeItem(atPath: facts.directory) }
    let layer = "blocks.0.attn.qkv", width = 3
    func step(_ offset: Float, rows: Int) -> LayerStepStatistics {
        LayerStepStatistics(width: width, channelMinimum: [-1, -2, -3].map { $0 - offset }, channelMaximum: [1, 2, 3].map { $0 + offset },
                            minimum: -3 - offset, maximum: 3 + offset, rotatedMinimum: -2 - offset, rotatedMaximum: 2 + offset, histogram: (0..<LayerStepStatistics.binCount).map { UInt64($0 % 5) },
                            rows: rows, reservoir: (0..<(rows * width)).map { Float($0) + offset }, reservoirCapacity: 4)
    }
    let statistics = [layer: [0: step(0, rows: 3), 1: step(0.5, rows: 2)]]
    let key = CalibrationCache.Key(checkpointHash: "00", prompts: ["a"], sampler: "rflow", steps: 2, cfgScale: 5, seeds: [0])
    let data = cache.directory + "/" + key.digest + "/statistics.safetensors"
    try cache.save(statistics, for: key)
    let loaded = try #require(try cache.load(key, facts: facts))
    #expect(loaded == statistics)
    #expect(loaded[layer]![0]!.reservoirRows == 3 && loaded[layer]![1]!.reservoirRows == 2)
    // Rows read from the file become the value's own when it changes: merging agrees.
    var fromFile = loaded[layer]![0]!, inMemory = statistics[layer]![0]!
    fromFile.merge(loaded[layer]![1]!)
    inMemory.merge(statistics[layer]![1]!)
    #expect(fromFile == inMemory && fromFile.reservoirRows == 4)
    let index = try JSONValue.parse(try String(contentsOfFile: cache.directory + "/" + key.digest + "/index.json", encoding: .utf8))
    let hash = try #require(index["statistics"]?["fnv1a"]?.stringValue)
    #expect(facts.lookup(data, "stsq-statistics-verified") == hash)

    // A remembered verification is trusted without reading the file: a bogus one is what is reported.
    facts.record(data, "stsq-statistics-verified", "0123456789abcdef", identityBefore: try FileIdentity(path: data))
    #expect(throws: CalibrationCacheDamaged.self) { try cache.load(key, facts: facts) }
    do { _ = try cache.load(key, facts: facts) } catch { #expect("\(error)".contains("hashes to 0123456789abcdef"), "\(error)") }

    // Corrupted in place after a good verification: the file's identity changed, so it is read again.
    try cache.save(statistics, for: key)
    #expect(try cache.load(key, facts: facts) == statistics)
    usleep(10_000)
    let handle = try #require(FileHandle(forUpdatingAtPath: data))
    let size = try handle.seekToEnd()
    try handle.seek(toOffset: size - 3)
    try handle.write(contentsOf: Data([0x7f]))
    try handle.close()
    #expect(throws: CalibrationCacheDamaged.self) { try cache.load(key, facts: facts) }
}

/// Statistics with an infinite channel range (activations that overflowed, or a cache written by a
/// broken tool with matching hashes) are refused when read, naming the layer and step.
@Test func nonFiniteStatisticsAreRefusedNotQuantized() throws {
    let cache = CalibrationCache(directory: NSTemporaryDirectory() + "calibration-inf-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(atPath: cache.directory) }
    let statistics = ["blocks.0.mlp.fc1": [0: LayerStepStatistics(
        width: 2, channelMinimum: [-1, -2], channelMaximum: [1, .infinity], minimum: -2, maximum: 2, rotatedMinimum: -1.5, rotatedMaximum: 1.5,
        histogram: [UInt64](repeating: 0, count: LayerStepStatistics.binCount), rows: 1, reservoir: [0, 1], reservoirCapacity: 4)]]
    let key = CalibrationCache.Key(checkpointHash: "00", prompts: ["a"], sampler: "rflow", steps: 1, cfgScale: 5, seeds: [0])
    try cache.save(statistics, for: key)
    #expect(throws: CalibrationCacheDamaged.self) { try cache.load(key) }
    do { _ = try cache.load(key) } catch { #expect("\(error)".contains("blocks.0.mlp.fc1@0") && "\(error)".contains("±Inf"), "\(error)") }
}

/// XDG base directories: `XDG_CACHE_HOME` when absolute, else `$HOME/.cache`.
@Test func theCacheFollowsXDGAndHome() {
    #expect(CalibrationCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x/cache", "HOME": "/h"]) == "/x/cache/stsq-tui/calibration")
    #expect(CalibrationCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "relative", "HOME": "/h"]) == "/h/.cache/stsq-tui/calibration")
    #expect(CalibrationCache.defaultDirectory(environment: ["HOME": "/home/someone"]) == "/home/someone/.cache/stsq-tui/calibration")
}

@Test func promptListsSkipCommentsAndBlankLines() {
    #expect(CalibrationSetup.readPrompts("# eval\n\n a red circle moving left on a blue background \n#x\n") ==
            ["a red circle moving left on a blue background"])
}

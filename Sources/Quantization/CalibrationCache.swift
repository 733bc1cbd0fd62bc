import Foundation
import Tensors
import VideoDiT

/// Calibration results on disk: one folder per key, `statistics.safetensors` (per layer and step:
/// `<layer>@<step>.channel_min` / `.channel_max` [K], `.histogram` U64 [bins], `.reservoir` [n, K]) and
/// `index.json` (the key's inputs, the statistics file's size and FNV-1a hash, the hash of its own
/// layer table, and per layer and
/// step: min, max, rows). Written atomically; an entry whose file does not match its index is
/// reported (`CalibrationCacheDamaged`), never read.
public struct CalibrationCache {
    /// What makes two calibrations the same: checkpoint content, prompts, sampler settings, seeds.
    public struct Key: Sendable, Equatable {
        public var checkpointHash: String
        public var prompts: [String]
        public var sampler: String
        public var steps: Int
        public var cfgScale: Float
        public var seeds: [UInt64]

        public init(checkpointHash: String, prompts: [String], sampler: String, steps: Int, cfgScale: Float, seeds: [UInt64]) {
            self.checkpointHash = checkpointHash
            self.prompts = prompts
            self.sampler = sampler
            self.steps = steps
            self.cfgScale = cfgScale
            self.seeds = seeds
        }

        public var json: JSONValue {
            .object([("checkpoint_hash", .string(checkpointHash)), ("prompts", .array(prompts.map { .string($0) })),
                     ("sampler", .string(sampler)), ("steps", .int(steps)), ("cfg_scale", .float(cfgScale)),
                     ("seeds", .array(seeds.map { .number(String($0)) }))])
        }

        /// A short stable name for the folder.
        public var digest: String { CalibrationCache.hash(of: json) }
    }

    public let directory: String
    /// Older formats are recomputed, not read.
    static let format = "stsq-calibration/5"

    public init(directory: String) { self.directory = directory }

    /// `$XDG_CACHE_HOME/stsq-tui/calibration`, else `$HOME/.cache/stsq-tui/calibration` (the XDG
    /// base directory rules: a relative `XDG_CACHE_HOME` is ignored); the password database's home
    /// only when `HOME` is unset.
    public static var defaultDirectory: String { defaultDirectory(environment: ProcessInfo.processInfo.environment) }

    public static func defaultDirectory(environment env: [String: String]) -> String {
        FileFacts.cacheHome(environment: env) + "/calibration"
    }

    /// FNV-1a over the whole file: the checkpoint's identity. Remembered per file identity
    /// (`FileFacts`): a 5 GB checkpoint is read whole once, not at every open.
    public static func checkpointHash(path: String, facts: FileFacts? = .standard) throws -> String {
        try FileInput.checkRegular(path)
        return try FileFacts.fact(path, "fnv1a", in: facts) { try fileHash(path) }
    }

    /// FNV-1a of a file's bytes, through a mapping read in 16 MiB pieces, each piece's pages
    /// released once hashed: no copy into this process, and no 5 GB left counted as resident.
    static func fileHash(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CalibrationSetupError("\(path): cannot be opened for reading: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CalibrationSetupError("\(path): cannot be examined: \(String(cString: strerror(errno)))") }
        var h = fnv1aBasis
        let size = Int(info.st_size)
        guard size > 0 else { return hex(h) }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapping != MAP_FAILED else {
            throw CalibrationSetupError("\(path): cannot be mapped: \(String(cString: strerror(errno)))")
        }
        defer { munmap(mapping, size) }
        _ = madvise(mapping, size, MADV_SEQUENTIAL)
        let piece = 1 << 24
        var offset = 0
        while offset < size {
            let count = min(piece, size - offset)
            h = fnv1a(UnsafeRawBufferPointer(start: mapping + offset, count: count), continuing: h)
            _ = madvise(mapping + offset, count, MADV_DONTNEED)
            offset += count
        }
        return hex(h)
    }

    func folder(_ key: Key) -> String { directory + "/" + key.digest }

    /// The statistics saved for `key`, or nil. `facts` remembers the verification of the
    /// statistics file (nil: every byte is read at every load).
    public func load(_ key: Key, facts: FileFacts? = .standard) throws -> [String: [Int: LayerStepStatistics]]? {
        let folder = folder(key)
        let damaged = { (why: String) in CalibrationCacheDamaged(folder: folder, reason: why) }
        guard FileInput.exists(folder + "/index.json") else { return nil }
        let indexText: String
        do { indexText = try FileInput.readText(folder + "/index.json", limit: FileInput.Limit.cacheIndex) } catch { throw damaged("\(error)") }
        let index: JSONValue
        do { index = try JSONValue.parse(indexText) } catch { throw damaged("index.json does not parse (\(error))") }
        guard index["format"]?.stringValue == CalibrationCache.format else { return nil }
        guard index["key"] == key.json else { throw damaged("index.json belongs to another checkpoint or calibration setting") }
        guard let layers = index["layers"]?.objectValue, let bytes = index["statistics"]?["bytes"]?.intValue,
              let hash = index["statistics"]?["fnv1a"]?.stringValue,
              let layersHash = index["statistics"]?["layers_fnv1a"]?.stringValue else { throw damaged("index.json lacks its layers or the statistics file's size and hashes") }
        let actualLayersHash = Self.hash(of: .object(layers))
        guard actualLayersHash == layersHash else { throw damaged("index.json's layer table hashes to \(actualLayersHash), the index says \(layersHash) (edited or corrupted)") }
        let path = folder + "/statistics.safetensors"
        guard FileInput.exists(path) else { throw damaged("statistics.safetensors is missing") }
        let size: Int
        do { size = try FileInput.checkRegular(path) } catch let error as FileInputError { throw damaged("statistics.safetensors \(error.reason)") }
        guard size == bytes else { throw damaged("statistics.safetensors has \(size) bytes, the index says \(bytes) (truncated?)") }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch { throw damaged("\(error)") }
        defer { file.releaseAllPages() }
        // Every byte hashed and every sampled row checked once per file identity (`FileFacts`);
        // the rows themselves stay in the file until a view or a measurement reads them.
        let verify = { () throws -> String in
            let (hashed, scanned) = bothAtOnce({ try Self.fileHash(path) }, {
                for entry in file.entries where entry.name.hasSuffix(".reservoir") {
                    defer { file.releasePages(of: entry) }
                    guard file.view(of: entry).nonFiniteCount() == 0 else {
                        throw damaged("\(entry.name.dropLast(".reservoir".count)) holds NaN or ±Inf ranges or rows")
                    }
                }
            })
            let actual = try hashed.get()
            guard actual == hash else { throw damaged("statistics.safetensors hashes to \(actual), the index says \(hash) (corrupted)") }
            try scanned.get()
            return actual
        }
        let verified = try FileFacts.fact(path, "stsq-statistics-verified", in: facts, compute: verify)
        guard verified == hash else { throw damaged("statistics.safetensors hashes to \(verified), the index says \(hash) (corrupted)") }
        var result: [String: [Int: LayerStepStatistics]] = [:]
        for (layer, entry) in layers {
            guard let width = entry["width"]?.intValue, let capacity = entry["reservoir_rows"]?.intValue,
                  let steps = entry["steps"]?.objectValue else { throw damaged("index.json: layer \(layer) lacks width, reservoir_rows or steps") }
            // This layer's tensors lie together in the file (sorted names): their pages go once read.
            var span: (first: SafetensorsEntry, last: SafetensorsEntry)?
            defer { if let span { file.releasePages(from: span.first, through: span.last) } }
            for (stepText, values) in steps {
                guard let step = Int(stepText), step >= 0, let rows = values["rows"]?.intValue,
                      let lo = values["min"]?.doubleValue, let hi = values["max"]?.doubleValue,
                      let rotatedLo = values["rotated_min"]?.doubleValue, let rotatedHi = values["rotated_max"]?.doubleValue else {
                    throw damaged("index.json: \(layer) step \(stepText) lacks rows, min, max, rotated_min or rotated_max")
                }
                let prefix = "\(layer)@\(step)"
                let histogram = try file.view(prefix + ".histogram").withElements(as: UInt64.self, Array.init)
                let channelMinimum = try file.tensor(prefix + ".channel_min").scalars
                let channelMaximum = try file.tensor(prefix + ".channel_max").scalars
                guard let reservoirEntry = file[prefix + ".reservoir"] else { throw damaged("\(prefix).reservoir is missing") }
                for name in [".channel_min", ".channel_max", ".histogram"] {
                    guard let entry = file[prefix + name] else { continue }
                    if span == nil { span = (entry, entry) }
                    if entry.dataOffsets.lowerBound < span!.first.dataOffsets.lowerBound { span!.first = entry }
                    if entry.dataOffsets.upperBound > span!.last.dataOffsets.upperBound { span!.last = entry }
                }
                func bad(_ field: String) -> Error { damaged("\(prefix).\(field) does not fit width \(width)") }
                guard width > 0, capacity >= 0, rows >= 0 else { throw bad("width") }
                guard channelMinimum.count == width else { throw bad("channel_min") }
                guard channelMaximum.count == width else { throw bad("channel_max") }
                guard histogram.count == LayerStepStatistics.binCount else { throw bad("histogram") }
                guard reservoirEntry.elementCount % width == 0,
                      reservoirEntry.elementCount <= capacity * width else { throw bad("reservoir") }
                guard lo.isFinite, hi.isFinite, rotatedLo.isFinite, rotatedHi.isFinite, channelMinimum.allSatisfy(\.isFinite), channelMaximum.allSatisfy(\.isFinite) else {
                    throw damaged("\(prefix) holds NaN or ±Inf ranges or rows")
                }
                result[layer, default: [:]][step] = LayerStepStatistics(
                    width: width, channelMinimum: channelMinimum, channelMaximum: channelMaximum,
                    minimum: Float(lo), maximum: Float(hi), rotatedMinimum: Float(rotatedLo), rotatedMaximum: Float(rotatedHi),
                    histogram: histogram, rows: rows, storedReservoir: StoredRows(file: file, entry: reservoirEntry), reservoirCapacity: capacity)
            }
        }
        return result
    }

    /// Writes the entry under a temporary folder beside it, then renames the folder into place, so
    /// a reader sees the old entry or the new one, never a mix; a failure leaves no temporary folder.
    public func save(_ statistics: [String: [Int: LayerStepStatistics]], for key: Key) throws {
        let folder = folder(key)
        try OutputFolder.create(directory)
        // Folders of writers killed mid-save go too (same naming as AtomicFile's temporaries).
        AtomicFile.removeStale(in: directory)
        let temporary = directory + "/" + AtomicFile.temporaryName(for: key.digest)
        try OutputFolder.create(temporary)
        var placed = false
        defer { if !placed { try? FileManager.default.removeItem(atPath: temporary) } }
        var writer = SafetensorsWriter()
        var layers: [(String, JSONValue)] = []
        for layer in statistics.keys.sorted() {
            let steps = statistics[layer]!
            var stepEntries: [(String, JSONValue)] = []
            for step in steps.keys.sorted() {
                let s = steps[step]!
                let prefix = "\(layer)@\(step)"
                writer.add(prefix + ".channel_min", Tensor(shape: [s.width], scalars: s.channelMinimum))
                writer.add(prefix + ".channel_max", Tensor(shape: [s.width], scalars: s.channelMaximum))
                writer.add(prefix + ".histogram", dtype: .u64, shape: [s.histogram.count], elements: s.histogram)
                writer.add(prefix + ".reservoir", Tensor(shape: [s.reservoirRows, s.width], scalars: s.reservoir))
                stepEntries.append(("\(step)", .object([("min", .float(s.minimum)), ("max", .float(s.maximum)),
                                                         ("rotated_min", .float(s.rotatedMinimum)), ("rotated_max", .float(s.rotatedMaximum)),
                                                         ("rows", .int(s.rows))])))
            }
            let first = steps.values.first!
            layers.append((layer, .object([("width", .int(first.width)), ("reservoir_rows", .int(first.reservoirCapacity)),
                                           ("steps", .object(stepEntries))])))
        }
        let bytes = writer.serialized()
        try AtomicFile.write(bytes, to: temporary + "/statistics.safetensors")
        let hash = Self.hash(ofBytes: bytes)
        let index = JSONValue.object([("format", .string(CalibrationCache.format)), ("key", key.json),
                                      ("statistics", .object([("bytes", .int(bytes.count)), ("fnv1a", .string(hash)),
                                                              ("layers_fnv1a", .string(Self.hash(of: .object(layers))))])),
                                      ("layers", .object(layers))])
        try AtomicFile.write(Array(index.serialized(pretty: true).utf8), to: temporary + "/index.json")
        try AtomicFile.replaceDirectory(folder, with: temporary)
        placed = true
    }

    /// FNV-1a of a JSON value's compact serialization (the index's `layers_fnv1a`).
    public static func hash(of value: JSONValue) -> String { hash(ofBytes: Array(value.serialized().utf8)) }

    /// FNV-1a of bytes, as the index records the statistics file's.
    public static func hash(ofBytes bytes: [UInt8]) -> String { hex(fnv1a(bytes)) }

    static func hex(_ value: UInt64) -> String { String(format: "%016llx", value) }
}

/// A cache entry that exists for the key but cannot be trusted: truncated, corrupted, or written
/// for another checkpoint. Recalibrating (`stsq-tui calibrate`, `C` in the workbench) replaces it.
public struct CalibrationCacheDamaged: Error, CustomStringConvertible {
    public var folder: String
    public var reason: String
    public var description: String { "calibration cache \(folder) is damaged: \(reason); recalibrate to replace it" }
}

/// FNV-1a's offset basis: the hash of no bytes.
let fnv1aBasis: UInt64 = 0xcbf2_9ce4_8422_2325

/// 64-bit FNV-1a, or its continuation over more bytes from the hash `h` of the bytes before.
func fnv1a(_ bytes: some Sequence<UInt8>, continuing h: UInt64 = fnv1aBasis) -> UInt64 {
    var h = h
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

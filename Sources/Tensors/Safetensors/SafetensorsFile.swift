#if canImport(Glibc)
import Glibc
#endif

/// One tensor's record in a safetensors header.
public struct SafetensorsEntry: Sendable, Hashable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the data section (after the header).
    public let dataOffsets: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { dataOffsets.count }
}

/// A memory-mapped safetensors file: the header is parsed and validated once, tensor data is
/// handed out as views into the mapping (no copy), so a multi-GB checkpoint opens in milliseconds.
///
/// Validation refuses every header that could make a view read outside the file: truncation,
/// absurd header lengths (> 100 MB), more than 200 000 tensors or a rank above 64, invalid JSON, unknown dtypes, shape × dtype size different
/// from the byte range, ranges out of bounds or overlapping, duplicate names.
public final class SafetensorsFile: @unchecked Sendable {
    public static let maxHeaderBytes = 100_000_000
    /// Far above any checkpoint (a 405 B-parameter model has a few thousand tensors per file).
    public static let maxTensors = 200_000
    /// Safetensors has no rank limit; PyTorch's is 64.
    public static let maxRank = 64
    public static let maxMetadataEntries = 200_000

    public let path: String
    /// Tensors in header order.
    public let entries: [SafetensorsEntry]
    /// The `__metadata__` map, in header order.
    public let metadata: [(key: String, value: String)]
    public let fileSize: Int

    private let mapping: UnsafeRawPointer?
    private let dataStart: Int
    private let index: [String: Int]

    public convenience init(path: String) throws {
        // Checked by type before the open: a FIFO would block the open, a device has no end.
        let fd: Int32, size: Int
        do { (fd, size) = try FileInput.openRegular(path) } catch let error as FileInputError {
            throw SafetensorsError(file: path, kind: .io, error.reason)
        }
        defer { close(fd) }
        var mapping: UnsafeRawPointer? = nil
        if size > 0 {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else {
                throw SafetensorsError(file: path, kind: .io, "cannot map: \(String(cString: strerror(errno)))")
            }
            mapping = UnsafeRawPointer(p)
        }
        do {
            try self.init(path: path, mapping: mapping, size: size)
        } catch {
            if let mapping { munmap(UnsafeMutableRawPointer(mutating: mapping), size) }
            throw error
        }
    }

    private init(path: String, mapping: UnsafeRawPointer?, size: Int) throws {
        self.path = path
        self.mapping = mapping
        self.fileSize = size
        let bytes = UnsafeRawBufferPointer(start: mapping, count: size)
        let header = try SafetensorsHeader.parse(bytes, file: path)
        self.entries = header.entries
        self.metadata = header.metadata
        self.dataStart = header.dataStart
        var index: [String: Int] = [:]
        for (i, entry) in header.entries.enumerated() { index[entry.name] = i }
        self.index = index
    }

    deinit {
        if let mapping { munmap(UnsafeMutableRawPointer(mutating: mapping), fileSize) }
    }

    public var names: [String] { entries.map(\.name) }

    public subscript(name: String) -> SafetensorsEntry? {
        index[name].map { entries[$0] }
    }

    public func metadataValue(_ key: String) -> String? {
        metadata.first { $0.key == key }?.value
    }

    /// A view of one tensor's bytes inside the mapping; it keeps the file mapped while alive.
    public func view(_ name: String) throws -> TensorView {
        guard let i = index[name] else {
            throw SafetensorsError(file: path, tensor: name, kind: .missingTensor, "no such tensor in the file")
        }
        return view(of: entries[i])
    }

    /// The view of one of this file's own `entries` (an entry from elsewhere is a programmer error:
    /// its byte range was validated against another file).
    public func view(of entry: SafetensorsEntry) -> TensorView {
        precondition(index[entry.name].map { entries[$0] == entry } ?? false,
                     "\(entry.name) is not an entry of \(path)")
        let start = mapping.map { $0 + dataStart + entry.dataOffsets.lowerBound }
        return TensorView(entry: entry, bytes: UnsafeRawBufferPointer(start: start, count: entry.byteCount),
                          file: self)
    }

    /// Drops the pages of `entry`'s bytes, and of the 64 KiB around them, from this process's
    /// resident memory; the page cache keeps them and the next read faults them back in. Called
    /// after a tensor has been copied out, so a multi-GB file read once does not stay counted as
    /// resident. Views of the same bytes stay valid: the mapping is read-only.
    public func releasePages(of entry: SafetensorsEntry) {
        releasePages(from: entry, through: entry)
    }

    /// Drops the pages of every byte from `first`'s through `last`'s, and of the 64 KiB around
    /// them: a read fault maps its neighbours too ("fault-around"), so reading many small tensors
    /// makes far more of the file resident than their own bytes.
    public func releasePages(from first: SafetensorsEntry, through last: SafetensorsEntry) {
        let margin = 64 << 10
        releasePages(max(0, dataStart + min(first.dataOffsets.lowerBound, last.dataOffsets.lowerBound) - margin),
                     dataStart + max(first.dataOffsets.upperBound, last.dataOffsets.upperBound) + margin)
    }

    /// Drops every page of the mapping from resident memory (see `releasePages(of:)`).
    public func releaseAllPages() { releasePages(0, fileSize) }

    private func releasePages(_ start: Int, _ end: Int) {
        guard let mapping, end > start else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = start / page * page, last = min(fileSize, (end + page - 1) / page * page)
        guard last > first else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: mapping + first), last - first, MADV_DONTNEED)
    }

    /// Refuses NaN or ±Inf in any float tensor whose name passes `include`: one such weight turns a
    /// whole forward pass into NaN, so it is reported at load (tensor and count), not found in a
    /// grey video.
    public func checkFinite(where include: (String) -> Bool = { _ in true }) throws {
        for entry in entries where entry.dtype.isFloatingPoint && include(entry.name) {
            // A scan of a 5 GB checkpoint would otherwise leave all of it resident.
            defer { releasePages(of: entry) }
            let bad = view(of: entry).nonFiniteCount()
            guard bad == 0 else {
                throw SafetensorsError(file: path, tensor: entry.name, kind: .nonFinite,
                                       "\(bad) of \(entry.elementCount) values are NaN or ±Inf")
            }
        }
    }

    /// The tensor converted to Float32 (any float or integer dtype).
    public func tensor(_ name: String) throws -> Tensor {
        try view(name).toFloat32()
    }
}

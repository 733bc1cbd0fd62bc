#if canImport(Glibc)
import Glibc
#endif

/// Collects tensors and writes them as one safetensors file, atomically: the bytes go to a
/// temporary file in the destination folder, are flushed to disk, then renamed over the target,
/// so a reader never sees a half-written file and a failure leaves the previous file intact.
///
/// Tensors are laid out widest element first, so with the 8-byte-padded header every tensor is
/// aligned to its element size and readers can view it without copying. There are no gaps
/// between tensors (the reference implementation refuses files with holes).
public struct SafetensorsWriter {
    private struct Pending {
        var name: String
        var dtype: DType
        var shape: [Int]
        var bytes: [UInt8]
    }

    private var pending: [Pending] = []
    private var names = Set<String>()
    public var metadata: [(key: String, value: String)] = []

    public init() {}

    public var count: Int { pending.count }

    /// Each tensor's name and byte count, in the order added.
    public var byteCounts: [(name: String, bytes: Int)] { pending.map { ($0.name, $0.bytes.count) } }

    public func contains(_ name: String) -> Bool { names.contains(name) }

    /// Adds raw little-endian bytes; their count must equal shape × dtype size.
    public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
        precondition(name != "__metadata__", "'__metadata__' is reserved")
        precondition(names.insert(name).inserted, "tensor '\(name)' added twice")
        precondition(shape.reduce(dtype.size, *) == bytes.count,
                     "tensor '\(name)': shape \(shape) × \(dtype.rawValue) ≠ \(bytes.count) bytes")
        pending.append(Pending(name: name, dtype: dtype, shape: shape, bytes: bytes))
    }

    /// Adds a Float32 tensor, stored as `dtype` (F32, F16 or BF16; rounding to nearest even).
    public mutating func add(_ name: String, _ tensor: Tensor, as dtype: DType = .f32) {
        switch dtype {
        case .f32:
            add(name, dtype: .f32, shape: tensor.shape, bytes: SafetensorsWriter.bytes(of: tensor.scalars))
        case .f16:
            add(name, dtype: .f16, shape: tensor.shape, bytes: SafetensorsWriter.bytes(of: tensor.scalars.map(floatToF16)))
        case .bf16:
            add(name, dtype: .bf16, shape: tensor.shape, bytes: SafetensorsWriter.bytes(of: tensor.scalars.map(floatToBF16)))
        default:
            preconditionFailure("a Float32 tensor is stored as F32, F16 or BF16, not \(dtype.rawValue)")
        }
    }

    /// Adds integer or raw-bit elements (`Int8` for I8, `UInt16` bits for F16, …).
    public mutating func add<T: FixedWidthInteger>(_ name: String, dtype: DType, shape: [Int], elements: [T]) {
        precondition(MemoryLayout<T>.size == dtype.size, "\(T.self) does not match \(dtype.rawValue)")
        add(name, dtype: dtype, shape: shape, bytes: SafetensorsWriter.bytes(of: elements.map { $0.littleEndian }))
    }

    static func bytes<T>(of elements: [T]) -> [UInt8] {
        elements.withUnsafeBytes { [UInt8]($0) }
    }

    /// The complete file contents.
    public func serialized() -> [UInt8] {
        let ordered = pending.enumerated().sorted {
            ($0.element.dtype.size, -$0.offset) > ($1.element.dtype.size, -$1.offset)
        }.map(\.element)
        var members: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            members.append(("__metadata__", .object(metadata.map { ($0.key, .string($0.value)) })))
        }
        var offset = 0
        for tensor in ordered {
            members.append((tensor.name, .object([
                ("dtype", .string(tensor.dtype.rawValue)),
                ("shape", .array(tensor.shape.map { .int($0) })),
                ("data_offsets", .array([.int(offset), .int(offset + tensor.bytes.count)])),
            ])))
            offset += tensor.bytes.count
        }
        var header = Array(JSONValue.object(members).serialized().utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for tensor in ordered { out.append(contentsOf: tensor.bytes) }
        return out
    }

    /// Writes the file atomically (temporary file + fsync + rename).
    public func write(to path: String) throws {
        try AtomicFile.write(serialized(), to: path)
    }
}

/// Atomic whole-file writes: temp file beside the target, fsync, rename, fsync of the folder.
/// Temporary names are `.NAME.tmp-PID-RANDOM` (NAME shortened to fit NAME_MAX); those left by a
/// process that no longer runs (killed mid-write) are removed by the next write into that folder.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let (directory, base) = split(path)
        removeStale(in: directory)
        let temporary = directory + "/" + temporaryName(for: base)
        func fail(_ what: String) -> SafetensorsError {
            SafetensorsError(file: path, kind: .io, "\(what): \(String(cString: strerror(errno)))")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("cannot create a temporary file in \(directory)") }
        var ok = false
        defer {
            if !ok { unlink(temporary) }
        }
        let written = bytes.withUnsafeBytes { buffer -> Bool in
            var done = 0
            while done < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0 { if errno == EINTR { continue }; return false }
                done += n
            }
            return true
        }
        guard written else { let e = fail("cannot write"); close(fd); throw e }
        guard fsync(fd) == 0 else { let e = fail("cannot flush"); close(fd); throw e }
        guard close(fd) == 0 else { throw fail("cannot close") }
        guard rename(temporary, path) == 0 else { throw fail("cannot rename into place") }
        ok = true
        syncDirectory(directory)
    }

    /// Puts the folder `temporary` (already complete, beside `path`) at `path`: a reader sees the old
    /// folder or the new one. An existing folder is moved aside first and removed after.
    public static func replaceDirectory(_ path: String, with temporary: String) throws {
        let (directory, base) = split(path)
        func fail(_ what: String) -> SafetensorsError {
            SafetensorsError(file: path, kind: .io, "\(what): \(String(cString: strerror(errno)))")
        }
        var aside: String? = nil
        if rename(temporary, path) != 0 {
            guard errno == ENOTEMPTY || errno == EEXIST else { throw fail("cannot rename \(temporary) into place") }
            let old = directory + "/" + temporaryName(for: base)
            guard rename(path, old) == 0 else { throw fail("cannot move the previous folder aside") }
            guard rename(temporary, path) == 0 else {
                let e = fail("cannot rename \(temporary) into place")
                _ = rename(old, path)
                throw e
            }
            aside = old
        }
        syncDirectory(directory)
        if let aside { removeTree(aside) }
    }

    /// A temporary name for `base` that fits NAME_MAX (255 bytes) with its suffix.
    public static func temporaryName(for base: String) -> String {
        let suffix = ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var name = Substring(base)
        while 1 + name.utf8.count + suffix.utf8.count > 255 { name = name.dropLast() }
        return "." + name + suffix
    }

    /// A directory entry's name, read in place as the C string it is. Not `entry.pointee.d_name`:
    /// that copies all 256 bytes of the array, but `readdir` packs records to their name's length,
    /// so the copy of the last record can run past the kernel's buffer into an unmapped page (a
    /// crash seen with thousands of entries in /tmp).
    static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
        String(cString: (UnsafeRawPointer(entry) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!).assumingMemoryBound(to: CChar.self))
    }

    /// Removes `.*.tmp-PID-RANDOM` entries of processes that no longer exist.
    public static func removeStale(in directory: String) {
        guard let dir = opendir(directory) else { return }
        var stale: [String] = []
        while let entry = readdir(dir) {
            let name = entryName(entry)
            let fields = name.split(separator: "-", omittingEmptySubsequences: false)
            guard name.hasPrefix("."), fields.count >= 3, fields[fields.count - 3].hasSuffix(".tmp"),
                  let pid = Int32(fields[fields.count - 2]), UInt32(fields[fields.count - 1]) != nil, pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { stale.append(name) }
        }
        closedir(dir)
        for name in stale { removeTree(directory + "/" + name) }
    }

    /// The folder a file path is in (`.` for a bare name).
    public static func folder(of path: String) -> String { split(path).directory }

    static func split(_ path: String) -> (directory: String, base: String) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return (directory.isEmpty ? "/" : directory, base)
    }

    static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// Removes a file or a folder of plain files (what this type writes).
    static func removeTree(_ path: String) {
        if unlink(path) == 0 { return }
        if let dir = opendir(path) {
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = entryName(entry)
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(dir)
            for name in names { removeTree(path + "/" + name) }
        }
        rmdir(path)
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// An input file refused before it was read: the message names the file and says why.
public struct FileInputError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(TerminalText.escaped(path)): \(reason)" }
}

/// Reading the small files a user hands in (configs, plans, prompt lists, themes, cache indexes)
/// without hanging or growing without bound: the type is checked before the file is opened (a FIFO
/// or a device never blocks and `/dev/zero` is never read), the size is bounded, and the open is
/// non-blocking so a file swapped for a FIFO after the check cannot block either.
public enum FileInput {
    /// Whether anything exists at `path`, a dangling or looping symlink included (so that a config
    /// that is there but unreadable is reported, not skipped).
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// The size of the regular file at `path` (symlinks followed); anything else is refused by type.
    @discardableResult
    public static func checkRegular(_ path: String) throws -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { throw FileInputError(path: path, reason: "cannot read: \(String(cString: strerror(errno)))") }
        try checkType(info.st_mode, path)
        return Int(info.st_size)
    }

    static func checkType(_ mode: mode_t, _ path: String) throws {
        let kind: String
        switch mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: kind = "a directory"
        case S_IFIFO: kind = "a FIFO (named pipe)"
        case S_IFCHR: kind = "a character device"
        case S_IFBLK: kind = "a block device"
        case S_IFSOCK: kind = "a socket"
        default: kind = "not a plain file"
        }
        throw FileInputError(path: path, reason: "is \(kind), not a regular file")
    }

    /// Opens a regular file for reading without blocking; the caller closes the descriptor.
    public static func openRegular(_ path: String) throws -> (descriptor: Int32, size: Int) {
        try checkRegular(path)
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FileInputError(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = "cannot stat: \(String(cString: strerror(errno)))"
            close(fd)
            throw FileInputError(path: path, reason: reason)
        }
        do { try checkType(info.st_mode, path) } catch { close(fd); throw error }
        return (fd, Int(info.st_size))
    }

    /// The whole file, refused when it is not a regular file or holds more than `limit` bytes.
    public static func read(_ path: String, limit: Int) throws -> [UInt8] {
        let (fd, size) = try openRegular(path)
        defer { close(fd) }
        guard size <= limit else {
            throw FileInputError(path: path, reason: "is \(size) bytes, more than the \(limit)-byte limit for this kind of file")
        }
        var bytes = [UInt8](repeating: 0, count: size + 1)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileInputError(path: path, reason: "cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
        guard done <= size else { throw FileInputError(path: path, reason: "grew while it was read (more than \(size) bytes)") }
        return Array(bytes[0..<done])
    }

    /// The whole file as UTF-8 text; invalid UTF-8 is an error naming the byte offset.
    public static func readText(_ path: String, limit: Int) throws -> String {
        let bytes = try read(path, limit: limit)
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var offset = 0
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): offset += UTF8.width(scalar)
            case .emptyInput, .error: break loop
            }
        }
        throw FileInputError(path: path, reason: "is not UTF-8 text (invalid byte at offset \(offset))")
    }

    /// Limits per kind of file, far above any real one.
    public enum Limit {
        public static let config = 4 << 20
        public static let plan = 64 << 20
        public static let prompts = 16 << 20
        public static let theme = 1 << 20
        public static let cacheIndex = 256 << 20
    }
}

/// Output folders checked before long work, so a read-only or missing place is reported in plain
/// words before minutes of calibration, not after.
public enum OutputFolder {
    /// Throws unless `path` is a writable folder, or can be created (its nearest existing ancestor
    /// is a writable folder). Creates nothing.
    public static func checkWritable(_ path: String, purpose: String) throws {
        var candidate = path.isEmpty ? "." : path
        while true {
            var info = stat()
            if stat(candidate, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else {
                    throw FileInputError(path: candidate, reason: "is not a folder, so \(purpose) cannot be written under \(path)")
                }
                guard access(candidate, W_OK | X_OK) == 0 else {
                    throw FileInputError(path: candidate, reason: "is not writable by this user (\(String(cString: strerror(errno)))), so \(purpose) cannot be written there; choose another folder")
                }
                return
            }
            guard errno == ENOENT || errno == ENOTDIR else { throw FileInputError(path: candidate, reason: "cannot be used for \(purpose): \(String(cString: strerror(errno)))") }
            guard let slash = candidate.lastIndex(of: "/") else { candidate = "."; continue }
            candidate = slash == candidate.startIndex ? "/" : String(candidate[..<slash])
        }
    }
}

extension OutputFolder {
    /// `mkdir -p` with errors in plain words (the path and the system's reason), not Foundation's
    /// error-domain dump.
    public static func create(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw FileInputError(path: path, reason: "exists and is not a folder") }
            return
        }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex { try create(String(path[..<slash])) }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw FileInputError(path: path, reason: "cannot create the folder: \(String(cString: strerror(errno)))")
        }
    }
}

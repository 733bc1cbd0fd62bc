import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What identifies a file's content without reading it, as git's index and ccache do: device,
/// inode, size, and the modification and status-change times to the nanosecond. Any write changes
/// the status-change time, which no user call can set back.
public struct FileIdentity: Equatable, Sendable {
    public let device: UInt64
    public let inode: UInt64
    public let size: Int
    public let modifiedNanoseconds: Int64
    public let changedNanoseconds: Int64

    public init(path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw FileInputError(path: path, reason: "cannot be examined: \(String(cString: strerror(errno)))")
        }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int(info.st_size)
        modifiedNanoseconds = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        changedNanoseconds = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
    }

    var json: [(String, JSONValue)] {
        [("device", .number(String(device))), ("inode", .number(String(inode))), ("size", .int(size)),
         ("mtime_ns", .number(String(modifiedNanoseconds))), ("ctime_ns", .number(String(changedNanoseconds)))]
    }
}

/// Facts computed from every byte of a large file — its FNV-1a, "every float is finite" — kept per
/// file identity, so a 5 GB checkpoint and its multi-GB statistics are read whole once, not at
/// every open. One small JSON file per (device, inode) under `directory`; a fact is used only
/// while the file's identity is the one it was computed for.
///
/// A fact is not recorded when the file changed during the scan, or changed within
/// `racyWindow` seconds before it was recorded: a write in the same timestamp tick could leave the
/// identity unchanged (git's "racily clean" entries).
public struct FileFacts: Sendable {
    public let directory: String
    /// Nanoseconds a file must have been left alone before a fact about it is recorded.
    let racyWindow: Int64

    public init(directory: String) { self.init(directory: directory, racyWindow: 2_000_000_000) }

    init(directory: String, racyWindow: Int64) {
        self.directory = directory
        self.racyWindow = racyWindow
    }

    /// `$XDG_CACHE_HOME/stsq-tui/file-facts`, else `$HOME/.cache/stsq-tui/file-facts`.
    public static var standard: FileFacts {
        FileFacts(directory: cacheHome(environment: ProcessInfo.processInfo.environment) + "/file-facts")
    }

    /// This program's cache folder by the XDG base directory rules: `$XDG_CACHE_HOME/stsq-tui`
    /// (a relative `XDG_CACHE_HOME` is ignored), else `$HOME/.cache/stsq-tui`; the password
    /// database's home only when `HOME` is unset.
    public static func cacheHome(environment env: [String: String]) -> String {
        if let xdg = env["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/stsq-tui" }
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? FileManager.default.homeDirectoryForCurrentUser.path
        return home + "/.cache/stsq-tui"
    }

    private func entryPath(_ identity: FileIdentity) -> String {
        "\(directory)/\(identity.device)-\(identity.inode).json"
    }

    /// The fact named `name` recorded for the file as it is now, or nil.
    public func lookup(_ path: String, _ name: String) -> String? {
        guard let identity = try? FileIdentity(path: path) else { return nil }
        return facts(for: identity)[name]
    }

    private func facts(for identity: FileIdentity) -> [String: String] {
        guard let text = try? FileInput.readText(entryPath(identity), limit: 1 << 16),
              let json = try? JSONValue.parse(text),
              json["identity"] == .object(identity.json),
              let facts = json["facts"]?.objectValue else { return [:] }
        var out: [String: String] = [:]
        for (key, value) in facts { if let v = value.stringValue { out[key] = v } }
        return out
    }

    /// The fact for the file as it is now: remembered, or computed by `compute` (which reads the
    /// file) and remembered when the file did not change meanwhile. Failing to remember is not an
    /// error: the fact is computed again next time.
    public func fact(_ path: String, _ name: String, compute: () throws -> String) throws -> String {
        let before = try FileIdentity(path: path)
        if let known = facts(for: before)[name] { return known }
        let value = try compute()
        record(path, name, value, identityBefore: before)
        return value
    }

    /// `compute`'s result, remembered by `facts` when there are facts, computed every time when not.
    public static func fact(_ path: String, _ name: String, in facts: FileFacts?, compute: () throws -> String) throws -> String {
        guard let facts else { return try compute() }
        return try facts.fact(path, name, compute: compute)
    }

    /// Records `value` if the file still has `identityBefore` and was last written long enough ago.
    func record(_ path: String, _ name: String, _ value: String, identityBefore before: FileIdentity) {
        guard let after = try? FileIdentity(path: path), after == before else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nowNanoseconds = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        guard nowNanoseconds - max(after.modifiedNanoseconds, after.changedNanoseconds) > racyWindow else { return }
        var facts = self.facts(for: after)
        facts[name] = value
        let json = JSONValue.object([("identity", .object(after.json)), ("path", .string(path)),
                                     ("facts", .object(facts.keys.sorted().map { ($0, .string(facts[$0]!)) }))])
        try? OutputFolder.create(directory)
        try? AtomicFile.write(Array(json.serialized(pretty: true).utf8), to: entryPath(after))
    }
}

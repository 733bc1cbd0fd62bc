import Foundation
import Testing
@testable import Tensors

// Input files that must neither hang, grow without bound, nor reach the terminal raw (issue 15).

private func header(_ text: String) -> [UInt8] {
    var h = Array(text.utf8)
    while h.count % 8 != 0 { h.append(0x20) }
    var out: [UInt8] = []
    withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
    return out + h
}

private func file(_ bytes: [UInt8], name: String = "f") -> String {
    let path = temporaryDirectory() + "/" + name
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

@Test func specialFilesAreRefusedByTypeBeforeTheyAreOpened() throws {
    let fifo = temporaryDirectory() + "/pipe"
    #expect(mkfifo(fifo, 0o644) == 0)
    // Each would block (FIFO) or never end (/dev/zero) if opened and read.
    for (path, kind) in [(fifo, "FIFO"), ("/dev/zero", "character device"), (temporaryDirectory(), "directory")] {
        #expect(throws: FileInputError.self) { try FileInput.read(path, limit: 1 << 20) }
        do { _ = try FileInput.read(path, limit: 1 << 20) } catch { #expect("\(error)".contains(kind), "\(error)") }
        do { _ = try SafetensorsFile(path: path) } catch { #expect("\(error)".contains(kind), "\(error)") }
    }
    let link = temporaryDirectory() + "/zero.json"
    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/zero")
    #expect(throws: FileInputError.self) { try FileInput.readText(link, limit: 1 << 20) }
    let loop = temporaryDirectory() + "/loop"
    try FileManager.default.createSymbolicLink(atPath: loop, withDestinationPath: loop)
    #expect(FileInput.exists(loop))
    do { _ = try FileInput.readText(loop, limit: 1 << 20); Issue.record("read a symlink loop") } catch {
        #expect("\(error)".contains("symbolic links"), "\(error)")
    }
}

@Test func smallFilesAreBoundedAndMustBeUTF8() throws {
    let big = file([UInt8](repeating: 0x20, count: 4097))
    do { _ = try FileInput.read(big, limit: 4096); Issue.record("read past the limit") } catch {
        #expect("\(error)".contains("4097 bytes") && "\(error)".contains("4096"), "\(error)")
    }
    #expect(try FileInput.read(big, limit: 4097).count == 4097)
    let latin1 = file(Array("{\"a\": \"caf".utf8) + [0xE9] + Array("\"}".utf8))
    do { _ = try FileInput.readText(latin1, limit: 100); Issue.record("read invalid UTF-8") } catch {
        #expect("\(error)".contains("offset 10"), "\(error)")
    }
}

/// Work is bounded by what a header may hold, not only its byte length: a 49-million-entry shape
/// or 1.76 million empty tensors took 46 s / 33 s and GBs before.
@Test func safetensorsHeadersAreBoundedInEntriesAndRank() throws {
    let hugeShape = "{\"t\":{\"dtype\":\"F32\",\"shape\":[" + String(repeating: "1,", count: 1_000_000) + "0],\"data_offsets\":[0,0]}}"
    var start = Date()
    do { _ = try SafetensorsFile(path: file(header(hugeShape))); Issue.record("opened a rank-1,000,001 tensor") } catch let error as SafetensorsError {
        #expect(error.kind == .invalidHeader && error.description.contains("64 dimensions"), "\(error)")
    }
    #expect(Date().timeIntervalSince(start) < 5, "refused only after \(Date().timeIntervalSince(start)) s")
    let manyEntries = "{" + (0...SafetensorsFile.maxTensors).map { "\"t\($0)\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}" }.joined(separator: ",") + "}"
    start = Date()
    do { _ = try SafetensorsFile(path: file(header(manyEntries))); Issue.record("opened \(SafetensorsFile.maxTensors + 1) tensors") } catch let error as SafetensorsError {
        #expect(error.kind == .invalidHeader && error.description.contains("more than 200000 tensors"), "\(error)")
    }
    #expect(Date().timeIntervalSince(start) < 20)
    // At the limit it still opens.
    let rank64 = "{\"t\":{\"dtype\":\"F32\",\"shape\":[" + Array(repeating: "1", count: 64).joined(separator: ",") + "],\"data_offsets\":[0,4]}}"
    #expect(try SafetensorsFile(path: file(header(rank64) + [0, 0, 0, 0])).entries[0].shape.count == 64)
}

@Test func jsonLimitsStopTheParseEarly() {
    let limits = JSONLimits(values: 10, arrayLength: 3, objectMembers: 2)
    #expect(throws: JSONParseError.self) { try JSONValue.parse("[1,2,3,4]", limits: limits) }
    #expect(throws: JSONParseError.self) { try JSONValue.parse("{\"a\":1,\"b\":2,\"c\":3}", limits: limits) }
    #expect(throws: JSONParseError.self) { try JSONValue.parse("[[1,2,3],[4,5,6],[7,8]]", limits: limits) }
    #expect((try? JSONValue.parse("[[1,2],[3]]", limits: limits)) != nil)
    do { _ = try JSONValue.parse("[1,2,3,4]", limits: limits) } catch let e as JSONParseError { #expect(e.exceeded == .arrayLength) } catch {}
}

@Test(arguments: [DType.f32, .f16, .bf16, .f64])
func nonFiniteWeightsAreFoundByName(dtype: DType) throws {
    let values: [Float] = [1, .nan, -2, .infinity, 3, -.infinity]
    var writer = SafetensorsWriter()
    writer.add("good", Tensor(shape: [2], scalars: [1, 2]))
    let bytes: [UInt8]
    switch dtype {
    case .f32: bytes = values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
    case .f64: bytes = values.flatMap { withUnsafeBytes(of: Double($0).bitPattern.littleEndian, Array.init) }
    case .f16: bytes = values.flatMap { withUnsafeBytes(of: Float16($0).bitPattern.littleEndian, Array.init) }
    default: bytes = values.flatMap { withUnsafeBytes(of: UInt16($0.bitPattern >> 16).littleEndian, Array.init) }
    }
    writer.add("blocks.0.weight", dtype: dtype, shape: [6], bytes: bytes)
    let path = temporaryDirectory() + "/w.safetensors"
    try writer.write(to: path)
    let opened = try SafetensorsFile(path: path)
    #expect(opened.view(of: opened["good"]!).nonFiniteCount() == 0)
    do { try opened.checkFinite(); Issue.record("NaN weights passed") } catch let error as SafetensorsError {
        #expect(error.kind == .nonFinite && error.tensor == "blocks.0.weight" && error.description.contains("3 of 6"), "\(error)")
    }
    try opened.checkFinite { $0 == "good" }
}

@Test func namesFromFilesAreEscapedForTheTerminal() {
    #expect(TerminalText.escaped("blocks.0.attn") == "blocks.0.attn")
    #expect(TerminalText.escaped("a\u{1b}[31mred\nx\ty\\") == "a\\x1b[31mred\\nx\\ty\\\\")
    #expect(TerminalText.escaped("\u{202e}evil\u{7f}\u{85}") == "\\u{202e}evil\\x7f\\x85")
    #expect(TerminalText.escaped("τ → ∞ ✓") == "τ → ∞ ✓")
    let long = String(repeating: "x", count: 500)
    #expect(TerminalText.short(long, limit: 20) == String(repeating: "x", count: 20) + "… (500 characters)")
}

@Test func temporaryNamesFitNameMaxAndStaleOnesAreCleaned() throws {
    let directory = temporaryDirectory()
    for length in [6, 200, 236, 250, 255] {
        let name = String(repeating: "n", count: length - ".json".count) + ".json"
        try AtomicFile.write([1, 2, 3], to: directory + "/" + name)
        #expect(FileManager.default.contents(atPath: directory + "/" + name) == Data([1, 2, 3]), "name of \(length) bytes")
        #expect(AtomicFile.temporaryName(for: name).utf8.count <= 255)
    }
    let multibyte = String(repeating: "é", count: 127)  // 254 bytes: cut on a character boundary
    #expect(AtomicFile.temporaryName(for: multibyte).utf8.count <= 255)
    // A temporary file of a process that is gone (pid 2^22 + 1 is above Linux's pid_max default)
    // goes at the next write; one of this process, or a name that only looks alike, stays.
    let stale = directory + "/.plan.json.tmp-4194305-123"
    let live = directory + "/.plan.json.tmp-\(getpid())-77"
    let other = directory + "/.notes.tmp-x-1"
    for path in [stale, live, other] { _ = FileManager.default.createFile(atPath: path, contents: Data([0])) }
    try AtomicFile.write([9], to: directory + "/plan.json")
    #expect(!FileManager.default.fileExists(atPath: stale))
    #expect(FileManager.default.fileExists(atPath: live) && FileManager.default.fileExists(atPath: other))
}

@Test func outputFoldersAreCheckedBeforeWork() throws {
    let directory = temporaryDirectory()
    try OutputFolder.checkWritable(directory + "/new/deeper", purpose: "the test")
    let plain = directory + "/plain"
    _ = FileManager.default.createFile(atPath: plain, contents: Data([0]))
    do { try OutputFolder.checkWritable(plain + "/out", purpose: "the test"); Issue.record("a file taken as a folder") } catch {
        #expect("\(error)".contains("is not a folder"), "\(error)")
    }
    #expect(!FileManager.default.fileExists(atPath: directory + "/new"), "the check creates nothing")
    try OutputFolder.create(directory + "/new/deeper")
    try OutputFolder.create(directory + "/new/deeper")
    do { try OutputFolder.create(plain + "/out"); Issue.record("a folder under a file") } catch {
        #expect("\(error)" == "\(plain): exists and is not a folder", "\(error)")
    }
}

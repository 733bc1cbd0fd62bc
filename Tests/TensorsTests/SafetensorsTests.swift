import Foundation
import Testing
@testable import Tensors

// MARK: - Helpers

/// A file made of an 8-byte length, the given header text (padded to 8 bytes) and `data`.
private func rawFile(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    var h = Array(header.utf8)
    while h.count % 8 != 0 { h.append(0x20) }
    var out: [UInt8] = []
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    return out + h + data
}

private func write(_ bytes: [UInt8], name: String = "t.safetensors") -> String {
    let path = temporaryDirectory() + "/" + name
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

private func openError(_ bytes: [UInt8]) -> SafetensorsError? {
    let path = write(bytes)
    do {
        _ = try SafetensorsFile(path: path)
        return nil
    } catch let error as SafetensorsError {
        return error
    } catch {
        Issue.record("unexpected error type \(error)")
        return nil
    }
}

// MARK: - Round trips

@Test func roundTripsEveryDTypeWithShapesAndMetadata() throws {
    var generator = SeededGenerator(seed: 1)
    var writer = SafetensorsWriter()
    writer.metadata = [("format", "pt"), ("prompt", "a red \"circle\"\nmoving left")]
    let floats = Tensor(shape: [3, 5], scalars: generator.floats(15, in: -3...3))
    writer.add("f32", floats)
    writer.add("f16", floats, as: .f16)
    writer.add("bf16", floats, as: .bf16)
    let i8: [Int8] = (0..<7).map { _ in Int8.random(in: .min ... .max, using: &generator) }
    writer.add("i8", dtype: .i8, shape: [7], elements: i8)
    let u8: [UInt8] = (0..<5).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
    writer.add("u8", dtype: .u8, shape: [5, 1], elements: u8)
    let i32: [Int32] = [-2_000_000_000, 0, 7, 2_000_000_000]
    writer.add("i32", dtype: .i32, shape: [2, 2], elements: i32)
    let i64: [Int64] = [1, 1, 0]
    writer.add("i64", dtype: .i64, shape: [3], elements: i64)
    writer.add("scalar", Tensor(shape: [], scalars: [42]))
    writer.add("empty", Tensor(zeros: [0, 4]))
    let path = temporaryDirectory() + "/round.safetensors"
    try writer.write(to: path)

    let file = try SafetensorsFile(path: path)
    #expect(file.metadataValue("prompt") == "a red \"circle\"\nmoving left")
    #expect(file.metadata.map(\.key) == ["format", "prompt"])
    #expect(Set(file.names) == ["f32", "f16", "bf16", "i8", "u8", "i32", "i64", "scalar", "empty"])
    #expect(try file.tensor("f32") == floats)
    #expect(try file.tensor("f16").scalars == floats.scalars.map { f16ToFloat(floatToF16($0)) })
    #expect(try file.tensor("bf16").scalars == floats.scalars.map { bf16ToFloat(floatToBF16($0)) })
    #expect(try file.view("i8").withElements(as: Int8.self, Array.init) == i8)
    #expect(try file.view("u8").withElements(as: UInt8.self, Array.init) == u8)
    #expect(try file.view("u8").shape == [5, 1])
    #expect(try file.view("i32").withElements(as: Int32.self, Array.init) == i32)
    #expect(try file.view("i64").toInts() == [1, 1, 0])
    #expect(try file.tensor("scalar") == Tensor(shape: [], scalars: [42]))
    #expect(try file.tensor("empty").shape == [0, 4])
    for entry in file.entries { #expect(file.view(of: entry).isAligned, "\(entry.name) is misaligned") }
}

@Test func viewsAreZeroCopyIntoTheMapping() throws {
    var writer = SafetensorsWriter()
    writer.add("w", Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
    let path = temporaryDirectory() + "/z.safetensors"
    try writer.write(to: path)
    let file = try SafetensorsFile(path: path)
    let view = try file.view("w")
    let address = try view.withElements(as: Float.self) { UnsafeRawPointer($0.baseAddress!) }
    #expect(address == view.bytes.baseAddress)
    #expect(throws: SafetensorsError.self) { try view.withElements(as: Int32.self) { _ in 0 } }
}

@Test func readsMisalignedTensorsWrittenByOtherTools() throws {
    // A u8 tensor of 1 byte first pushes the f32 tensor to an odd offset: legal, just slower.
    let header = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}"#
    var data: [UInt8] = [9]
    [Float(1.5), -2].withUnsafeBytes { data.append(contentsOf: $0) }
    let file = try SafetensorsFile(path: write(rawFile(header: header, data: data)))
    #expect(try file.tensor("b").scalars == [1.5, -2])
    #expect(try file.view("b").withElements(as: Float.self, Array.init) == [1.5, -2])
}

@Test func writeIsAtomicAndReplacesTheOldFile() throws {
    let directory = temporaryDirectory()
    let path = directory + "/model.safetensors"
    var first = SafetensorsWriter()
    first.add("x", Tensor(shape: [1], scalars: [1]))
    try first.write(to: path)
    var second = SafetensorsWriter()
    second.add("y", Tensor(shape: [1], scalars: [2]))
    try second.write(to: path)
    #expect(try SafetensorsFile(path: path).names == ["y"])
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.safetensors"])
    // A destination folder that does not exist: an error naming the path, nothing left behind.
    #expect(throws: SafetensorsError.self) { try second.write(to: directory + "/missing/model.safetensors") }
}

/// Stale temporaries are found by reading each directory entry's name in place: names of 1 and
/// of 255 bytes come out whole among thousands of entries (where reading a whole `d_name` array
/// per record once ran off the end of `readdir`'s buffer), a dead process's temporary goes, the
/// rest stay.
@Test func staleTemporariesAreFoundAmongManyEntries() throws {
    let directory = temporaryDirectory()
    let long = String(repeating: "n", count: 255)
    var names = ["a", long, ".model.safetensors.tmp-999999999-1"]   // no such PID
    for i in 0..<3000 { names.append("f\(i)") }
    for name in names { #expect(FileManager.default.createFile(atPath: directory + "/" + name, contents: nil)) }
    var listed: [String] = []
    let dir = try #require(opendir(directory))
    while let entry = readdir(dir) { listed.append(AtomicFile.entryName(entry)) }
    closedir(dir)
    #expect(Set(listed) == Set(names + [".", ".."]))
    AtomicFile.removeStale(in: directory)
    let left = try FileManager.default.contentsOfDirectory(atPath: directory)
    #expect(left.count == names.count - 1 && left.contains(long) && !left.contains(names[2]))
}

// MARK: - Bad input: each case is refused with an error naming the file (and tensor)

@Test func refusesTruncatedFiles() {
    #expect(openError([1, 2, 3])?.kind == .truncated)
    #expect(openError([])?.kind == .truncated)
    // The header promises 200 bytes but the file stops early.
    let error = openError(rawFile(header: "{}", declaredLength: 200))
    #expect(error?.kind == .truncated)
    #expect(error?.description.contains("t.safetensors") == true)
    // Data section shorter than the offsets claim.
    let cut = rawFile(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0, 0, 0])
    #expect(openError(cut)?.kind == .outOfBounds)
}

@Test func refusesAbsurdHeaderLength() {
    let error = openError(rawFile(header: "{}", declaredLength: 100_000_001))
    #expect(error?.kind == .headerTooLarge)
    #expect(openError(rawFile(header: "{}", declaredLength: UInt64.max))?.kind == .headerTooLarge)
}

@Test func refusesInvalidJSON() {
    for header in ["{", "[1,2]x", #"{"a": }"#, "\u{FF}", #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}"#] {
        let error = openError(rawFile(header: header, data: [0, 0, 0, 0]))
        #expect(error?.kind == .invalidJSON, "\(header): \(String(describing: error))")
    }
    #expect(openError(rawFile(header: "[]"))?.kind == .invalidHeader)
    #expect(openError(rawFile(header: String(repeating: "[", count: 10_000)))?.kind == .invalidJSON)
}

@Test func refusesUnknownDType() {
    let error = openError(rawFile(header: #"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, data: .init(repeating: 0, count: 16)))
    #expect(error?.kind == .unknownDType)
    #expect(error?.tensor == "w")
    #expect(error?.description.contains("F128") == true)
}

@Test func refusesShapeThatDisagreesWithByteRange() {
    let error = openError(rawFile(header: #"{"w":{"dtype":"F32","shape":[3,4],"data_offsets":[0,40]}}"#, data: .init(repeating: 0, count: 40)))
    #expect(error?.kind == .sizeMismatch)
    #expect(error?.description == "\(error!.file): tensor 'w': shape [3, 4] × F32 is 48 bytes but data_offsets [0, 40] span 40 bytes")
    // A shape whose byte count overflows Int must not wrap around to a small number.
    let huge = openError(rawFile(header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#))
    #expect(huge?.kind == .sizeMismatch)
    #expect(openError(rawFile(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#))?.kind == .invalidHeader)
    #expect(openError(rawFile(header: #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}}"#))?.kind == .invalidHeader)
}

@Test func refusesOffsetsOutOfBoundsOrReversed() {
    let past = openError(rawFile(header: #"{"w":{"dtype":"U8","shape":[8],"data_offsets":[8,16]}}"#, data: .init(repeating: 0, count: 8)))
    #expect(past?.kind == .outOfBounds)
    #expect(past?.tensor == "w")
    let reversed = openError(rawFile(header: #"{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}"#, data: .init(repeating: 0, count: 8)))
    #expect(reversed?.kind == .invalidHeader)
    let negative = openError(rawFile(header: #"{"w":{"dtype":"U8","shape":[4],"data_offsets":[-4,0]}}"#, data: .init(repeating: 0, count: 8)))
    #expect(negative?.kind == .invalidHeader)
    let missing = openError(rawFile(header: #"{"w":{"dtype":"U8","shape":[4]}}"#, data: .init(repeating: 0, count: 8)))
    #expect(missing?.kind == .invalidHeader)
}

@Test func refusesOverlappingTensors() {
    let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
    let error = openError(rawFile(header: header, data: .init(repeating: 0, count: 12)))
    #expect(error?.kind == .overlap)
    #expect(error?.tensor == "b")
    #expect(error?.description.contains("'a'") == true)
}

@Test func refusesDuplicateNames() {
    let header = #"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#
    let error = openError(rawFile(header: header, data: [1, 2]))
    #expect(error?.kind == .duplicateName)
    #expect(error?.tensor == "w")
}

@Test func refusesBadMetadata() {
    let error = openError(rawFile(header: #"{"__metadata__":{"steps":30}}"#))
    #expect(error?.kind == .invalidHeader)
    #expect(error?.description.contains("steps") == true)
}

@Test func missingTensorIsANamedError() throws {
    let file = try SafetensorsFile(path: write(rawFile(header: "{}")))
    #expect(file.entries.isEmpty)
    #expect(throws: SafetensorsError.self) { try file.view("nope") }
    #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: "/nonexistent/x.safetensors") }
    #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: NSTemporaryDirectory()) }
}

/// Random corruptions of a valid file never crash the reader and every view stays inside the file.
@Test func survivesRandomCorruption() throws {
    var writer = SafetensorsWriter()
    writer.metadata = [("k", "v")]
    writer.add("a.weight", Tensor(shape: [4, 3], repeating: 1))
    writer.add("b", dtype: .i8, shape: [5], elements: [Int8](repeating: 3, count: 5))
    let valid = writer.serialized()
    var generator = SeededGenerator(seed: 99)
    for _ in 0..<400 {
        var bytes = valid
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            let i = Int.random(in: 0..<bytes.count, using: &generator)
            bytes[i] = UInt8.random(in: 0...255, using: &generator)
        }
        if Bool.random(using: &generator) { bytes.removeLast(Int.random(in: 0...bytes.count, using: &generator)) }
        let path = write(bytes)
        if let file = try? SafetensorsFile(path: path) {
            for entry in file.entries {
                let view = file.view(of: entry)
                #expect(8 + entry.dataOffsets.upperBound <= file.fileSize)
                #expect(view.toFloat32().count == entry.elementCount)
            }
        }
    }
}

// MARK: - Resident pages

/// This process's resident file-backed memory in KiB (`RssFile` of /proc/self/status).
private func residentFileKiB() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("RssFile:") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
}

@Test func releasedTensorPagesLeaveResidentMemoryAndStayReadable() throws {
    // 64 MiB of f32 so the change stands far above whatever else the process maps meanwhile.
    let count = 16 << 20
    var writer = SafetensorsWriter()
    writer.add("w", Tensor(shape: [count], scalars: (0..<count).map { Float($0 % 1000) }))
    let path = temporaryDirectory() + "/pages.safetensors"
    try AtomicFile.write(writer.serialized(), to: path)
    let file = try SafetensorsFile(path: path)
    let before = residentFileKiB()
    let first = try file.view("w").toFloat32()
    let touched = residentFileKiB()
    #expect(touched - before > 60 << 10, "reading 64 MiB through the mapping made \(touched - before) KiB resident")
    file.releasePages(of: file["w"]!)
    let released = residentFileKiB()
    #expect(touched - released > 60 << 10, "releasing left \(released - before) KiB of the tensor resident")
    // The bytes come back from the page cache on the next read.
    #expect(try file.view("w").toFloat32().scalars == first.scalars)
    file.releaseAllPages()
}

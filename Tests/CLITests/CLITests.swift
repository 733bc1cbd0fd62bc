import Foundation
import Testing
import Tensors

// End-to-end tests of the command line: the real `stsq-tui` binary from the same build folder.

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var exitedBySignal: Bool
}

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The binary beside the test bundle (`swift build --build-tests` builds both into one folder).
let binary: URL = {
    let beside = Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("stsq-tui")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("stsq-tui")
}()

/// Runs the binary with `arguments`; `environment` entries are added to (or replace) this process's.
func runTool(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self),
                         exitedBySignal: process.terminationReason == .uncaughtSignal)
}

func fixture(_ name: String) -> String { packageRoot.appendingPathComponent("Tests/Fixtures/\(name)").path }

func writeTemporary(_ bytes: [UInt8], name: String) -> String {
    let directory = NSTemporaryDirectory() + "stsq-cli-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = directory + "/" + name
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

func headerFile(_ header: String, data: [UInt8] = [], declared: UInt64? = nil) -> [UInt8] {
    var h = Array(header.utf8)
    while h.count % 8 != 0 { h.append(0x20) }
    var out: [UInt8] = []
    withUnsafeBytes(of: (declared ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    return out + h + data
}

@Test func inspectListsTheFixtureCheckpoint() throws {
    let result = try runTool(["inspect", fixture("stdit3-layout.safetensors")])
    #expect(result.status == 0)
    #expect(result.stdout.contains("89 tensors, 343,144 parameters"))
    #expect(result.stdout.contains("spatial_blocks.1.mlp.fc2.weight"))
    #expect(result.stdout.contains("[64, 256]"))
}

@Test func inspectJSONFollowsTheDocumentedSchema() throws {
    let result = try runTool(["inspect", "--json", fixture("stdit-layout.safetensors")])
    #expect(result.status == 0)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    #expect(object["file"] as? String == fixture("stdit-layout.safetensors"))
    let tensors = try #require(object["tensors"] as? [[String: Any]])
    #expect(tensors.count == 2 * 19 + 16)  // OPENSORA.md §2.1: 19 per block, 16 global (no pos_embed)
    let qkv = try #require(tensors.first { $0["name"] as? String == "blocks.0.attn_temp.qkv.weight" })
    #expect(qkv["dtype"] as? String == "F32")
    #expect(qkv["shape"] as? [Int] == [144, 48])
    #expect(qkv["bytes"] as? Int == 144 * 48 * 4)
    let total = tensors.reduce(0) { $0 + (($1["shape"] as? [Int]) ?? []).reduce(1, *) }
    #expect(object["total_parameters"] as? Int == total)
    #expect(object["total_bytes"] as? Int == total * 4)
    let metadata = try #require(object["metadata"] as? [String: String])
    #expect(metadata["format"] == "pt")
}

/// Each bad file: exit status 1 (not a signal), nothing on stdout, one line on stderr naming the file.
@Test(arguments: [
    ("truncated", [UInt8]([1, 2, 3])),
    ("header-larger-than-file", headerFile("{}", declared: 4096)),
    ("absurd-header", headerFile("{}", declared: 1 << 40)),
    ("invalid-json", headerFile(#"{"w": [}"#)),
    ("unknown-dtype", headerFile(#"{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}}"#, data: [0, 0])),
    ("size-mismatch", headerFile(#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8))),
    ("out-of-bounds", headerFile(#"{"w":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#, data: [0, 0, 0, 0])),
    ("overlap", headerFile(#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#, data: .init(repeating: 0, count: 6))),
    ("duplicate", headerFile(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [0, 0])),
])
func inspectRefusesBadFiles(name: String, bytes: [UInt8]) throws {
    let path = writeTemporary(bytes, name: "\(name).safetensors")
    for json in [false, true] {
        let result = try runTool(["inspect", path] + (json ? ["--json"] : []))
        #expect(!result.exitedBySignal)
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(path))
    }
}

@Test func inspectOfAMissingFileNamesIt() throws {
    let result = try runTool(["inspect", "/no/such/model.safetensors"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("/no/such/model.safetensors"))
}

/// Every value of the named tensors in an output file is finite and within ±`bound`.
func expectFiniteValues(in path: String, _ tensors: [String], bound: Float, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let file = try SafetensorsFile(path: path)
    for name in tensors {
        let values = try file.tensor(name).scalars
        #expect(!values.isEmpty, "\(path): \(name) is empty", sourceLocation: sourceLocation)
        let bad = values.firstIndex { !$0.isFinite || abs($0) > bound }
        #expect(bad == nil, "\(path): \(name)[\(bad ?? 0)] = \(bad.map { values[$0] } ?? 0), outside ±\(bound)", sourceLocation: sourceLocation)
    }
}

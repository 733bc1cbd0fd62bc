import Foundation
import Testing
import Tensors

// Hostile inputs to the real binary (issue 15): each ends in status 1 and one escaped line on
// stderr, quickly, before heavy work — never a hang, a signal, or a file written from bad data.

/// Runs the binary with a deadline (a regression to a blocking open must fail, not hang the suite)
/// and, optionally, another working directory.
func runToolWithin(_ seconds: Double, _ arguments: [String], directory: String? = nil,
                   environment: [String: String] = [:]) throws -> (result: CommandResult, timedOut: Bool) {
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    let timedOut = process.isRunning
    if timedOut { process.terminate() }
    let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (CommandResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                          stderr: String(decoding: stderr, as: UTF8.self), exitedBySignal: process.terminationReason == .uncaughtSignal), timedOut)
}

private func expectQuickRefusal(_ arguments: [String], mentioning text: String, directory: String? = nil,
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
    let (result, timedOut) = try runToolWithin(30, arguments, directory: directory)
    #expect(!timedOut, "\(arguments) hung", sourceLocation: sourceLocation)
    #expect(!result.exitedBySignal && result.status == 1, "\(arguments): status \(result.status) \(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains(text), "\(arguments): \(result.stderr)",
            sourceLocation: sourceLocation)
}

private func folder() -> String {
    let path = NSTemporaryDirectory() + "stsq-reliability-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Test func fifosGivenAsInputsAreRefusedWithoutBlocking() throws {
    let dir = folder()
    let fifo = dir + "/pipe.safetensors"
    #expect(mkfifo(fifo, 0o644) == 0)
    try expectQuickRefusal(["inspect", fifo], mentioning: "FIFO")
    try expectQuickRefusal(["forward", fifo, "--inputs", engineFixture("stdit3-tiny.forward-cfg.safetensors"), "--output", dir + "/o.safetensors"], mentioning: "FIFO")
    try expectQuickRefusal(["forward", engineFixture("stdit3-tiny.safetensors"), "--inputs", fifo, "--output", dir + "/o.safetensors"], mentioning: "FIFO")
    try expectQuickRefusal(["sample", engineFixture("stdit3-tiny.safetensors"), "--embeddings", fifo, "--steps", "2", "--out", dir + "/s.safetensors"], mentioning: "FIFO")
    try expectQuickRefusal(["quantize", "--plan", fifo, "--out", dir + "/q"], mentioning: "FIFO")
    // config.json beside a checkpoint: a FIFO, or a link to /dev/zero (which once grew to 3 GB).
    let model = dir + "/model.safetensors"
    try FileManager.default.copyItem(atPath: engineFixture("stdit3-tiny.safetensors"), toPath: model)
    #expect(mkfifo(dir + "/config.json", 0o644) == 0)
    try expectQuickRefusal(["forward", model, "--inputs", engineFixture("stdit3-tiny.forward-cfg.safetensors"), "--output", dir + "/o.safetensors"], mentioning: "FIFO")
    try FileManager.default.removeItem(atPath: dir + "/config.json")
    try FileManager.default.createSymbolicLink(atPath: dir + "/config.json", withDestinationPath: "/dev/zero")
    try expectQuickRefusal(["forward", model, "--inputs", engineFixture("stdit3-tiny.forward-cfg.safetensors"), "--output", dir + "/o.safetensors"], mentioning: "character device")
}

/// One NaN weight once gave all-NaN outputs with status 0.
@Test func aNonFiniteWeightIsNamedAtLoadAndNothingIsWritten() throws {
    let dir = folder()
    let source = engineFixture("stdit3-tiny.safetensors")
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
    let file = try SafetensorsFile(path: source)
    let entry = try #require(file["spatial_blocks.0.mlp.fc1.weight"])
    #expect(entry.dtype == .f16)
    let headerLength = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
    let at = 8 + headerLength + entry.dataOffsets.lowerBound + 2 * 5
    (bytes[at], bytes[at + 1]) = (0x00, 0x7E)  // F16 NaN
    let model = dir + "/model.safetensors"
    try Data(bytes).write(to: URL(fileURLWithPath: model))
    try FileManager.default.copyItem(atPath: engineFixture("stdit3-tiny.config.json"), toPath: dir + "/model.config.json")
    let output = dir + "/o.safetensors"
    try expectQuickRefusal(["forward", model, "--inputs", engineFixture("stdit3-tiny.forward-cfg.safetensors"), "--output", output],
                           mentioning: "'spatial_blocks.0.mlp.fc1.weight': 1 of")
    try expectQuickRefusal(["sample", model, "--null-caption", "--steps", "2", "--out", dir + "/s.safetensors"], mentioning: "NaN or ±Inf")
    #expect(!FileManager.default.fileExists(atPath: output) && !FileManager.default.fileExists(atPath: dir + "/s.safetensors"))
}

/// A tensor name carrying an escape sequence and a newline is printed escaped, and the error that
/// quotes it stays one line.
@Test func namesWithControlCharactersAreEscapedOnTheTerminal() throws {
    let evil = "blocks.0\u{1b}]0;owned\u{07}\n\u{1b}[2Jx"
    let header = "{\"\(evil.unicodeScalars.map { $0.value < 0x20 ? String(format: "\\u%04x", $0.value) : String($0) }.joined())\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        + "\"__metadata__\":{\"note\":\"a\\u001b[31mred\\nline\"}}"
    let path = writeTemporary(headerFile(header, data: [0, 0, 128, 63]), name: "evil.safetensors")
    let listed = try runTool(["inspect", path])
    #expect(listed.status == 0)
    #expect(!listed.stdout.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 }, "raw control characters printed")
    #expect(listed.stdout.contains("blocks.0\\x1b]0;owned\\x07\\n\\x1b[2Jx") && listed.stdout.contains("a\\x1b[31mred\\nline"), "\(listed.stdout)")
    let bad = writeTemporary(headerFile("{\"\(header.dropFirst().prefix { $0 != ":" }):{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0]), name: "bad.safetensors")
    let refused = try runTool(["inspect", bad])
    #expect(refused.status == 1 && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    #expect(!refused.stderr.unicodeScalars.contains { $0.value == 0x1b }, "\(refused.stderr)")
}

@Test func outputsThatCannotBeWrittenAreRefusedBeforeTheWork() throws {
    let dir = folder()
    let plain = dir + "/plain"
    _ = FileManager.default.createFile(atPath: plain, contents: Data([0]))
    // `sample` would run its sampler first, `quantize` and `plan` could calibrate for minutes.
    try expectQuickRefusal(["sample", engineFixture("stdit3-tiny.safetensors"), "--null-caption", "--steps", "2", "--out", plain + "/s.safetensors"], mentioning: "is not a folder")
    try expectQuickRefusal(["plan", "--out", plain + "/plan.json", "--steps", "2"], mentioning: "is not a folder")
    try expectQuickRefusal(["calibrate", "--steps", "2", "--cache-directory", plain + "/cache"], mentioning: "is not a folder")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["plain"], "no folder left behind")
}

@Test func anEmptyPromptIsRefusedNotSampledAsACaption() throws {
    for prompt in ["", ".", "   "] {
        try expectQuickRefusal(["sample", "--prompt", prompt, "--steps", "2", "--out", temporaryOutput()], mentioning: "--null-caption")
    }
}

/// The bundled prompt files are found from any working directory, and the cache follows `HOME`.
@Test func bundledPromptsAndTheCacheDoNotDependOnTheWorkingDirectory() throws {
    let dir = folder()
    let (result, timedOut) = try runToolWithin(600, ["plan", "--steps", "2", "--out", dir + "/plan.json", "--cache-directory", dir + "/cache"], directory: "/")
    #expect(!timedOut && result.status == 0, "\(result.stderr)")
    let (help, _) = try runToolWithin(30, ["quantize", "--help"], environment: ["HOME": "/home/elsewhere", "XDG_CACHE_HOME": ""])
    #expect(help.stdout.contains("/home/elsewhere/.cache/stsq-tui/calibration"), "\(help.stdout)")
}

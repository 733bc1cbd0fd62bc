import ArgumentParser
import Tensors
#if canImport(Glibc)
import Glibc
#endif

/// `stsq-tui inspect CHECKPOINT [--json]`: the tensors of a safetensors file and their totals.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors of a safetensors checkpoint (name, dtype, shape, bytes) and totals.")

    @Argument(help: "A .safetensors file.")
    var checkpoint: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let file: SafetensorsFile
        do {
            file = try SafetensorsFile(path: checkpoint)
        } catch let error as SafetensorsError {
            FileHandleStderr.write("error: \(STSQ.oneLine("\(error)"))\n")
            throw ExitCode(1)
        }
        print(json ? CheckpointSummary(file).json : CheckpointSummary(file).table)
    }
}

/// Totals and per-tensor rows of a checkpoint, rendered as a table or JSON.
struct CheckpointSummary {
    let file: SafetensorsFile

    init(_ file: SafetensorsFile) { self.file = file }

    var totalParameters: Int { file.entries.reduce(0) { $0 + $1.elementCount } }
    var totalBytes: Int { file.entries.reduce(0) { $0 + $1.byteCount } }

    var json: String {
        let tensors: [JSONValue] = file.entries.map { entry in
            .object([
                ("name", .string(entry.name)),
                ("dtype", .string(entry.dtype.name)),
                ("shape", .array(entry.shape.map { .int($0) })),
                ("bytes", .int(entry.byteCount)),
            ])
        }
        return JSONValue.object([
            ("file", .string(file.path)),
            ("tensors", .array(tensors)),
            ("total_parameters", .int(totalParameters)),
            ("total_bytes", .int(totalBytes)),
            ("metadata", .object(file.metadata.map { ($0.key, .string($0.value)) })),
        ]).serialized(pretty: true)
    }

    var table: String {
        let rows = file.entries.map { entry in
            [TerminalText.escaped(entry.name), entry.dtype.name, "[" + entry.shape.map(String.init).joined(separator: ", ") + "]",
             formatCount(entry.elementCount), formatCount(entry.byteCount)]
        }
        var lines = [
            TerminalText.escaped(file.path),
            "\(file.entries.count) tensors, \(formatCount(totalParameters)) parameters, \(formatBytes(totalBytes))",
            "",
        ]
        lines += formatTable(header: ["name", "dtype", "shape", "elements", "bytes"], rows: rows,
                             rightAligned: [3, 4])
        if let rope = file["rope.freqs"] {
            lines.append("")
            lines.append("rope.freqs (\(rope.dtype.name)): the forward uses these stored RoPE frequencies, as OpenSora's module does, not recomputed ones")
        }
        if !file.metadata.isEmpty {
            lines.append("")
            lines.append("metadata:")
            for (key, value) in file.metadata {
                lines.append("  \(TerminalText.short(key, limit: 60)): \(TerminalText.short(value, limit: 120))")
            }
        }
        return lines.joined(separator: "\n")
    }
}

enum FileHandleStderr {
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

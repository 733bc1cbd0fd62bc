import Foundation
import Tensors

/// `export --format onnx-qdq`: the STDiT3 graph is traced from the PyTorch reference modules
/// (`torch.onnx.export`), so this hands the stsq export just written to the Python exporter of
/// tools/stsq_collect (`python -m stsq_collect.onnx_export`), which writes `OUT/onnx/`: one QDQ
/// model per distinct static configuration, a shared `weights.bin`, and `index.json`.
public enum ONNXQDQExport {
    /// The interpreter: `--python`, else `$STSQ_PYTHON`, else `python3` on the PATH.
    public static func interpreter(_ option: String? = nil) -> String {
        option ?? ProcessInfo.processInfo.environment["STSQ_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
    }

    /// Runs the exporter on `folder` (holding plan.json and quantized.safetensors); returns the
    /// files it wrote, relative to `folder`. `passThrough`: the exporter prints to this process's
    /// output (the command line); else its output is kept and its last error line reported.
    public static func write(checkpoint: String, folder: String, python: String, passThrough: Bool) throws -> [String] {
        let probe = try run(python, ["-c", "import stsq_collect.onnx_export, onnx"], passThrough: false)
        guard probe.status == 0 else {
            throw ONNXExportError("ONNX QDQ export traces the graph from the PyTorch reference modules: it needs a Python with "
                                  + "stsq_collect, torch and onnx (pip install tools/stsq_collect onnx), chosen by --python or STSQ_PYTHON; "
                                  + "\(python) cannot import them (\(lastLine(probe.errors) ?? "exit status \(probe.status)"))")
        }
        let out = folder + "/onnx"
        let export = try run(python, ["-m", "stsq_collect.onnx_export", checkpoint, "--quantized", folder, "--out", out], passThrough: passThrough)
        guard export.status == 0 else {
            throw ONNXExportError("the ONNX QDQ exporter (\(python) -m stsq_collect.onnx_export) failed"
                                  + (lastLine(export.errors).map { ": \($0)" } ?? " with exit status \(export.status)")
                                  + "; the stsq export in \(folder) is complete")
        }
        let index = try JSONValue.parse(try FileInput.readText(out + "/index.json", limit: FileInput.Limit.plan))
        let models = Set((index["steps"]?.arrayValue ?? []).compactMap { $0["model"]?.stringValue }).sorted()
        return (models + ["weights.bin", "index.json"]).map { "onnx/" + $0 }
    }

    private static func lastLine(_ text: String) -> String? {
        text.split(separator: "\n").last.map { TerminalText.short(String($0), limit: 300) }
    }

    /// Runs `python arguments`; standard output and error inherited with `passThrough`, else
    /// discarded and kept.
    private static func run(_ python: String, _ arguments: [String], passThrough: Bool) throws -> (status: Int32, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python] + arguments
        let errors = Pipe()
        if !passThrough {
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle.nullDevice
            process.standardError = errors
        }
        do { try process.run() } catch {
            throw ONNXExportError("cannot run \(python): \(error)")
        }
        let text = passThrough ? "" : String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}

/// Why the ONNX QDQ export could not run, in words a user can act on.
public struct ONNXExportError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

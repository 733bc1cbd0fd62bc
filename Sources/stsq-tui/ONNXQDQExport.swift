import ArgumentParser
import Foundation
import Tensors

/// `export --format onnx-qdq`: the STDiT3 graph is traced from the PyTorch reference modules
/// (`torch.onnx.export`), so this hands the stsq export just written to the Python exporter of
/// tools/stsq_collect (`python -m stsq_collect.onnx_export`), which writes `OUT/onnx/`: one QDQ
/// model per distinct static configuration, a shared `weights.bin`, and `index.json`.
enum ONNXQDQExport {
    /// The interpreter: `--python`, else `$STSQ_PYTHON`, else `python3` on the PATH.
    static func interpreter(_ option: String?) -> String {
        option ?? ProcessInfo.processInfo.environment["STSQ_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
    }

    /// Runs the exporter on `folder` (holding plan.json and quantized.safetensors); returns the
    /// files it wrote, relative to `folder`.
    static func write(checkpoint: String, folder: String, python: String) throws -> [String] {
        let probe = try run(python, ["-c", "import stsq_collect.onnx_export, onnx"], quiet: true)
        guard probe.status == 0 else {
            let why = probe.errors.split(separator: "\n").last.map(String.init) ?? "exit status \(probe.status)"
            throw ValidationError("--format onnx-qdq traces the graph from the PyTorch reference modules: it needs a Python with "
                                  + "stsq_collect, torch and onnx (pip install tools/stsq_collect onnx), chosen by --python or STSQ_PYTHON; "
                                  + "\(python) cannot import them (\(why))")
        }
        let out = folder + "/onnx"
        let export = try run(python, ["-m", "stsq_collect.onnx_export", checkpoint, "--quantized", folder, "--out", out], quiet: false)
        guard export.status == 0 else {
            throw ValidationError("the ONNX QDQ exporter (\(python) -m stsq_collect.onnx_export) failed with exit status \(export.status); "
                                  + "the stsq export in \(folder) is complete")
        }
        let index = try JSONValue.parse(try FileInput.readText(out + "/index.json", limit: FileInput.Limit.plan))
        let models = Set((index["steps"]?.arrayValue ?? []).compactMap { $0["model"]?.stringValue }).sorted()
        return (models + ["weights.bin", "index.json"]).map { "onnx/" + $0 }
    }

    /// Runs `python arguments`, the exporter's own output passed through unless `quiet`.
    private static func run(_ python: String, _ arguments: [String], quiet: Bool) throws -> (status: Int32, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python] + arguments
        let errors = Pipe()
        if quiet {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = errors
        }
        do { try process.run() } catch {
            throw ValidationError("cannot run \(python): \(error)")
        }
        let text = quiet ? String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) : ""
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}

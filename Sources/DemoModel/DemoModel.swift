import Foundation

/// The bundled demo model (issue 6): a small STDiT3 trained on the scene world of tools/scenes.py,
/// with its own word-level text encoder, shipped as a resource so the program runs with no path.
public enum DemoModel {
    /// Path of the bundled checkpoint (`config.json` beside it), or nil if the resource is missing.
    public static var checkpointPath: String? {
        guard let url = Bundle.module.url(forResource: "demo", withExtension: nil)?.appendingPathComponent("model.safetensors"),
              FileManager.default.fileExists(atPath: url.path) else { return nil }
        return url.path
    }
}

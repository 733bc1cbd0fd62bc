import Foundation
import Tensors

/// Finds and loads themes: built-in files shipped as resources (`themes/*.toml`), a user's
/// `~/.config/stsq-tui/themes/NAME.toml`, or an explicit path.
public enum ThemeLibrary {
    public static let builtInNames = ["dark", "light", "high-contrast"]

    static var resourceDirectory: URL? {
        Bundle.module.url(forResource: "themes", withExtension: nil)
    }

    static var userDirectory: URL? {
        let config = ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".config")
        return config.appendingPathComponent("stsq-tui/themes")
    }

    /// Names available to cycle through: built-ins first, then the user's own.
    public static func availableNames() -> [String] {
        var names = builtInNames
        if let dir = userDirectory, let files = try? FileManager.default.contentsOfDirectory(atPath: dir.path) {
            for file in files.sorted() where file.hasSuffix(".toml") {
                let name = String(file.dropLast(5))
                if !names.contains(name) { names.append(name) }
            }
        }
        return names
    }

    /// Loads `nameOrPath`: a path (contains `/` or ends in `.toml`) or a theme name.
    public static func load(_ nameOrPath: String) throws -> Theme {
        let path: String
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".toml") {
            path = nameOrPath
        } else if let user = userDirectory?.appendingPathComponent("\(nameOrPath).toml").path,
                  FileManager.default.fileExists(atPath: user) {
            path = user
        } else if let builtIn = resourceDirectory?.appendingPathComponent("\(nameOrPath).toml").path,
                  FileManager.default.fileExists(atPath: builtIn) {
            path = builtIn
        } else {
            throw ThemeError(file: nameOrPath, line: 0, key: nil,
                             message: "no such theme (available: \(availableNames().joined(separator: ", ")))")
        }
        let text: String
        do { text = try FileInput.readText(path, limit: FileInput.Limit.theme) } catch let error as FileInputError {
            throw ThemeError(file: path, line: 0, key: nil, message: error.reason)
        }
        return try ThemeParser.parse(text, file: path)
    }

    /// Loads a theme, or falls back to the default with the error to show the user.
    public static func loadOrDefault(_ nameOrPath: String) -> (Theme, ThemeError?) {
        do {
            return (try load(nameOrPath), nil)
        } catch let error as ThemeError {
            return (.dark, error)
        } catch {
            return (.dark, ThemeError(file: nameOrPath, line: 0, key: nil, message: "\(error)"))
        }
    }
}

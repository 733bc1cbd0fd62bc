import Tensors

/// A theme file that cannot be used, with where and why.
public struct ThemeError: Error, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let key: String?
    public let message: String

    public var description: String {
        "\(file):\(line): " + (key.map { "'\($0)': " } ?? "") + message
    }
}

/// Reads theme files: a small TOML subset — comments, `[colors]`, `key = "value"` and
/// `key = ["…", …]`:
///
///     name = "dark"
///     [colors]
///     text = "#d8dce3"
///     heat = ["#1d2b53", "#2e7d9a", "#f24d4d"]
///
/// Roles a file leaves out keep the default theme's colour. Unknown keys, bad colours, syntax
/// errors, a key or a table given twice and bare CR line endings are refused with the file, line
/// and key (as TOML does).
public enum ThemeParser {
    public static func parse(_ text: String, file: String) throws -> Theme {
        var theme = Theme.dark
        theme.name = file.split(separator: "/").last.map { String($0.split(separator: ".").first ?? $0) } ?? file
        var section = ""
        var seenSections: Set<String> = []
        var seenKeys: Set<String> = []
        // Split on scalars: as Characters, "\r\n" is one grapheme and would not split at "\n".
        let rawLines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { String(String.UnicodeScalarView($0)) }
        for (index, rawLine) in rawLines.enumerated() {
            let lineNumber = index + 1
            func fail(_ message: String, key: String? = nil) -> ThemeError {
                ThemeError(file: file, line: lineNumber, key: key, message: message)
            }
            var lineText = rawLine
            if lineText.unicodeScalars.last == "\r" { lineText.unicodeScalars.removeLast() }  // CRLF
            guard !lineText.unicodeScalars.contains("\r") else { throw fail("a bare carriage return: lines must end in LF or CRLF") }
            guard !lineText.unicodeScalars.contains(where: { TerminalText.isControl($0) && $0 != "\t" }) else {
                throw fail("a control character in the line")
            }
            let line = stripComment(lineText).trimmingSpaces()
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw fail("unterminated section header") }
                section = String(line.dropFirst().dropLast()).trimmingSpaces()
                guard section == "colors" else { throw fail("unknown section [\(section)] (known: [colors])") }
                guard seenSections.insert(section).inserted else { throw fail("table [\(section)] defined twice") }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { throw fail("expected key = value") }
            let key = String(line[..<equals]).trimmingSpaces()
            let rawValue = String(line[line.index(after: equals)...]).trimmingSpaces()
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw fail("invalid key")
            }
            guard seenKeys.insert(section + "." + key).inserted else { throw fail("given twice", key: key) }
            switch (section, key) {
            case ("", "name"):
                theme.name = try parseString(rawValue) ?? { throw fail("expected a quoted string", key: key) }()
            case ("", "description"):
                _ = try parseString(rawValue) ?? { throw fail("expected a quoted string", key: key) }()
            case ("colors", "heat"):
                guard let items = try parseStringArray(rawValue) else { throw fail("expected an array of \"#rrggbb\" strings", key: key) }
                guard items.count >= 2 else { throw fail("needs at least two gradient stops", key: key) }
                theme.heat = try items.map { item in
                    guard let c = RGB(hex: item) else { throw fail("bad colour \"\(item)\" (expected #rrggbb)", key: key) }
                    return c
                }
            case ("colors", _):
                guard let role = ThemeRole(rawValue: key) else {
                    let known = ThemeRole.allCases.map(\.rawValue).joined(separator: ", ")
                    throw fail("unknown colour role (known: \(known), heat)", key: key)
                }
                guard let value = try parseString(rawValue) else { throw fail("expected a quoted \"#rrggbb\"", key: key) }
                guard let color = RGB(hex: value) else { throw fail("bad colour \"\(value)\" (expected #rrggbb)", key: key) }
                theme.colors[role] = color
            default:
                throw fail("unknown key" + (section.isEmpty ? " (top level knows name, description; colours go under [colors])" : ""), key: key)
            }
        }
        return theme
    }

    private static func stripComment(_ line: String) -> String {
        var inString = false
        var out = ""
        for ch in line {
            if ch == "\"" { inString.toggle() }
            if ch == "#" && !inString { break }
            out.append(ch)
        }
        return out
    }

    private static func parseString(_ raw: String) throws -> String? {
        guard raw.count >= 2, raw.first == "\"", raw.last == "\"" else { return nil }
        let inner = raw.dropFirst().dropLast()
        guard !inner.contains("\"") else { return nil }
        return String(inner)
    }

    private static func parseStringArray(_ raw: String) throws -> [String]? {
        guard raw.first == "[", raw.last == "]" else { return nil }
        let inner = raw.dropFirst().dropLast().trimmingSpaces()
        if inner.isEmpty { return [] }
        var items: [String] = []
        for part in inner.split(separator: ",", omittingEmptySubsequences: false) {
            let item = String(part).trimmingSpaces()
            if item.isEmpty { continue }  // trailing comma
            guard let s = try parseString(item) else { return nil }
            items.append(s)
        }
        return items
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}

extension Substring {
    func trimmingSpaces() -> String { String(self).trimmingSpaces() }
}

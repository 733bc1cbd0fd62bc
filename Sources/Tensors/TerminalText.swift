/// Text from files (tensor names, metadata, paths) made safe to print on a terminal: control
/// characters cannot move the cursor, change colours or split a one-line error into two.
public enum TerminalText {
    /// Control characters (C0, DEL, C1) and bidirectional overrides written as escapes: `\n`, `\t`,
    /// `\r`, `\x1b`, `\u{202e}`; a backslash is doubled so the escapes cannot be forged.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else { out.unicodeScalars.append(scalar); continue }
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                let hex = String(scalar.value, radix: 16)
                out += scalar.value < 0x100 ? "\\x" + String(repeating: "0", count: 2 - hex.count) + hex : "\\u{\(hex)}"
            }
        }
        return out
    }

    /// Escaped, and cut to `limit` characters with the full length said, for values that can be huge.
    public static func short(_ text: String, limit: Int = 160) -> String {
        let safe = escaped(text)
        guard safe.count > limit else { return safe }
        return String(safe.prefix(limit)) + "… (\(text.count) characters)"
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool { scalar == "\\" || isControl(scalar) }

    /// C0, DEL, C1 and the bidirectional overrides: what a terminal would act on instead of showing.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}

/// Weights of 4 bits or fewer as an NPU stores them: two signed 4-bit codes per byte, the even
/// input channel in the low nibble, the odd one in the high nibble (two's complement, −8…7), rows
/// padded to whole bytes — the int4 layout of ONNX (`INT4`) and of QNN/AIMET encodings.
public enum Int4Packing {
    /// Bytes of one `[rows, columns]` matrix packed.
    public static func byteCount(rows: Int, columns: Int) -> Int { rows * ((columns + 1) / 2) }

    /// `[rows, columns]` codes in −8…7 → `[rows, ⌈columns/2⌉]` bytes.
    public static func pack(_ values: [Int8], rows: Int, columns: Int) -> [UInt8] {
        precondition(values.count == rows * columns, "\(values.count) codes for \(rows)×\(columns)")
        precondition(values.allSatisfy { (-8...7).contains($0) }, "a code outside −8…7 does not fit 4 bits")
        let width = (columns + 1) / 2
        var out = [UInt8](repeating: 0, count: rows * width)
        for r in 0..<rows {
            for k in 0..<columns {
                let nibble = UInt8(bitPattern: values[r * columns + k]) & 0x0F
                out[r * width + k / 2] |= k % 2 == 0 ? nibble : nibble << 4
            }
        }
        return out
    }

    /// The inverse of `pack` (a padding nibble is ignored).
    public static func unpack(_ bytes: [UInt8], rows: Int, columns: Int) -> [Int8] {
        let width = (columns + 1) / 2
        precondition(bytes.count == rows * width, "\(bytes.count) bytes for \(rows)×\(columns) packed codes")
        var out = [Int8](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for k in 0..<columns {
                let byte = bytes[r * width + k / 2]
                let nibble = k % 2 == 0 ? byte & 0x0F : byte >> 4
                // Sign-extend the 4-bit two's complement code.
                out[r * columns + k] = Int8(bitPattern: nibble << 4) >> 4
            }
        }
        return out
    }
}

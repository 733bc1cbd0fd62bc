/// A typed, read-only window onto one tensor's bytes inside a mapped safetensors file.
/// Holding a view keeps the file mapped.
public struct TensorView: @unchecked Sendable {
    public let entry: SafetensorsEntry
    /// The raw little-endian bytes, `entry.byteCount` long.
    public let bytes: UnsafeRawBufferPointer
    let file: SafetensorsFile

    public var name: String { entry.name }
    public var dtype: DType { entry.dtype }
    public var shape: [Int] { entry.shape }
    public var elementCount: Int { entry.elementCount }

    /// Whether the data sits at an address aligned for its element type, so it can be read as a
    /// typed buffer without copying. Files written by `SafetensorsWriter` always are.
    public var isAligned: Bool {
        guard let base = bytes.baseAddress else { return true }
        return Int(bitPattern: base) % dtype.size == 0
    }

    /// Calls `body` with the elements as a typed buffer, without copying. `T` must match the dtype
    /// (Float for F32, UInt16 for the raw bits of F16/BF16, Int8, UInt8, Int32, …).
    public func withElements<T, R>(as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> R) throws -> R {
        guard MemoryLayout<T>.size == dtype.size, TensorView.matches(T.self, dtype) else {
            throw SafetensorsError(file: file.path, tensor: name, kind: .unsupportedConversion,
                                   "stored as \(dtype.rawValue), cannot be viewed as \(T.self)")
        }
        if isAligned {
            let typed = bytes.bindMemory(to: T.self)
            return try body(typed)
        }
        // Misaligned data (legal in the format, rare in practice): read it through an aligned copy.
        let copy = [T](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: bytes)
            initialized = elementCount
        }
        return try copy.withUnsafeBufferPointer(body)
    }

    private static func matches<T>(_ type: T.Type, _ dtype: DType) -> Bool {
        switch dtype {
        case .f64: return T.self == Double.self
        case .f32: return T.self == Float.self
        case .f16, .bf16, .u16: return T.self == UInt16.self
        case .i64: return T.self == Int64.self
        case .i32: return T.self == Int32.self
        case .i16: return T.self == Int16.self
        case .i8: return T.self == Int8.self
        case .u64: return T.self == UInt64.self
        case .u32: return T.self == UInt32.self
        case .u8, .bool: return T.self == UInt8.self
        }
    }

    /// How many elements are NaN or ±Inf (read off the exponent bits; F64 values that overflow
    /// Float32 count too). Integer tensors have none.
    public func nonFiniteCount() -> Int {
        guard let src = bytes.baseAddress else { return 0 }
        let n = elementCount
        var count = 0
        switch dtype {
        case .f32:
            for i in 0..<n where src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self) & 0x7F80_0000 == 0x7F80_0000 { count += 1 }
        case .f16:
            for i in 0..<n where src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & 0x7C00 == 0x7C00 { count += 1 }
        case .bf16:
            for i in 0..<n where src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & 0x7F80 == 0x7F80 { count += 1 }
        case .f64:
            for i in 0..<n where !Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)).isFinite { count += 1 }
        default: break
        }
        return count
    }

    /// Converts into caller memory of `elementCount` floats (exact for f16/bf16/i8/u8/i16/u16;
    /// f64 and wide integers are rounded to the nearest Float).
    public func convert(into destination: UnsafeMutablePointer<Float>) {
        let n = elementCount
        guard let src = bytes.baseAddress else { return }
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(destination).copyMemory(from: src, byteCount: 4 * n)
        case .f16: convertF16ToFloat(src, destination, count: n)
        case .bf16: convertBF16ToFloat(src, destination, count: n)
        case .f64: for i in 0..<n { destination[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .i64: for i in 0..<n { destination[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .u64: for i in 0..<n { destination[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        case .i32: for i in 0..<n { destination[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .u32: for i in 0..<n { destination[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        case .i16: for i in 0..<n { destination[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .u16: for i in 0..<n { destination[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .i8: for i in 0..<n { destination[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
        case .u8, .bool: for i in 0..<n { destination[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        }
    }

    /// The tensor as a Float32 `Tensor` (a copy; see `convert(into:)`).
    public func toFloat32() -> Tensor {
        let n = elementCount
        let scalars = [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            if let base = buffer.baseAddress { convert(into: base) }
            initialized = n
        }
        return Tensor(shape: shape, scalars: scalars)
    }

    /// Integer contents (I64/I32/I16/I8/U8/U16/U32/BOOL), e.g. masks and token ids.
    public func toInts() throws -> [Int] {
        guard let src = bytes.baseAddress else { return [] }
        let n = elementCount
        switch dtype {
        case .i64: return (0..<n).map { Int(src.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
        case .i32: return (0..<n).map { Int(src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
        case .u32: return (0..<n).map { Int(src.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) }
        case .i16: return (0..<n).map { Int(src.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self)) }
        case .u16: return (0..<n).map { Int(src.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) }
        case .i8: return (0..<n).map { Int(src.load(fromByteOffset: $0, as: Int8.self)) }
        case .u8, .bool: return (0..<n).map { Int(src.load(fromByteOffset: $0, as: UInt8.self)) }
        default:
            throw SafetensorsError(file: file.path, tensor: name, kind: .unsupportedConversion,
                                   "stored as \(dtype.rawValue), expected an integer dtype")
        }
    }
}

import CDNNL

/// The weights of one linear layer in the layouts oneDNN asked for. The plain `[C, K]` values are
/// kept (as the caller's array, shared copy-on-write, not duplicated) so a product of another row
/// count that prefers another packed layout can be served; in practice one packed layout serves
/// all row counts, so packing happens once per layer.
final class PackedWeights {
    enum Plain {
        case float32([Float])
        case int8([Int8])
    }

    /// Plain weights as the matmul's `[K, C]` operand (PyTorch `[C, K]` storage = transposed).
    let plainDesc: dnnl_memory_desc_t
    let plain: Plain
    private var layouts: [(desc: dnnl_memory_desc_t, buffer: AlignedBuffer)] = []

    init(_ plain: Plain, outputs: Int, inputs: Int) throws {
        switch plain {
        case .float32(let values):
            precondition(values.count == outputs * inputs)
            plainDesc = try MemoryDesc.plain([inputs, outputs], dnnl_f32, strides: [1, inputs])
        case .int8(let values):
            precondition(values.count == outputs * inputs)
            plainDesc = try MemoryDesc.plain([inputs, outputs], dnnl_s8, strides: [1, inputs])
        }
        self.plain = plain
    }

    /// The weights in `desc`'s layout, reordering once per distinct layout. Called inside `DNNLRuntime.shared.serialized`.
    func buffer(for desc: dnnl_memory_desc_t) throws -> UnsafeRawPointer {
        var wanted = desc
        for layout in layouts {
            var have = layout.desc
            if dnnl_memory_desc_equal(&have, &wanted) != 0 { return UnsafeRawPointer(layout.buffer.pointer) }
        }
        let buffer = AlignedBuffer(byteCount: dnnl_memory_desc_get_size(&wanted))
        switch plain {
        case .float32(let values):
            try values.withUnsafeBytes { try reorder(from: plainDesc, $0.baseAddress!, to: wanted, buffer.pointer) }
        case .int8(let values):
            try values.withUnsafeBytes { try reorder(from: plainDesc, $0.baseAddress!, to: wanted, buffer.pointer) }
        }
        layouts.append((wanted, buffer))
        return UnsafeRawPointer(buffer.pointer)
    }
}

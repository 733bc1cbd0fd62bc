import CDNNL

/// The weights of one linear layer in the layouts oneDNN asked for. The plain `[C, K]` copy is
/// kept so a product of another row count that prefers another packed layout can be served;
/// in practice one packed layout serves all row counts, so packing happens once per layer.
final class PackedWeights {
    /// Plain weights as the matmul's `[K, C]` operand (PyTorch `[C, K]` storage = transposed).
    let plainDesc: dnnl_memory_desc_t
    private let plain: AlignedBuffer
    private var layouts: [(desc: dnnl_memory_desc_t, buffer: AlignedBuffer)] = []

    init(copying source: UnsafeRawPointer, outputs: Int, inputs: Int, type: dnnl_data_type_t, elementSize: Int) throws {
        plainDesc = try MemoryDesc.plain([inputs, outputs], type, strides: [1, inputs])
        plain = AlignedBuffer(byteCount: outputs * inputs * elementSize)
        plain.pointer.copyMemory(from: source, byteCount: outputs * inputs * elementSize)
    }

    var plainPointer: UnsafeRawPointer { UnsafeRawPointer(plain.pointer) }

    /// The weights in `desc`'s layout, reordering once per distinct layout. Caller holds the oneDNN lock.
    func buffer(for desc: dnnl_memory_desc_t) throws -> UnsafeRawPointer {
        var wanted = desc
        for layout in layouts {
            var have = layout.desc
            if dnnl_memory_desc_equal(&have, &wanted) != 0 { return UnsafeRawPointer(layout.buffer.pointer) }
        }
        let buffer = AlignedBuffer(byteCount: dnnl_memory_desc_get_size(&wanted))
        try reorder(from: plainDesc, UnsafeRawPointer(plain.pointer), to: wanted, buffer.pointer)
        layouts.append((wanted, buffer))
        return UnsafeRawPointer(buffer.pointer)
    }
}

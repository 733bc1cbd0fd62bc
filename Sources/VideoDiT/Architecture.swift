/// The OpenSora transformer families the engine knows (OPENSORA.md §2).
public enum Architecture: String, Sendable, Hashable, CaseIterable {
    /// OpenSora v1.2: separate `spatial_blocks.N` and `temporal_blocks.N`.
    case stdit3 = "STDiT3"
    /// OpenSora v1.0: `blocks.N` with spatial `attn` and temporal `attn_temp`.
    case stdit = "STDiT"

    /// Detects the family from state-dict names, or nil when neither layout is present.
    public static func detect(names: some Sequence<String>) -> Architecture? {
        var sawBlocks = false
        for name in names {
            if name.hasPrefix("spatial_blocks.") || name.hasPrefix("temporal_blocks.") { return .stdit3 }
            if name.hasPrefix("blocks.") { sawBlocks = true }
        }
        return sawBlocks ? .stdit : nil
    }
}

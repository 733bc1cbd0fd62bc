import CDNNL

/// The x86 instruction set oneDNN dispatches to in this process: the CPU's best, or lower when
/// capped with the environment variable `DNNL_MAX_CPU_ISA` (read once, at oneDNN's first use).
/// Every performance figure should carry it: machines of the same kind differ in CPU.
public struct InstructionSet: Sendable, Hashable, CustomStringConvertible {
    /// oneDNN's `dnnl_cpu_isa_t` bit mask (each ISA includes the bits of those below it).
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// What oneDNN uses here: `dnnl_get_effective_cpu_isa()`.
    public static var effective: InstructionSet { InstructionSet(rawValue: dnnl_get_effective_cpu_isa().rawValue) }

    /// The values `DNNL_MAX_CPU_ISA` accepts on x86 that oneDNN 2.6 dispatches int8 products for,
    /// lowest first (a cap above the CPU's own ISA leaves the CPU's).
    public static let capNames = ["AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX512_CORE_AMX"]

    private static let names: [UInt32: String] = [
        dnnl_cpu_isa_sse41.rawValue: "sse41", dnnl_cpu_isa_avx.rawValue: "avx", dnnl_cpu_isa_avx2.rawValue: "avx2",
        dnnl_cpu_isa_avx2_vnni.rawValue: "avx2_vnni", dnnl_cpu_isa_avx512_mic.rawValue: "avx512_mic",
        dnnl_cpu_isa_avx512_mic_4ops.rawValue: "avx512_mic_4ops", dnnl_cpu_isa_avx512_core.rawValue: "avx512_core",
        dnnl_cpu_isa_avx512_core_vnni.rawValue: "avx512_core_vnni", dnnl_cpu_isa_avx512_core_bf16.rawValue: "avx512_core_bf16",
        dnnl_cpu_isa_avx512_core_amx.rawValue: "avx512_core_amx",
    ]

    /// oneDNN's lower-case name (`avx2`, `avx512_core_vnni`, `avx512_core_amx`, …).
    public var name: String { Self.names[rawValue] ?? "isa_0x" + String(rawValue, radix: 16) }
    public var description: String { name }

    /// Whether int8 dot products accumulate straight into int32 (VNNI's `vpdpbusd`, AVX-VNNI, AMX's
    /// `tdpbusd`). Without it oneDNN multiplies u8·s8 with `vpmaddubsw`, whose int16 pair sums
    /// saturate (255·127·2 > 32,767): see `IntegerProductMethod`.
    public var hasInt8DotProduct: Bool {
        let vnni = dnnl_cpu_isa_avx512_core_vnni.rawValue & ~dnnl_cpu_isa_avx512_core.rawValue
        let avxVNNI = dnnl_cpu_isa_avx2_vnni.rawValue & ~dnnl_cpu_isa_avx2.rawValue
        return rawValue & (vnni | avxVNNI) != 0
    }
}

/// The oneDNN library this process runs.
public enum OneDNNLibrary {
    /// How many threads oneDNN runs with (`ThreadBudget`): "2 threads, fewer while other processes
    /// load the CPUs", or the fixed `OMP_NUM_THREADS`.
    public static var threadPolicy: String { DNNLRuntime.shared.threadPolicy }

    /// `major.minor.patch`, e.g. `2.6.3`.
    public static var version: String {
        let v = dnnl_version().pointee
        return "\(v.major).\(v.minor).\(v.patch)"
    }
}

import CDNNL
#if canImport(Glibc)
import Glibc
#endif

/// A oneDNN call that failed; `what` names the step (e.g. "matmul primitive descriptor").
public struct DNNLError: Error, CustomStringConvertible {
    public let what: String
    public let status: Int
    public var description: String { "oneDNN: \(what) failed (status \(status))" }
}

@inline(__always)
func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) throws {
    guard status == dnnl_success else { throw DNNLError(what: what(), status: Int(status.rawValue)) }
}

/// The process's oneDNN CPU engine and stream. oneDNN runs its own OpenMP threads inside each
/// call; calls are serialised through `serialized` because a stream is not safe for concurrent use.
/// Every oneDNN call of the project goes through this file and its neighbours in `GEMM/`, so an
/// API change (oneDNN 3.x moves scales to execution time) touches one place.
final class DNNLRuntime: @unchecked Sendable {
    static let shared = DNNLRuntime()

    let engine: dnnl_engine_t
    let stream: dnnl_stream_t
    private let lock = NSLockLite()
    private let threadBudget = ThreadBudget()

    private init() {
        var engine: dnnl_engine_t?
        var stream: dnnl_stream_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, let engine,
              dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let stream else {
            fatalError("oneDNN: cannot create the CPU engine and stream")
        }
        self.engine = engine
        self.stream = stream
    }

    /// Runs `body` as the only oneDNN work of the process (a stream is not safe for concurrent
    /// use, and two OpenMP teams on one machine's cores fall off a cliff), with the OpenMP thread
    /// count of `ThreadBudget` applied to the calling thread.
    /// `maximumThreads` caps the budget for this call (small products run on one thread).
    func serialized<R>(maximumThreads: Int = .max, _ body: () throws -> R) rethrows -> R {
        try lock.withLock {
            threads = threadBudget.apply(limit: min(maximumThreads, forcedThreads ?? .max))
            return try body()
        }
    }

    /// oneDNN's threads for the work running now; valid inside `serialized`. Primitives bake it in:
    /// caches of primitives key on it.
    private(set) var threads = 1

    /// A thread count imposed on every call while `body` runs (checks of thread independence).
    private var forcedThreads: Int?

    func withThreads<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        lock.withLock { forcedThreads = count }
        defer { lock.withLock { forcedThreads = nil } }
        return try body()
    }

    /// The most threads oneDNN may get here.
    var maximumThreads: Int { threadBudget.maximum }

    var threadPolicy: String {
        let n = threadBudget.maximum
        return threadBudget.adaptive ? "\(n) threads, fewer while other processes load the CPUs"
            : "\(n) thread\(n == 1 ? "" : "s") (fixed)"
    }

    private var scratchBuffers: [AlignedBuffer] = []

    /// The scratch slot of primitives created with a user scratchpad (`PrimitiveCall`).
    static let scratchpadSlot = 15

    /// A reusable 64-byte aligned buffer of at least `byteCount` bytes, one per `slot` (0, 1, …),
    /// valid inside `serialized`: activation codes and other per-call temporaries, kept
    /// warm instead of faulting in fresh pages on every call.
    func scratch(_ slot: Int, byteCount: Int) -> UnsafeMutableRawPointer {
        while scratchBuffers.count <= slot { scratchBuffers.append(AlignedBuffer(byteCount: 0)) }
        if scratchBuffers[slot].byteCount < byteCount { scratchBuffers[slot] = AlignedBuffer(byteCount: byteCount) }
        return scratchBuffers[slot].pointer
    }

    /// Runs a primitive to completion; called inside `serialized`.
    func execute(_ primitive: dnnl_primitive_t, _ args: [dnnl_exec_arg_t]) throws {
        try args.withUnsafeBufferPointer { buffer in
            try execute(primitive, buffer)
        }
    }

    func execute(_ primitive: dnnl_primitive_t, _ args: UnsafeBufferPointer<dnnl_exec_arg_t>) throws {
        try check(dnnl_primitive_execute(primitive, stream, Int32(args.count), args.baseAddress), "execute")
        try check(dnnl_stream_wait(stream), "stream wait")
    }
}

/// A pthread mutex; Foundation-free so `Tensors` stays light.
final class NSLockLite: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

// MARK: - Memory descriptors

enum MemoryDesc {
    static func plain(_ dims: [Int], _ type: dnnl_data_type_t, strides: [Int]) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init)
        let s = strides.map(Int64.init)
        try check(dnnl_memory_desc_init_by_strides(&md, Int32(d.count), d, type, s), "memory descriptor \(dims)")
        return md
    }

    /// Row-major dims.
    static func rowMajor(_ dims: [Int], _ type: dnnl_data_type_t) throws -> dnnl_memory_desc_t {
        var strides = [Int](repeating: 1, count: dims.count)
        for i in stride(from: dims.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * dims[i + 1] }
        return try plain(dims, type, strides: strides)
    }

    /// Layout chosen by the primitive (used for prepacked weights).
    static func any(_ dims: [Int], _ type: dnnl_data_type_t) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init)
        try check(dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, type, dnnl_format_tag_any), "memory descriptor \(dims)")
        return md
    }
}

/// A oneDNN memory object wrapping caller-owned data; the handle is swapped per call.
final class DNNLMemory {
    let memory: dnnl_memory_t
    var desc: dnnl_memory_desc_t

    init(_ desc: dnnl_memory_desc_t) throws {
        var md = desc
        var memory: dnnl_memory_t?
        try check(dnnl_memory_create(&memory, &md, DNNLRuntime.shared.engine, stsq_dnnl_memory_none()), "memory object")
        self.memory = memory!
        self.desc = md
    }

    private var bound: UnsafeRawPointer?

    /// Points the memory object at `pointer` (a no-op when it already does).
    func bind(_ pointer: UnsafeRawPointer?) throws {
        guard pointer != bound else { return }
        try check(dnnl_memory_set_data_handle(memory, UnsafeMutableRawPointer(mutating: pointer)), "set data handle")
        bound = pointer
    }

    var byteCount: Int { dnnl_memory_desc_get_size(&desc) }

    deinit { dnnl_memory_destroy(memory) }
}

/// A created primitive together with its descriptor; destroyed with the owner.
final class DNNLPrimitive {
    let descriptor: const_dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    private let ownedDescriptor: dnnl_primitive_desc_t

    init(descriptor: dnnl_primitive_desc_t) throws {
        var primitive: dnnl_primitive_t?
        let status = dnnl_primitive_create(&primitive, descriptor)
        guard status == dnnl_success, let primitive else {
            dnnl_primitive_desc_destroy(descriptor)
            throw DNNLError(what: "primitive creation", status: Int(status.rawValue))
        }
        self.ownedDescriptor = descriptor
        self.descriptor = descriptor
        self.primitive = primitive
    }

    /// oneDNN's implementation name, e.g. `brg:avx512_core_vnni`.
    var implementationName: String {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name) == dnnl_success,
              let name else { return "unknown" }
        return String(cString: name)
    }

    func queryMemoryDesc(_ what: dnnl_query_t) -> dnnl_memory_desc_t {
        dnnl_primitive_desc_query_md(descriptor, what, 0).pointee
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(ownedDescriptor)
    }
}

/// A primitive with one memory object per argument, built once and run many times with only the
/// data pointers changing: no allocation per call.
final class PrimitiveCall {
    let primitive: DNNLPrimitive
    /// In the order of the `arguments` given at creation (then the scratchpad's, if any).
    let memories: [DNNLMemory]
    private let args: UnsafeMutableBufferPointer<dnnl_exec_arg_t>
    /// Keeps data the call points at for its whole life (folded biases, constants).
    let owned: [AnyObject]
    /// Bytes of the user scratchpad (`DNNLAttributes.useSharedScratchpad`), 0 for none.
    let scratchpadBytes: Int

    init(_ primitive: DNNLPrimitive, arguments: [(index: Int32, desc: dnnl_memory_desc_t)], owned: [AnyObject] = []) throws {
        self.primitive = primitive
        var arguments = arguments
        // Only a primitive created with a user scratchpad reports one here (zero size otherwise).
        var scratchpad = primitive.queryMemoryDesc(dnnl_query_scratchpad_md)
        scratchpadBytes = dnnl_memory_desc_get_size(&scratchpad)
        if scratchpadBytes > 0 { arguments.append((stsq_dnnl_arg_scratchpad(), scratchpad)) }
        memories = try arguments.map { try DNNLMemory($0.desc) }
        self.owned = owned
        args = .allocate(capacity: arguments.count)
        _ = args.initialize(from: zip(arguments, memories).map { dnnl_exec_arg_t(arg: $0.index, memory: $1.memory) })
    }

    /// Points argument `slot` at `pointer`.
    func bind(_ slot: Int, _ pointer: UnsafeRawPointer?) throws { try memories[slot].bind(pointer) }

    /// Runs the primitive to completion; called inside `DNNLRuntime.shared.serialized`. A user
    /// scratchpad is the runtime's shared scratch buffer: calls never overlap, so one buffer
    /// serves every primitive instead of one per primitive.
    func execute() throws {
        if scratchpadBytes > 0 {
            try memories[memories.count - 1].bind(DNNLRuntime.shared.scratch(DNNLRuntime.scratchpadSlot, byteCount: scratchpadBytes))
        }
        try DNNLRuntime.shared.execute(primitive.primitive, UnsafeBufferPointer(args))
    }

    deinit { args.deallocate() }
}

/// Primitives kept by key up to a capacity, the least recently used evicted first: a layer swept
/// over many encodings or row counts holds bounded memory.
struct PrimitiveCache<Key: Hashable, Value> {
    let capacity: Int
    private var entries: [Key: (value: Value, lastUse: UInt64)] = [:]
    private var tick: UInt64 = 0

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { entries.count }
    func contains(_ key: Key) -> Bool { entries[key] != nil }

    /// The cached value, or `make()`'s, stored (evicting the oldest when full).
    mutating func value(for key: Key, _ make: () throws -> Value) rethrows -> Value {
        tick += 1
        if let cached = entries[key] {
            entries[key] = (cached.value, tick)
            return cached.value
        }
        let value = try make()
        if entries.count >= capacity, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
            entries[oldest] = nil
        }
        entries[key] = (value, tick)
        return value
    }
}

/// A matmul call `dst = src · weights (+ bias)`: argument slots 0 src, 1 weights, 2 dst, 3 bias.
final class MatmulPlan {
    let call: PrimitiveCall
    var primitive: DNNLPrimitive { call.primitive }
    var weights: DNNLMemory { call.memories[1] }
    let bias: DNNLMemory?

    init(primitive: DNNLPrimitive, src: dnnl_memory_desc_t, weights: dnnl_memory_desc_t, dst: dnnl_memory_desc_t,
         bias: dnnl_memory_desc_t?, owned: [AnyObject] = []) throws {
        var arguments = [(stsq_dnnl_arg_src(), src), (stsq_dnnl_arg_weights(), weights), (stsq_dnnl_arg_dst(), dst)]
        if let bias { arguments.append((stsq_dnnl_arg_bias(), bias)) }
        call = try PrimitiveCall(primitive, arguments: arguments.map { (index: $0.0, desc: $0.1) }, owned: owned)
        self.bias = bias == nil ? nil : call.memories[3]
    }

    /// Runs `dst = src · weights (+ bias)`; called inside `DNNLRuntime.shared.serialized`.
    func run(src: UnsafeRawPointer, weights: UnsafeRawPointer? = nil, dst: UnsafeMutableRawPointer) throws {
        try call.bind(0, src)
        if let weights { try call.bind(1, weights) }
        try call.bind(2, UnsafeRawPointer(dst))
        try call.execute()
    }
}

/// Primitive attributes (output scales, zero points); destroyed after primitive creation.
final class DNNLAttributes {
    let attr: dnnl_primitive_attr_t

    init() throws {
        var attr: dnnl_primitive_attr_t?
        try check(dnnl_primitive_attr_create(&attr), "primitive attributes")
        self.attr = attr!
    }

    /// Output scales baked into the primitive: one for all outputs, or one per output column (mask 2).
    func setOutputScales(_ scales: [Float], perColumn: Bool, ndims: Int = 2) throws {
        let mask: Int32 = perColumn ? Int32(1 << (ndims - 1)) : 0
        try check(dnnl_primitive_attr_set_output_scales(attr, Int64(scales.count), mask, scales), "output scales")
    }

    /// The primitive takes its scratchpad from the caller (`PrimitiveCall` binds the runtime's
    /// shared one) instead of owning one: thousands of cached per-step primitives (the int8 path
    /// on ISAs whose int8 products keep large scratchpads) would otherwise hold gigabytes.
    func useSharedScratchpad() throws {
        try check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode")
    }

    func setSourceZeroPoint(_ zeroPoint: Int32) throws {
        try check(dnnl_primitive_attr_set_zero_points(attr, stsq_dnnl_arg_src(), 1, 0, [zeroPoint]), "source zero point")
    }

    /// Operations applied, in order, to each result before it is stored (rounding to an integer type comes last).
    enum PostOp {
        /// `dst ← result + dst` (accumulate into what the destination holds).
        case sum
        /// oneDNN eltwise `algorithm` with its `alpha`, `beta`.
        case eltwise(dnnl_alg_kind_t, alpha: Float, beta: Float)
        /// `result ← result (algorithm) src1`, `src1` a runtime tensor broadcast to the result
        /// (passed at execution as `stsq_dnnl_arg_post_op_src_1(position)`).
        case binary(dnnl_alg_kind_t, dnnl_memory_desc_t)
    }

    func setPostOps(_ postOps: [PostOp]) throws {
        var ops: dnnl_post_ops_t?
        try check(dnnl_post_ops_create(&ops), "post-ops")
        defer { dnnl_post_ops_destroy(ops) }
        for op in postOps {
            switch op {
            case .sum: try check(dnnl_post_ops_append_sum(ops, 1), "sum post-op")
            case .eltwise(let algorithm, let alpha, let beta):
                try check(dnnl_post_ops_append_eltwise(ops, 1, algorithm, alpha, beta), "eltwise post-op")
            case .binary(let algorithm, var desc):
                try check(dnnl_post_ops_append_binary(ops, algorithm, &desc), "binary post-op")
            }
        }
        try check(dnnl_primitive_attr_set_post_ops(attr, ops), "attach post-ops")
    }

    deinit { dnnl_primitive_attr_destroy(attr) }
}

/// Builds a matmul primitive descriptor; `weights` may be `format_tag_any` to let oneDNN pick a packed layout.
func makeMatmul(src: dnnl_memory_desc_t, weights: dnnl_memory_desc_t, bias: dnnl_memory_desc_t?,
                dst: dnnl_memory_desc_t, attributes: DNNLAttributes?) throws -> DNNLPrimitive {
    var src = src, weights = weights, dst = dst
    var desc = dnnl_matmul_desc_t()
    if var bias {
        try check(dnnl_matmul_desc_init(&desc, &src, &weights, &bias, &dst), "matmul descriptor")
    } else {
        try check(dnnl_matmul_desc_init(&desc, &src, &weights, nil, &dst), "matmul descriptor")
    }
    var pd: dnnl_primitive_desc_t?
    try check(dnnl_primitive_desc_create(&pd, &desc, attributes?.attr, DNNLRuntime.shared.engine, nil),
              "matmul primitive descriptor")
    return try DNNLPrimitive(descriptor: pd!)
}

/// Builds an elementwise binary primitive descriptor `dst = src0 (algorithm) src1` (src1 broadcast).
func makeBinary(_ algorithm: dnnl_alg_kind_t, src0: dnnl_memory_desc_t, src1: dnnl_memory_desc_t, dst: dnnl_memory_desc_t,
                attributes: DNNLAttributes?) throws -> DNNLPrimitive {
    var src0 = src0, src1 = src1, dst = dst
    var desc = dnnl_binary_desc_t()
    try check(dnnl_binary_desc_init(&desc, algorithm, &src0, &src1, &dst), "binary descriptor")
    var pd: dnnl_primitive_desc_t?
    try check(dnnl_primitive_desc_create(&pd, &desc, attributes?.attr, DNNLRuntime.shared.engine, nil),
              "binary primitive descriptor")
    return try DNNLPrimitive(descriptor: pd!)
}

/// Copies `source` (plain layout) into `destination` (any layout, e.g. a packed weights format).
/// Called inside `DNNLRuntime.shared.serialized`.
func reorder(from sourceDesc: dnnl_memory_desc_t, _ source: UnsafeRawPointer,
             to destinationDesc: dnnl_memory_desc_t, _ destination: UnsafeMutableRawPointer) throws {
    var s = sourceDesc, d = destinationDesc
    let engine = DNNLRuntime.shared.engine
    var pd: dnnl_primitive_desc_t?
    try check(dnnl_reorder_primitive_desc_create(&pd, &s, engine, &d, engine, nil), "reorder descriptor")
    let primitive = try DNNLPrimitive(descriptor: pd!)
    let from = try DNNLMemory(s), to = try DNNLMemory(d)
    try from.bind(source)
    try to.bind(destination)
    // Swift may release objects after their last use, which here is reading their handles:
    // keep them alive until the primitive has run.
    try withExtendedLifetime((primitive, from, to)) {
        try DNNLRuntime.shared.execute(primitive.primitive, [
            dnnl_exec_arg_t(arg: stsq_dnnl_arg_from(), memory: from.memory),
            dnnl_exec_arg_t(arg: stsq_dnnl_arg_to(), memory: to.memory),
        ])
    }
}

/// 64-byte aligned heap memory owned by a Swift object (packed weights).
final class AlignedBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int

    init(byteCount: Int) {
        self.byteCount = byteCount
        self.pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }
}

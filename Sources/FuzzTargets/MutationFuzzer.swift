import Foundation

/// A seeded mutation fuzzer for builds without libFuzzer (CI, the test suite): each execution
/// takes a corpus entry (or an earlier mutant), applies 1–4 mutations (bit flips, byte runs,
/// deletions, duplications, dictionary tokens, extreme numbers, splices), and runs the target.
/// Not coverage-guided — `scripts/fuzz.sh` builds the libFuzzer version for long runs — but
/// deterministic for a seed, so a failure reproduces.
public struct MutationFuzzer {
    public struct Report: Sendable {
        public var executions = 0
        public var seconds = 0.0
        /// The slowest single execution and its input size.
        public var slowestSeconds = 0.0
        public var slowestInputBytes = 0
        public var peakResidentMiB = 0.0
    }

    public let target: FuzzTarget
    public var corpus: [[UInt8]]
    var random: SplitMix64
    public var maxLength = 1 << 16

    public init(target: FuzzTarget, corpus: [[UInt8]], seed: UInt64) {
        self.target = target
        self.corpus = corpus.isEmpty ? [[]] : corpus
        random = SplitMix64(seed: seed)
    }

    /// Runs until `executions` inputs or `seconds` have passed, whichever comes first. Every corpus
    /// entry runs once unmutated first. `onInput` sees each input before it runs (to save it if the
    /// process dies on it).
    public mutating func run(executions: Int, seconds: Double = .infinity, scratch: FuzzScratch,
                             onInput: ([UInt8]) -> Void = { _ in }) -> Report {
        var report = Report()
        let start = Date()
        var pool = corpus
        while report.executions < executions && Date().timeIntervalSince(start) < seconds {
            let input = report.executions < corpus.count ? corpus[report.executions] : mutate(pool[random.below(pool.count)], pool: pool)
            onInput(input)
            let t0 = Date()
            input.withUnsafeBytes { target.run($0, scratch: scratch) }
            let dt = Date().timeIntervalSince(t0)
            if dt > report.slowestSeconds { (report.slowestSeconds, report.slowestInputBytes) = (dt, input.count) }
            report.executions += 1
            // Keep some mutants as parents so mutations compound (a bounded pool).
            if report.executions % 16 == 0 { if pool.count < 256 { pool.append(input) } else { pool[random.below(pool.count)] = input } }
        }
        report.seconds = Date().timeIntervalSince(start)
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        report.peakResidentMiB = Double(usage.ru_maxrss) / 1024
        return report
    }

    mutating func mutate(_ parent: [UInt8], pool: [[UInt8]]) -> [UInt8] {
        var data = parent
        for _ in 0...random.below(4) {
            switch random.below(9) {
            case 0 where !data.isEmpty: data[random.below(data.count)] ^= UInt8(1) << UInt8(random.below(8))
            case 1 where !data.isEmpty: data[random.below(data.count)] = UInt8(truncatingIfNeeded: random.next())
            case 2 where !data.isEmpty:
                let at = random.below(data.count), n = min(1 + random.below(16), data.count - at)
                data.removeSubrange(at..<(at + n))
            case 3 where !data.isEmpty:
                let at = random.below(data.count), n = min(1 + random.below(64), data.count - at)
                data.insert(contentsOf: data[at..<(at + n)], at: random.below(data.count + 1))
            case 4, 5: data.insert(contentsOf: Self.tokens[random.below(Self.tokens.count)], at: random.below(data.count + 1))
            case 6: data = replaceNumber(data)
            case 7 where !pool.isEmpty:
                let other = pool[random.below(pool.count)]
                let cut = random.below(data.count + 1), from = random.below(other.count + 1)
                data = Array(data[..<cut]) + Array(other[from...])
            default:
                let at = random.below(data.count + 1)
                data.insert(contentsOf: (0..<(1 + random.below(8))).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
            }
        }
        if target == .safetensors && random.below(2) == 0 { fixHeaderLength(&data) }
        return data.count > maxLength ? Array(data.prefix(maxLength)) : data
    }

    /// Replaces the digits of one number in the text by an extreme value.
    mutating func replaceNumber(_ data: [UInt8]) -> [UInt8] {
        let digits = data.indices.filter { (48...57).contains(data[$0]) }
        guard !digits.isEmpty else { return data + Self.extremes[random.below(Self.extremes.count)] }
        var start = digits[random.below(digits.count)], end = start
        while start > 0 && (48...57).contains(data[start - 1]) { start -= 1 }
        while end < data.count && (48...57).contains(data[end]) { end += 1 }
        return Array(data[..<start]) + Self.extremes[random.below(Self.extremes.count)] + Array(data[end...])
    }

    /// Sets a safetensors file's 8-byte length to its JSON header's actual length (the last `}`
    /// before any data), so mutations of the header are parsed rather than refused as truncated.
    func fixHeaderLength(_ data: inout [UInt8]) {
        guard data.count > 8, let close = data[8...].lastIndex(of: UInt8(ascii: "}")) else { return }
        let length = UInt64(close - 8 + 1)
        withUnsafeBytes(of: length.littleEndian) { for i in 0..<8 { data[i] = $0[i] } }
    }

    static let tokens: [[UInt8]] = [
        "{", "}", "[", "]", "\"", ":", ",", "null", "true", "false", "\"\"", "{}", "[]", "\\u0000", "\\ud800", "\u{1b}[31m", "\r", "\n", "#",
        "\"dtype\":\"F32\"", "\"dtype\":\"BF16\"", "\"shape\":[", "\"data_offsets\":[0,", "\"__metadata__\":{", "\"format\"", "\"version\"",
        "\"step_groups\":[[0,", "\"defaults\":{", "\"alpha\":", "\"blocks\":{", "\"layers\":{", "\"sampler\":{\"t\":[", "\"keep_fp\":",
        "\"weight_bits\":", "\"hidden_size\":", "\"num_heads\":", "\"patch_size\":[", "\"input_sq_size\":", "\"model_type\":",
        "[colors]", "text = \"#", "heat = [", "name = \"", "\"width\":", "\"steps\":{\"", "\"rows\":", "\"min\":", "\"max\":",
        "\"reservoir_rows\":", "\"spatial_blocks.0.attn.qkv\":", "\"temporal_blocks.1.mlp.fc2\":",
    ].map { Array($0.utf8) }

    static let extremes: [[UInt8]] = [
        "0", "-1", "1", "255", "65536", "2147483648", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "18446744073709551615", "1e308", "1e999", "-1e999", "1e-320", "0.5", "-0", "4294967296", "99999999999999999999999",
    ].map { Array($0.utf8) }
}

/// A small fast deterministic generator (SplitMix64).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}

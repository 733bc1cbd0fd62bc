import Tensors

/// What calibration records for one (layer, sampler step) (QUANTIZATION.md, "Calibration
/// statistics"): per-input-channel min and max (max|x| for SmoothQuant, and the exact range of
/// `x / s` after smoothing), the tensor's min and max (also after a Hadamard rotation), a histogram of
/// |x| with fixed log-spaced bins, and a bounded uniform sample of input rows (reservoir
/// sampling). Memory is fixed whatever the number of prompts.
public struct LayerStepStatistics: Sendable, Equatable {
    /// Histogram bins: 8 per octave of |x| from 2⁻²⁴ to 2¹⁶, plus one bin for exact zeros and one
    /// for anything above.
    public static let binsPerOctave = 8
    public static let lowestExponent = -24
    public static let highestExponent = 16
    public static var binCount: Int { (highestExponent - lowestExponent) * binsPerOctave + 2 }

    public let width: Int
    /// Per input channel, `[width]`.
    public private(set) var channelMinimum: [Float]
    public private(set) var channelMaximum: [Float]
    /// Per-input-channel max|x| (SmoothQuant's activation side).
    public var channelAbsMax: [Float] { zip(channelMinimum, channelMaximum).map { max(-$0, $1, 0) } }
    public private(set) var minimum: Float = .infinity
    public private(set) var maximum: Float = -.infinity
    public private(set) var histogram: [UInt64]
    /// The tensor's min and max after the Hadamard rotation of each row (`HadamardRotation`, block
    /// `rotationBlock`): the static range of a layer whose input is rotated online.
    public private(set) var rotatedMinimum: Float = .infinity
    public private(set) var rotatedMaximum: Float = -.infinity
    public var rotationBlock: Int { HadamardRotation.blockSize(width: max(width, 1)) }
    /// Rows seen.
    public private(set) var rows = 0
    /// Up to `reservoirCapacity` sampled rows, `[n, width]`. Statistics loaded from a cache read
    /// their rows from the file at each use (a copy, not kept): a 30-step XL calibration holds
    /// gigabytes of them and a view needs one layer's at a time.
    public var reservoir: [Float] { storedReservoir?.load() ?? ownedReservoir }
    /// Sampled rows held, without reading them.
    public var reservoirRows: Int { (storedReservoir?.floats ?? ownedReservoir.count) / max(width, 1) }
    private var ownedReservoir: [Float] = []
    private var storedReservoir: StoredRows?
    public let reservoirCapacity: Int
    private var random: UInt64

    public init(width: Int, reservoirCapacity: Int = 32, seed: UInt64 = 0x5eed) {
        self.width = width
        self.reservoirCapacity = reservoirCapacity
        channelMinimum = [Float](repeating: .infinity, count: width)
        channelMaximum = [Float](repeating: -.infinity, count: width)
        histogram = [UInt64](repeating: 0, count: LayerStepStatistics.binCount)
        random = seed | 1
    }

    /// Rebuilds statistics saved by `CalibrationCache`.
    public init(width: Int, channelMinimum: [Float], channelMaximum: [Float], minimum: Float, maximum: Float,
                rotatedMinimum: Float = .infinity, rotatedMaximum: Float = -.infinity,
                histogram: [UInt64], rows: Int, reservoir: [Float], reservoirCapacity: Int) {
        self.init(width: width, channelMinimum: channelMinimum, channelMaximum: channelMaximum, minimum: minimum, maximum: maximum,
                  rotatedMinimum: rotatedMinimum, rotatedMaximum: rotatedMaximum,
                  histogram: histogram, rows: rows, owned: reservoir, stored: nil, reservoirCapacity: reservoirCapacity)
    }

    /// Rebuilds statistics whose sampled rows stay in their file until used.
    public init(width: Int, channelMinimum: [Float], channelMaximum: [Float], minimum: Float, maximum: Float,
                rotatedMinimum: Float, rotatedMaximum: Float,
                histogram: [UInt64], rows: Int, storedReservoir: StoredRows, reservoirCapacity: Int) {
        self.init(width: width, channelMinimum: channelMinimum, channelMaximum: channelMaximum, minimum: minimum, maximum: maximum,
                  rotatedMinimum: rotatedMinimum, rotatedMaximum: rotatedMaximum,
                  histogram: histogram, rows: rows, owned: [], stored: storedReservoir, reservoirCapacity: reservoirCapacity)
    }

    private init(width: Int, channelMinimum: [Float], channelMaximum: [Float], minimum: Float, maximum: Float,
                 rotatedMinimum: Float, rotatedMaximum: Float,
                 histogram: [UInt64], rows: Int, owned: [Float], stored: StoredRows?, reservoirCapacity: Int) {
        precondition(channelMinimum.count == width && channelMaximum.count == width && histogram.count == LayerStepStatistics.binCount
                     && (stored?.floats ?? owned.count) % max(width, 1) == 0)
        self.width = width
        self.channelMinimum = channelMinimum
        self.channelMaximum = channelMaximum
        self.minimum = minimum
        self.maximum = maximum
        self.rotatedMinimum = rotatedMinimum
        self.rotatedMaximum = rotatedMaximum
        self.histogram = histogram
        self.rows = rows
        ownedReservoir = owned
        storedReservoir = stored
        self.reservoirCapacity = reservoirCapacity
        random = 1
    }

    /// Rows read from the file become this value's own before it changes.
    private mutating func ownRows() {
        if let stored = storedReservoir {
            ownedReservoir = stored.load()
            storedReservoir = nil
        }
    }

    /// The histogram bin of a magnitude: 0 for zero, 1 + ⌊8·(log2|x| + 24)⌋ clamped to the
    /// range, the last bin for 2¹⁶ and above (and NaN). Computed from the float's bits — exponent,
    /// then the sub-octave from the mantissa against the thresholds 2^(k/8) — because a `log2` per
    /// recorded value dominated calibration time.
    @inline(__always)
    public static func bin(of magnitude: Float) -> Int {
        let bits = magnitude.bitPattern & 0x7fff_ffff
        if bits == 0 { return 0 }
        let exponent = Int(bits >> 23) - 127
        if exponent >= highestExponent { return binCount - 1 }
        if exponent < lowestExponent { return 1 }
        let mantissa = bits & 0x7f_ffff
        // Mantissa bits m with 1 + m/2²³ ≥ 2^(k/8), k = 1…7 (⌈(2^(k/8) − 1)·2²³⌉; checked in the tests).
        var sub = 0
        sub += mantissa >= 759234 ? 1 : 0
        sub += mantissa >= 1587185 ? 1 : 0
        sub += mantissa >= 2490071 ? 1 : 0
        sub += mantissa >= 3474676 ? 1 : 0
        sub += mantissa >= 4548395 ? 1 : 0
        sub += mantissa >= 5719293 ? 1 : 0
        sub += mantissa >= 6996167 ? 1 : 0
        return 1 + (exponent - lowestExponent) * binsPerOctave + sub
    }

    /// The thresholds `bin(of:)` uses, computed: ⌈(2^(k/8) − 1)·2²³⌉ for k = 1…7.
    static var subOctaveThresholds: [UInt32] {
        (1..<binsPerOctave).map { UInt32(((pow(2, Double($0) / Double(binsPerOctave)) - 1) * 8_388_608).rounded(.up)) }
    }

    /// Lower edge (|x|) of bin `i` (bins 1…binCount−2).
    public static func lowerEdge(of i: Int) -> Float {
        Float(pow(2, Double(lowestExponent) + Double(i - 1) / Double(binsPerOctave)))
    }

    /// Adds `rows` rows of `x` `[rows, width]`.
    public mutating func observe(_ x: UnsafePointer<Float>, rows count: Int) {
        ownRows()
        observeRotated(x, rows: count)
        for r in 0..<count {
            let row = x + r * width
            for k in 0..<width {
                let v = row[k]
                let a = abs(v)
                if v < channelMinimum[k] { channelMinimum[k] = v }
                if v > channelMaximum[k] { channelMaximum[k] = v }
                if v < minimum { minimum = v }
                if v > maximum { maximum = v }
                histogram[LayerStepStatistics.bin(of: a)] += 1
            }
            // Algorithm R: the i-th row replaces a random slot with probability capacity/i.
            rows += 1
            if ownedReservoir.count < reservoirCapacity * width {
                ownedReservoir.append(contentsOf: UnsafeBufferPointer(start: row, count: width))
            } else {
                let slot = Int(nextRandom() % UInt64(rows))
                if slot < reservoirCapacity {
                    for k in 0..<width { ownedReservoir[slot * width + k] = row[k] }
                }
            }
        }
    }

    /// The range of the rotated rows, rotated in pieces of rows.
    private mutating func observeRotated(_ x: UnsafePointer<Float>, rows count: Int) {
        guard count > 0, width > 0 else { return }
        let piece = max(1, 65_536 / width), block = rotationBlock
        var rotated = [Float](repeating: 0, count: min(piece, count) * width)
        var lo = rotatedMinimum, hi = rotatedMaximum
        rotated.withUnsafeMutableBufferPointer { v in
            var start = 0
            while start < count {
                let n = min(piece, count - start)
                v.baseAddress!.update(from: x + start * width, count: n * width)
                HadamardRotation.rotate(v.baseAddress!, rows: n, width: width, block: block)
                for i in 0..<(n * width) {
                    lo = min(lo, v[i])
                    hi = max(hi, v[i])
                }
                start += n
            }
        }
        (rotatedMinimum, rotatedMaximum) = (lo, hi)
    }

    /// Merges another statistics object of the same width (histograms add, maxima take the max;
    /// the reservoir keeps this one's rows, topped up with the other's).
    public mutating func merge(_ other: LayerStepStatistics) {
        precondition(other.width == width, "merging statistics of widths \(width) and \(other.width)")
        for k in 0..<width {
            channelMinimum[k] = min(channelMinimum[k], other.channelMinimum[k])
            channelMaximum[k] = max(channelMaximum[k], other.channelMaximum[k])
        }
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        rotatedMinimum = min(rotatedMinimum, other.rotatedMinimum)
        rotatedMaximum = max(rotatedMaximum, other.rotatedMaximum)
        for i in histogram.indices { histogram[i] += other.histogram[i] }
        rows += other.rows
        // A full reservoir keeps its rows as they are (in the file, for loaded statistics): the
        // activation screen merges all steps on every frame of its "all steps" view.
        let room = (reservoirCapacity - reservoirRows) * width
        if room > 0 {
            ownRows()
            ownedReservoir.append(contentsOf: other.reservoir.prefix(room))
        }
    }

    /// Equal recorded statistics (the reservoir's generator state is not part of the record).
    public static func == (a: LayerStepStatistics, b: LayerStepStatistics) -> Bool {
        a.width == b.width && a.channelMinimum == b.channelMinimum && a.channelMaximum == b.channelMaximum && a.minimum == b.minimum && a.maximum == b.maximum
            && a.rotatedMinimum == b.rotatedMinimum && a.rotatedMaximum == b.rotatedMaximum && a.histogram == b.histogram && a.rows == b.rows && a.reservoir == b.reservoir
            && a.reservoirCapacity == b.reservoirCapacity
    }

    private mutating func nextRandom() -> UInt64 {
        // xorshift64*: a cheap deterministic generator for reservoir slots.
        random ^= random >> 12
        random ^= random << 25
        random ^= random >> 27
        return random &* 2_685_821_657_736_338_717
    }
}

/// Sampled rows `[n, width]` float32 inside a statistics file (`CalibrationCache`), read on use.
public final class StoredRows: @unchecked Sendable {
    let file: SafetensorsFile
    let entry: SafetensorsEntry
    /// Floats held (n·width).
    public var floats: Int { entry.elementCount }

    init(file: SafetensorsFile, entry: SafetensorsEntry) {
        self.file = file
        self.entry = entry
    }

    /// A copy of the rows; the file's pages are released again after it is made.
    func load() -> [Float] {
        defer { file.releasePages(of: entry) }
        return file.view(of: entry).toFloat32().scalars
    }
}

#if canImport(Glibc)
import Glibc
#endif

import Tensors

/// Does a video show what its prompt names? Decided from the frames alone (QUANTIZATION.md,
/// "Quality measures"), standing in for a CLIP score on the demo model. The method is
/// tools/judge.py's, so Python training logs and Swift evaluations agree:
///
/// - background: per-channel median of all pixels, nearest background of the palette;
/// - object mask: pixels farther than 0.5 (RGB distance) from that background colour;
/// - object colour: per-channel median of the mask, nearest object colour (the background's excluded);
/// - shape: median over frames of mask area / bounding-box area: < 0.64 triangle, < 0.9 circle, else square;
/// - motion: mean area of the last two frames over the first two ≥ 2 → growing; otherwise the
///   larger of the centroid's x and y displacement (first two frames → last two) gives the direction.
public enum PromptFidelity {
    /// Per-attribute matches (1 or 0) and their mean.
    public struct Score: Equatable, Sendable {
        public var colour: Double, shape: Double, motion: Double, background: Double
        public var fidelity: Double { (colour + shape + motion + background) / 4 }
    }

    /// `video` `[3, T, H, W]` with values in [-1, 1] (the model's output convention).
    public static func judge(_ video: Tensor) -> SceneWorld.Attributes {
        precondition(video.rank == 4 && video.shape[0] == 3, "video must be [3, T, H, W], got \(video.shape)")
        let (T, H, W) = (video.shape[1], video.shape[2], video.shape[3])
        let plane = T * H * W
        func pixel(_ i: Int) -> SIMD3<Float> {
            SIMD3((video.scalars[i] + 1) / 2, (video.scalars[plane + i] + 1) / 2, (video.scalars[2 * plane + i] + 1) / 2)
        }
        let pixels = (0..<plane).map(pixel)
        let backgroundRGB = medianRGB(pixels)
        let background = nearest(backgroundRGB, in: SceneWorld.backgrounds, excluding: nil)
        var result = SceneWorld.Attributes(colour: nil, shape: nil, motion: nil, background: background.name)
        let mask = pixels.map { (($0 - backgroundRGB) * ($0 - backgroundRGB)).sum().squareRoot() > 0.5 }
        let objectPixels = zip(pixels, mask).filter(\.1).map(\.0)
        guard !objectPixels.isEmpty else { return result }
        result.colour = nearest(medianRGB(objectPixels), in: SceneWorld.colours, excluding: background.rgb).name

        var areas: [Double] = [], xs: [Double] = [], ys: [Double] = [], fills: [Double] = []
        for t in 0..<T {
            var area = 0.0, sx = 0.0, sy = 0.0
            var (top, bottom, left, right) = (H, -1, W, -1)
            for y in 0..<H {
                for x in 0..<W where mask[(t * H + y) * W + x] {
                    area += 1
                    sx += Double(x) + 0.5
                    sy += Double(y) + 0.5
                    (top, bottom, left, right) = (min(top, y), max(bottom, y), min(left, x), max(right, x))
                }
            }
            areas.append(area)
            xs.append(area > 0 ? sx / area : .nan)
            ys.append(area > 0 ? sy / area : .nan)
            if area > 0 { fills.append(area / Double((bottom - top + 1) * (right - left + 1))) }
        }
        if !fills.isEmpty {
            let fill = median(fills)
            result.shape = fill < 0.64 ? "triangle" : (fill < 0.9 ? "circle" : "square")
        }
        let growth = mean(areas.suffix(2)) / max(mean(areas.prefix(2)), 1)
        var dx = nanMean(xs.suffix(2)) - nanMean(xs.prefix(2))
        var dy = nanMean(ys.suffix(2)) - nanMean(ys.prefix(2))
        if !dx.isFinite || !dy.isFinite { (dx, dy) = (0, 0) }
        if growth >= 2 {
            result.motion = "growing"
        } else if abs(dx) >= abs(dy) {
            result.motion = dx > 0 ? "right" : "left"
        } else {
            result.motion = dy > 0 ? "down" : "up"
        }
        return result
    }

    /// The video against its prompt; nil when the prompt is not of the scene grammar.
    public static func score(_ video: Tensor, prompt: String) -> Score? {
        guard let want = SceneWorld.parse(prompt) else { return nil }
        let got = judge(video)
        func match(_ a: String?, _ b: String?) -> Double { a != nil && a == b ? 1 : 0 }
        return Score(colour: match(got.colour, want.colour), shape: match(got.shape, want.shape),
                     motion: match(got.motion, want.motion), background: match(got.background, want.background))
    }

    // MARK: - Helpers

    static func medianRGB(_ values: [SIMD3<Float>]) -> SIMD3<Float> {
        SIMD3(Float(median(values.map { Double($0.x) })), Float(median(values.map { Double($0.y) })),
              Float(median(values.map { Double($0.z) })))
    }

    /// numpy's median: the mean of the two middle values for an even count.
    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        let n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }

    static func mean<C: Collection>(_ values: C) -> Double where C.Element == Double {
        values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }

    static func nanMean<C: Collection>(_ values: C) -> Double where C.Element == Double {
        let finite = values.filter { !$0.isNaN }
        return finite.isEmpty ? .nan : finite.reduce(0, +) / Double(finite.count)
    }

    static func nearest(_ rgb: SIMD3<Float>, in palette: [(String, SIMD3<Float>)], excluding: SIMD3<Float>?)
        -> (name: String, rgb: SIMD3<Float>) {
        var best = palette[0]
        var bestDistance = Float.infinity
        for entry in palette where entry.1 != excluding {
            let d = ((entry.1 - rgb) * (entry.1 - rgb)).sum()
            if d < bestDistance { (best, bestDistance) = (entry, d) }
        }
        return (best.0, best.1)
    }
}

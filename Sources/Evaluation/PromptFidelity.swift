import Tensors

/// Does a video show what its prompt names? Decided from the frames alone (QUANTIZATION.md,
/// "Quality measures"), standing in for a CLIP score on the demo model. The method is
/// tools/judge.py's, so Python training logs and Swift evaluations agree:
///
/// - background: per-channel median of all pixels, nearest background of the palette;
/// - object mask: pixels farther than 0.5 (RGB distance) from that background colour;
/// - object colour: per-channel median of the mask, nearest object colour (the background's excluded);
/// - shape: the template that best overlaps the mask. Each frame's mask is compared with a circle,
///   a square and an upward triangle of the mask's area centred on its centroid (4×4 supersampled
///   coverage, soft IoU Σ min / Σ max); the mean IoU over the frames whose mask has at least 9
///   pixels and does not touch the frame edge (all frames of 9+ pixels if each does) picks the
///   shape; none if no frame has 9 pixels or the best mean IoU is below 0.6. Robust to a stray
///   pixel, which widened the bounding box of the fill-ratio rule used before and turned clean
///   squares into circles;
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
        judgeWithDetails(video).attributes
    }

    /// `judge`, plus the mean template IoUs [circle, square, triangle] behind the shape (empty when
    /// no object was found).
    static func judgeWithDetails(_ video: Tensor) -> (attributes: SceneWorld.Attributes, shapeIoUs: [Double]) {
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
        guard !objectPixels.isEmpty else { return (result, []) }
        result.colour = nearest(medianRGB(objectPixels), in: SceneWorld.colours, excluding: background.rgb).name

        var areas: [Double] = [], xs: [Double] = [], ys: [Double] = []
        for t in 0..<T {
            var area = 0.0, sx = 0.0, sy = 0.0
            for y in 0..<H {
                for x in 0..<W where mask[(t * H + y) * W + x] {
                    area += 1
                    sx += Double(x) + 0.5
                    sy += Double(y) + 0.5
                }
            }
            areas.append(area)
            xs.append(area > 0 ? sx / area : .nan)
            ys.append(area > 0 ? sy / area : .nan)
        }
        let ious = shapeIoUs(mask: mask, T: T, H: H, W: W, areas: areas, xs: xs, ys: ys)
        if let best = ious.indices.max(by: { ious[$0] < ious[$1] }), ious[best] >= minShapeIoU {
            result.shape = SceneWorld.shapes[best]      // the first of equals, as numpy's argmax
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
        return (result, ious)
    }

    /// The video against its prompt; nil when the prompt is not of the scene grammar.
    public static func score(_ video: Tensor, prompt: String) -> Score? {
        guard let want = SceneWorld.parse(prompt) else { return nil }
        let got = judge(video)
        func match(_ a: String?, _ b: String?) -> Double { a != nil && a == b ? 1 : 0 }
        return Score(colour: match(got.colour, want.colour), shape: match(got.shape, want.shape),
                     motion: match(got.motion, want.motion), background: match(got.background, want.background))
    }

    // MARK: - Shape templates

    static let templateSupersampling = 4
    /// A frame's mask smaller than 3×3 pixels has no shape to speak of.
    static let minShapeArea = 9.0
    /// Below this best mean IoU the mask is no shape of the grammar (noise, several blobs).
    static let minShapeIoU = 0.6

    /// Coverage `[3][H·W]` in [0, 1] of a circle, a square and an upward triangle (base = height),
    /// each of `area` pixels with its centroid at (cx, cy); pixel x spans [x, x + 1).
    static func shapeTemplates(cx: Double, cy: Double, area: Double, H: Int, W: Int) -> [[Double]] {
        let ss = templateSupersampling
        let radius2 = area / Double.pi, side = area.squareRoot(), tri = (2 * area).squareRoot()
        let weight = 1 / Double(ss * ss)
        var cover = [[Double]](repeating: [Double](repeating: 0, count: H * W), count: 3)
        for y in 0..<H {
            for x in 0..<W {
                var hits = SIMD3<Double>(0, 0, 0)
                for sy in 0..<ss {
                    let dy = Double(y) + (Double(sy) + 0.5) / Double(ss) - cy
                    let depth = dy + 2 * tri / 3          // 0 at the triangle's apex
                    for sx in 0..<ss {
                        let dx = Double(x) + (Double(sx) + 0.5) / Double(ss) - cx
                        if dx * dx + dy * dy <= radius2 { hits.x += 1 }
                        if abs(dx) <= side / 2 && abs(dy) <= side / 2 { hits.y += 1 }
                        if depth >= 0 && depth <= tri && abs(dx) <= depth / 2 { hits.z += 1 }
                    }
                }
                for k in 0..<3 { cover[k][y * W + x] = hits[k] * weight }
            }
        }
        return cover
    }

    /// Mean soft IoU, in `SceneWorld.shapes` order, of the object mask `[T·H·W]` with the templates,
    /// over the frames with at least `minShapeArea` mask pixels that are clear of the frame edge (a
    /// clipped shape would be compared with whole templates); all such frames if every one touches
    /// the edge; empty if none has that many pixels.
    static func shapeIoUs(mask: [Bool], T: Int, H: Int, W: Int, areas: [Double], xs: [Double], ys: [Double])
        -> [Double] {
        let frames = (0..<T).filter { areas[$0] >= minShapeArea }
        if frames.isEmpty { return [] }
        let inner = frames.filter { t in
            let at = { (y: Int, x: Int) in mask[(t * H + y) * W + x] }
            return !(0..<W).contains { at(0, $0) || at(H - 1, $0) } && !(0..<H).contains { at($0, 0) || at($0, W - 1) }
        }
        let used = inner.isEmpty ? frames : inner
        var total = SIMD3<Double>(repeating: 0)
        for t in used {
            let cover = shapeTemplates(cx: xs[t], cy: ys[t], area: areas[t], H: H, W: W)
            var inter = SIMD3<Double>(repeating: 0), union = SIMD3<Double>(repeating: 0)
            for i in 0..<(H * W) {
                let m = SIMD3<Double>(repeating: mask[t * H * W + i] ? 1 : 0)
                let c = SIMD3(cover[0][i], cover[1][i], cover[2][i])
                inter += pointwiseMin(m, c)
                union += pointwiseMax(m, c)
            }
            total += inter / union
        }
        return (0..<3).map { total[$0] / Double(used.count) }
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

/// The demo model's scene world (tools/scenes.py): one coloured shape moving over a background,
/// described by prompts of a small grammar. The palettes here must equal scenes.py's.
public enum SceneWorld {
    /// Object colours, RGB in [0, 1].
    public static let colours: [(String, SIMD3<Float>)] = [
        ("red", [1, 0, 0]), ("green", [0, 1, 0]), ("blue", [0, 0, 1]), ("yellow", [1, 1, 0]),
        ("magenta", [1, 0, 1]), ("cyan", [0, 1, 1]), ("white", [1, 1, 1]),
    ]
    public static let backgrounds: [(String, SIMD3<Float>)] = [
        ("black", [0, 0, 0]), ("gray", [0.5, 0.5, 0.5]), ("white", [1, 1, 1]), ("blue", [0, 0, 1]),
    ]
    public static let shapes = ["circle", "square", "triangle"]
    public static let motions = ["left", "right", "up", "down", "growing"]

    /// What a prompt (or a video) shows.
    public struct Attributes: Equatable, Sendable {
        public var colour: String?
        public var shape: String?
        public var motion: String?
        public var background: String?

        public init(colour: String?, shape: String?, motion: String?, background: String?) {
            self.colour = colour
            self.shape = shape
            self.motion = motion
            self.background = background
        }
    }

    /// Parses "a red circle moving left on a blue background" / "a red circle growing on a blue
    /// background"; nil for anything else.
    public static func parse(_ prompt: String) -> Attributes? {
        var text = prompt.lowercased()
        while text.last == "." || text.last == " " { text.removeLast() }
        let w = text.split(separator: " ").map(String.init)
        let (colour, shape, motion, background): (String, String, String, String)
        if w.count == 8 && w[3] == "growing" {
            guard w[0] == "a", w[4] == "on", w[5] == "a", w[7] == "background" else { return nil }
            (colour, shape, motion, background) = (w[1], w[2], "growing", w[6])
        } else if w.count == 9 && w[3] == "moving" {
            guard w[0] == "a", w[5] == "on", w[6] == "a", w[8] == "background" else { return nil }
            (colour, shape, motion, background) = (w[1], w[2], w[4], w[7])
        } else {
            return nil
        }
        guard colours.contains(where: { $0.0 == colour }), shapes.contains(shape), motions.contains(motion),
              backgrounds.contains(where: { $0.0 == background }) else { return nil }
        return Attributes(colour: colour, shape: shape, motion: motion, background: background)
    }

    /// Whether the object has its background's colour ("a blue circle … on a blue background"):
    /// such a scene cannot be drawn visibly, so its colour, shape and motion cannot be judged.
    public static func isInvisible(_ scene: Attributes) -> Bool {
        guard let c = colours.first(where: { $0.0 == scene.colour })?.1,
              let b = backgrounds.first(where: { $0.0 == scene.background })?.1 else { return false }
        return c == b
    }
}

import Quantization
import Tensors

/// The plan being tuned: the document of the tuning screen. Every edit makes a new plan; undo and
/// redo walk the history; a background job requantizes after each edit (newest edit wins).
public struct TuningState: Sendable {
    public var plan: QuantizationPlan
    /// What the header calls it: the plan file's name, or "default plan".
    public var name: String
    /// The file it was opened from or last exported to.
    public var path: String?
    /// The plan as last saved (opened or exported), to tell whether it is modified.
    public var savedJSON: String
    public var undoStack: [QuantizationPlan] = []
    public var redoStack: [QuantizationPlan] = []
    /// The selected block (index into `blocks`).
    public var blockCursor = 0
    /// The selected layer of that block (index into its linears), for per-layer overrides.
    public var layerCursor = 0
    /// Block names in model order.
    public let blocks: [String]
    /// Incremented by every edit; a requantize result carries the generation it was built for.
    public var generation = 0
    public var requantize: RequantizeStatus = .pending
    /// Local SQNR (dB, all steps) per quantized layer under the current plan, and under the plan
    /// before the last edit (for before → after).
    public var layerSQNR: [String: Double] = [:]
    public var previousLayerSQNR: [String: Double] = [:]
    /// The α being typed (`=`), if any.
    public var alphaEntry: String?
    /// The step group whose α is typed (typed on the step groups pane); nil: the block's α.
    public var alphaEntryGroup: Int?
    /// The export dialog, if open.
    public var export: ExportDialog?
    /// Set when the user asked to quit with unsaved changes; a second quit leaves.
    public var confirmingQuit = false
    /// The block whose α search runs, and the last search's curve.
    public var autoAlphaBlock: String?
    /// The step group whose α the running search moves (nil: all groups), and the step groups the
    /// search started from (a result for groups edited since is dropped).
    public var autoAlphaGroup: Int?
    public var autoAlphaGroups: [ClosedRange<Int>]?
    public var alphaCurve: (block: String, group: Int?, points: [AlphaPoint])?

    public init(plan: QuantizationPlan, name: String, path: String?, blocks: [String]) {
        self.plan = plan
        self.name = name
        self.path = path
        self.blocks = blocks
        savedJSON = plan.json.serialized(pretty: true)
    }

    public var isModified: Bool { plan.json.serialized(pretty: true) != savedJSON }
    public var selectedBlock: String? { blocks.indices.contains(blockCursor) ? blocks[blockCursor] : nil }

    /// The settings of the block's foldable layers before per-layer entries: the plan's defaults
    /// with the block's entry applied.
    public func blockSettings(of block: String) -> LayerSettings {
        // A plan in the state was validated when opened or edited; the defaults are the fallback.
        (try? plan.blockSettings(block)) ?? plan.defaults
    }

    /// The block's own α (its entry, else the plan's default) for its foldable layers.
    public func alpha(of block: String) -> Double { blockSettings(of: block).alpha }

    public func smoothing(of block: String) -> LayerSettings.Smoothing { blockSettings(of: block).smoothing }

    /// The block's α of each step group: its `group_alpha`, else its one α for every group.
    public func groupAlphas(of block: String) -> [Double] {
        let s = blockSettings(of: block)
        if let list = s.groupAlpha, list.count == plan.stepGroups.count { return list }
        return Array(repeating: s.alpha, count: plan.stepGroups.count)
    }

    /// Whether the block's α differs between step groups (and time-step-wise smoothing uses that).
    public func hasGroupAlphas(_ block: String) -> Bool {
        let s = blockSettings(of: block)
        return s.smoothing == .timestep && s.groupAlpha != nil
    }

    /// A copy of the plan with one member of the block's entry set.
    func plan(setting key: String, to value: JSONValue, of block: String) -> QuantizationPlan {
        var next = plan
        next.blocks = QuantizationPlan.entries(plan.blocks, setting: key, to: value, of: block, order: blocks)
        return next
    }

    /// The layer's own entry (`layers` of the plan), if it has one.
    public func override(of layer: String) -> [(String, JSONValue)]? {
        plan.layers.first { $0.0 == layer }?.1.objectValue
    }

    /// A copy of the plan with one member of the layer's entry set (nil: removed; an entry left
    /// empty is dropped).
    func plan(setting key: String, to value: JSONValue?, ofLayer layer: String, order: [String]) -> QuantizationPlan {
        var next = plan
        next.layers = QuantizationPlan.entries(plan.layers, setting: key, to: value, of: layer, order: order)
        return next
    }

    /// Records `next` as an edit (undoable) unless it changes nothing.
    mutating func commit(_ next: QuantizationPlan) {
        guard next != plan else { return }
        undoStack.append(plan)
        if undoStack.count > 200 { undoStack.removeFirst() }
        redoStack.removeAll()
        plan = next
        edited()
    }

    /// Undo (from the undo stack to the redo stack) or redo (the other way); false when empty.
    mutating func step(from source: WritableKeyPath<TuningState, [QuantizationPlan]>,
                       to target: WritableKeyPath<TuningState, [QuantizationPlan]>) -> Bool {
        guard let restored = self[keyPath: source].popLast() else { return false }
        self[keyPath: target].append(plan)
        plan = restored
        edited()
        return true
    }

    mutating func edited() {
        generation += 1
        requantize = .pending
    }
}

/// One point of an α search: the block's relative local error at that α.
public struct AlphaPoint: Sendable, Equatable {
    public let alpha: Double
    public let error: Double
    public init(alpha: Double, error: Double) {
        self.alpha = alpha
        self.error = error
    }

    /// The point of least error (the smaller α on a tie), as `AlphaSearch.best` chooses.
    public static func best(_ points: [AlphaPoint]) -> AlphaPoint? {
        AlphaSearch.best(points.map { (alpha: $0.alpha, error: $0.error) }).flatMap { a in points.first { $0.alpha == a } }
    }
}

/// Where the requantize job stands.
public enum RequantizeStatus: Sendable, Equatable {
    /// An edit waits for a job (or a job is building it).
    case pending
    /// The model of the current generation is built: how long it took, in milliseconds.
    case done(milliseconds: Double)
    case failed(String)
}

/// What a requantize job reports: for the plan of `generation`, the local SQNR per layer and the
/// time from the start of the job to the quantized model.
public struct RequantizeResult: Sendable {
    public let generation: Int
    public let layerSQNR: [String: Double]
    /// The layer × step map under this plan (the activations screen's quality map); empty: unchanged.
    public let perStepSQNR: [String: [Double]]
    public let milliseconds: Double

    public init(generation: Int, layerSQNR: [String: Double], perStepSQNR: [String: [Double]] = [:], milliseconds: Double) {
        self.generation = generation
        self.layerSQNR = layerSQNR
        self.perStepSQNR = perStepSQNR
        self.milliseconds = milliseconds
    }
}

/// The export dialog: the folder (editable) and what is written there: `plan.json` always, and
/// `quantized.safetensors` unless the user leaves it out (the quantized file records its plan's
/// digest, so it is never written without the plan beside it).
public struct ExportDialog: Sendable, Equatable {
    public var directory: String
    public var includesModel = true
    /// With the model: AIMET/QAIRT encodings and the int32 biases too (`encodings/`, `AIMETExport`).
    public var includesEncodings = false
    /// With the model: ONNX QDQ models too (`onnx/`, traced in PyTorch by stsq_collect: `ONNXQDQExport`).
    public var includesONNX = false
    /// Tab moves between the folder field and the quantized-model option (Space toggles it).
    public var isOnModelOption = false
    public var isWriting = false

    public init(directory: String) { self.directory = directory }
}

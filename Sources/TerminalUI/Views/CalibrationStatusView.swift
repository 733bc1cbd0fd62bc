import Workbench

/// What an activation pane shows while there are no statistics: why, and what to do.
enum CalibrationStatusView {
    /// Draws the status in `rect` when there is no data; returns whether it did.
    static func drawIfNoData(_ state: WorkbenchState, in rect: Rect, grid: inout CellGrid) -> Bool {
        guard state.activations == nil else { return false }
        let lines: [(String, Style)]
        switch state.calibration {
        case .notConfigured:
            lines = [("No calibration for this session.", .role(.dim)),
                     ("Run `stsq-tui calibrate` for a checkpoint the engine can sample.", .role(.dim))]
        case .checking:
            lines = [("Loading the model and looking for a cached calibration…", .role(.dim))]
        case .unavailable(let why):
            lines = [("Activations need a calibration this machine cannot run:", .role(.warn)), (why, .role(.dim)),
                     ("Import statistics computed elsewhere; the weights screen (w) works.", .role(.dim))]
        case .missing:
            lines = [("Not calibrated yet.", .role(.text, bold: true)),
                     ("C calibrates: FP sampling over the calibration prompts, per-step statistics", .role(.dim)),
                     ("of every block linear, cached for the next launch (x cancels).", .role(.dim))]
        case .requested:
            lines = [("Starting the calibration…", .role(.dim))]
        case .running(let done, let total, let elapsed):
            let fraction = total > 0 ? Double(done) / Double(total) : 0
            let left = done > 0 ? elapsed / Double(done) * Double(total - done) : .nan
            lines = [("Calibrating: \(done)/\(total) sampler steps", .role(.text, bold: true)),
                     (progressBar(fraction, width: max(min(rect.width - 2, 40), 10)), .role(.accent)),
                     ("\(NumberFormat.fixed(elapsed, 0)) s elapsed" + (left.isFinite ? ", ~\(NumberFormat.fixed(left, 0)) s left" : "")
                      + " · x cancels (nothing is saved)", .role(.dim))]
        case .cancelling:
            lines = [("Cancelling after the current step…", .role(.dim))]
        case .failed(let why):
            lines = [("Calibration failed: \(why)", .role(.bad)), ("C tries again.", .role(.dim))]
        case .damaged(let why):
            lines = [("The cached calibration cannot be used:", .role(.bad)), (why, .role(.dim)),
                     ("C recalibrates and replaces it (x cancels).", .role(.dim))]
        case .ready:
            lines = [("Loading…", .role(.dim))]
        }
        let top = rect.y + max((rect.height - lines.count) / 2, 0)
        for (i, (text, style)) in lines.enumerated() where top + i < rect.maxY {
            grid.text(rect.x + 1, top + i, text, style, maxWidth: rect.width - 2)
        }
        return true
    }

    static func progressBar(_ fraction: Double, width: Int) -> String {
        let filled = Int((max(0, min(1, fraction)) * Double(width)).rounded())
        return String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
    }
}

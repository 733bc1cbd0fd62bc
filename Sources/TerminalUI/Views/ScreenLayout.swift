import Workbench

/// Where each part of a screen goes for a terminal size.
public struct ScreenLayout: Equatable {
    public var header: Rect
    public var message: Rect
    public var hints: Rect
    /// The visible panes and their rectangles.
    public var panes: [Pane: Rect]

    public static let minimumWidth = 80
    public static let minimumHeight = 24

    public static func fits(width: Int, height: Int) -> Bool {
        width >= minimumWidth && height >= minimumHeight
    }

    /// Header row, panes, message row, hint row. With `zoomed`, that pane takes the whole middle.
    /// The activations screen shows the heat map or the quality map below the histogram, the plan
    /// screen the preview or the step groups below the blocks, `lowerPane` choosing which.
    public init(width: Int, height: Int, screen: Screen = .weights, zoomed: Pane?, lowerPane: Pane = .heatmap) {
        let screenRect = Rect(x: 0, y: 0, width: width, height: height)
        let (header, rest) = screenRect.splitTop(1)
        let (middle, footer) = rest.splitBottom(2)
        self.header = header
        message = Rect(x: 0, y: footer.y, width: width, height: 1)
        hints = Rect(x: 0, y: footer.y + 1, width: width, height: 1)
        if let zoomed {
            panes = [zoomed: middle]
            return
        }
        if screen == .tuning {
            // The preview takes the full width below: three 32-pixel panels side by side.
            let (top, bottom) = middle.splitBottom(min(21, max(9, middle.height - 12)))
            let (left, right) = top.splitLeft(max(38, min(60, width * 42 / 100)))
            panes = [.blocks: left, .blockLayers: right, (lowerPane == .stepGroups ? .stepGroups : .preview): bottom]
            return
        }
        let treeWidth = max(34, min(56, width * 37 / 100))
        let (left, right) = middle.splitLeft(treeWidth)
        switch screen {
        case .weights:
            let outlierHeight = max(9, min(14, right.height * 2 / 5))
            let (top, bottom) = right.splitBottom(outlierHeight)
            panes = [.tree: left, .ranges: top, .outliers: bottom]
        case .activations:
            let histogramHeight = max(9, min(16, right.height * 9 / 20))
            let (top, bottom) = right.splitTop(histogramHeight)
            panes = [.tree: left, .histogram: top, (lowerPane == .quality ? .quality : .heatmap): bottom]
        case .tuning: panes = [:]
        }
    }

    /// The pane's rectangle; empty when it is not on screen.
    public func rect(of pane: Pane) -> Rect { panes[pane] ?? Rect(x: 0, y: header.maxY, width: 0, height: 0) }

    public var tree: Rect { rect(of: .tree) }
    public var ranges: Rect { rect(of: .ranges) }
    public var outliers: Rect { rect(of: .outliers) }
}

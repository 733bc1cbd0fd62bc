import Workbench

/// Where each part of the weights screen goes for a terminal size.
public struct ScreenLayout: Equatable {
    public var header: Rect
    public var tree: Rect
    public var ranges: Rect
    public var outliers: Rect
    public var message: Rect
    public var hints: Rect

    public static let minimumWidth = 80
    public static let minimumHeight = 24

    public static func fits(width: Int, height: Int) -> Bool {
        width >= minimumWidth && height >= minimumHeight
    }

    /// Header row, panes, message row, hint row. With `zoomed`, that pane takes the whole middle.
    public init(width: Int, height: Int, zoomed: Pane?) {
        let screen = Rect(x: 0, y: 0, width: width, height: height)
        let (header, rest) = screen.splitTop(1)
        let (middle, footer) = rest.splitBottom(2)
        self.header = header
        message = Rect(x: 0, y: footer.y, width: width, height: 1)
        hints = Rect(x: 0, y: footer.y + 1, width: width, height: 1)
        let empty = Rect(x: 0, y: middle.y, width: 0, height: 0)
        switch zoomed {
        case .tree?: (tree, ranges, outliers) = (middle, empty, empty)
        case .ranges?: (tree, ranges, outliers) = (empty, middle, empty)
        case .outliers?: (tree, ranges, outliers) = (empty, empty, middle)
        case nil:
            let treeWidth = max(34, min(56, width * 37 / 100))
            let (left, right) = middle.splitLeft(treeWidth)
            tree = left
            let outlierHeight = max(9, min(14, right.height * 2 / 5))
            let (top, bottom) = right.splitBottom(outlierHeight)
            ranges = top
            outliers = bottom
        }
    }

    public func rect(of pane: Pane) -> Rect {
        switch pane {
        case .tree: return tree
        case .ranges: return ranges
        case .outliers: return outliers
        }
    }
}

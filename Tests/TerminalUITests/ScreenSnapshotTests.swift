import Foundation
import Testing
@testable import TerminalUI
import Workbench

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

func workbench(_ name: String = "stdit3-layout.safetensors") throws -> Workbench {
    Workbench(session: try CheckpointSession(path: fixtures.appendingPathComponent(name).path), backgroundJobs: false)
}

func render(_ workbench: Workbench, width: Int = 120, height: Int = 36) -> CellGrid {
    let viewport = WorkbenchScreen.viewport(workbench.state, width: width, height: height)
    workbench.dispatch(.viewport(treeRows: viewport.treeRows, channelColumns: viewport.channelColumns, heatColumns: viewport.heatColumns,
                                 outlierRows: viewport.outlierRows))
    return WorkbenchScreen.render(workbench.state, theme: .dark, width: width, height: height)
}

@Test func weightsScreenOnOpen() throws {
    assertSnapshot(render(try workbench()), named: "weights-on-open")
}

@Test func weightsScreenOfAWideLayerScrolled() throws {
    let wb = try workbench()
    for _ in 0..<5 { wb.dispatch(.moveCursor(1)) }      // spatial_blocks.0.mlp.fc1: 256 outputs
    wb.dispatch(.focus(.ranges))
    wb.dispatch(.scrollChannelsPage(1))
    assertSnapshot(render(wb), named: "weights-fc1-scrolled")
}

@Test func keptLayersAndSTDiTTree() throws {
    let wb = try workbench("stdit-layout.safetensors")
    wb.dispatch(.moveToLast)
    wb.dispatch(.expandOrEnter)                          // open "Kept in floating point"
    wb.dispatch(.selectRow(wb.state.rows.firstIndex { $0.id == "§kept.t_block" }!))
    wb.dispatch(.expandOrEnter)
    wb.dispatch(.moveCursor(1))                          // t_block.1
    assertSnapshot(render(wb, width: 100, height: 30), named: "stdit-kept-t_block")
}

@Test func helpOverlayFiltered() throws {
    let wb = try workbench()
    wb.dispatch(.showHelp)
    assertSnapshot(render(wb), named: "help")
    wb.dispatch(.beginHelpFilter)
    wb.dispatch(.setHelpFilter("chan"))
    assertSnapshot(render(wb), named: "help-filtered")
}

@Test func zoomedOutliersPane() throws {
    let wb = try workbench()
    wb.dispatch(.focus(.outliers))
    wb.dispatch(.toggleZoom)
    assertSnapshot(render(wb, width: 90, height: 24), named: "outliers-zoomed")
}

@Test func terminalTooSmall() throws {
    assertSnapshot(render(try workbench(), width: 60, height: 20), named: "too-small")
}

@Test func findingALayerShowsTheQueryAndTheMatchesOnTheMessageLine() throws {
    let wb = try workbench()
    wb.dispatch(.beginSearch)
    wb.dispatch(.setSearch("temp fc2"))
    let lines = render(wb, width: 100, height: 30).textLines()
    #expect(lines[28].hasPrefix(" /temp fc2▏ 2 layers · Enter keeps · Esc returns"), "\(lines[28])")
    #expect(lines[0].contains("temporal_blocks.0.mlp.fc2") || lines.contains { $0.contains("Weight ranges · temporal_blocks.0.mlp.fc2") })
    wb.dispatch(.setSearch("nothing"))
    #expect(render(wb, width: 100, height: 30).textLines()[28].contains("no layer matches"))
}

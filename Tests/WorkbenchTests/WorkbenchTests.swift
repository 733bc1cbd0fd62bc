import Foundation
import Testing
@testable import Workbench
import VideoDiT
import Tensors
import Quantization

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

func openFixture(_ name: String = "stdit3-layout.safetensors") throws -> Workbench {
    Workbench(session: try CheckpointSession(path: fixtures.appendingPathComponent(name).path), backgroundJobs: false)
}

@Test func catalogFindsBlocksAndLinearsOfBothArchitectures() throws {
    let v12 = try openFixture().session.catalog
    #expect(v12.architecture == .stdit3)
    #expect(v12.blocks.map(\.name) == ["spatial_blocks.0", "temporal_blocks.0", "spatial_blocks.1", "temporal_blocks.1"])
    #expect(v12.blocks[0].linears.map { $0.role!.rawValue } ==
            ["attn.qkv", "attn.proj", "cross_attn.q_linear", "cross_attn.kv_linear", "cross_attn.proj", "mlp.fc1", "mlp.fc2"])
    #expect(v12.quantizableLinears.count == 28)
    #expect(v12.linear(named: "temporal_blocks.1.mlp.fc2")?.inputs == 256)
    #expect(v12.kept.map(\.name) == ["x_embedder", "t_embedder", "fps_embedder", "t_block", "y_embedder", "final_layer", "rope"])
    #expect(v12.kept.first { $0.name == "t_block" }?.linears.map(\.name) == ["t_block.1"])

    let v10 = try openFixture("stdit-layout.safetensors").session.catalog
    #expect(v10.architecture == .stdit)
    #expect(v10.blocks.count == 2)
    #expect(v10.blocks[0].linears.count == 9)
    #expect(v10.blocks[0].linears.contains { $0.name == "blocks.0.attn_temp.qkv" })
}

@Test func opensOnTheFirstLayerAndComputesItsStatistics() throws {
    let workbench = try openFixture()
    #expect(workbench.state.selectedLayer?.name == "spatial_blocks.0.attn.qkv")
    guard case .ready(let stats)? = workbench.state.statistics["spatial_blocks.0.attn.qkv"] else {
        Issue.record("statistics not computed")
        return
    }
    #expect(stats.outputs == 192 && stats.inputs == 64)
    #expect(stats.inputOutliers[0].ratio > 4)   // the fixture plants outlier input channels
}

@Test func treeNavigationExpandsCollapsesAndFindsParents() throws {
    let workbench = try openFixture()
    let start = workbench.state.rows.count
    workbench.dispatch(.collapseOrParent)                  // from a layer: go to its block
    #expect(workbench.state.selectedRow?.id == "spatial_blocks.0")
    workbench.dispatch(.collapseOrParent)                  // collapse the block
    #expect(workbench.state.rows.count == start - 7)
    workbench.dispatch(.moveCursor(1))
    #expect(workbench.state.selectedRow?.id == "temporal_blocks.0")
    workbench.dispatch(.expandOrEnter)
    workbench.dispatch(.expandOrEnter)                     // on an open block: step into it
    #expect(workbench.state.selectedLayer?.name == "temporal_blocks.0.attn.qkv")
    workbench.dispatch(.moveToLast)
    #expect(workbench.state.selectedRow?.id == ModelTree.keptSection)
    workbench.dispatch(.toggleExpanded)
    #expect(workbench.state.rows.last?.id == "§kept.rope")
}

@Test func pagingAndScrollingStayInRange() throws {
    let workbench = try openFixture()
    workbench.dispatch(.viewport(treeRows: 5, channelColumns: 50))
    workbench.dispatch(.page(10))
    #expect(workbench.state.cursor == workbench.state.rows.count - 1)
    #expect(workbench.state.treeScroll == workbench.state.rows.count - 5)
    workbench.dispatch(.moveToFirst)
    #expect(workbench.state.treeScroll == 0)
    workbench.dispatch(.moveCursor(1))                      // spatial_blocks.0
    workbench.dispatch(.moveCursor(1))                      // its qkv: 192 outputs
    workbench.dispatch(.scrollChannelsToEnd)
    #expect(workbench.state.channelOffset == 192 - 50)
    workbench.dispatch(.scrollChannels(-1000))
    #expect(workbench.state.channelOffset == 0)
}

/// The two bar plots scroll on their own (fc2: 64 outputs, 256 inputs); the outliers list stops
/// at its last full page.
@Test func eachBarPlotScrollsOnItsOwnAndListsStopAtTheirLastPage() throws {
    let workbench = try openFixture()
    workbench.dispatch(.viewport(treeRows: 20, channelColumns: 50, outlierRows: 10))
    for _ in 0..<6 { workbench.dispatch(.moveLayer(1)) }          // spatial_blocks.0.mlp.fc2
    #expect(workbench.state.selectedLayer?.name == "spatial_blocks.0.mlp.fc2")
    workbench.dispatch(.scrollChannelsToEnd)
    #expect(workbench.state.channelOffset == 64 - 50 && workbench.state.inputChannelOffset == 0)
    workbench.dispatch(.selectRangesPlot(nil))
    #expect(workbench.state.rangesPlot == .inputs)
    workbench.dispatch(.scrollChannelsPage(5))
    #expect(workbench.state.inputChannelOffset == 256 - 50 && workbench.state.channelOffset == 64 - 50)
    workbench.dispatch(.scrollChannels(-10))
    #expect(workbench.state.inputChannelOffset == 196 && workbench.state.channelOffset == 14)
    workbench.dispatch(.scrollOutliers(100))
    #expect(workbench.state.outlierScroll == WeightRangeStatistics.rankedCount - 10)
    workbench.dispatch(.viewport(treeRows: 20, channelColumns: 50, outlierRows: 12))
    #expect(workbench.state.outlierScroll == WeightRangeStatistics.rankedCount - 12)
    workbench.dispatch(.moveLayer(-1))
    #expect(workbench.state.channelOffset == 0 && workbench.state.inputChannelOffset == 0)
}

@Test func focusZoomHelpAndQuit() throws {
    let workbench = try openFixture()
    workbench.dispatch(.focusNext)
    #expect(workbench.state.focus == .ranges)
    workbench.dispatch(.toggleZoom)
    #expect(workbench.state.zoomed == .ranges)
    workbench.dispatch(.focusNext)
    #expect(workbench.state.zoomed == .outliers)
    workbench.dispatch(.toggleZoom)
    #expect(workbench.state.zoomed == nil)
    workbench.dispatch(.showHelp)
    workbench.dispatch(.setHelpFilter("zoom"))
    #expect(workbench.state.help?.filter == "zoom")
    workbench.dispatch(.hideHelp)
    #expect(workbench.state.help == nil)
    workbench.dispatch(.quit)
    #expect(workbench.state.shouldQuit)
}

@Test func backgroundJobsPostResultsForTheMainLoop() throws {
    let workbench = Workbench(session: try CheckpointSession(path: fixtures.appendingPathComponent("stdit3-layout.safetensors").path))
    #expect(workbench.state.statistics["spatial_blocks.0.attn.qkv"] == .computing)
    let deadline = Date().addingTimeInterval(10)
    while workbench.hasRunningJobs && Date() < deadline {
        workbench.drainCompletedJobs()
        usleep(1000)
    }
    #expect(workbench.state.selectedStatistics != nil)
}

/// One statistics job at a time, the selected layer first: running through layers does not queue
/// every layer passed; the rest are computed in the background for the tree's flags.
@Test func statisticsComputeTheSelectedLayerFirstThenEveryLayerInTheBackground() throws {
    let workbench = Workbench(session: try CheckpointSession(path: fixtures.appendingPathComponent("stdit3-layout.safetensors").path))
    for _ in 0..<7 {
        workbench.dispatch(.moveLayer(1))
        #expect(workbench.state.statistics.values.filter { $0 == .computing }.count <= 1)
    }
    let selected = try #require(workbench.state.selectedLayer?.name)
    #expect(selected == "temporal_blocks.0.attn.qkv")
    let deadline = Date().addingTimeInterval(20)
    while workbench.state.statistics[selected].map({ $0 == .computing }) ?? true, Date() < deadline {
        workbench.drainCompletedJobs()
        usleep(1000)
    }
    let layers = workbench.state.catalog.layersInTreeOrder
    while layers.contains(where: { workbench.state.statistics[$0.name].map { $0 == .computing } ?? true }), Date() < deadline {
        workbench.drainCompletedJobs()
        usleep(1000)
    }
    let missing = layers.filter { if case .ready? = workbench.state.statistics[$0.name] { return false } else { return true } }
    #expect(missing.isEmpty, "never computed: \(missing.map(\.name))")
    #expect(workbench.state.selectedLayer?.name == selected, "background work does not move the selection")
}

@Test func aQuantizedExportIsRecognisedNotShownAsAnEmptyModel() throws {
    let path = NSTemporaryDirectory() + "quantized-\(UUID().uuidString).safetensors"
    defer { try? FileManager.default.removeItem(atPath: path) }
    var writer = SafetensorsWriter()
    writer.metadata = [("format", "stsq-quantized/2"), ("checkpoint_hash", "0123456789abcdef"), ("calibration", "fedcba9876543210")]
    writer.add("spatial_blocks.0.attn.qkv.w0.weight", dtype: .i8, shape: [2, 2], elements: [Int8(1), 2, 3, 4])
    try writer.write(to: path)
    do {
        _ = try CheckpointSession(path: path)
        Issue.record("a quantized export opened as a checkpoint")
    } catch let error as QuantizedModelOpened {
        #expect(error.checkpointHash == "0123456789abcdef" && error.description.contains("stsq-tui quantize CHECKPOINT --plan plan.json"))
    }
}

@Test func notACheckpointOfATransformerIsAClearError() throws {
    let path = NSTemporaryDirectory() + "plain-\(UUID().uuidString).safetensors"
    var header = Array(#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#.utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    var bytes: [UInt8] = []
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes.append(contentsOf: $0) }
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes + header + [0]))
    #expect(throws: CatalogError.self) { try CheckpointSession(path: path) }
}

/// "Next layer" from a plot skips block and section rows, opening the next block on the way.
@Test func nextLayerKeysLandOnLayersOnly() throws {
    let wb = try openFixture()
    #expect(wb.state.selectedLayer?.name == "spatial_blocks.0.attn.qkv")
    for _ in 0..<7 { wb.dispatch(.moveLayer(1)) }
    #expect(wb.state.selectedLayer?.name == "temporal_blocks.0.attn.qkv", "past spatial_blocks.0's 7 linears into the next block")
    wb.dispatch(.moveLayer(-1))
    #expect(wb.state.selectedLayer?.name == "spatial_blocks.0.mlp.fc2")
    wb.dispatch(.moveToFirst)                       // the section row
    wb.dispatch(.moveLayer(1))
    #expect(wb.state.selectedLayer?.name == "spatial_blocks.0.attn.qkv")
    for _ in 0..<40 { wb.dispatch(.moveLayer(1)) }
    #expect(wb.state.selectedLayer?.name == "final_layer.linear", "the kept linears follow, and the last one stays")
}

@Test func slashFindsALayerByNameAndEscReturns() throws {
    let wb = try openFixture()
    wb.dispatch(.beginSearch)
    for c in "temp fc2" { wb.dispatch(.setSearch((wb.state.search?.query ?? "") + String(c))) }
    #expect(wb.state.selectedLayer?.name == "temporal_blocks.0.mlp.fc2" && wb.state.search?.matches == 2)
    wb.dispatch(.endSearch(accept: true))
    #expect(wb.state.search == nil && wb.state.message?.text.contains("2 layers match") == true)
    wb.dispatch(.repeatSearch(1))
    #expect(wb.state.selectedLayer?.name == "temporal_blocks.1.mlp.fc2" && wb.state.message?.text == "'temp fc2' 2/2")
    wb.dispatch(.repeatSearch(1))
    #expect(wb.state.selectedLayer?.name == "temporal_blocks.0.mlp.fc2", "wraps around")
    wb.dispatch(.repeatSearch(-1))
    #expect(wb.state.selectedLayer?.name == "temporal_blocks.1.mlp.fc2")

    // Esc returns to the row the search began on; a query without a match leaves it there.
    wb.dispatch(.beginSearch)
    wb.dispatch(.setSearch("T_BLOCK"))
    #expect(wb.state.selectedLayer?.name == "t_block.1", "kept layers are found too, case-insensitively")
    wb.dispatch(.setSearch("T_BLOCKx"))
    #expect(wb.state.selectedLayer?.name == "temporal_blocks.1.mlp.fc2" && wb.state.search?.matches == 0)
    wb.dispatch(.setSearch("qkv"))
    wb.dispatch(.endSearch(accept: false))
    #expect(wb.state.selectedLayer?.name == "temporal_blocks.1.mlp.fc2" && wb.state.lastSearch == "temp fc2")
}

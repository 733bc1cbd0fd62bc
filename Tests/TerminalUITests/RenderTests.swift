import Testing
@testable import TerminalUI

@Test func risingBarsUseEighthBlocks() {
    var grid = CellGrid(width: 4, height: 2)
    BarPlot.drawRising([0, 0.25, 0.5, 1][...], maxValue: 1, in: grid.bounds, grid: &grid) { _ in .plain }
    #expect(grid.textLines() == ["   █", " ▄██"])
}

@Test func divergingBarsRiseAndHang() {
    var grid = CellGrid(width: 3, height: 4)
    BarPlot.drawDiverging(mins: [-1, -0.25, 0][...], maxs: [1, 0.5, 0.125][...], scale: 1, in: grid.bounds, grid: &grid,
                          upStyle: { _ in .plain }, downStyle: { _ in .plain })
    #expect(grid.textLines() == ["█", "██▂", "█▀", "█"])
}

@Test func textClipsWithAnEllipsis() {
    var grid = CellGrid(width: 8, height: 1)
    grid.text(1, 0, "abcdefghij", .plain, maxWidth: 5)
    #expect(grid.textLines() == [" abcd…"])
}

@Test func numberFormats() {
    #expect(NumberFormat.fixed(3.14159, 2) == "3.14")
    #expect(NumberFormat.fixed(-0.04, 1) == "0.0")
    #expect(NumberFormat.fixed(-2.25, 1) == "-2.3")
    #expect(NumberFormat.short(0.02134) == "0.0213")
    #expect(NumberFormat.short(3.1e-5) == "3.1e-05")
    #expect(NumberFormat.count(1_207_643_972) == "1.21B")
    #expect(NumberFormat.grouped(343_144) == "343,144")
    #expect(NumberFormat.bytes(686_312) == "670.2 KiB")
}

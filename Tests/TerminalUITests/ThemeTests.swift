import Foundation
import Testing
@testable import TerminalUI

@Test func builtInThemesParseCompletely() throws {
    for name in ThemeLibrary.builtInNames {
        let theme = try ThemeLibrary.load(name)
        #expect(theme.name == name)
        // Every role is set by the file itself, not inherited from the fallback.
        let text = try String(contentsOf: ThemeLibrary.resourceDirectory!.appendingPathComponent("\(name).toml"), encoding: .utf8)
        for role in ThemeRole.allCases { #expect(text.contains("\n\(role.rawValue) "), "\(name) lacks \(role.rawValue)") }
        #expect(theme.heat.count >= 2)
    }
    #expect(try ThemeLibrary.load("light").color(.background) == RGB(0xfa, 0xfa, 0xfa))
}

@Test func partialThemeKeepsDefaultsForMissingRoles() throws {
    let theme = try ThemeParser.parse("""
        # only two roles
        name = "mine"
        [colors]
        text = "#010203"   # trailing comment
        heat = ["#000000", "#ffffff",]
        """, file: "mine.toml")
    #expect(theme.name == "mine")
    #expect(theme.color(.text) == RGB(1, 2, 3))
    #expect(theme.color(.bad) == Theme.dark.color(.bad))
    #expect(theme.heatColor(0.5) == RGB(128, 128, 128))
}

private func parseError(_ text: String) -> ThemeError? {
    do {
        _ = try ThemeParser.parse(text, file: "/themes/bad.toml")
        return nil
    } catch {
        return error as? ThemeError
    }
}

@Test func badThemeFilesNameFileLineAndKey() {
    let unknownKey = parseError("[colors]\ntext = \"#ffffff\"\nborderr = \"#000000\"\n")
    #expect(unknownKey?.line == 3)
    #expect(unknownKey?.key == "borderr")
    #expect(unknownKey?.description.hasPrefix("/themes/bad.toml:3: 'borderr': unknown colour role") == true)

    let badColour = parseError("[colors]\n\nwarn = \"#ffe\"\n")
    #expect(badColour?.line == 3)
    #expect(badColour?.key == "warn")
    #expect(badColour?.message.contains("#ffe") == true)

    let syntax = parseError("name = \"x\"\n[colors\n")
    #expect(syntax?.line == 2)
    #expect(parseError("[colors]\ntext \"#ffffff\"\n")?.message == "expected key = value")
    #expect(parseError("[colors]\ntext = #ffffff\n")?.key == "text")
    #expect(parseError("[palette]\n")?.line == 1)
    #expect(parseError("colour = \"#ffffff\"\n")?.key == "colour")
    #expect(parseError("[colors]\nheat = [\"#000000\"]\n")?.message.contains("two") == true)
}

/// What TOML refuses is refused here too: keys and tables given twice, bare CR line endings, colour
/// literals that only an integer parser would take.
@Test func themesAreAsStrictAsTOML() throws {
    #expect(parseError("[colors]\ntext = \"#ffffff\"\ntext = \"#000000\"\n")?.message == "given twice")
    #expect(parseError("[colors]\ntext = \"#ffffff\"\n[colors]\n")?.line == 3)
    #expect(parseError("name = \"a\"\nname = \"b\"\n")?.key == "name")
    #expect(parseError("[colors]\rtext = \"#ffffff\"\r")?.message.contains("carriage return") == true)
    #expect(parseError("[colors]\ntext = \"#+12345\"\n")?.key == "text")
    #expect(parseError("[colors]\ntext = \"#-12345\"\n")?.key == "text")
    #expect(parseError("name = \"a\u{1b}[2J\"\n")?.message.contains("control") == true)
    // CRLF is a line ending like LF.
    let crlf = try ThemeParser.parse("name = \"w\"\r\n[colors]\r\ntext = \"#010203\"\r\n", file: "/t/w.toml")
    #expect(crlf.colors[.text] == RGB(hex: "#010203"))
}

@Test func missingOrBrokenThemeFallsBackToDefault() throws {
    let (theme, error) = ThemeLibrary.loadOrDefault("no-such-theme")
    #expect(theme == .dark)
    #expect(error?.message.contains("dark, light, high-contrast") == true)

    let path = NSTemporaryDirectory() + "broken-\(UUID().uuidString).toml"
    try "[colors]\nbad_role = \"#000000\"\n".write(toFile: path, atomically: true, encoding: .utf8)
    let (fallback, fileError) = ThemeLibrary.loadOrDefault(path)
    #expect(fallback == .dark)
    #expect(fileError?.file == path && fileError?.line == 2 && fileError?.key == "bad_role")
}

@Test func colourModePreference() {
    #expect(ColorMode.preferred(requested: nil, environment: [:]) == .palette256)
    #expect(ColorMode.preferred(requested: nil, environment: ["COLORTERM": "truecolor"]) == .truecolor)
    #expect(ColorMode.preferred(requested: nil, environment: ["COLORTERM": "24bit", "NO_COLOR": "1"]) == .none)
    #expect(ColorMode.preferred(requested: .ansi16, environment: ["NO_COLOR": "1"]) == .ansi16)
}

@Test func paletteMappingPicksNearestEntries() {
    #expect(Palette.index256(RGB(0, 0, 0)) == 16)
    #expect(Palette.index256(RGB(255, 255, 255)) == 231)
    #expect(Palette.index256(RGB(255, 0, 0)) == 196)
    #expect(Palette.index256(RGB(0x80, 0x80, 0x80)) == 244)    // grey ramp: 8 + 10·12 = 128
    #expect(Palette.index256(RGB(0x5f, 0x87, 0xaf)) == 67)     // exact cube entry
    #expect(Palette.index16(RGB(250, 10, 10)) == 9)
    #expect(Palette.index16(RGB(10, 10, 10)) == 0)
}

@Test func asciiModeHasAFallbackForEveryGlyphTheViewsUse() {
    for glyph in "─│╭╮╰╯▁▂▃▄▅▆▇█▀▸▾›…╵·•×⚑✗▏┄←→↑↓" {
        #expect(Terminal.asciiFallback(glyph).isASCII, "\(glyph)")
        #expect(Terminal.asciiFallback(glyph) != "?", "\(glyph)")
    }
}

@Test func colourModesFollowTheTerminfoColourCount() {
    #expect(Palette.modes(colors: 8, direct: false) == [.ansi8, .none])
    #expect(Palette.modes(colors: 16, direct: false) == [.ansi16, .ansi8, .none])
    #expect(Palette.modes(colors: 256, direct: false) == [.palette256, .ansi16, .ansi8, .none])
    #expect(Palette.modes(colors: 0x1000000, direct: true) == [.truecolor, .palette256, .ansi16, .ansi8, .none])
    #expect(Palette.modes(colors: 0, direct: false) == [.none])
    #expect(Palette.index8(RGB(255, 80, 80)) == 1 && Palette.index8(RGB(90, 90, 90)) == 0)
}

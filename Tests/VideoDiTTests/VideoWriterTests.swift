import Testing
import Tensors
@testable import VideoDiT

@Test func pngChunksCarryTheStandardChecksums() {
    #expect(PNG.crc32(Array("IEND".utf8)) == 0xAE42_6082)
    #expect(PNG.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
    let png = PNG.encodeRGB([255, 0, 0, 0, 255, 0], width: 2, height: 1)
    #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    #expect(Array(png.suffix(12)) == [0, 0, 0, 0] + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82])
}

@Test func y4mHasOneFramePerTimeStep() {
    // [3, T=2, H=1, W=2]: a white then a black frame.
    let video = Tensor(shape: [3, 2, 1, 2], scalars: [1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1])
    let bytes = VideoWriters.y4m(video, fps: 8)
    let header = "YUV4MPEG2 W2 H1 F8:1 Ip A1:1 C444 XCOLORRANGE=FULL\n"
    #expect(Array(bytes.prefix(header.utf8.count)) == Array(header.utf8))
    #expect(bytes.count == header.utf8.count + 2 * (6 + 3 * 2))
    #expect(bytes[header.utf8.count + 6] == 255)                 // Y of the white frame
    #expect(bytes[header.utf8.count + 12 + 6] == 0)              // Y of the black frame
}

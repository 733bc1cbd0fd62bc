import Tensors

/// Pixel-space videos `[C=3, T, H, W]` with values in [-1, 1] written as YUV4MPEG2 and PNG.
public enum VideoWriters {
    /// 8-bit RGB of frame t: `[H, W, 3]`, values mapped from [-1, 1] and clamped.
    static func rgbFrame(_ video: Tensor, frame t: Int) -> [UInt8] {
        let (T, H, W) = (video.shape[1], video.shape[2], video.shape[3])
        var out = [UInt8](repeating: 0, count: H * W * 3)
        for c in 0..<3 {
            for y in 0..<H {
                for x in 0..<W {
                    let v = video.scalars[((c * T + t) * H + y) * W + x]
                    out[(y * W + x) * 3 + c] = UInt8(max(0, min(255, ((v + 1) * 127.5).rounded())))
                }
            }
        }
        return out
    }

    /// YUV4MPEG2 (4:4:4, full-range BT.601), playable with ffplay/mpv.
    public static func y4m(_ video: Tensor, fps: Int) -> [UInt8] {
        precondition(video.rank == 4 && video.shape[0] == 3, "video must be [3, T, H, W], got \(video.shape)")
        let (T, H, W) = (video.shape[1], video.shape[2], video.shape[3])
        var out = Array("YUV4MPEG2 W\(W) H\(H) F\(fps):1 Ip A1:1 C444 XCOLORRANGE=FULL\n".utf8)
        for t in 0..<T {
            out += Array("FRAME\n".utf8)
            let rgb = rgbFrame(video, frame: t)
            var planes = [[UInt8]](repeating: [UInt8](repeating: 0, count: H * W), count: 3)
            for i in 0..<(H * W) {
                let (r, g, b) = (Double(rgb[3 * i]), Double(rgb[3 * i + 1]), Double(rgb[3 * i + 2]))
                let yv = 0.299 * r + 0.587 * g + 0.114 * b
                planes[0][i] = UInt8(max(0, min(255, yv.rounded())))
                planes[1][i] = UInt8(max(0, min(255, (128 + (b - yv) * 0.564).rounded())))
                planes[2][i] = UInt8(max(0, min(255, (128 + (r - yv) * 0.713).rounded())))
            }
            out += planes[0] + planes[1] + planes[2]
        }
        return out
    }

    /// All frames side by side in one PNG (frame t at x = t·(W+1), one-pixel gaps).
    public static func contactSheet(_ video: Tensor) -> [UInt8] {
        let (T, H, W) = (video.shape[1], video.shape[2], video.shape[3])
        let sheetWidth = T * (W + 1) - 1
        var pixels = [UInt8](repeating: 40, count: sheetWidth * H * 3)
        for t in 0..<T {
            let frame = rgbFrame(video, frame: t)
            for y in 0..<H {
                for x in 0..<W {
                    for c in 0..<3 { pixels[(y * sheetWidth + t * (W + 1) + x) * 3 + c] = frame[(y * W + x) * 3 + c] }
                }
            }
        }
        return PNG.encodeRGB(pixels, width: sheetWidth, height: H)
    }
}

/// A minimal PNG encoder: 8-bit RGB, filter 0, zlib stream of stored (uncompressed) blocks.
public enum PNG {
    public static func encodeRGB(_ pixels: [UInt8], width: Int, height: Int) -> [UInt8] {
        precondition(pixels.count == width * height * 3)
        var raw: [UInt8] = []
        raw.reserveCapacity((width * 3 + 1) * height)
        for y in 0..<height {
            raw.append(0)
            raw += pixels[(y * width * 3)..<((y + 1) * width * 3)]
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65_535, raw.count - offset)
            let final: UInt8 = offset + n == raw.count ? 1 : 0
            zlib += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            zlib += raw[offset..<(offset + n)]
            offset += n
        } while offset < raw.count
        zlib += bigEndian(adler32(raw))
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out += chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 2, 0, 0, 0])
        out += chunk("IDAT", zlib)
        out += chunk("IEND", [])
        return out
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        return bigEndian(UInt32(data.count)) + typeBytes + data + bigEndian(crc32(typeBytes + data))
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for v in bytes {
            a = (a + UInt32(v)) % 65_521
            b = (b + a) % 65_521
        }
        return (b << 16) | a
    }
}

/// The validated header of a safetensors file: 8-byte little-endian length N, N bytes of JSON,
/// then the data section.
struct SafetensorsHeader {
    /// A header's work is bounded by what it may hold, not only by its byte length: at most
    /// `SafetensorsFile.maxTensors` entries of rank ≤ `SafetensorsFile.maxRank`, each a handful of
    /// values (and the metadata map).
    static let headerLimits = JSONLimits(values: 16 * SafetensorsFile.maxTensors + 2 * SafetensorsFile.maxMetadataEntries,
                                         arrayLength: SafetensorsFile.maxRank,
                                         objectMembers: SafetensorsFile.maxTensors + 1)

    var entries: [SafetensorsEntry]
    var metadata: [(key: String, value: String)]
    var dataStart: Int

    static func parse(_ bytes: UnsafeRawBufferPointer, file: String) throws -> SafetensorsHeader {
        func fail(_ kind: SafetensorsError.Kind, _ message: String, tensor: String? = nil) -> SafetensorsError {
            SafetensorsError(file: file, tensor: tensor, kind: kind, message)
        }
        guard bytes.count >= 8 else {
            throw fail(.truncated, "truncated file: \(bytes.count) bytes, a safetensors file starts with an 8-byte header length")
        }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(SafetensorsFile.maxHeaderBytes) else {
            throw fail(.headerTooLarge, "header length \(declared) bytes is absurd (limit \(SafetensorsFile.maxHeaderBytes))")
        }
        let headerLength = Int(declared)
        guard 8 + headerLength <= bytes.count else {
            throw fail(.truncated, "header length \(headerLength) bytes is larger than the file (\(bytes.count - 8) bytes after the length)")
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)]), limits: headerLimits)
        } catch let error as JSONParseError {
            if error.exceeded == .arrayLength {
                throw fail(.invalidHeader, "a shape of more than \(SafetensorsFile.maxRank) dimensions (or another array that long) at header byte \(error.offset); no tensor has that rank")
            }
            if error.exceeded != nil {
                throw fail(.invalidHeader, "more than \(SafetensorsFile.maxTensors) tensors (or \(SafetensorsFile.maxMetadataEntries) metadata entries): refused at header byte \(error.offset)")
            }
            if let name = error.duplicateKey {
                throw fail(.duplicateName, "duplicate tensor name in the header", tensor: name)
            }
            throw fail(.invalidJSON, "header is not valid JSON: \(error.message) at header byte \(error.offset)")
        }
        guard let members = json.objectValue else {
            throw fail(.invalidHeader, "header must be a JSON object, found \(json.typeName)")
        }
        guard members.count - (json["__metadata__"] == nil ? 0 : 1) <= SafetensorsFile.maxTensors else {
            throw fail(.invalidHeader, "more than \(SafetensorsFile.maxTensors) tensors: no checkpoint has that many")
        }
        let dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart
        var entries: [SafetensorsEntry] = []
        var metadata: [(key: String, value: String)] = []

        for (name, value) in members {
            if name == "__metadata__" {
                guard let fields = value.objectValue else {
                    throw fail(.invalidHeader, "__metadata__ must be an object of strings, found \(value.typeName)")
                }
                for (key, field) in fields {
                    guard let text = field.stringValue else {
                        throw fail(.invalidHeader, "__metadata__ key '\(key)' must be a string, found \(field.typeName)")
                    }
                    metadata.append((key, text))
                }
                continue
            }
            guard value.objectValue != nil else {
                throw fail(.invalidHeader, "entry must be an object, found \(value.typeName)", tensor: name)
            }
            guard let dtypeName = value["dtype"]?.stringValue else {
                throw fail(.invalidHeader, "missing string field 'dtype'", tensor: name)
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                let known = DType.allCases.map(\.rawValue).joined(separator: ", ")
                throw fail(.unknownDType, "unknown dtype '\(dtypeName)' (known: \(known))", tensor: name)
            }
            guard let shapeValues = value["shape"]?.arrayValue else {
                throw fail(.invalidHeader, "missing array field 'shape'", tensor: name)
            }
            var shape: [Int] = []
            for dim in shapeValues {
                guard let d = dim.intValue, d >= 0 else {
                    throw fail(.invalidHeader, "shape must hold non-negative integers, found \(dim.serialized())", tensor: name)
                }
                shape.append(d)
            }
            guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
                  let begin = offsets[0].intValue, let end = offsets[1].intValue else {
                throw fail(.invalidHeader, "'data_offsets' must be [begin, end] integers", tensor: name)
            }
            guard begin >= 0, begin <= end else {
                throw fail(.invalidHeader, "data_offsets [\(begin), \(end)] are not an ordered range", tensor: name)
            }
            guard end <= dataSize else {
                throw fail(.outOfBounds, "data_offsets [\(begin), \(end)] run past the data section (\(dataSize) bytes)", tensor: name)
            }
            var expected = dtype.size
            var overflow = false
            for d in shape {
                let (product, o) = expected.multipliedReportingOverflow(by: d)
                expected = product
                overflow = overflow || o
            }
            guard !overflow, expected == end - begin else {
                let shapeText = "[" + shape.map(String.init).joined(separator: ", ") + "]"
                let sizeText = overflow ? "more than the address space" : "\(expected) bytes"
                throw fail(.sizeMismatch, "shape \(shapeText) × \(dtype.rawValue) is \(sizeText) but data_offsets [\(begin), \(end)] span \(end - begin) bytes", tensor: name)
            }
            entries.append(SafetensorsEntry(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end))
        }

        let ordered = entries.filter { !$0.dataOffsets.isEmpty }.sorted { $0.dataOffsets.lowerBound < $1.dataOffsets.lowerBound }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where next.dataOffsets.lowerBound < previous.dataOffsets.upperBound {
            throw fail(.overlap, "data_offsets [\(next.dataOffsets.lowerBound), \(next.dataOffsets.upperBound)] overlap tensor '\(previous.name)' [\(previous.dataOffsets.lowerBound), \(previous.dataOffsets.upperBound)]", tensor: next.name)
        }
        return SafetensorsHeader(entries: entries, metadata: metadata, dataStart: dataStart)
    }
}

/// A checkpoint or export that cannot be read or written. The message names the file and, where
/// one is at fault, the tensor or key, so the user knows what to fix.
public struct SafetensorsError: Error, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case io, truncated, headerTooLarge, invalidJSON, invalidHeader, unknownDType
        case sizeMismatch, outOfBounds, overlap, duplicateName, missingTensor, unsupportedConversion, nonFinite
    }

    public let file: String
    public let tensor: String?
    public let kind: Kind
    public let message: String

    public init(file: String, tensor: String? = nil, kind: Kind, _ message: String) {
        self.file = file
        self.tensor = tensor
        self.kind = kind
        self.message = message
    }

    public var description: String {
        if let tensor { return "\(file): tensor '\(tensor)': \(message)" }
        return "\(file): \(message)"
    }
}

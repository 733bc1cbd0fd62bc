import Tensors

/// The demo model's own text encoder (stored under `text_encoder.` in its checkpoint): a
/// word-level tokenizer over the scene grammar and learned token + position embeddings, giving
/// `y[i] = token[id_i] + position[i]` for all L rows and a mask of 1 for the words and EOS.
///
/// Tokenizing: lower-case, trim, drop one trailing ".", split on whitespace; ids are the words'
/// indices in the vocabulary (metadata key `vocabulary`, a JSON list; 0 = `<pad>`, 1 = `</s>`),
/// then EOS, padded with 0 to L.
public struct WordTextEncoder: Sendable {
    public let vocabulary: [String]
    public let maxLength: Int
    public let channels: Int
    private let tokenEmbedding: [Float]
    private let positionEmbedding: [Float]
    private let ids: [String: Int]

    public static let padID = 0, eosID = 1

    /// The encoder in `file`, or nil when the checkpoint has none (real OpenSora checkpoints).
    public init?(file: SafetensorsFile) throws {
        guard let token = file["text_encoder.token_embedding.weight"] else { return nil }
        guard let position = file["text_encoder.position_embedding.weight"], token.shape.count == 2,
              position.shape.count == 2, position.shape[1] == token.shape[1] else {
            throw ModelLoadError("\(file.path): 'text_encoder.token_embedding.weight' needs a matching 'text_encoder.position_embedding.weight' [L, channels]")
        }
        guard let text = file.metadataValue("vocabulary"), let list = try? JSONValue.parse(text).arrayValue,
              list.count == token.shape[0] else {
            throw ModelLoadError("\(file.path): metadata 'vocabulary' must be a JSON list of \(token.shape[0]) words")
        }
        vocabulary = list.map { $0.stringValue ?? "" }
        maxLength = position.shape[0]
        channels = token.shape[1]
        tokenEmbedding = try file.tensor(token.name).scalars
        positionEmbedding = try file.tensor(position.name).scalars
        var ids: [String: Int] = [:]
        for (i, word) in vocabulary.enumerated() { ids[word] = i }
        self.ids = ids
    }

    /// Token ids and mask of one prompt.
    public func tokenize(_ prompt: String) throws -> (ids: [Int], mask: [Int]) {
        var text = prompt.lowercased().trimmingSpaces()
        if text.hasSuffix(".") { text.removeLast() }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
        let unknown = words.filter { ids[$0] == nil || $0 == "<pad>" || $0 == "</s>" }
        guard unknown.isEmpty else {
            let known = vocabulary.filter { !$0.hasPrefix("<") }.joined(separator: " ")
            throw ModelLoadError("unknown word\(unknown.count == 1 ? "" : "s") \(unknown.map { "'\($0)'" }.joined(separator: ", ")) in \"\(prompt)\"; the demo model knows: \(known)")
        }
        guard words.count + 1 <= maxLength else {
            throw ModelLoadError("\"\(prompt)\" has \(words.count) words; the text encoder takes at most \(maxLength - 1)")
        }
        let tokens = words.map { ids[$0]! } + [WordTextEncoder.eosID]
        let padding = maxLength - tokens.count
        return (tokens + Array(repeating: WordTextEncoder.padID, count: padding),
                Array(repeating: 1, count: tokens.count) + Array(repeating: 0, count: padding))
    }

    /// `y` `[n, 1, L, channels]` and masks for the prompts.
    public func encode(_ prompts: [String]) throws -> TextCondition {
        var y: [Float] = []
        var masks: [[Int]] = []
        for prompt in prompts {
            let (tokens, mask) = try tokenize(prompt)
            for (i, id) in tokens.enumerated() {
                for c in 0..<channels { y.append(tokenEmbedding[id * channels + c] + positionEmbedding[i * channels + c]) }
            }
            masks.append(mask)
        }
        return TextCondition(embeddings: Tensor(shape: [prompts.count, 1, maxLength, channels], scalars: y), mask: masks)
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

import Foundation
import Testing
import Tensors
@testable import VideoDiT

/// A 6-word encoder with recognisable embeddings: token row id = id·10, position row i = i/10.
func tinyEncoderFile() throws -> SafetensorsFile {
    var writer = SafetensorsWriter()
    writer.metadata = [("vocabulary", #"["<pad>", "</s>", "a", "red", "circle", "moving"]"#)]
    writer.add("text_encoder.token_embedding.weight", Tensor(shape: [6, 2]) { Float($0 / 2) * 10 })
    writer.add("text_encoder.position_embedding.weight", Tensor(shape: [5, 2]) { Float($0 / 2) / 10 })
    let path = NSTemporaryDirectory() + "encoder-\(UUID().uuidString).safetensors"
    try writer.write(to: path)
    return try SafetensorsFile(path: path)
}

@Test func tokenizesLikeTheTrainingScript() throws {
    let encoder = try #require(try WordTextEncoder(file: try tinyEncoderFile()))
    let (ids, mask) = try encoder.tokenize("  A red Circle. ")
    #expect(ids == [2, 3, 4, 1, 0])
    #expect(mask == [1, 1, 1, 1, 0])
    let condition = try encoder.encode(["a red circle"])
    #expect(condition.embeddings.shape == [1, 1, 5, 2])
    #expect(condition.embeddings.scalars == [20, 20, 30.1, 30.1, 40.2, 40.2, 10.3, 10.3, 0.4, 0.4])
}

@Test func unknownWordsAndLongPromptsAreClearErrors() throws {
    let encoder = try #require(try WordTextEncoder(file: try tinyEncoderFile()))
    do {
        _ = try encoder.tokenize("a blue circle")
        Issue.record("accepted an unknown word")
    } catch let error as ModelLoadError {
        #expect(error.description.contains("'blue'"))
        #expect(error.description.contains("knows: a red circle moving"))
    }
    #expect(throws: ModelLoadError.self) { try encoder.tokenize("a red circle moving a") }
}

@Test func checkpointsWithoutAnEncoderHaveNone() throws {
    #expect(try WordTextEncoder(file: try fixtureFile("stdit3-tiny.safetensors")) == nil)
}
